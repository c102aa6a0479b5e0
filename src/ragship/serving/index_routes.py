"""``/index/submit`` and ``/index/status``: indexing jobs over HTTP, on the Dramatiq queue.

``POST /index/submit`` puts the documents on the queue and answers at once (202) with the job id;
``GET /index/status?job_id=...`` reads the job's state from Redis (whatever the broker), so any API
replica answers for any job. Workers (``ragship worker``) do the indexing. The queue's own errors become
status codes here: 503 (broker unreachable; queue full, with Retry-After), 413 (job too large), 404 (unknown job).

The queue's gauges (length, dead letters, jobs by status) are read from the broker and Redis when
``/metrics`` is scraped, so every replica reports the shared queue.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ragship.errors import QueueError
from ragship.serving.http import response_for
from ragship.serving.indexing import IndexRequest

logger = logging.getLogger("ragship.serving")


class _Metrics:
    """The API's queue metrics, created on first use: BentoML sets prometheus_client's multiprocess
    directory only after the service module is imported, and metrics made before would not show."""

    def __init__(self) -> None:
        self._made: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if self._made is None:
            from prometheus_client import Counter, Gauge

            self._made = {
                "submissions": Counter(
                    "ragship_index_submissions",
                    "Indexing job submissions by outcome (queued, full, too_large, unavailable, invalid).",
                    ["outcome"],
                ),
                "length": Gauge(
                    "ragship_queue_length",
                    "Jobs waiting in the indexing queue (the Redis list or RabbitMQ queue KEDA scales workers on).",
                    multiprocess_mode="mostrecent",
                ),
                "dead": Gauge(
                    "ragship_queue_dead_lettered", "Jobs in the dead-letter queue.", multiprocess_mode="mostrecent"
                ),
                "jobs": Gauge(
                    "ragship_jobs",
                    "Jobs by status (queued/running/retrying: now; done/failed/dead_lettered: so far).",
                    ["status"],
                    multiprocess_mode="mostrecent",
                ),
                "up": Gauge(
                    "ragship_queue_up", "1 when the broker answered the last scrape.", multiprocess_mode="mostrecent"
                ),
            }
        try:
            return self._made[name]
        except KeyError:
            raise AttributeError(name) from None


METRICS = _Metrics()


def _queue(request: Request) -> Any:
    """The app's :class:`JobQueue`, made on first use (no connection before a request needs it)."""
    queue = getattr(request.app.state, "queue", None)
    if queue is None:
        from ragship.queue.client import JobQueue
        from ragship.settings import get_settings

        queue = request.app.state.queue = JobQueue(get_settings().queue)
    return queue


async def _submit(request: Request) -> Response:
    try:
        body = IndexRequest.model_validate_json(await request.body())
    except ValidationError as e:
        METRICS.submissions.labels(outcome="invalid").inc()
        detail = e.errors(include_context=False, include_input=False, include_url=False)
        return JSONResponse({"error": f"{e.error_count()} validation error(s)", "detail": detail}, status_code=400)
    documents = {doc.source: doc.content() for doc in body.documents}
    try:
        job_id = await anyio.to_thread.run_sync(_queue(request).submit_documents, documents)
    except QueueError as e:
        from ragship.queue.job_state import JobTooLargeError, QueueFullError

        full, too_large = isinstance(e, QueueFullError), isinstance(e, JobTooLargeError)
        outcome = "full" if full else "too_large" if too_large else "unavailable"
        METRICS.submissions.labels(outcome=outcome).inc()
        return response_for(e)
    METRICS.submissions.labels(outcome="queued").inc()
    return JSONResponse({"job_id": job_id, "status": "queued"}, status_code=202)


async def _status(request: Request) -> Response:
    job_id = request.query_params.get("job_id", "")
    if not job_id:
        return JSONResponse({"error": "give the job id: /index/status?job_id=..."}, status_code=400)
    try:
        job = await anyio.to_thread.run_sync(_queue(request).job, job_id)
    except QueueError as e:
        return response_for(e)
    return JSONResponse(job.model_dump(mode="json"))


jobs_app = Starlette(routes=[Route("/submit", _submit, methods=["POST"]), Route("/status", _status, methods=["GET"])])


def refresh_queue_metrics(queue: Any) -> None:
    """Read the shared queue's figures from Redis into the gauges (a failure sets ``ragship_queue_up`` 0)."""
    try:
        stats = queue.stats(dead_letters=0)
    except QueueError:
        METRICS.up.set(0)
        return
    METRICS.up.set(1)
    METRICS.length.set(stats.waiting)
    METRICS.dead.set(stats.dead_lettered)
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


def serve_jobs(service: Any) -> None:
    """Refresh the queue gauges on ``service``'s ``/metrics`` (mount ``jobs_app`` at ``/index`` yourself)."""
    service.add_asgi_middleware(QueueMetrics)
