"""Evaluations as MLflow runs: params, spec artifact, metrics, per-query table, plots, traces, model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ragship.assembly import store_for
from ragship.enums import RetrievalMode
from ragship.errors import SpecError
from ragship.eval import plots
from ragship.eval.datasets import BeirDataset
from ragship.eval.retrieval import Progress, RetrievalEvaluation, evaluate_retrieval
from ragship.settings import Settings, get_settings
from ragship.spec import GRID_KEYS, KNOBS, PipelineSpec, Role
from ragship.stores.base import evaluation_store
from ragship.tracking.runs import KIND_TAG, git_commit, init_mlflow, spec_file, spec_params


def run_tracked_eval(
    spec: PipelineSpec,
    dataset: BeirDataset,
    store_location: str | None,
    mode: RetrievalMode,
    settings: Settings | None = None,
    progress: Progress | None = None,
    nested: bool = False,
    run_name: str | None = None,
    register: bool = False,
) -> RetrievalEvaluation:
    """Evaluate and record everything in one MLflow run (a child run when ``nested``).

    The run logs the spec model; it is registered only with ``register`` (else by ``ragship promote``).
    """
    import mlflow
    import pandas as pd

    from ragship.tracking.prompts import link_spec_prompt
    from ragship.tracking.spec_model import log_spec_model  # imports mlflow.pyfunc: only when one is logged
    from ragship.tracking.versions import register_run

    settings = settings or get_settings()
    # Evaluation indices live beside (never inside) the given store: same backend, own index.
    store = evaluation_store(store_for(spec, store_location, settings)).sibling(f"eval-{dataset.name}")
    if not nested:
        init_mlflow(settings)
    with mlflow.start_run(run_name=run_name or f"{dataset.name}-{mode}", nested=nested) as run:
        mlflow.log_params(
            {
                **spec_params(spec),
                "mode": mode,
                "top_k": _joiner_top_k(spec),
                "dataset": dataset.name,
                "split": dataset.split,
                "queries": len(dataset.queries),
                "dataset_fingerprint": dataset.fingerprint,
                "store": store.describe(),
                "git_commit": git_commit(),
            }
        )
        with spec_file(spec) as path:
            mlflow.log_artifact(str(path))
        traced = settings.mlflow.trace_queries
        _start_tracing(traced)

        def tracked_progress(stage: str, done: int, total: int) -> None:
            if stage == "queries" and done == traced:
                _stop_tracing()
            if progress:
                progress(stage, done, total)

        try:
            result = evaluate_retrieval(spec, dataset, store, mode, settings, tracked_progress)
        finally:
            _stop_tracing()
        mlflow.log_metrics(result.metrics)
        mlflow.log_metrics({f"seconds_{k}": v for k, v in result.seconds.items()})
        table = pd.DataFrame(
            [
                {"query_id": qid, "query": dataset.queries[qid], "relevant": len(dataset.qrels[qid]), **m}
                for qid, m in sorted(result.per_query.items())
            ]
        )
        mlflow.log_table(table, artifact_file="per_query.json")
        mlflow.log_figure(plots.metrics_bar(result.metrics, f"{dataset.name} {dataset.split}, {mode}"), "metrics.png")
        ndcg = [m["ndcg_at_10"] for m in result.per_query.values()]
        mlflow.log_figure(plots.per_query_histogram(ndcg, "ndcg_at_10"), "per_query_ndcg.png")
        log_spec_model(spec)
        link_spec_prompt(spec, run.info.run_id, settings)
        result.run_id = run.info.run_id
    if register:
        result.registered_version = register_run(run.info.run_id, settings)
    return result


def _joiner_top_k(spec: PipelineSpec) -> Any:
    """Sources returned: the reranker's top_k when the spec has one, else the joiner's."""
    final = spec.components_of("query", Role.RANKER) or spec.components_of("query", Role.JOINER)
    return next(iter(final.values()), {}).get("init_parameters", {}).get("top_k")


def _start_tracing(n: int) -> None:
    """Trace pipeline runs with mlflow.haystack.autolog; stopped after ``n`` queries (all would bloat the store)."""
    if n > 0:
        import mlflow.haystack

        mlflow.haystack.autolog(silent=True)


def _stop_tracing() -> None:
    import mlflow.haystack

    mlflow.haystack.autolog(disable=True, silent=True)


def load_grid(path: str | Path | dict[str, Any]) -> dict[str, Any]:
    """Read and check a grid file (see evaluation/grids/README.md), or check a grid given as a dict."""
    from ragship.eval.datasets import DatasetError

    if isinstance(path, dict):
        data: Any = path
        path = Path("<grid>")
    else:
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"Grid file {path} not found.")
        data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("grid"), dict) or "dataset" not in data:
        raise DatasetError(f"{path}: needs 'dataset' and a 'grid' mapping of parameter -> list of values.")
    unknown = set(data["grid"]) - GRID_KEYS
    if unknown:
        raise DatasetError(f"{path}: grid key(s) {sorted(unknown)} unknown; allowed: {sorted(GRID_KEYS)}.")
    for key, values in data["grid"].items():
        if not isinstance(values, list) or not values:
            raise DatasetError(f"{path}: grid.{key} must be a non-empty list.")
        for value in values:  # refused now, not after the runs before it
            try:
                KNOBS[key].check(value, where=f"{path}: grid.{key}")
            except SpecError as e:
                raise DatasetError(str(e)) from None
    return data


def run_grid(
    grid_path: str | Path | dict[str, Any],
    store_location: str | None = None,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every combination of a grid as child runs of one parent run; returns rows and the parent run id.

    ``grid_path`` is a grid YAML file or the same content as a dict (notebooks), with an optional ``name``.
    """
    import itertools

    import mlflow

    from ragship.assembly import resolve_spec
    from ragship.eval.datasets import load_beir
    from ragship.spec import with_overrides

    settings = settings or get_settings()
    grid = load_grid(grid_path)
    dataset = load_beir(grid["dataset"], split=grid.get("split", "test"), datasets_dir=settings.datasets_dir)
    dataset = dataset.limited(grid.get("limit_queries"))
    base = resolve_spec(grid.get("spec"), settings)
    keys = sorted(grid["grid"])
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid["grid"][k] for k in keys))]
    init_mlflow(settings)
    rows: list[dict[str, Any]] = []
    name = grid.get("name", "grid") if isinstance(grid_path, dict) else Path(grid_path).stem
    with mlflow.start_run(run_name=f"grid-{name}") as parent:
        mlflow.log_params({"grid": name, "dataset": dataset.name, "split": dataset.split, "combinations": len(combos)})
        if isinstance(grid_path, dict):
            mlflow.log_dict(grid, f"{name}.yaml")
        else:
            mlflow.log_artifact(str(grid_path))
        for combo in combos:
            # The mode is the evaluation's, not the spec's: every mode of one spec keeps the spec's hash.
            spec = with_overrides(base, **{k: v for k, v in combo.items() if KNOBS[k].targets})
            mode = combo.get("mode", spec.retrieval_mode)
            config = ", ".join(f"{k}={v}" for k, v in combo.items())
            result = run_tracked_eval(
                spec,
                dataset,
                store_location or grid.get("store"),
                mode,
                settings,
                progress,
                nested=True,
                run_name=config,
            )
            rows.append({"config": config, "run_id": result.run_id, **combo, **result.metrics})
        metric_names = ["ndcg_at_10", "recall_at_100", "mrr_at_10"]
        mlflow.log_figure(plots.grid_comparison(rows, metric_names), "grid_comparison.png")
        import pandas as pd

        mlflow.log_table(pd.DataFrame(rows), artifact_file="grid.json")
        best = max(rows, key=lambda r: r[settings.mlflow.primary_metric])
        mlflow.log_metrics({f"best_{settings.mlflow.primary_metric}": best[settings.mlflow.primary_metric]})
        mlflow.set_tag("best_run_id", best["run_id"])
    return {"parent_run_id": parent.info.run_id, "rows": rows, "best_run_id": best["run_id"]}


