"""The ``ragship`` command line: thin over the library."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ragship.errors import RagshipError
from ragship.settings import quiet_third_party_progress

# Pretty tracebacks would print local variables, which can hold secrets.
app = typer.Typer(
    help="ragship: RAG from notebook prototype to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
spec_app = typer.Typer(help="Create, show and validate pipeline specs.", no_args_is_help=True)
config_app = typer.Typer(help="Inspect settings.", no_args_is_help=True)
es_app = typer.Typer(help="Run a local Elasticsearch node and size production clusters.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
app.add_typer(config_app, name="config")
app.add_typer(es_app, name="es")
mlflow_app = typer.Typer(help="MLflow helpers.", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")
schedule_app = typer.Typer(help="Run jobs on a schedule.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

out = Console()
err = Console(stderr=True)

SpecOption = Annotated[
    Path | None, typer.Option("--spec", help="Pipeline spec YAML (default: RAGSHIP_SPEC or built-in).")
]
StoreOption = Annotated[str | None, typer.Option("--store", help="Embedded store directory or Elasticsearch URL.")]


class Mode(StrEnum):
    """Retrieval modes."""

    bm25 = "bm25"
    dense = "dense"
    hybrid = "hybrid"


class Generator(StrEnum):
    """Answer generators."""

    extractive = "extractive"
    openai = "openai"
    local = "local"


ModeOption = Annotated[Mode | None, typer.Option("--mode", help="Retrieval mode (default: the spec's).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]

DEMO_QUESTIONS = (
    "How do I run the tests?",
    "Which retrieval modes does ragship support?",
    "How do I use an OpenAI-compatible endpoint?",
)


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, default=str) + "\n")


@app.command()
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
    from ragship.runtime import open_indexer

    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise RagshipError(f"path not found: {', '.join(missing)}; nothing was indexed.")
    indexer = open_indexer(spec, store)

    def run(progress: Any = None) -> Any:
        if rebuild:
            return indexer.rebuild(paths, progress, allow_failures=allow_failures)
        return indexer.index(paths, progress)

    if as_json:
        report = run()
        _print_json(report.to_dict())
    else:
        with Progress(
            TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as bar:
            task = bar.add_task("files", total=None)
            report = run(lambda done, total: bar.update(task, completed=done, total=total))
        _print_index_summary(report, indexer.store.describe())
    if report.failures and not allow_failures:
        raise typer.Exit(1)


def _print_index_summary(report: Any, where: str) -> None:
    table = Table(title=f"Indexed into {where}", show_lines=False)
    table.add_column("file")
    table.add_column("result")
    for source, chunks in sorted(report.chunks_by_source.items()):
        table.add_row(source, f"[green]{chunks} chunks")
    for failure in report.failures:
        table.add_row(failure.source, f"[red]failed: {failure.reason}")
    out.print(table)
    out.print(
        f"{report.files_indexed} files indexed, {report.chunks_written} chunks written, "
        f"{report.chunks_deleted} stale chunks removed, {len(report.failures)} failed."
    )
    if report.rebuild:
        out.print(f"Rebuild {report.rebuild}.")


class SyncModeChoice(StrEnum):
    """Sync modes."""

    incremental = "incremental"
    full = "full"


@app.command()
def sync(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to keep in sync with the index.")],
    spec: Annotated[
        str | None, typer.Option("--spec", help="Spec YAML or models:/ragship@champion (default: settings).")
    ] = None,
    store: StoreOption = None,
    mode: Annotated[SyncModeChoice, typer.Option("--mode", help="incremental or full.")] = SyncModeChoice.incremental,
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
    from ragship.runtime import resolve_spec, served_spec, store_for
    from ragship.settings import get_settings
    from ragship.sync import Syncer

    settings = get_settings()
    if served and spec:
        raise typer.BadParameter("give either --spec or --served, not both", param_hint="--served")
    resolved = served_spec(settings)[0] if served else resolve_spec(spec, settings)
    syncer = Syncer(resolved, store_for(resolved, store, settings), batch_files=settings.index_batch_files)

    def run(progress: Any = None) -> Any:
        return syncer.sync(paths, mode=mode.value, dry_run=dry_run, allow_failures=allow_failures, progress=progress)

    if as_json:
        report = run()
        _print_json(report.to_dict())
    else:
        with Progress(
            TextColumn(f"[bold]{mode.value} sync"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as bar:
            task = bar.add_task("files", total=None)
            report = run(lambda done, total: bar.update(task, completed=done, total=total))
        _print_sync_summary(report.to_dict())
    if report.failures and not allow_failures:
        raise typer.Exit(1)


def _print_sync_summary(summary: dict[str, Any]) -> None:
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


ParamOption = Annotated[
    list[str] | None,
    typer.Option("-p", "--param", help="Notebook parameter KEY=VALUE (repeatable), e.g. -p mode=full."),
]
NotebookOption = Annotated[
    Path | None, typer.Option("--notebook", help="Reindex notebook (default: notebooks/reindex.ipynb).")
]


def _parse_params(pairs: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise RagshipError(f"-p {pair!r}: write parameters as KEY=VALUE, e.g. -p mode=incremental.")
        params[key.strip()] = value
    return params


@app.command()
def reindex(
    params: ParamOption = None,
    notebook: NotebookOption = None,
    as_json: JsonOption = False,
) -> None:
    """Execute the reindex notebook with papermill and record the run in MLflow (experiment `reindex`)."""
    from ragship.reindex import ReindexFailedError, execute_reindex

    try:
        outcome = execute_reindex(_parse_params(params), notebook)
    except ReindexFailedError as e:
        if as_json:
            _print_json({"error": str(e), "run_id": e.run_id})
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(1) from None
    if as_json:
        for failure in outcome.summary.get("failures", []):
            err.print(f"failed {failure['source']}: {failure['reason']}", highlight=False)
        _print_json(outcome.counts())
    else:
        _print_sync_summary(outcome.summary)
        out.print(f"MLflow run {outcome.run_id} (experiment reindex)")


@schedule_app.command("reindex")
def schedule_reindex(
    every: Annotated[str | None, typer.Option("--every", help="Interval: 30s, 15m, 2h, 1d.")] = None,
    cron: Annotated[str | None, typer.Option("--cron", help="Five-field crontab expression.")] = None,
    params: ParamOption = None,
    notebook: NotebookOption = None,
    lock: Annotated[
        Path | None, typer.Option("--lock", help="Lock file shared by every runner (default: <home>/reindex.lock).")
    ] = None,
    run_now: Annotated[bool, typer.Option("--run-now", help="Also run once at start.")] = False,
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="On SIGTERM/SIGINT, how long a run in progress may go on before it is asked to stop before "
            "its next batch (0s: at once). Keep it below your supervisor's kill timeout.",
        ),
    ] = "60s",
) -> None:
    """Run `ragship reindex` on a schedule until SIGTERM; overlapping runs are skipped, never stacked.

    On SIGTERM no new run starts and the run in progress gets --grace to finish; then it stops before its
    next batch, is recorded in MLflow as KILLED with its counts, and the next run resumes from there.
    """
    import logging

    from ragship.reindex import check_notebook_params, default_notebook, execute_reindex
    from ragship.schedule import LockedJob, make_trigger, parse_every, run_schedule
    from ragship.settings import get_settings

    settings = get_settings()
    trigger = make_trigger(every, cron)
    grace_period = parse_every(grace, option="--grace", allow_zero=True)
    values = _parse_params(params)
    check_notebook_params((notebook or default_notebook()).resolve(), values)  # fail now, not at the first run
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    def job(stop_file: Path) -> bool:
        outcome = execute_reindex(values, notebook, settings, stop_file=stop_file)
        logging.getLogger("ragship.schedule").info("reindex counts: %s", json.dumps(outcome.counts()))
        return not outcome.cancelled

    locked = LockedJob(job, lock or settings.home / "reindex.lock")
    run_schedule(locked, trigger, run_now=run_now, grace=grace_period)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    spec: SpecOption = None,
    store: StoreOption = None,
    mode: ModeOption = None,
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=1000, help="Sources to return.")] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Only search these source files (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Answer a question from the indexed documents, citing sources."""
    from ragship.runtime import open_query_engine

    engine = open_query_engine(spec, store, mode=_mode(mode))
    filters = {"field": "meta.source", "operator": "in", "value": source} if source else None
    answer = engine.ask(question, top_k=top_k, filters=filters)
    if as_json:
        _print_json(answer.to_dict())
        return
    _print_answer(question, answer)


