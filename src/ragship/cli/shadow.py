"""``ragship shadow report``: how the shadow challenger compares with the champion on live questions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.table import Table

from ragship.cli.common import JsonOption, err, out, print_json

if TYPE_CHECKING:  # the report module loads the query pipeline's models' libraries: not on every command
    from ragship.observability.shadow_report import ShadowSummary

shadow_app = typer.Typer(help="The shadow challenger on live traffic (RAGSHIP_SHADOW__*).", no_args_is_help=True)


def summary_table(summary: ShadowSummary, title: str) -> Table:
    """The summary as a two-column table: champion and challenger side by side."""
    table = Table(title=title)
    table.add_column("live (shadow)")
    table.add_column(f"champion {summary.champion}", justify="right")
    table.add_column(f"challenger {summary.challenger}", justify="right")
    table.add_row("questions", str(summary.questions), str(summary.questions))
    table.add_row(
        "latency p50 / p95 (s)",
        f"{summary.champion_p50_s:.3f} / {summary.champion_p95_s:.3f}",
        f"{summary.challenger_p50_s:.3f} / {summary.challenger_p95_s:.3f}",
    )
    table.add_row("source overlap (Jaccard, mean)", "", f"{summary.source_overlap_mean:.3f}")
    table.add_row("questions with the same sources", "", f"{summary.same_sources_share:.1%}")
    table.add_row("answer similarity (token F1, mean)", "", f"{summary.answer_f1_mean:.3f}")
    return table


@shadow_app.command("report")
def report(as_json: JsonOption = False) -> None:
    """Summarise the shadow runs in MLflow: per champion/challenger pair, most recent first (exit 1 if none)."""
    from ragship.observability.shadow_report import shadow_summaries

    summaries = shadow_summaries()
    if as_json:
        print_json([s.to_dict() for s in summaries])
    if not summaries:
        err.print(
            "no shadowed question logged yet: set RAGSHIP_SHADOW__ENABLED=true on the API (docs/observability.md)"
        )
        raise typer.Exit(1)
    if not as_json:
        for s in summaries:
            out.print(summary_table(s, f"{s.champion} ({s.champion_hash}) vs {s.challenger} ({s.challenger_hash})"))
