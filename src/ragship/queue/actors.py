"""What a worker runs for a job: the one indexing path (``sync.Syncer``), with job state kept in Redis
(whatever the broker: Redis or RabbitMQ carries only the job id).

The actor takes a job id only; the job's paths (or uploaded documents) wait in Redis beside its state.
Delivery is at least once (a worker that dies holding a job leaves it to be redelivered), so a job must
be safe to run twice: chunk ids are stable and ``Syncer`` records the manifest after each batch, so a
rerun writes only what the first run did not finish and never duplicates a chunk. A job found already
finished (its worker died between recording the result and acknowledging it) is not run again.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dramatiq.middleware import Middleware

from ragship.queue.broker import ACTOR_NAME, Keys, open_broker, redis_client
from ragship.queue.client import FORMAT_FIELD, PAYLOAD_FORMAT
from ragship.queue.job_state import JobNotFoundError, JobPayloadError, JobStatus, JobStore, now
from ragship.queue.metrics import WorkerMetrics
from ragship.settings import Settings

if TYPE_CHECKING:
    from dramatiq import Broker, Message

    from ragship.components.remote import RemoteModels
    from ragship.sync import Syncer

logger = logging.getLogger("ragship.queue")

COUNT_KEYS = ("added", "updated", "unchanged", "failed", "chunks_written", "chunks_deleted")


@dataclass
class WorkerContext:
    """What the jobs of one worker process share: settings, the Redis client, job state, metrics."""

    settings: Settings
    client: Any  # redis.Redis; redis-py annotates results as "sync or awaitable"
    keys: Keys
    jobs: JobStore
    metrics: WorkerMetrics


_context: WorkerContext | None = None
_local = threading.local()


def context() -> WorkerContext:
    """The process's worker context (set by :func:`declare`)."""
    if _context is None:
        raise RuntimeError("ragship.queue.actors.declare() was not called in this process")
    return _context


def embedder_remote(url: str | None) -> RemoteModels | None:
    """Document embeddings from the Embedder service at ``url``; None embeds in this process."""
    if not url:
        return None
    import bentoml

    from ragship.components.remote import RemoteModels

    client = bentoml.SyncHTTPClient(url)
    return RemoteModels(embed_documents=lambda texts: client.embed_documents(texts=texts))


def _syncer(settings: Settings) -> Syncer:
    """This thread's indexing path, built on its first job (the model loads once per thread)."""
    syncer: Syncer | None = getattr(_local, "syncer", None)
    if syncer is None:
        from ragship.assembly import open_indexer, served_spec

        spec, origin = served_spec(settings)
        syncer = open_indexer(spec, settings=settings, remote=embedder_remote(settings.worker.embedder_url))
        logger.info("indexing with spec %s (%s) from %s into %s", spec.name, spec.hash, origin, syncer.store.describe())
        _local.syncer = syncer
    return syncer


def _documents(client: Any, keys: Keys, job_id: str) -> Mapping[str, bytes]:
    raw: dict[bytes, bytes] = client.hgetall(keys.payload(job_id))
    if not raw:
        raise JobPayloadError(
            f"The documents of job {job_id} are gone from Redis (expired or evicted); submit them again. "
            "Redis must run with maxmemory-policy noeviction."
        )
    if raw.pop(FORMAT_FIELD, None) != PAYLOAD_FORMAT:
        raise JobPayloadError(f"The documents of job {job_id} are in a format this worker cannot read.")
    return {source.decode(): content for source, content in raw.items()}


def index_job(job_id: str) -> None:
    """Index the paths or documents of job ``job_id`` and record the outcome in its state."""
    ctx = context()
    try:
        job = ctx.jobs.get(job_id)
    except JobNotFoundError as e:
        raise JobPayloadError(f"Job {job_id} has no state in Redis (expired?); nothing to index.") from e
    if job.status.final:
        logger.info("job %s is already %s (redelivered after it finished); not running it again", job_id, job.status)
        return
    pid = os.getpid()
    redelivered = job.status == JobStatus.RUNNING  # its last worker died holding it
    ctx.jobs.transition(
        job_id,
        JobStatus.RUNNING,
        started_at=now(),
        worker=f"{socket.gethostname()}:{pid}",
        pid=pid,
        progress_done=0,
        progress_total=0,
        increments={"attempts": 1, "redeliveries": int(redelivered)},
    )

    def progress(done: int, total: int) -> None:
        ctx.jobs.progress(job_id, done, total)

    with ctx.metrics.running():
        if job.kind == "documents":
            documents = _documents(ctx.client, ctx.keys, job_id)
            report = _syncer(ctx.settings).index_documents(documents, progress=progress)
        else:
            raw = ctx.client.hget(ctx.keys.job(job_id), "paths")
            report = _syncer(ctx.settings).index(json.loads(raw) if raw else [], progress=progress)
    result = report.to_dict()
    counts = {k: int(result.get(k, 0)) for k in COUNT_KEYS}
    status = JobStatus.FAILED if result["failures"] else JobStatus.DONE
    finished = now()
    ctx.jobs.transition(job_id, status, finished_at=finished, counts=counts, failures=result["failures"], error="")
    ctx.client.delete(ctx.keys.payload(job_id))
    ctx.metrics.finished(status, counts, job.submitted_at, finished)


class JobLifecycle(Middleware):
    """Records a raising job's fate in its state: ``retrying`` (with the reason) or, once ``Retries`` has
    given up and the message goes to the dead-letter queue, ``dead_lettered`` with the reason."""

    def after_process_message(
        self, broker: Any, message: Message[Any], *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        if exception is None or message.actor_name != ACTOR_NAME or not message.args:
            return
        ctx = context()
        job_id = str(message.args[0])
        reason = f"{type(exception).__name__}: {exception}"
        if getattr(message, "failed", False):  # set by Retries on the MessageProxy
            status = JobStatus.DEAD_LETTERED
            reason = f"{reason} (dead-lettered after {message.options.get('retries', 0)} attempts)"
            ctx.jobs.transition(job_id, status, error=reason, finished_at=now())
        else:
            status = JobStatus.RETRYING
            ctx.jobs.transition(job_id, status, error=reason, increments={"retries": 1})
        ctx.metrics.finished(status, {}, None, None)
        logger.warning("job %s %s: %s", job_id, status.value, reason)


def declare(settings: Settings) -> Broker:
    """Make this process a worker: the broker with the job middleware, and the ``index_job`` actor."""
    import dramatiq

    from ragship.observability.tracing import start_tracing
    from ragship.queue.job_trace import job_middleware

    global _context
    start_tracing(settings.tracing)  # before the broker: its middleware continues each job's trace
    keys = Keys.of(settings.queue)
    client = redis_client(settings.queue)
    _context = WorkerContext(settings, client, keys, JobStore(client, keys, settings.queue.job_ttl_s), WorkerMetrics())
    broker = open_broker(settings.queue, middleware=[*job_middleware(), JobLifecycle()], client=client)
    dramatiq.actor(
        index_job,
        actor_name=ACTOR_NAME,
        queue_name=settings.queue.name,
        broker=broker,
        max_retries=settings.queue.max_retries,
    )
    return broker
