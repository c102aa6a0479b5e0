"""``ragship index`` and ``ragship sync``: write files into the store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragship.cli.common import (
    JsonOption,
    ProgressCallback,
    SpecOption,
    StoreOption,
    out,
    print_sync_summary,
    run_file_job,
)
from ragship.enums import SyncMode
from ragship.errors import RagshipError

if TYPE_CHECKING:
    from ragship.sync import SyncReport

commands = typer.Typer()


@commands.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to index.")],
    spec: SpecOption = None,
    store: StoreOption = None,
    allow_failures: Annotated[
        bool, typer.Option("--allow-failures", help="Exit 0 even when some files failed.")
    ] = False,
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild", help="Build a fresh index and swap it in atomically (after changing model or chunking)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Index files (txt, md, html, pdf, docx, jsonl) into the store."""
    from ragship.assembly import open_indexer

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise RagshipError(f"path not found: {', '.join(missing)}; nothing was indexed.")
    indexer = open_indexer(spec, store)

    def job(progress: ProgressCallback | None) -> SyncReport:
        if rebuild:
            return indexer.rebuild(paths, progress, allow_failures=allow_failures)
        return indexer.index(paths, progress)

    def summarize(report: SyncReport) -> None:
        _print_index_summary(report, indexer.store.describe())

    run_file_job("indexing", job, summarize, as_json=as_json, allow_failures=allow_failures)


def _print_index_summary(report: SyncReport, where: str) -> None:
    table = Table(title=f"Indexed into {where}", show_lines=False)
    table.add_column("file")
    table.add_column("result")
    for source, chunks in sorted(report.chunks_by_source.items()):
        table.add_row(source, f"[green]{chunks} chunks")
    for failure in report.failures:
        table.add_row(failure.source, f"[red]failed: {failure.reason}")
    out.print(table)
    out.print(
        f"{report.files_indexed} files indexed, {report.unchanged} unchanged (skipped), "
        f"{report.chunks_written} chunks written, {report.chunks_deleted} stale chunks removed, "
        f"{len(report.failures)} failed."
    )
    if report.rebuild:
        out.print(f"Rebuild {report.rebuild}.")


@commands.command()
def sync(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to keep in sync with the index.")],
    spec: Annotated[
        str | None, typer.Option("--spec", help="Spec YAML or models:/ragship@champion (default: settings).")
    ] = None,
    store: StoreOption = None,
    mode: Annotated[SyncMode, typer.Option("--mode", help="incremental or full.")] = SyncMode.INCREMENTAL,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Report what would change; write nothing.")] = False,
    allow_failures: Annotated[
        bool, typer.Option("--allow-failures", help="Exit 0 (and, in full mode, promote) when files fail.")
    ] = False,
    served: Annotated[
        bool,
        typer.Option(
            "--served", help="Use the spec the services serve (serving.spec, else the champion, else settings)."
        ),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Index new and changed files, drop removed ones, leave the rest (no notebook, no MLflow run)."""
    from ragship.quick_sync import plan_quickly
    from ragship.settings import get_settings
    from ragship.spec_source import resolve_spec, served_spec

    settings = get_settings()
    if served and spec:
        raise typer.BadParameter("give either --spec or --served, not both", param_hint="--served")
    resolved = served_spec(settings)[0] if served else resolve_spec(spec, settings)

    def job(progress: ProgressCallback | None) -> SyncReport:
        # Planned before the store is opened: a run with nothing to do never loads Haystack or torch.
        roots: list[str | Path] = list(paths)
        quick = None
        if mode == SyncMode.INCREMENTAL:
            quick = plan_quickly(resolved, store or settings.store_location, roots, settings.access.rules)
        if quick is not None and not quick.has_work:
            if progress:
                progress(0, 0)
            return quick.report(dry_run)
        from ragship.assembly import open_indexer

        syncer = open_indexer(resolved, store, settings)
        if quick is not None:
            return syncer.apply(quick.plan, quick.started, dry_run, allow_failures, progress)
        return syncer.sync(paths, mode=mode, dry_run=dry_run, allow_failures=allow_failures, progress=progress)

    def summarize(report: SyncReport) -> None:
        print_sync_summary(report.to_dict())

    run_file_job(f"{mode.value} sync", job, summarize, as_json=as_json, allow_failures=allow_failures)
