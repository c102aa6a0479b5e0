"""Retrieval evaluation on BEIR data, tracked as an MLflow run."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ragship.assembly import open_indexer
from ragship.enums import RetrievalMode
from ragship.eval.datasets import BeirDataset
from ragship.eval.metrics import evaluate_run
from ragship.pipelines.query import QueryEngine
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec
from ragship.stores.base import EvaluationStore

Progress = Callable[[str, int, int], None]
DEPTH = 100  # documents ranked per query (Recall@100, MAP@100)


@dataclass
class RetrievalEvaluation:
    """Metrics of one spec and mode on one dataset split."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    dataset: BeirDataset
    mode: RetrievalMode
    reused_index: bool
    seconds: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    #: The model version registered from the run (``ragship eval --register``), else None.
    registered_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """What `ragship eval --json` prints."""
        return {
            "metrics": self.metrics,
            "run_id": self.run_id,
            "dataset": self.dataset.name,
            "split": self.dataset.split,
            "queries": len(self.dataset.queries),
            "mode": self.mode,
            "reused_index": self.reused_index,
            "seconds": self.seconds,
        }


def index_fingerprint(spec: PipelineSpec, dataset: BeirDataset) -> str:
    """What an evaluation index depends on: the indexing pipeline and the corpus (not the split or its queries)."""
    payload = json.dumps({"indexing": spec.indexing_hash, "corpus": dataset.corpus_fingerprint}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def ensure_indexed(
    spec: PipelineSpec, dataset: BeirDataset, store: EvaluationStore, settings: Settings
) -> tuple[EvaluationStore, bool]:
    """Index the corpus unless the store already holds it for this indexing pipeline; returns (store, reused)."""
    fingerprint = index_fingerprint(spec, dataset)
    if store.count_documents() > 0 and store.index_fingerprint() == fingerprint:
        return store, True
    report = open_indexer(spec, store, batch_files=1).rebuild([dataset.corpus_file], allow_failures=True)
    store.set_index_fingerprint(fingerprint)
    if not report.chunks_written:
        raise RuntimeError(f"Indexing {dataset.corpus_file} wrote nothing: {report.failures[:3]}")
    return store, False


def rank_documents(
    engine: QueryEngine, dataset: BeirDataset, progress: Progress | None = None
) -> dict[str, dict[str, float]]:
    """Top-100 corpus documents per query; a document's rank is that of its best chunk.

    The head of the list is what serving returns: each retriever branch keeps the spec's depth
    (``candidates``), which changes the fused order. Past that head the list goes on with a deeper
    search (every branch at least 200 chunks), so Recall@100 and MAP@100 see 100 documents.
    """
    run: dict[str, dict[str, float]] = {}
    total = len(dataset.queries)
    for i, (qid, text) in enumerate(sorted(dataset.queries.items()), start=1):
        ranked: dict[str, float] = {}
        for deepen in (False, True):
            for chunk in engine.retrieve(text, top_k=2 * DEPTH, deepen_branches=deepen):
                doc_id = str(chunk.meta.get("record", chunk.id))
                if doc_id not in ranked:
                    ranked[doc_id] = float(DEPTH * 2 - len(ranked))  # strictly decreasing: keeps the fused order
                if len(ranked) == DEPTH:
                    break
            if len(ranked) == DEPTH:
                break
        run[qid] = ranked
        if progress:
            progress("queries", i, total)
    return run


def evaluate_retrieval(
    spec: PipelineSpec,
    dataset: BeirDataset,
    store: EvaluationStore,
    mode: RetrievalMode,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> RetrievalEvaluation:
    """Index (or reuse) the corpus, rank documents for every query, compute metrics (no tracking)."""
    settings = settings or get_settings()
    started = time.perf_counter()
    store, reused = ensure_indexed(spec, dataset, store, settings)
    indexed = time.perf_counter()
    engine = QueryEngine(spec, store, mode=mode)
    run = rank_documents(engine, dataset, progress)
    queried = time.perf_counter()
    metrics, per_query = evaluate_run(dataset.qrels, run)
    return RetrievalEvaluation(
        metrics,
        per_query,
        dataset,
        mode,
        reused,
        {"index": round(indexed - started, 2), "queries": round(queried - indexed, 2)},
    )
