"""The shadow challenger: a second spec answers a sample of live questions in the background.

The user's answer is never delayed nor changed: the challenger runs after it, in its own small thread pool,
only for a sampled share of questions, never while the worker is busy (``shadow.max_busy`` user questions
in flight) nor beyond ``shadow.max_concurrent`` runs at once. Per question it records how far the two
source lists overlap (Jaccard of the source ids), how alike the answers are (token F1) and both latencies,
on ``/metrics`` and as stepped metrics of an MLflow run (``ragship shadow report`` summarises them).
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ragship.eval.answers import token_f1
from ragship.observability.lazy_metrics import LazyMetrics

if TYPE_CHECKING:
    from ragship.pipelines.query import Answer, QueryEngine
    from ragship.settings import Settings
    from ragship.spec import PipelineSpec

logger = logging.getLogger("ragship.shadow")

KIND = "shadow"
CHAMPION_TAG = "ragship.champion_spec"
CHAMPION_HASH_TAG = "ragship.champion_hash"
CHALLENGER_TAG = "ragship.challenger_spec"
CHALLENGER_HASH_TAG = "ragship.challenger_hash"
CHALLENGER_URI_TAG = "ragship.challenger_uri"
# The stepped metrics of a shadow run, one step per shadowed question.
OVERLAP, ANSWER_F1, CHAMPION_LATENCY, CHALLENGER_LATENCY = (
    "source_overlap",
    "answer_f1",
    "champion_latency_s",
    "challenger_latency_s",
)
FAILED = "challenger_failed"
RETRY_LOAD_S = 60.0  # a challenger that failed to load is retried after this, not on every question

LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SHARE_BUCKETS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.99, 1.0)


def _make() -> dict[str, Any]:
    """The shadow's metrics (made on first use: :mod:`ragship.observability.lazy_metrics`)."""
    from prometheus_client import Counter, Histogram

    return {
        "runs": Counter(
            "ragship_shadow_runs",
            "Shadowed questions by outcome (done, failed, skipped_busy, skipped_full).",
            ["spec", "outcome"],
        ),
        "overlap": Histogram(
            "ragship_shadow_source_overlap",
            "Jaccard overlap of the champion's and the challenger's source ids.",
            ["spec"],
            buckets=SHARE_BUCKETS,
        ),
        "answer_f1": Histogram(
            "ragship_shadow_answer_similarity",
            "Token F1 between the champion's and the challenger's answers.",
            ["spec"],
            buckets=SHARE_BUCKETS,
        ),
        "latency": Histogram(
            "ragship_shadow_latency_seconds",
            "Answer latency of each side of a shadowed question (role: champion, challenger).",
            ["spec", "role"],
            buckets=LATENCY_BUCKETS,
        ),
    }


METRICS = LazyMetrics(_make)


def source_overlap(champion: Answer, challenger: Answer) -> float:
    """Jaccard overlap of the two answers' source ids (1.0 when both found nothing)."""
    ours, theirs = {s.id for s in champion.sources}, {s.id for s in challenger.sources}
    if not ours and not theirs:
        return 1.0
    return len(ours & theirs) / len(ours | theirs)


def answer_similarity(champion: Answer, challenger: Answer) -> float:
    """Token F1 of the two answers (1.0 when both are empty)."""
    if not champion.answer.strip() and not challenger.answer.strip():
        return 1.0
    return token_f1(challenger.answer, champion.answer)


class ShadowLog:
    """One MLflow run per API worker holding the shadowed questions' figures as stepped metrics."""

    def __init__(self, settings: Settings, champion: PipelineSpec) -> None:
        self.settings = settings
        self.champion = champion
        self._client: Any = None
        self._run_id: str | None = None
        self._step = 0
        self._lock = threading.Lock()  # the pool's threads log concurrently: one run, steps in order

    def _run(self, challenger: PipelineSpec) -> str:
        if self._run_id is None:
            from mlflow import MlflowClient

            from ragship.tracking.runs import KIND_TAG, init_mlflow

            init_mlflow(self.settings, self.settings.shadow.experiment)
            self._client = MlflowClient()
            experiment = self._client.get_experiment_by_name(self.settings.shadow.experiment)
            run = self._client.create_run(
                experiment.experiment_id,
                run_name=f"shadow {self.champion.name} vs {challenger.name}",
                tags={
                    KIND_TAG: KIND,
                    CHAMPION_TAG: self.champion.name,
                    CHAMPION_HASH_TAG: self.champion.hash,
                    CHALLENGER_TAG: challenger.name,
                    CHALLENGER_HASH_TAG: challenger.hash,
                    CHALLENGER_URI_TAG: self.settings.shadow.challenger,
                },
            )
            self._run_id = str(run.info.run_id)
        return self._run_id

    def log(self, challenger: PipelineSpec, figures: dict[str, float]) -> None:
        """Log one question's figures as the next step."""
        from mlflow.entities import Metric

        with self._lock:
            run_id = self._run(challenger)
            self._step += 1
            step = self._step
        now = int(time.time() * 1000)
        metrics = [Metric(key, float(value), now, step) for key, value in figures.items()]
        self._client.log_batch(run_id, metrics=metrics)

    @property
    def run_id(self) -> str | None:
        """The run's id once something was logged."""
        return self._run_id