def run_tracked_qa(
    spec: PipelineSpec,
    qa_path: str | Path,
    docs: list[str | Path],
    store_location: str | None = None,
    settings: Settings | None = None,
) -> Any:
    """Index ``docs`` (reused while unchanged), answer the QA set and record the run in MLflow.

    A conversation set (:mod:`ragship.eval.conversations`) is scored per turn: follow-ups and topic changes
    each with their history and alone.
    """
    import hashlib

    import mlflow
    import pandas as pd

    from ragship.assembly import open_indexer
    from ragship.eval.answers import evaluate_answers
    from ragship.eval.conversations import evaluate_conversations, is_conversation_set, load_conversations
    from ragship.eval.datasets import load_qa
    from ragship.eval.genai import log_answer_assessments
    from ragship.pipelines.indexing import discover_files
    from ragship.pipelines.query import QueryEngine
    from ragship.tracking.prompts import link_spec_prompt

    settings = settings or get_settings()
    conversational = is_conversation_set(qa_path)
    conversations = load_conversations(qa_path) if conversational else []
    examples = [turn.example for c in conversations for turn in c.turns] if conversational else load_qa(qa_path)
    files, _ = discover_files(docs)
    digest = hashlib.sha256(spec.indexing_hash.encode())
    for file in files:
        digest.update(str(file).encode() + file.read_bytes())
    fingerprint = digest.hexdigest()[:16]
    store = evaluation_store(store_for(spec, store_location, settings)).sibling("eval-qa")
    if store.index_fingerprint() != fingerprint:
        open_indexer(spec, store).rebuild(files, allow_failures=True)
        store.set_index_fingerprint(fingerprint)
    init_mlflow(settings)
    qa_hash = hashlib.sha256(Path(qa_path).read_bytes()).hexdigest()[:16]
    with mlflow.start_run(run_name=f"qa-{Path(qa_path).stem}") as run:
        mlflow.set_tag(KIND_TAG, "qa")
        mlflow.log_params(
            {
                **spec_params(spec),
                "qa_set": str(qa_path),
                "qa_fingerprint": qa_hash,
                "questions": len(examples),
                **({"conversations": len(conversations)} if conversational else {}),
                "docs_fingerprint": fingerprint,
                "git_commit": git_commit(),
            }
        )
        with spec_file(spec) as path:
            mlflow.log_artifact(str(path))
        link_spec_prompt(spec, run.info.run_id, settings)
        engine = QueryEngine(spec, store)
        if conversational:
            result = evaluate_conversations(engine, conversations)
        else:
            result = evaluate_answers(engine, examples, settings)
        mlflow.log_metrics(result.metrics)
        mlflow.set_tag("ragship.notes", "; ".join(result.notes) or "none")
        mlflow.log_table(pd.DataFrame(result.rows), artifact_file="answers.json")
        mlflow.log_figure(plots.metrics_bar(result.metrics, f"QA: {Path(qa_path).name}"), "qa_metrics.png")
        if not conversational:  # per-turn rows (with history and alone) have no single answer to assess
            log_answer_assessments(examples, result.rows)
        result.run_id = run.info.run_id
    return result
