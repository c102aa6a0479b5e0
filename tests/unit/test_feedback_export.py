"""`ragship feedback export`: ratings recorded the way POST /feedback records them become a QA set to review."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ragship.cli import app
from ragship.enums import RatingName
from ragship.eval.datasets import DatasetError, load_qa
from ragship.settings import Settings, get_settings, load_settings
from ragship.spec import PipelineSpec
from ragship.tracking.feedback import Feedback, FeedbackRecorder, rating_value

REVIEW_FIELDS = {"rating", "answer", "sources", "comment", "run_id", "time", "served"}
# The recorder needs only a spec's hash; the default spec would import the embedders (torch) for it.
SPEC = PipelineSpec.from_dict(
    {"indexing": {"components": {"writer": {"type": "w"}}}, "query": {"components": {"answerer": {"type": "a"}}}}
)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """Settings (and so the CLI's) pointing at a sqlite MLflow store under tmp_path."""
    monkeypatch.setenv("RAGSHIP_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RAGSHIP_CONFIG_FILE", str(tmp_path / "none.toml"))
    monkeypatch.delenv("RAGSHIP_MLFLOW__TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield load_settings()
    get_settings.cache_clear()


def _pause() -> datetime:
    """A moment strictly between the runs recorded before and after it (MLflow keeps milliseconds)."""
    time.sleep(0.02)
    moment = datetime.now(UTC)
    time.sleep(0.02)
    return moment


def _export(*args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["feedback", "export", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_ratings_export_as_a_qa_set_that_eval_qa_loads_once_reviewed(settings: Settings, tmp_path: Path) -> None:
    recorder = FeedbackRecorder(SPEC, "tests/spec.yaml", settings)  # what the RAG service's /feedback uses

    def rate(rating: RatingName, question: str, answer: str, sources: list[str], comment: str = "") -> str:
        feedback = Feedback(rating_value(rating), question, answer, comment, sources)
        return recorder.record(feedback)

    start = _pause()
    first = rate("down", "How do I run the tests?", "pip install ragship", ["docs/getting-started.md"], "wrong command")
    middle = _pause()
    up = rate("up", "Which Python version does ragship need?", "Python 3.11", ["docs/getting-started.md"])
    last = rate("down", "Which command serves the page?", "make test", ["docs/testing.md"])
    end = _pause()

    out = tmp_path / "qa" / "feedback.jsonl"
    result = CliRunner().invoke(app, ["feedback", "export", "--since", start.date().isoformat(), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Exported 3 rating(s)" in result.stderr and "2 without a gold answer yet" in result.stderr
    assert "0 skipped" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["feedback"]["run_id"] for line in lines] == [first, up, last]  # oldest first
    down_line, up_line = lines[0], lines[1]
    # Down-rated: the gold answer and files are for the reviewer to write; what was shown is kept.
    assert (down_line["question"], down_line["answers"], down_line["sources"]) == ("How do I run the tests?", [], [])
    assert set(down_line["feedback"]) == REVIEW_FIELDS  # chosen fields only, never the run's tags wholesale
    assert down_line["feedback"]["rating"] == "down"
    assert down_line["feedback"]["answer"] == "pip install ragship"
    assert down_line["feedback"]["sources"] == ["docs/getting-started.md"]
    assert down_line["feedback"]["comment"] == "wrong command"
    assert down_line["feedback"]["served"] == "tests/spec.yaml"
    recorded_at = datetime.fromisoformat(down_line["feedback"]["time"])
    assert start.replace(microsecond=0) <= recorded_at <= middle
    # Up-rated: the given answer and the sources shown are the gold ones.
    assert up_line["answers"] == ["Python 3.11"] and up_line["sources"] == ["docs/getting-started.md"]
    assert up_line["feedback"]["rating"] == "up" and up_line["feedback"]["comment"] == ""

    # Filters: --since a time (with an offset, and naive = UTC), --rating.
    assert [line["feedback"]["run_id"] for line in _export("--since", middle.isoformat(), "--rating", "down")] == [last]
    naive = middle.astimezone(UTC).replace(tzinfo=None).isoformat()
    assert [line["feedback"]["run_id"] for line in _export("--since", naive)] == [up, last]
    assert [line["feedback"]["run_id"] for line in _export("--since", start.isoformat(), "--rating", "up")] == [up]
    assert _export("--since", end.isoformat()) == []

    # Not reviewed yet: eval-qa's loader names the file, the line and the fix.
    with pytest.raises(DatasetError, match=r"feedback\.jsonl:1: no gold answer yet .*write the correct answer"):
        load_qa(out)
    # A person writes the gold answers and files of the down-rated lines, and drops none.
    lines[0]["answers"], lines[0]["sources"] = ["make test"], ["docs/testing.md"]
    lines[2]["answers"], lines[2]["sources"] = ["make run"], ["docs/getting-started.md"]
    out.write_text("".join(json.dumps(line) + "\n" for line in lines))
    examples = load_qa(out)
    assert [(e.question, e.answers, e.sources) for e in examples] == [
        ("How do I run the tests?", ["make test"], ["docs/testing.md"]),
        ("Which Python version does ragship need?", ["Python 3.11"], ["docs/getting-started.md"]),
        ("Which command serves the page?", ["make run"], ["docs/getting-started.md"]),
    ]


@pytest.mark.parametrize("since", ["yesterday", "2026-13-01", "24.11.2026"])
def test_a_bad_since_names_the_option_and_the_accepted_forms(settings: Settings, since: str) -> None:
    result = CliRunner().invoke(app, ["feedback", "export", "--since", since])
    assert result.exit_code == 2
    assert "--since" in result.output and "2026-11-24T10:00" in result.output
    assert not (settings.home / "mlflow.db").exists()  # refused before MLflow is touched


def test_a_bad_rating_is_refused_by_the_cli(settings: Settings) -> None:
    result = CliRunner().invoke(app, ["feedback", "export", "--since", "2026-11-01", "--rating", "meh"])
    assert result.exit_code == 2
    assert "'up'" in result.output and "'down'" in result.output
