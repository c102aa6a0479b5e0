"""Prometheus metrics of the workers, and the server that exposes them.

``ragship worker`` gives its Dramatiq processes one ``PROMETHEUS_MULTIPROC_DIR``; each process writes
its samples there, and :func:`serve` (a Dramatiq fork process) answers ``/metrics`` for all of them on
``worker.metrics_host:worker.metrics_port``. Worker throughput is ``rate(ragship_worker_documents_total)``
or ``rate(ragship_worker_jobs_total)``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ragship.queue.job_state import JobStatus

LATENCY_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))


class WorkerMetrics:
    """Counters and histograms of one worker process (created on first use, after the process set up
    prometheus_client's multiprocess mode)."""

    def __init__(self) -> None:
        self._metrics: dict[str, Any] | None = None

    def _get(self) -> dict[str, Any]:
        if self._metrics is None:
            from prometheus_client import Counter, Gauge, Histogram

            self._metrics = {
                "jobs": Counter("ragship_worker_jobs", "Job runs by outcome.", ["status"]),
                "documents": Counter(
                    "ragship_worker_documents", "Documents processed by result (throughput).", ["result"]
                ),
                "chunks": Counter("ragship_worker_chunks_written", "Chunks written to the store."),
                "duration": Histogram(
                    "ragship_worker_job_duration_seconds", "Time a worker spent on a job.", buckets=LATENCY_BUCKETS
                ),
                "latency": Histogram(
                    "ragship_job_latency_seconds",
                    "Time from submission to the job's final state (done or failed).",
                    buckets=LATENCY_BUCKETS,
                ),
                "in_progress": Gauge(
                    "ragship_worker_jobs_in_progress", "Jobs running now.", multiprocess_mode="livesum"
                ),
            }
        return self._metrics

    @contextmanager
    def running(self) -> Iterator[None]:
        """Time a job and count it as in progress meanwhile."""
        metrics = self._get()
        metrics["in_progress"].inc()
        started = time.perf_counter()
        try:
            yield
        finally:
            metrics["in_progress"].dec()
            metrics["duration"].observe(time.perf_counter() - started)

    def finished(
        self, status: JobStatus, counts: dict[str, int], submitted_at: float | None, finished_at: float | None
    ) -> None:
        """Count a job run's outcome and, for a finished job, its documents and end-to-end latency."""
        metrics = self._get()
        metrics["jobs"].labels(status=status.value).inc()
        for result in ("added", "updated", "unchanged", "failed"):
            if counts.get(result):
                metrics["documents"].labels(result=result).inc(counts[result])
        if counts.get("chunks_written"):
            metrics["chunks"].inc(counts["chunks_written"])
        if submitted_at is not None and finished_at is not None:
            metrics["latency"].observe(max(finished_at - submitted_at, 0.0))


def serve() -> int:
    """Dramatiq fork process: serve the worker processes' metrics until told to stop."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    from ragship.settings import get_settings

    worker = get_settings().worker
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(worker.metrics_port, addr=worker.metrics_host, registry=registry)
    while True:
        time.sleep(3600)
