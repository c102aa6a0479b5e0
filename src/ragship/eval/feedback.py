"""Users' ratings of served answers, exported as a QA set for a person to review.

Each rating becomes one line of the golden-set format (``question``, ``answers``, ``sources``) plus a
``feedback`` object with what the person reviewing it needs: the answer given, the sources shown, the
rating, the comment, the MLflow run id and the time. An up-rated answer is taken as the gold answer and
its sources as the gold files; a down-rated one starts with empty ``answers`` and ``sources``, to be
written by the reviewer (:func:`ragship.eval.datasets.load_qa` refuses a line until it has an answer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ragship.enums import RatingName
from ragship.errors import InvalidRequestError
from ragship.eval.datasets import FEEDBACK_FIELD
from ragship.settings import Settings
from ragship.tracking.feedback import UP, RecordedFeedback, read_feedback


def parse_since(text: str) -> datetime:
    """An ISO date or time (``2026-11-01``, ``2026-11-24T10:00``, ``...+01:00``); UTC when it has no offset.

    :raises InvalidRequestError: naming the value and showing accepted forms.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as e:
        raise InvalidRequestError(
            f"{text!r} is not an ISO date or time; write e.g. 2026-11-01 or 2026-11-24T10:00 "
            "(UTC unless an offset such as +01:00 is given)."
        ) from e
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def qa_line(feedback: RecordedFeedback) -> dict[str, Any]:
    """One exported line: gold fields pre-filled from an up-rating, empty for a down-rating."""
    up = feedback.rating == UP and bool(feedback.answer.strip())
    return {
        "question": feedback.question,
        "answers": [feedback.answer] if up else [],
        "sources": list(feedback.sources) if up else [],
        FEEDBACK_FIELD: {
            "rating": feedback.rating,
            "answer": feedback.answer,
            "sources": feedback.sources,
            "comment": feedback.comment,
            "run_id": feedback.run_id,
            "time": feedback.time.astimezone(UTC).isoformat(timespec="seconds"),
            "served": feedback.served,
        },
    }


@dataclass
class FeedbackExport:
    """What an export wrote: lines, how many still need a gold answer, and runs that could not be read."""

    exported: int = 0
    needs_answer: int = 0
    skipped: list[str] = field(default_factory=list)


def export_feedback(
    out: Path | TextIO,
    since: datetime,
    rating: RatingName | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> FeedbackExport:
    """Write the ratings recorded from ``since`` on (only ``rating`` ones when given) as JSONL.

    :param out: A file (replaced, its folder created; written only once MLflow has been read) or a stream.
    :raises TrackingError: when MLflow cannot be read.
    """
    read = read_feedback(since, rating, settings, progress)
    lines = [qa_line(feedback) for feedback in read.ratings]
    text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    if isinstance(out, Path):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    else:
        out.write(text)
    return FeedbackExport(
        exported=len(lines), needs_answer=sum(not line["answers"] for line in lines), skipped=read.unreadable
    )
