"""The shadow's slot is free once a challenger run has ended, even while its figures go to MLflow."""

from __future__ import annotations

import threading
from typing import Any

from ragship.observability.shadow import ShadowRunner
from ragship.pipelines.query import Answer
from ragship.settings import load_settings
from ragship.spec import default_spec


class _Engine:
    def ask(self, question: str, *args: Any, **kwargs: Any) -> Answer:
        return Answer(answer="same", sources=[])


def test_a_question_after_a_finished_run_finds_the_slot_free_while_mlflow_is_slow() -> None:
    settings = load_settings(shadow={"enabled": True, "sample_ratio": 1.0, "max_concurrent": 1, "log_every": 1})
    spec = default_spec()
    runner = ShadowRunner(settings, spec)
    logging_started, release_logging = threading.Event(), threading.Event()

    def slow_log(challenger: Any, figures: dict[str, float]) -> None:
        logging_started.set()
        release_logging.wait(30)  # an MLflow round trip that takes its time

    runner._challenger = lambda: (_Engine(), spec)  # type: ignore[method-assign]  # no model: the slot is the subject
    runner.log.log = slow_log  # type: ignore[method-assign]
    answer = Answer(answer="same", sources=[])
    try:
        assert runner.offer("q", (), {}, answer, 0.01, busy=0)
        assert logging_started.wait(30)
        # The first run has ended and is only logging: a second question gets the one slot.
        assert runner.offer("q2", (), {}, answer, 0.01, busy=0)
    finally:
        release_logging.set()
        runner.close()
