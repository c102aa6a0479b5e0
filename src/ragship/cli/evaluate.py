"""Evaluation and promotion: ``eval``, ``eval-qa``, ``compare``, ``promote``, ``champion``, ``mlflow ui``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragship.cli.common import (
    JsonOption,
    ModeOption,
    SpecOption,
    StoreOption,
    err,
    out,
    print_json,
    progress_bar,
)
from ragship.cli.shadow import summary_table

if TYPE_CHECKING:
    from ragship.observability.shadow_report import ShadowSummary

commands = typer.Typer()
mlflow_app = typer.Typer(help="MLflow helpers.", no_args_is_help=True)

GRID_METRICS = ("ndcg_at_10", "mrr_at_10", "recall_at_10", "recall_at_100", "map_at_100")


@commands.command("eval")
def eval_command(
    dataset: Annotated[str, typer.Option("--dataset", help="BEIR directory, or a name from `ragship data get`.")],
    split: Annotated[str, typer.Option(help="qrels split: test or dev.")] = "test",
    spec: SpecOption = None,
    store: StoreOption = None,
    mode: ModeOption = None,
    limit_queries: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N judged queries.")] = None,
    register: Annotated[
        bool, typer.Option("--register", help="Also register the run's spec as a model version (else: `promote`).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Evaluate retrieval on a BEIR dataset and record the run (with its spec model) in MLflow."""
    from ragship.assembly import resolve_spec
    from ragship.eval.datasets import load_beir
    from ragship.eval.tracked import run_tracked_eval
    from ragship.settings import get_settings

    settings = get_settings()
    data = load_beir(dataset, split=split, datasets_dir=settings.datasets_dir).limited(limit_queries)
    resolved = resolve_spec(spec, settings)
    chosen = mode or resolved.retrieval_mode
    with progress_bar() as bar:
        task = bar.add_task(f"evaluating {data.name} ({chosen})", total=len(data.queries))
        result = run_tracked_eval(
            resolved,
            data,
            store,
            chosen,
            settings,
            lambda _stage, done, _total: bar.update(task, completed=done),
            register=register,
        )
    registered = {"registered_version": result.registered_version} if register else {}
    if as_json:
        print_json({"metrics": result.metrics, "run_id": result.run_id, **registered})
        return
    _print_metrics(f"{data.name} {split} ({len(data.queries)} queries), mode {chosen}", result.metrics)
    reuse = "reused" if result.reused_index else "built"
    out.print(f"index {reuse}; MLflow run {result.run_id} (`ragship mlflow ui` to browse).")
    if register:
        out.print(f"registered as version {result.registered_version}; `ragship promote {result.run_id}` to serve it")


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    table = Table(title=title)
    for name in metrics:
        table.add_column(name)
    table.add_row(*(f"{v:.4f}" for v in metrics.values()))
    out.print(table)


