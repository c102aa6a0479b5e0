"""Evaluation datasets: ``data get`` (download a BEIR set by name) and ``data list``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from ragship.cli.common import JsonOption, err, out, print_json

data_app = typer.Typer(
    help="Evaluation datasets: BEIR sets downloaded by name for `--dataset NAME`.", no_args_is_help=True
)


@data_app.command("get")
def get(
    name: Annotated[str, typer.Argument(help="Dataset name, e.g. nfcorpus or scifact (`ragship data list`).")],
    url: Annotated[
        str | None,
        typer.Option("--url", help="Download this archive instead (a mirror's copy, a set not in the list)."),
    ] = None,
    sha256: Annotated[
        str | None, typer.Option("--sha256", help="SHA-256 of the --url archive; required for a name ragship lacks.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Download a BEIR dataset, check its checksum and unpack it where `--dataset NAME` finds it."""
    from ragship.eval.download import dataset_source, fetch_dataset
    from ragship.settings import get_settings

    settings = get_settings()
    source = dataset_source(name, url=url, sha256=sha256, mirror=settings.data.mirror)
    # Quiet when stderr is no terminal (CI logs, pipes) or under --json.
    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        disable=as_json or not err.is_terminal,
    )
    with bar:
        task = bar.add_task(f"downloading {name}", total=None)
        result = fetch_dataset(
            source,
            settings.datasets_dir,
            timeout_s=settings.data.timeout_s,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(result.to_dict())
    elif result.already_present:
        out.print(f"{name}: already in {result.path}", highlight=False, soft_wrap=True)
    else:
        resumed = f", resumed at {result.resumed_from:,} bytes" if result.resumed_from else ""
        out.print(f"{name}: {result.path} (sha256 {result.sha256} verified{resumed})", highlight=False, soft_wrap=True)


@data_app.command("list")
def list_datasets(as_json: JsonOption = False) -> None:
    """The datasets `ragship data get` knows, and which are downloaded."""
    from ragship.eval.catalog import CATALOG
    from ragship.eval.datasets import is_beir_folder
    from ragship.settings import get_settings

    folder = get_settings().datasets_dir
    # The catalog, then other BEIR folders found there (fetched with --url, or copied in).
    others = sorted(p.name for p in folder.glob("*") if p.name not in CATALOG and is_beir_folder(p))
    rows = [
        {"name": name, "downloaded": is_beir_folder(folder / name), "path": str(folder / name)}
        for name in [*CATALOG, *others]
    ]
    if as_json:
        print_json(rows)
        return
    table = Table(title=f"datasets ({folder})")
    for column in ("name", "downloaded"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row["name"]), "yes" if row["downloaded"] else "")
    out.print(table)