class ShadowRunner:
    """Offers answered questions to the challenger spec (``settings.shadow``), in the background.

    :param settings: The settings (``shadow`` and the store and MLflow ones).
    :param champion: The served spec.
    :param store: The served store, used by the challenger unless ``shadow.store`` names another.
    """

    def __init__(self, settings: Settings, champion: PipelineSpec, store: Any = None) -> None:
        self.settings = settings
        self.shadow = settings.shadow
        self.champion = champion
        self.store = store
        self.log = ShadowLog(settings, champion)
        self._pool = ThreadPoolExecutor(max_workers=self.shadow.max_concurrent, thread_name_prefix="ragship-shadow")
        self._slots = threading.BoundedSemaphore(self.shadow.max_concurrent)
        self._load_lock = threading.Lock()
        self._engine: QueryEngine | None = None
        self._spec: PipelineSpec | None = None
        self._retry_at = 0.0
        self._seen = itertools.count()  # next() is atomic under the GIL: the pool's threads share it

    def offer(
        self, question: str, args: tuple[Any, ...], kwargs: dict[str, Any], answer: Answer, latency_s: float, busy: int
    ) -> bool:
        """Run the challenger on this answered question in the background if it is sampled and there is room.

        :param busy: Other user questions in flight in this worker now.
        :returns: Whether a challenger run was started.
        """
        if not self.shadow.enabled or random.random() >= self.shadow.sample_ratio:
            return False
        spec = self.champion.name
        if busy > self.shadow.max_busy:
            METRICS.runs.labels(spec, "skipped_busy").inc()
            return False
        if not self._slots.acquire(blocking=False):
            METRICS.runs.labels(spec, "skipped_full").inc()
            return False
        # The request's context (its access scope) goes along: the challenger reads what the user may read.
        context = contextvars.copy_context()
        try:
            self._pool.submit(context.run, self._run, question, args, kwargs, answer, latency_s)
        except RuntimeError:  # shut down
            self._slots.release()
            return False
        return True

    def close(self, wait: bool = True) -> None:
        """Stop taking questions; with ``wait``, let the runs in flight end."""
        self._pool.shutdown(wait=wait, cancel_futures=True)

    def _challenger(self) -> tuple[QueryEngine, PipelineSpec]:
        with self._load_lock:
            if self._engine is None or self._spec is None:
                if time.monotonic() < self._retry_at:
                    raise RuntimeError("the challenger failed to load a moment ago")
                try:
                    from ragship.assembly import open_query_engine, resolve_spec, store_for

                    spec = resolve_spec(self.shadow.challenger, self.settings)
                    store = store_for(spec, self.shadow.store or self.store, settings=self.settings)
                    engine = open_query_engine(spec, store, settings=self.settings)
                    engine.warm_up()
                except Exception:
                    self._retry_at = time.monotonic() + RETRY_LOAD_S
                    raise
                self._engine, self._spec = engine, spec
                logger.info("shadow challenger %s (%s) from %s", spec.name, spec.hash, self.shadow.challenger)
            return self._engine, self._spec

    def _run(
        self, question: str, args: tuple[Any, ...], kwargs: dict[str, Any], champion: Answer, champion_s: float
    ) -> None:
        spec = self.champion.name
        # The slot bounds the challenger's runs, so it is given back as soon as the run ends: before the
        # figures are counted (a question sent once ``done`` moved finds the slot free) and before the
        # MLflow round trip, which costs the user's questions no CPU.
        try:
            try:
                engine, challenger_spec = self._challenger()
                started = time.perf_counter()
                theirs = engine.ask(question, *args, **kwargs)
                challenger_s = time.perf_counter() - started
            finally:
                self._slots.release()
        except Exception as e:  # the challenger's trouble is never the user's
            METRICS.runs.labels(spec, "failed").inc()
            logger.warning("shadow challenger failed: %s: %s", type(e).__name__, e)
            return
        figures = {
            OVERLAP: source_overlap(champion, theirs),
            ANSWER_F1: answer_similarity(champion, theirs),
            CHAMPION_LATENCY: champion_s,
            CHALLENGER_LATENCY: challenger_s,
        }
        METRICS.runs.labels(spec, "done").inc()
        METRICS.overlap.labels(spec).observe(figures[OVERLAP])
        METRICS.answer_f1.labels(spec).observe(figures[ANSWER_F1])
        METRICS.latency.labels(spec, "champion").observe(champion_s)
        METRICS.latency.labels(spec, "challenger").observe(challenger_s)
        if next(self._seen) % self.shadow.log_every == 0:
            try:
                self.log.log(challenger_spec, figures)
            except Exception as e:  # MLflow down: the figures are still on /metrics
                logger.warning("shadow figures not logged to MLflow: %s", e)