def _print_answer(question: str, answer: Any) -> None:
    out.print(f"[bold]Q:[/bold] {question}")
    out.print(f"[bold]A:[/bold] {answer.answer}")
    for s in answer.sources:
        mark = "*" if s.cited else " "
        score = f"{s.score:.3f}" if s.score is not None else "-"
        out.print(f"  {mark}[{s.citation}] {s.source} (score {score}): [dim]{s.snippet[:160]}[/dim]")


def _mode(mode: Mode | None) -> Any:
    return mode.value if mode is not None else None


@app.command()
def demo(spec: SpecOption = None, store: StoreOption = None) -> None:
    """Answer a few sample questions about ragship's own docs (index them first)."""
    from ragship.runtime import open_query_engine

    engine = open_query_engine(spec, store)
    if engine.store.count_documents() == 0:
        raise RagshipError(f"The {engine.store.describe()} is empty; run `ragship index docs README.md` first.")
    for question in DEMO_QUESTIONS:
        _print_answer(question, engine.ask(question))
        out.print()


@app.command("eval")
def eval_command(
    dataset: Annotated[str, typer.Option("--dataset", help="BEIR directory, or a BEIR dataset name to download.")],
    split: Annotated[str, typer.Option(help="qrels split: test or dev.")] = "test",
    spec: SpecOption = None,
    store: StoreOption = None,
    mode: ModeOption = None,
    limit_queries: Annotated[int | None, typer.Option(min=1, help="Evaluate only the first N judged queries.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Evaluate retrieval on a BEIR dataset and record the run in MLflow."""
    from ragship.eval.datasets import load_beir
    from ragship.eval.tracked import run_tracked_eval
    from ragship.runtime import resolve_spec
    from ragship.settings import get_settings

    settings = get_settings()
    data = load_beir(dataset, split=split, cache_dir=settings.home / "datasets").limited(limit_queries)
    resolved = resolve_spec(spec, settings)
    chosen = _mode(mode) or resolved.retrieval_mode
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bar:
        task = bar.add_task(f"evaluating {data.name} ({chosen})", total=len(data.queries))
        result = run_tracked_eval(
            resolved, data, store, chosen, settings, lambda _stage, done, _total: bar.update(task, completed=done)
        )
    if as_json:
        _print_json({"metrics": result.metrics, "run_id": result.run_id})
        return
    _print_metrics(f"{data.name} {split} ({len(data.queries)} queries), mode {chosen}", result.metrics)
    reuse = "reused" if result.reused_index else "built"
    out.print(f"index {reuse}; MLflow run {result.run_id} (`ragship mlflow ui` to browse).")


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    table = Table(title=title)
    for name in metrics:
        table.add_column(name)
    table.add_row(*(f"{v:.4f}" for v in metrics.values()))
    out.print(table)


@app.command("eval-qa")
def eval_qa(
    qa: Annotated[Path, typer.Option("--qa", help="QA set JSONL (question, answers, sources).")] = Path(
        "evaluation/golden_qa.jsonl"
    ),
    docs: Annotated[list[Path] | None, typer.Option("--docs", help="Files or folders the answers come from.")] = None,
    spec: SpecOption = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score answers on a QA set (exact match, F1, semantic similarity, sources, faithfulness) in MLflow."""
    from ragship.eval.tracked import run_tracked_qa
    from ragship.runtime import resolve_spec

    with err.status(f"answering {qa} ..."):
        result = run_tracked_qa(resolve_spec(spec), qa, list(docs or [Path("docs"), Path("README.md")]), store)
    if as_json:
        _print_json(result.to_dict())
        return
    _print_metrics(f"QA set {qa}", result.metrics)
    for note in result.notes:
        err.print(f"[yellow]note:[/yellow] {note}")
    out.print(f"MLflow run {result.run_id}")


@app.command()
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
        _print_json(result)
        return
    rows = result["rows"]
    table = Table(title=f"grid {grid.stem} (parent run {result['parent_run_id']})")
    for column in ("config", "ndcg_at_10", "mrr_at_10", "recall_at_10", "recall_at_100", "map_at_100", "run_id"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["config"],
            *(f"{row[m]:.4f}" for m in ("ndcg_at_10", "mrr_at_10", "recall_at_10", "recall_at_100", "map_at_100")),
            row["run_id"],
        )
    out.print(table)
    out.print(f"best: {result['best_run_id']}")


@app.command()
def promote(
    run_id: Annotated[str, typer.Argument(help="MLflow run id of an evaluation.")],
    force: Annotated[bool, typer.Option("--force", help="Promote even if worse (needs --reason).")] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why a forced promotion is right.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Make the run's spec the champion if its primary metric is >= the champion's (same dataset)."""
    from ragship.tracking.registry import promote as do_promote

    decision = do_promote(run_id, force=force, reason=reason)
    if as_json:
        _print_json(decision.to_dict())
    else:
        verdict = "[green]promoted[/green]" if decision.promoted else "[red]refused[/red]"
        out.print(f"{verdict} version {decision.version}: {decision.reason}")
    if not decision.promoted:
        raise typer.Exit(1)


@app.command("champion")
def champion_command(as_json: JsonOption = False) -> None:
    """Show the current champion (exit 1 when there is none)."""
    from ragship.tracking.registry import champion

    current = champion()
    if current is None:
        err.print("no champion yet: evaluate with `ragship eval`, then `ragship promote RUN_ID`")
        raise typer.Exit(1)
    if as_json:
        _print_json(current)
        return
    out.print(f"{current['model_uri']} = version {current['version']} (run {current['run_id']})")
    out.print(f"dataset {current['dataset']} ({current['dataset_fingerprint']}), spec {current['spec_hash']}")
    for name, value in sorted(current["metrics"].items()):
        out.print(f"  {name} = {value:.4f}")


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


@spec_app.command("init")
def spec_init(
    path: Annotated[Path, typer.Argument(help="Where to write the spec.")],
    generator: Annotated[Generator, typer.Option(help="How answers are written.")] = Generator.extractive,
    mode: Annotated[Mode | None, typer.Option(help="Retrieval mode (default: the mode setting, hybrid).")] = None,
    embedding_model: Annotated[str | None, typer.Option(help="Sentence-transformers path or hub id.")] = None,
    split_by: Annotated[str, typer.Option(help="word, sentence, passage, line, page.")] = "word",
    split_length: Annotated[int, typer.Option(min=1, help="Units per chunk.")] = 200,
    split_overlap: Annotated[int, typer.Option(min=0, help="Units shared by neighbouring chunks.")] = 40,
    top_k: Annotated[
        int | None, typer.Option(min=1, help="Sources per answer (default: the top_k setting, 5).")
    ] = None,
    openai_model: Annotated[str | None, typer.Option(help="Model name at the endpoint.")] = None,
    openai_base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible base URL.")] = None,
    local_model: Annotated[str | None, typer.Option(help="Local Hugging Face causal LM directory.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write the default spec (both pipelines) to PATH."""
    from ragship.settings import get_settings
    from ragship.spec import spec_from_settings

    if path.exists() and not force:
        raise RagshipError(f"{path} exists; pass --force to overwrite it.")
    if split_overlap >= split_length:
        raise typer.BadParameter("must be smaller than --split-length", param_hint="--split-overlap")
    spec = spec_from_settings(
        get_settings(),
        generator=generator.value,
        mode=_mode(mode),
        embedding_model=embedding_model,
        split_by=split_by,
        split_length=split_length,
        split_overlap=split_overlap,
        top_k=top_k,
        openai_model=openai_model,
        openai_base_url=openai_base_url,
        local_model=local_model,
    )
    spec.save(path)
    err.print(f"Wrote {spec.name} spec to {path} (hash {spec.hash}).")


@spec_app.command("show")
def spec_show(
    path: Annotated[Path | None, typer.Argument(help="Spec file (default: effective).")] = None,
) -> None:
    """Print a spec as YAML (the effective one when PATH is omitted)."""
    from ragship.runtime import resolve_spec

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
            err.print(f"[red]error:[/red] {problem}", highlight=False)
        raise typer.Exit(1)
    out.print(f"{path}: valid ({spec.name}, hash {spec.hash}, mode {spec.retrieval_mode}).")


def _local_node(name: str) -> Any:
    from ragship.local_es import LocalElasticsearch
    from ragship.settings import get_settings

    return LocalElasticsearch(get_settings().local_es, name=name)


NodeOption = Annotated[str, typer.Option("--name", help="Node name (several can run side by side).")]


@es_app.command("start")
def es_start(
    port: Annotated[int | None, typer.Option(help="HTTP port on 127.0.0.1 (0 = any free port).")] = None,
    name: NodeOption = "default",
    password_env: Annotated[
        str | None,
        typer.Option(help="Turn security on; user 'elastic' gets the password held by this environment variable."),
    ] = None,
) -> None:
    """Fetch (once, with mvn) and start a single-node Elasticsearch on 127.0.0.1."""
    from ragship.settings import env_secret

    password = None
    if password_env:
        password = env_secret(password_env)
        if not password:
            raise RagshipError(f"--password-env {password_env}: that environment variable is not set.")
    node = _local_node(name)
    with err.status(f"starting Elasticsearch {node.settings.version} ..."):
        url = node.start(port=port, password=password)
    out.print(url)


@es_app.command("stop")
def es_stop(name: NodeOption = "default") -> None:
    """Stop the local node."""
    stopped = _local_node(name).stop()
    err.print("stopped" if stopped else "not running")


@es_app.command("status")
def es_status(name: NodeOption = "default", as_json: JsonOption = False) -> None:
    """Show whether the local node runs, its URL and cluster health (exit 1 when it does not run)."""
    status = _local_node(name).status()
    if as_json:
        _print_json(status.to_dict())
    else:
        state = f"running at {status.url} (health {status.health})" if status.running else "not running"
        out.print(f"Elasticsearch {status.version} (node {name}): {state}; data in {status.node_dir}", markup=False)
    if not status.running:
        raise typer.Exit(1)


@es_app.command("logs")
def es_logs(name: NodeOption = "default", lines: Annotated[int, typer.Option("-n", "--lines", min=1)] = 50) -> None:
    """Print the end of the local node's log."""
    sys.stdout.write(_local_node(name).logs(lines) + "\n")


@es_app.command("size")
def es_size(
    docs: Annotated[int, typer.Option(min=0, help="Documents to index.")],
    chunks_per_doc: Annotated[float, typer.Option(min=0.01, help="Chunks per document.")] = 5.0,
    dims: Annotated[int | None, typer.Option(min=1, help="Vector size (default: the spec's model).")] = None,
    chunk_chars: Annotated[int, typer.Option(min=1, help="Average characters per chunk.")] = 1200,
    replicas: Annotated[int, typer.Option(min=0, help="Replica copies.")] = 1,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Estimate index size (float vs int8-quantized vectors) before sizing a cluster."""
    from ragship.models import embedding_dimension
    from ragship.runtime import resolve_spec
    from ragship.sizing import estimate

    if dims is None:
        model = resolve_spec(spec).embedding_model
        dims = embedding_dimension(model) if model else 384
    rows = [estimate(docs, chunks_per_doc, dims, chunk_chars, quantized=q, replicas=replicas) for q in (True, False)]
    if as_json:
        _print_json([r.to_dict() for r in rows])
        return
    table = Table(
        title=f"{rows[0].chunks:,} chunks x {dims} dims, {rows[0].copies} cop{'y' if rows[0].copies == 1 else 'ies'}"
    )
    for column in ("vectors", "vector RAM", "vector disk", "text disk", "total disk"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.element_type,
            _gib(r.vector_ram_bytes),
            _gib(r.vector_disk_bytes),
            _gib(r.text_disk_bytes),
            _gib(r.total_disk_bytes),
        )
    out.print(table)


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"


@config_app.command("show")
def config_show(as_json: JsonOption = False) -> None:
    """Print the effective settings; secrets are masked."""
    from ragship.settings import get_settings

    data = get_settings().masked()
    if as_json:
        _print_json(data)
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


def main() -> None:
    """Console entry point: known errors become one line on stderr and exit code 2."""
    quiet_third_party_progress()
    try:
        app()
    except RagshipError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
