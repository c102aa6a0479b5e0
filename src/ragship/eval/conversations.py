"""Multi-turn QA sets: follow-ups scored with their history and alone, topic changes likewise.

A conversation set is JSONL, one conversation a line::

    {"conversation": "es-start-stop", "turns": [
        {"question": "How do I start a local Elasticsearch node?", "answers": ["ragship es start"],
         "sources": ["docs/stores.md"]},
        {"kind": "follow_up", "question": "And how do I stop it?", "answers": ["ragship es stop"],
         "sources": ["docs/stores.md"]}]}

Every turn after the first names its ``kind``: ``follow_up`` (it only makes sense with the turns before it) or
``topic_change`` (it stands alone and must not be pulled toward them). Each later turn is asked twice: with the
earlier user turns as history, and alone; the metrics compare the two.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

from ragship.eval.answers import AnswerEvaluation, normalize
from ragship.eval.datasets import DatasetError, QAExample, _jsonl
from ragship.pipelines.query import Answer, QueryEngine

TurnKind = Literal["follow_up", "topic_change"]
TURN_KINDS: tuple[TurnKind, ...] = get_args(TurnKind)
TURNS_FIELD = "turns"
# The figures each group of turns is scored on.
SCORES = ("source_recall", "contains_answer")


@dataclass(frozen=True)
class Turn:
    """One user turn: a QA example, and (after the first) whether it follows up or changes the topic."""

    example: QAExample
    kind: TurnKind | None = None


@dataclass(frozen=True)
class Conversation:
    """User turns in order, oldest first."""

    name: str
    turns: list[Turn]


def is_conversation_set(path: str | Path) -> bool:
    """Whether the JSONL file at ``path`` holds conversations (its first record has ``turns``)."""
    for _, record in _jsonl(Path(path)):
        return TURNS_FIELD in record
    return False


def load_conversations(path: str | Path) -> list[Conversation]:
    """Load a conversation set (module docstring).

    :raises DatasetError: naming the file, line and turn of the first problem.
    """
    path = Path(path)
    conversations: list[Conversation] = []
    for line_no, record in _jsonl(path):
        turns = record.get(TURNS_FIELD)
        if not isinstance(turns, list) or len(turns) < 2:
            raise DatasetError(f"{path}:{line_no}: 'turns' must be a list of at least two turns.")
        parsed: list[Turn] = []
        for i, turn in enumerate(turns):
            where = f"{path}:{line_no}: turns[{i}]"
            if not isinstance(turn, dict):
                raise DatasetError(f"{where}: expected an object with question, answers and sources.")
            question, answers, sources = turn.get("question"), turn.get("answers"), turn.get("sources", [])
            if not isinstance(question, str) or not question.strip():
                raise DatasetError(f"{where}: 'question' must be a non-empty string.")
            if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
                raise DatasetError(f"{where}: 'answers' must be a non-empty list of strings.")
            if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
                raise DatasetError(f"{where}: 'sources' must be a list of file paths.")
            kind = turn.get("kind")
            if i and kind not in TURN_KINDS:
                raise DatasetError(f"{where}: 'kind' must be one of {list(TURN_KINDS)} (after the first turn).")
            parsed.append(Turn(QAExample(question, answers, sources), kind if i else None))
        conversations.append(Conversation(str(record.get("conversation", f"line {line_no}")), parsed))
    if not conversations:
        raise DatasetError(f"{path}: no conversations.")
    return conversations


def evaluate_conversations(engine: QueryEngine, conversations: list[Conversation]) -> AnswerEvaluation:
    """Ask every turn (later ones with their history and alone) and score source recall and contains-answer.

    Metrics: ``first_turn_*`` (first turns), ``follow_up_with_history_*`` / ``follow_up_alone_*`` and
    ``topic_change_with_history_*`` / ``topic_change_alone_*``, each for ``source_recall`` (a gold file is among
    the returned sources) and ``contains_answer`` (a normalised gold answer occurs in the answer).
    """
    rows: list[dict[str, Any]] = []
    for conversation in conversations:
        history: list[str] = []
        for turn in conversation.turns:
            ex = turn.example
            row: dict[str, Any] = {"conversation": conversation.name, "kind": turn.kind or "first", **_turn(ex)}
            with_history = engine.ask(ex.question, history=history)
            row.update({f"with_history_{k}": v for k, v in _scores(ex, with_history).items()})
            row["answer"], row["sources"] = with_history.answer, _files(with_history)
            if history:
                row.update({f"alone_{k}": v for k, v in _scores(ex, engine.ask(ex.question)).items()})
            rows.append(row)
            history.append(ex.question)
    metrics: dict[str, float] = {}
    for score in SCORES:
        groups = [("first_turn", "first", "with_history")]
        groups += [(f"{kind}_{asked}", kind, asked) for kind in TURN_KINDS for asked in ("with_history", "alone")]
        for name, kind, asked in groups:
            values = [r[f"{asked}_{score}"] for r in rows if r["kind"] == kind and f"{asked}_{score}" in r]
            if values:  # a set without topic changes has no topic-change figures
                metrics[f"{name}_{score}"] = statistics.fmean(values)
    counts = {kind: sum(r["kind"] == kind for r in rows) for kind in ("first", *TURN_KINDS)}
    notes = [f"{counts[k]} {k} turns" for k in counts]
    return AnswerEvaluation(metrics, rows, notes)


def _turn(ex: QAExample) -> dict[str, Any]:
    return {"question": ex.question, "gold": ex.answers[0], "gold_sources": ex.sources}


def _files(answer: Answer) -> list[str]:
    return [Path(s.source).as_posix() for s in answer.sources]


def _scores(ex: QAExample, answer: Answer) -> dict[str, float]:
    gold = set(ex.sources)
    return {
        "source_recall": float(bool(gold & set(_files(answer)))) if gold else 1.0,
        "contains_answer": float(any(normalize(g) in normalize(answer.answer) for g in ex.answers)),
    }
