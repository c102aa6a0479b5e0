"""Answer evaluations in MLflow's GenAI evaluation: one trace per question, scored by ragship's answer metrics.

``mlflow.genai.evaluate`` records each question, its answer and sources as a trace of the active run, with one
assessment per scorer, so the run's *Evaluations* view lists questions next to their scores. The scorers are
ragship's own per-answer metrics (:mod:`ragship.eval.answers`); the model-based ones (``sas``,
``faithfulness``) were computed while answering and ride along as precomputed columns of the same table.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from ragship.eval.answers import normalize, source_scores, text_scores
from ragship.eval.datasets import QAExample

_TEXT = ("token_f1", "contains_answer")
_SOURCES = ("source_recall", "cited_source_precision")
_WORKER_KNOBS = ("MLFLOW_GENAI_EVAL_MAX_WORKERS", "MLFLOW_GENAI_EVAL_MAX_SCORER_WORKERS")


def answer_scorers() -> list[Any]:
    """MLflow scorers: ``exact_match``, ``token_f1``, ``contains_answer``, ``source_recall``,
    ``cited_source_precision``, each the metric of the same name in :func:`ragship.eval.answers.evaluate_answers`."""
    from mlflow.genai.scorers import scorer

    def text(metric: str) -> Callable[..., float]:
        def score(outputs: dict[str, Any], expectations: dict[str, Any]) -> float:
            return text_scores(outputs["answer"], expectations["expected_answers"])[metric]

        return score

    def sources(metric: str) -> Callable[..., float]:
        def score(outputs: dict[str, Any], expectations: dict[str, Any]) -> float:
            return source_scores(outputs["sources"], outputs["cited"], set(expectations["expected_sources"]))[metric]

        return score

    def exact_match(outputs: dict[str, Any], expectations: dict[str, Any]) -> float:
        # As Haystack's AnswerExactMatchEvaluator on normalised text, against the first gold answer.
        return float(normalize(outputs["answer"]) == normalize(expectations["expected_response"]))

    return [
        scorer(exact_match, name="exact_match"),
        *(scorer(text(m), name=m) for m in _TEXT),
        *(scorer(sources(m), name=m) for m in _SOURCES),
    ]


def assessment_table(examples: list[QAExample], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``evaluate``'s data: inputs (the question), outputs (answer, sources, cited), expectations (gold)."""
    return [
        {
            "inputs": {"question": ex.question},
            "outputs": {
                "answer": row["answer"],
                "sources": row["sources"],
                "cited": row["cited"],
                **{k: row[k] for k in ("sas", "faithfulness") if row.get(k) is not None},
            },
            "expectations": {
                "expected_response": ex.answers[0],
                "expected_answers": list(ex.answers),
                "expected_sources": list(ex.sources),
            },
        }
        for ex, row in zip(examples, rows, strict=True)
    ]


def log_answer_assessments(examples: list[QAExample], rows: list[dict[str, Any]]) -> Any:
    """Run ``mlflow.genai.evaluate`` on the answered rows in the active run; returns its result."""
    import mlflow

    # MLflow prints its "evaluation completed" summary to stdout, which carries `ragship eval-qa --json`.
    with _serial(), contextlib.redirect_stdout(sys.stderr):
        return mlflow.genai.evaluate(data=assessment_table(examples, rows), scorers=answer_scorers())


@contextlib.contextmanager
def _serial() -> Iterator[None]:
    """One evaluation thread, unless the user set MLflow's knobs: the scorers are arithmetic, and ten
    threads (MLflow's default) writing traces at once exhaust a sqlite store's connection pool."""
    added = [k for k in _WORKER_KNOBS if k not in os.environ]
    os.environ.update(dict.fromkeys(added, "1"))
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)
