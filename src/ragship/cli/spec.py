"""``ragship spec``: create, show and validate pipeline specs."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from ragship.cli.common import StoreOption, err, out, print_error
from ragship.errors import RagshipError, SpecError
from ragship.spec.knobs import KNOBS, Knob

spec_app = typer.Typer(help="Create, show and validate pipeline specs.", no_args_is_help=True)


def spec_init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    **values: Any,
) -> None:
    """Write the default spec (both pipelines) to PATH."""
    from ragship.settings import get_settings
    from ragship.spec import spec_from_settings

    if path.exists() and not force:
        raise RagshipError(f"{path} exists; pass --force to overwrite it.")
    given = {name: _parsed(KNOBS[name], value) for name, value in values.items() if value is not None}
    length = given.get("split_length", KNOBS["split_length"].default_value)
    if given.get("split_overlap", KNOBS["split_overlap"].default_value) >= length:
        raise typer.BadParameter("must be smaller than --split-length", param_hint="--split-overlap")
    spec = spec_from_settings(get_settings(), **given)
    spec.save(path)
    err.print(f"Wrote {spec.name} spec to {path} (hash {spec.hash}).")


def _parsed(knob: Knob, value: Any) -> Any:
    """An option's value as the knob takes it; a bad one is refused naming the option and the bound."""
    hint = f"--{knob.name.replace('_', '-')}"
    if knob.kind is list:
        try:
            value = [float(w) for w in str(value).split(",")]
        except ValueError:
            raise typer.BadParameter("give numbers separated by commas, e.g. 0.7,0.3", param_hint=hint) from None
    try:
        return knob.check(value)
    except SpecError as e:
        raise typer.BadParameter(str(e).split(": ", 1)[-1], param_hint=hint) from None


def _option(knob: Knob) -> inspect.Parameter:
    """``--name`` of ``spec init`` for a knob: its type, help, bounds and default come from the table."""
    kind: Any = str if knob.kind is list else knob.kind
    default = knob.default_value
    shown: str | bool = str(getattr(default, "value", default)) if default is not None else False
    if knob.setting:  # the settings may change it: say so, as the built-in spec follows them
        shown = f"the {knob.setting} setting" + (f", {shown}" if shown else "")
    option = typer.Option(
        None,
        f"--{knob.name.replace('_', '-')}",
        help=knob.help,
        show_default=shown,
        min=knob.minimum if kind in (int, float) else None,
        max=knob.maximum if kind in (int, float) else None,
        metavar=f"<{'|'.join(knob.choices)}>" if knob.choices else None,
    )
    return inspect.Parameter(knob.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=kind | None)


def _with_knob_options(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with one option per CLI knob in place of its ``**values`` (typer reads the signature)."""
    signature = inspect.signature(command, eval_str=True)
    fixed = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    knobs = [_option(knob) for knob in KNOBS.values() if knob.cli]
    command.__signature__ = signature.replace(parameters=[*fixed[:1], *knobs, *fixed[1:]])  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}  # type: ignore[attr-defined]
    return command


spec_app.command("init")(_with_knob_options(spec_init))


@spec_app.command("show")
def spec_show(
    path: Annotated[Path | None, typer.Argument(help="Spec file (default: effective).")] = None,
) -> None:
    """Print a spec as YAML (the effective one when PATH is omitted)."""
    from ragship.assembly import resolve_spec

    sys.stdout.write(resolve_spec(path).to_yaml())


@spec_app.command("validate")
def spec_validate(
    path: Annotated[Path, typer.Argument(help="Spec file to check.")],
    store: StoreOption = None,
) -> None:
    """Check a spec: component types, connections, embedding dimension against the store."""
    from ragship.pipelines.validate import validate_spec
    from ragship.spec import load_spec
    from ragship.stores import open_store

    spec = load_spec(path)
    problems = validate_spec(spec, open_store(store) if store else None)
    if problems:
        for problem in problems:
            print_error(problem)
        raise typer.Exit(1)
    out.print(f"{path}: valid ({spec.name}, hash {spec.hash}, mode {spec.retrieval_mode}).")
