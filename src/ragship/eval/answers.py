"""Answer quality on a QA set: exact match, token F1, semantic similarity, sources, faithfulness."""

from __future__ import annotations

import re
import statistics
import string
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragship.environment import env_secret
from ragship.eval.datasets import QAExample
from ragship.pipelines.query import Answer, QueryEngine
from ragship.settings import Settings, get_settings

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CITATIONS = re.compile(r"\[\d+\]")


def normalize(text: str) -> str:
    """SQuAD answer normalisation: lower case, no punctuation, articles or extra spaces; citations dropped."""
    text = _CITATIONS.sub(" ", text.lower())
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    return " ".join(_ARTICLES.sub(" ", text).split())


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token-overlap F1 between a prediction and one gold answer."""
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref or common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def text_scores(answer: str, golds: list[str]) -> dict[str, float]:
    """``token_f1`` (best over gold answers) and ``contains_answer`` of one answer."""
    return {
        "token_f1": max(token_f1(answer, g) for g in golds),
        "contains_answer": float(any(normalize(g) in normalize(answer) for g in golds)),
    }


def source_scores(sources: list[str], cited: list[str], gold: set[str]) -> dict[str, float]:
    """``source_recall`` (a gold file is among the sources) and ``cited_source_precision`` of one answer."""
    return {
        "source_recall": float(bool(gold & set(sources))) if gold else 1.0,
        "cited_source_precision": (sum(c in gold for c in cited) / len(cited)) if cited and gold else 0.0,
    }


@dataclass
class AnswerEvaluation:
    """Means over the QA set, per-question rows, and notes on what was skipped."""

    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)
    run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"metrics": self.metrics, "notes": self.notes, "run_id": self.run_id}


def evaluate_answers(
    engine: QueryEngine, examples: list[QAExample], settings: Settings | None = None
) -> AnswerEvaluation:
    """Ask every question and score the answers.

    - ``exact_match``: Haystack's AnswerExactMatchEvaluator on normalised text (an answer counts when
      it equals a gold answer);
    - ``contains_answer``: a normalised gold answer occurs in the answer (fairer to extractive answers);
    - ``token_f1``: best SQuAD F1 over gold answers;
    - ``sas``: semantic answer similarity (Haystack SASEvaluator with the spec's embedding model);
    - ``source_recall``: a gold file is among the returned sources; ``cited_source_precision``: cited
      sources that are gold files;
    - ``faithfulness``: LLM judge (Haystack FaithfulnessEvaluator), only with an OpenAI-compatible endpoint.
    """
    from haystack.components.evaluators import AnswerExactMatchEvaluator

    settings = settings or get_settings()
    answers: list[Answer] = [engine.ask(ex.question) for ex in examples]
    rows: list[dict[str, Any]] = []
    for ex, ans in zip(examples, answers, strict=True):
        sources = [Path(s.source).as_posix() for s in ans.sources]
        cited = [s for s, src in zip(sources, ans.sources, strict=True) if src.cited]
        gold = set(ex.sources)
        rows.append(
            {
                "question": ex.question,
                "answer": ans.answer,
                "gold": ex.answers[0],
                **text_scores(ans.answer, ex.answers),
                **source_scores(sources, cited, gold),
                "sources": sources,
                "cited": cited,
            }
        )
    exact = AnswerExactMatchEvaluator().run(
        ground_truth_answers=[normalize(ex.answers[0]) for ex in examples],
        predicted_answers=[normalize(a.answer) for a in answers],
    )
    for row, score in zip(rows, exact["individual_scores"], strict=True):
        row["exact_match"] = float(score)
    notes: list[str] = []
    _semantic_similarity(engine, examples, answers, rows, notes)
    _faithfulness(settings, examples, answers, rows, notes)
    keys = [k for k in rows[0] if isinstance(rows[0][k], float)]
    metrics = {k: statistics.fmean(r[k] for r in rows if r.get(k) is not None) for k in keys}
    return AnswerEvaluation(metrics, rows, notes)


def _semantic_similarity(
    engine: QueryEngine, examples: list[QAExample], answers: list[Answer], rows: list[dict[str, Any]], notes: list[str]
) -> None:
    from haystack.components.evaluators import SASEvaluator

    from ragship.models.resolve import resolve_embedding_model

    model = engine.spec.embedding_model
    if not model:
        notes.append("sas skipped: the spec has no embedding model")
        return
    evaluator = SASEvaluator(model=resolve_embedding_model(model))
    evaluator.warm_up()
    result = evaluator.run(
        ground_truth_answers=[ex.answers[0] for ex in examples],
        predicted_answers=[_CITATIONS.sub("", a.answer) for a in answers],
    )
    scores = result["individual_scores"]
    for row, score in zip(rows, scores if isinstance(scores, list) else [scores], strict=True):
        row["sas"] = float(score)


def _faithfulness(
    settings: Settings, examples: list[QAExample], answers: list[Answer], rows: list[dict[str, Any]], notes: list[str]
) -> None:
    if not settings.openai.base_url or not env_secret(settings.openai.api_key_env):
        notes.append(
            "faithfulness skipped: no LLM judge configured (set RAGSHIP_OPENAI__BASE_URL and "
            f"{settings.openai.api_key_env})"
        )
        return
    from haystack.components.evaluators import FaithfulnessEvaluator
    from haystack.components.generators.chat import OpenAIChatGenerator
    from haystack.utils import Secret

    judge = OpenAIChatGenerator(
        api_key=Secret.from_env_var(settings.openai.api_key_env),
        model=settings.openai.model,
        api_base_url=settings.openai.base_url,
        timeout=settings.openai.timeout_s,
        generation_kwargs={"response_format": {"type": "json_object"}, "temperature": 0.0},
    )
    result = FaithfulnessEvaluator(chat_generator=judge, progress_bar=False, raise_on_failure=False).run(
        questions=[ex.question for ex in examples],
        contexts=[[s.snippet for s in a.sources] for a in answers],
        predicted_answers=[a.answer for a in answers],
    )
    for row, item in zip(rows, result["results"], strict=True):
        row["faithfulness"] = None if item is None else float(item.get("score", 0.0))
