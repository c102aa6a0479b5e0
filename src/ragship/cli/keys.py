"""``ragship keys add|list|revoke``: per-principal API keys in the keys file (docs/security.md)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ragship.cli.common import JsonOption, out, print_json

if TYPE_CHECKING:
    from ragship.access.keys import KeysFile

keys_app = typer.Typer(help="API keys of principals (names, groups, scopes), stored as salted hashes.")

KeysFileOption = Annotated[
    Path | None, typer.Option("--keys-file", help="The keys file (default: RAGSHIP_SERVING__KEYS_FILE).")
]


def _keys(path: Path | None) -> KeysFile:
    from ragship.access.keys import KeysFile
    from ragship.errors import ConfigError
    from ragship.settings import get_settings

    path = path or get_settings().serving.keys_file
    if path is None:
        raise ConfigError("No keys file: set RAGSHIP_SERVING__KEYS_FILE or pass --keys-file.")
    return KeysFile(path)


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


@keys_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Who holds the key (shown in job and feedback records).")],
    groups: Annotated[str, typer.Option("--groups", help="Comma-separated groups whose documents it reads.")] = "",
    scopes: Annotated[str, typer.Option("--scopes", help="Comma-separated: query, index, feedback, admin.")] = "query",
    keys_file: KeysFileOption = None,
) -> None:
    """Create a key and print it once: only its salted hash is stored."""
    key = _keys(keys_file).add(name, _split(groups), _split(scopes))
    out.print(key, markup=False, highlight=False, soft_wrap=True)


@keys_app.command("list")
def list_keys(keys_file: KeysFileOption = None, as_json: JsonOption = False) -> None:
    """List keys: names, ids, groups and scopes (never a key or its hash)."""
    entries = [e.public() for e in _keys(keys_file).entries()]
    if as_json:
        print_json({"keys": entries})
        return
    for e in entries:
        out.print(f"{e['name']}\t{e['id']}\tgroups={','.join(e['groups'])}\tscopes={','.join(e['scopes'])}")


@keys_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="Whose keys to revoke.")], keys_file: KeysFileOption = None
) -> None:
    """Revoke every key of NAME; replicas refuse it within serving.keys_reload_ms."""
    from ragship.errors import ConfigError

    removed = _keys(keys_file).revoke(name)
    if not removed:
        raise ConfigError(f"No key named {name!r}; `ragship keys list` shows the names.")
    out.print(f"revoked {removed} key(s) of {name}")