@commands.command("eval-qa")
def eval_qa(
    qa: Annotated[
        Path,
        typer.Option(
            "--qa",
            help="QA set JSONL (question, answers, sources), or a conversation set (turns: follow-ups and topic "
            "changes, scored with their history and alone), e.g. evaluation/golden_conversations.jsonl.",
        ),
    ] = Path("evaluation/golden_qa.jsonl"),
    docs: Annotated[list[Path] | None, typer.Option("--docs", help="Files or folders the answers come from.")] = None,
    spec: SpecOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score answers on a QA set (exact match, F1, semantic similarity, sources, faithfulness) in MLflow."""
    from ragship.assembly import resolve_spec
    from ragship.eval.tracked import run_tracked_qa

    with err.status(f"answering {qa} ..."):
        result = run_tracked_qa(resolve_spec(spec), qa, list(docs or [Path("docs"), Path("README.md")]), store)
    if as_json:
        print_json(result.to_dict())
        return
    _print_metrics(f"QA set {qa}", result.metrics)
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    out.print(f"MLflow run {result.run_id}")


@commands.command()
def compare(
    grid: Annotated[Path, typer.Argument(help="Grid YAML, e.g. evaluation/grids/modes.yaml.")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Run an experiment grid as child runs of one MLflow run and print the comparison."""
    from ragship.eval.tracked import run_grid

    with err.status("running grid ..."):
        result = run_grid(grid, store)
    if as_json:
        print_json(result)
        return
    table = Table(title=f"grid {grid.stem} (parent run {result['parent_run_id']})")
    for column in ("config", *GRID_METRICS, "run_id"):
        table.add_column(column)
    for row in result["rows"]:
        table.add_row(row["config"], *(f"{row[m]:.4f}" for m in GRID_METRICS), row["run_id"])
    out.print(table)
    out.print(f"best: {result['best_run_id']}")


@commands.command()
def promote(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of an evaluation.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why a forced promotion is right.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Make the run's spec the champion if its primary metric is >= the champion's (same dataset)."""
    from ragship.tracking.registry import UNREGISTERED
    from ragship.tracking.registry import promote as do_promote

    decision = do_promote(run_id, force=force, reason=reason)
    live = _live_comparison(run_id)
    if as_json:
        print_json({**decision.to_dict(), "live": live.to_dict() if live else None})
    else:
        verdict = "[green]promoted[/green]" if decision.promoted else "[red]refused[/red]"
        which = "(not registered)" if decision.version == UNREGISTERED else f"version {decision.version}"
        out.print(f"{verdict} {which}: {decision.reason}")
        _print_offline_and_live(decision.metric, decision.value, decision.champion_value, live)
    if not decision.promoted:
        raise typer.Exit(1)


def _live_comparison(run_id: str) -> ShadowSummary | None:
    """The run's spec as shadow challenger on live questions, if it was one (never fails the promotion)."""
    from ragship.errors import RagshipError
    from ragship.observability.shadow_report import live_comparison

    try:
        return live_comparison(run_id)
    except RagshipError as e:
        err.print(f"live comparison unavailable: {e}")
        return None


def _print_offline_and_live(
    metric: str, value: float | None, champion: float | None, live: ShadowSummary | None
) -> None:
    """The offline metric of the run and the champion, then the shadow's live figures beside them."""
    offline = Table(title="offline (evaluation)")
    offline.add_column("metric")
    offline.add_column("champion", justify="right")
    offline.add_column("this run", justify="right")
    offline.add_row(metric, "-" if champion is None else f"{champion:.4f}", "-" if value is None else f"{value:.4f}")
    out.print(offline)
    if live is None:
        out.print("live: not shadowed yet (serve it as RAGSHIP_SHADOW__CHALLENGER; see docs/observability.md)")
    else:
        out.print(summary_table(live, "live (shadow challenger on served questions)"))


@commands.command("champion")
def champion_command(as_json: JsonOption = False) -> None:
    """Show the current champion (exit 1 when there is none)."""
    from ragship.tracking.registry import champion

    current = champion()
    if current is None:
        err.print("no champion yet: evaluate with `ragship eval`, then `ragship promote RUN_ID`")
        raise typer.Exit(1)
    if as_json:
        print_json(current)
        return
    out.print(f"{current['model_uri']} = version {current['version']} (run {current['run_id']})")
    out.print(current["description"] or "(no description: registered before versions were described)")
    for name, value in sorted(current["tags"].items()):
        out.print(f"  {name} = {value}")


@mlflow_app.command("ui")
def mlflow_ui(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
) -> None:
    """Start the MLflow UI on ragship's tracking store."""
    import os
    import subprocess

    from ragship.settings import get_settings
    from ragship.tracking.runs import init_mlflow

    settings = get_settings()
    uri = init_mlflow(settings)
    if uri.startswith("http"):
        out.print(f"Tracking is on a server: open {uri}")
        return
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port)]
    err.print(f"MLflow UI on http://127.0.0.1:{port} (Ctrl-C to stop)")
    raise typer.Exit(subprocess.call(cmd, env=os.environ.copy()))
