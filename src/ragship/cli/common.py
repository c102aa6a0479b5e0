"""What the command modules share: consoles, option types, output helpers and the exit-code edge.

Only light imports here: every ``ragship`` invocation loads this module, and heavy libraries belong
inside the command functions.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ragship.enums import RetrievalMode
from ragship.environment import quiet_third_party_progress
from ragship.errors import RagshipError

# Results go to stdout, everything else (progress, notes, errors) to stderr, so output can be piped.
out = Console()
err = Console(stderr=True)

SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Pipeline spec YAML (default: RAGSHIP_SPEC or built-in).")
]
StoreOption = Annotated[str | None, typer.Option("--store", help="Embedded store directory or Elasticsearch URL.")]


ModeOption = Annotated[RetrievalMode | None, typer.Option("--mode", help="Retrieval mode (default: the spec's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

ProgressCallback = Callable[[int, int], None]


class FileReport(Protocol):
    """What the reports of file jobs (index, sync) have in common."""

    @property
    def failures(self) -> Sequence[object]:
        """Files that could not be processed."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON output."""
        ...


ReportT = TypeVar("ReportT", bound=FileReport)


def print_json(data: Any) -> None:
    """Write ``data`` as one JSON line on stdout (bypassing rich, which would wrap and colour it)."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


def print_error(message: object) -> None:
    """Print one ``error:`` line on stderr."""
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)  # one line, even off a terminal


def progress_bar() -> Progress:
    """A progress bar on stderr (stdout stays clean for results) showing each task's description."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    )


def run_file_job(
    label: str,
    job: Callable[[ProgressCallback | None], ReportT],
    summarize: Callable[[ReportT], None],
    *,
    as_json: bool,
    allow_failures: bool,
) -> None:
    """Run a job over files, print its report, and exit 1 when files failed (unless that is allowed).

    :param label: Text in front of the progress bar.
    :param job: Runs the work; it gets a ``progress(done, total)`` callback, or None under ``--json``.
    :param summarize: Prints the report for people (the JSON form is the report's ``to_dict()``).
    :param as_json: Print one JSON object and no progress bar.
    :param allow_failures: Exit 0 even when some files failed.
    :raises typer.Exit: With code 1 when files failed and that is not allowed.
    """
    if as_json:
        report = job(None)
        print_json(report.to_dict())
    else:
        with progress_bar() as bar:
            task = bar.add_task(label, total=None)  # the job learns the file count only after discovery
            report = job(lambda done, total: bar.update(task, completed=done, total=total))
        summarize(report)
    if report.failures and not allow_failures:
        raise typer.Exit(1)


def print_sync_summary(summary: dict[str, Any]) -> None:
    """Print a sync summary (the ``to_dict()`` of a sync report): failures on stderr, counts on stdout."""
    for failure in summary.get("failures", []):
        err.print(f"[red]failed[/red] {failure['source']}: {failure['reason']}", highlight=False)
    counts = ", ".join(f"{summary.get(k, 0)} {k}" for k in ("added", "updated", "deleted", "unchanged", "failed"))
    prefix = "[yellow]dry run[/yellow]: " if summary.get("dry_run") else ""
    out.print(
        f"{prefix}{counts} ({summary.get('chunks_written', 0)} chunks written, "
        f"{summary.get('chunks_deleted', 0)} deleted) in {summary.get('duration_s', 0):.1f}s",
        highlight=False,
    )
    if summary.get("rebuild"):
        out.print(f"Rebuild {summary['rebuild']}.")


def run_app(app: typer.Typer) -> None:
    """Run ``app``; known errors become one line on stderr and exit code 2, never a traceback."""
    quiet_third_party_progress()
    try:
        app()
    except RagshipError as e:
        print_error(e)
        raise SystemExit(2) from None
