"""``ragship config``: inspect the effective settings."""

from __future__ import annotations

from typing import Any

import typer

from ragship.cli.common import JsonOption, out, print_json

config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)


@config_app.command("show")
def config_show(as_json: JsonOption = False) -> None:
    """Print the effective settings; secrets are masked."""
    from ragship.settings import get_settings

    data = get_settings().masked()
    if as_json:
        print_json(data)
        return
    for key, value in _flatten(data):
        out.print(f"{key} = {value!r}", highlight=False)


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            rows.extend(_flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
