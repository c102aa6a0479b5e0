"""The shadow challenger in process, over the project's docs: it never changes nor delays the user's answer.

The slow challenger reads from a real TCP server that accepts and never answers (an Elasticsearch that
hangs); the failing one names a spec file that does not exist.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from ragship.assembly import open_query_engine
from ragship.observability.quality import instrument
from ragship.observability.shadow import ShadowRunner
from ragship.pipelines.query import QueryEngine
from ragship.settings import load_settings
from ragship.spec import default_spec

pytestmark = pytest.mark.integration

QUESTIONS = ["How do I run the tests?", "What does the promotion gate compare?", "How is the API key sent?"]


def runs(spec: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("ragship_shadow_runs_total", {"spec": spec, "outcome": outcome}) or 0.0


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A loopback server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _answers(engine: QueryEngine) -> tuple[list[tuple[str, list[str]]], list[float]]:
    answers, latencies = [], []
    for q in QUESTIONS:
        started = time.perf_counter()
        a = engine.ask(q)
        latencies.append(time.perf_counter() - started)
        answers.append((a.answer, [s.id for s in a.sources]))
    return answers, latencies


def _shadowed(docs_store: str, tmp_path: Path, name: str, **shadow: object) -> tuple[QueryEngine, ShadowRunner]:
    spec = default_spec(mode="bm25")
    spec.name = name
    settings = load_settings(home=tmp_path, shadow={"enabled": True, **shadow})
    engine = open_query_engine(spec, docs_store)
    runner = ShadowRunner(settings, spec, engine.store)
    instrument(engine, spec.name, runner)
    return engine, runner


def test_a_slow_or_failing_challenger_leaves_answers_unchanged_and_on_time(
    docs_store: str, tmp_path: Path, silent_server: str
) -> None:
    baseline, plain = _answers(open_query_engine(default_spec(mode="bm25"), docs_store))
    challenger = default_spec().save(tmp_path / "challenger.yaml")
    slow, slow_runner = _shadowed(
        docs_store, tmp_path, "slow", challenger=str(challenger), store=silent_server, sample_ratio=1.0
    )
    failing, failing_runner = _shadowed(
        docs_store, tmp_path, "failing", challenger=str(tmp_path / "missing.yaml"), sample_ratio=1.0
    )
    try:
        for engine in (slow, failing):
            answers, latencies = _answers(engine)
            assert answers == baseline
            # On time: the hanging challenger would take the store's 30 s timeout.
            assert max(latencies) < max(plain) + 2.0, (latencies, plain)
        # One slow run holds each slot (max_concurrent 2); the third question was skipped, not queued.
        assert runs("slow", "skipped_full") == 1
        assert runs("slow", "done") == 0
        time.sleep(0.5)
        assert runs("failing", "failed") == 3
    finally:
        failing_runner.close()
        slow_runner.close(wait=False)


def test_sampling_zero_runs_nothing(docs_store: str, tmp_path: Path) -> None:
    challenger = default_spec().save(tmp_path / "challenger.yaml")
    engine, runner = _shadowed(docs_store, tmp_path, "unsampled", challenger=str(challenger), sample_ratio=0.0)
    try:
        _answers(engine)
        runner.close()
        assert sum(runs("unsampled", o) for o in ("done", "failed", "skipped_busy", "skipped_full")) == 0
        assert runner.log.run_id is None  # nothing logged to MLflow either
    finally:
        runner.close()
