"""``ragship feedback export``: users' ratings of served answers as a QA set to review."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, cast

import typer

from ragship.cli.common import err, progress_bar
from ragship.enums import RATINGS, RatingName
from ragship.errors import InvalidRequestError

feedback_app = typer.Typer(help="Users' ratings of served answers (POST /feedback).", no_args_is_help=True)


def _known_rating(value: str | None) -> str | None:
    if value is not None and value not in RATINGS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(map(repr, RATINGS))}.")
    return value


@feedback_app.command("export")
def export(
    since: Annotated[
        str, typer.Option("--since", help="ISO date or time, e.g. 2026-11-01 or 2026-11-24T10:00 (UTC unless offset).")
    ],
    rating: Annotated[
        str | None,
        typer.Option("--rating", metavar="|".join(RATINGS), callback=_known_rating, help="Only these ratings."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="JSONL file to write (default: stdout).")] = None,
) -> None:
    """Export recorded ratings as QA JSONL for `ragship eval-qa --qa`, after a person fills in gold answers.

    Up-rated lines carry the given answer and sources as gold; down-rated lines start with empty
    ``answers`` and ``sources``. Every line keeps what was rated under ``feedback``.
    """
    from ragship.eval.feedback import export_feedback, parse_since

    try:
        start = parse_since(since)
    except InvalidRequestError as e:
        raise typer.BadParameter(str(e), param_hint="--since") from e
    with progress_bar() as bar:  # on stderr: the lines can go to stdout
        task = bar.add_task("reading feedback", total=None)
        report = export_feedback(
            out or sys.stdout,
            start,
            cast("RatingName | None", rating),
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/yellow] run {skipped}", highlight=False)
    where = f" to {out}" if out else ""
    err.print(
        f"Exported {report.exported} rating(s){where} ({report.needs_answer} without a gold answer yet), "
        f"{len(report.skipped)} skipped.",
        highlight=False,
    )
    if report.needs_answer and out:
        err.print(f"Write the gold answers, then: ragship eval-qa --qa {out}", highlight=False)
