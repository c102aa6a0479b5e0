"""The queue's gauges on ``/metrics``: every API replica reports the shared indexing queue.

The gauges (length, the oldest waiting job's age, dead letters, jobs by status) are read from the broker
and Redis when ``/metrics`` is scraped; submissions are counted by outcome where they are answered (serving.index_jobs).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from ragship.errors import QueueError
from ragship.observability.lazy_metrics import LazyMetrics


def _make() -> dict[str, Any]:
    """The API's queue metrics (made on first use: :mod:`ragship.observability.lazy_metrics`)."""
    from prometheus_client import Counter, Gauge

    return {
        "submissions": Counter(
            "ragship_index_submissions",
            "Indexing job submissions by outcome (queued, full, too_large, unavailable).",
            ["outcome"],
        ),
        "length": Gauge(
            "ragship_queue_length",
            "Jobs waiting in the indexing queue (the Redis list or RabbitMQ queue KEDA scales workers on).",
            multiprocess_mode="mostrecent",
        ),
        "dead": Gauge("ragship_queue_dead_lettered", "Jobs in the dead-letter queue.", multiprocess_mode="mostrecent"),
        "jobs": Gauge(
            "ragship_jobs",
            "Jobs by status (queued/running/retrying: now; done/failed/dead_lettered: so far).",
            ["status"],
            multiprocess_mode="mostrecent",
        ),
        "oldest_age": Gauge(
            "ragship_queue_oldest_job_age_seconds",
            "How long the job next in line has waited (0: none waiting; NaN: RabbitMQ cannot tell).",
            multiprocess_mode="mostrecent",
        ),
        "up": Gauge("ragship_queue_up", "1 when the broker answered the last scrape.", multiprocess_mode="mostrecent"),
    }


METRICS = LazyMetrics(_make)


def refresh_queue_metrics(queue: Any) -> None:
    """Read the shared queue's figures from Redis into the gauges (a failure sets ``ragship_queue_up`` 0)."""
    try:
        stats = queue.stats(dead_letters=0)
        oldest = queue.oldest_waiting_s()
    except QueueError:
        METRICS.up.set(0)
        return
    METRICS.up.set(1)
    METRICS.length.set(stats.waiting)
    METRICS.dead.set(stats.dead_lettered)
    METRICS.oldest_age.set(float("nan") if oldest is None else oldest)
    for status, count in stats.jobs.items():
        METRICS.jobs.labels(status=status).set(count)


class QueueMetrics:
    """ASGI middleware: before ``/metrics`` answers, refresh the queue gauges from Redis."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.queue: Any = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/metrics":
            if self.queue is None:
                from ragship.queue.client import JobQueue
                from ragship.settings import get_settings

                self.queue = JobQueue(get_settings().queue)
            await anyio.to_thread.run_sync(refresh_queue_metrics, self.queue)
        await self.app(scope, receive, send)


def serve_queue_metrics(service: Any) -> None:
    """Refresh the queue gauges on ``service``'s ``/metrics``."""
    service.add_asgi_middleware(QueueMetrics)
