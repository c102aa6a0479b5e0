"""IR metrics through pytrec_eval (the reference trec_eval implementation), graded relevance."""

from __future__ import annotations

import statistics

import pytrec_eval

# ragship name -> (pytrec_eval measure, result key, depth the run is cut to first)
MEASURES: dict[str, tuple[str, str, int | None]] = {
    "ndcg_at_10": ("ndcg_cut.10", "ndcg_cut_10", None),
    "mrr_at_10": ("recip_rank", "recip_rank", 10),
    "recall_at_10": ("recall.10", "recall_10", None),
    "recall_at_100": ("recall.100", "recall_100", None),
    "map_at_100": ("map_cut.100", "map_cut_100", None),
}

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def _cut(run: Run, depth: int) -> Run:
    return {q: dict(sorted(docs.items(), key=lambda kv: -kv[1])[:depth]) for q, docs in run.items()}


def evaluate_run(qrels: Qrels, run: Run) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Mean and per-query metrics of ``run`` against graded ``qrels``.

    Queries missing from the run count as zero, as in BEIR. MRR@10 is reciprocal rank over the run cut
    at 10 (pytrec_eval has no cut variant of recip_rank).

    :returns: (mean metrics, {query id: metrics}).
    """
    full_run = {q: run.get(q, {}) for q in qrels}
    per_query: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for name, (measure, key, depth) in MEASURES.items():
        scored = _cut(full_run, depth) if depth else full_run
        judged = {q: docs for q, docs in scored.items() if docs}
        results = pytrec_eval.RelevanceEvaluator(qrels, {measure}).evaluate(judged) if judged else {}
        for q in qrels:
            per_query[q][name] = float(results.get(q, {}).get(key, 0.0))
    means = {name: statistics.fmean(per_query[q][name] for q in qrels) for name in MEASURES}
    return means, per_query
