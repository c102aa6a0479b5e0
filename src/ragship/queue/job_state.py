"""Job state: one Redis hash per job (with a TTL), so any API replica or CLI can answer for any job.

A job moves ``queued -> running -> done | failed``; a run that raises goes ``running -> retrying -> running``
until ``Retries`` gives up, and then ``dead_lettered`` with the reason. ``done`` means every document was
indexed; ``failed`` means the job ran but some documents could not be indexed (their reasons are listed);
a redelivered job (its worker died) goes ``running -> running`` and its ``redeliveries`` count goes up.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from ragship.errors import QueueError, RagshipError
from ragship.queue.broker import Keys

if TYPE_CHECKING:
    import redis


class QueueUnavailableError(QueueError):
    """The broker (Redis) cannot be reached; the HTTP edge answers 503."""


class QueueConfigError(QueueError):
    """The broker refuses the queue as configured; only the operator can fix it (HTTP 500)."""

    http_status = 500
    fix = RagshipError.fix
    retry_after_s = None


class QueueFullError(QueueError):
    """The queue holds its maximum of waiting jobs; the HTTP edge answers 503 with Retry-After.

    :param retry_after: Seconds to wait (``queue.retry_after_s``), sent as the Retry-After header.
    """

    fix = "Retry later (see the Retry-After header)."

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after


class JobTooLargeError(QueueError):
    """A job has more documents or bytes than allowed; the HTTP edge answers 413."""

    http_status = 413
    fix = ""
    retry_after_s = None


class JobNotFoundError(QueueError):
    """No job has this id (or its state has expired); the HTTP edge answers 404."""

    http_status = 404
    fix = ""
    retry_after_s = None


class JobPayloadError(QueueError):
    """A job's payload is missing or unreadable, so retrying cannot help; it ends dead-lettered."""

    http_status = 500
    retry_after_s = None


class JobStatus(StrEnum):
    """Where a job is."""

    QUEUED = "queued"
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"

    @property
    def final(self) -> bool:
        """True when nothing more will happen to the job."""
        return self in {JobStatus.DONE, JobStatus.FAILED, JobStatus.DEAD_LETTERED}


class Job(BaseModel):
    """The state of one job, as ``/index/status`` and ``ragship queue job`` show it."""

    id: str
    status: JobStatus
    kind: str = Field(description="paths (files the workers read) or documents (uploaded content)")
    sources: int = Field(0, description="Files, directories or documents in the job.")
    submitted_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    attempts: int = Field(0, description="Times a worker started the job.")
    retries: int = Field(0, description="Runs that raised and were retried.")
    redeliveries: int = Field(0, description="Times the job was taken over after its worker died.")
    progress_done: int = Field(0, description="Files or documents of the current run indexed so far.")
    progress_total: int = Field(
        0, description="Files or documents the current run has to index (unchanged ones excluded)."
    )
    worker: str | None = Field(None, description="host:pid of the worker that ran it last.")
    submitted_by: str | None = Field(None, description="Name of the principal that submitted it (never a credential).")
    pid: int | None = None
    counts: dict[str, int] = Field(default_factory=dict, description="added, updated, unchanged, failed, chunks_*")
    failures: list[dict[str, str]] = Field(default_factory=list, description="Documents that failed: source, reason.")
    error: str | None = Field(None, description="Why the last run raised (retrying, dead_lettered).")

    @classmethod
    def from_redis(cls, job_id: str, raw: Mapping[bytes, bytes]) -> Job:
        """Parse the hash as stored."""
        data = {k.decode(): v.decode() for k, v in raw.items()}
        fields: dict[str, Any] = {"id": job_id}
        for name in ("status", "kind", "worker", "error", "submitted_by"):
            if data.get(name):
                fields[name] = data[name]
        for name in ("sources", "attempts", "retries", "redeliveries", "pid", "progress_done", "progress_total"):
            if name in data:
                fields[name] = int(data[name])
        for name in ("submitted_at", "started_at", "finished_at"):
            if name in data:
                fields[name] = float(data[name])
        for name in ("counts", "failures"):
            if name in data:
                fields[name] = json.loads(data[name])
        return cls.model_validate(fields)


# Atomic status change: keeps the by-status counts in step with the job hashes, refreshes the TTL,
# and returns the previous status (nil for a new job).
_TRANSITION = """
local old = redis.call('hget', KEYS[1], 'status')
local new = ARGV[1]
if old ~= new then
  if old then redis.call('hincrby', KEYS[2], old, -1) end
  redis.call('hincrby', KEYS[2], new, 1)
end
redis.call('hset', KEYS[1], 'status', new)
for i = 3, #ARGV, 2 do
  if string.sub(ARGV[i], 1, 1) == '+' then
    redis.call('hincrby', KEYS[1], string.sub(ARGV[i], 2), tonumber(ARGV[i + 1]))
  else
    redis.call('hset', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
redis.call('expire', KEYS[1], tonumber(ARGV[2]))
return old
"""


# Removes a job that was never queued, and takes it off the by-status counts.
_DISCARD = """
local old = redis.call('hget', KEYS[1], 'status')
if old then redis.call('hincrby', KEYS[2], old, -1) end
redis.call('del', KEYS[1], KEYS[3])
return old
"""


def queue_errors(error: Exception) -> Exception:
    """Connection failures (Redis, RabbitMQ) as :class:`QueueUnavailableError`; anything else unchanged."""
    import dramatiq.errors
    import pika.exceptions
    import redis

    if isinstance(error, redis.ConnectionError | redis.TimeoutError):
        return QueueUnavailableError(
            f"The job queue's Redis cannot be reached: {error}. Check RAGSHIP_QUEUE__URL (or RAGSHIP_QUEUE__STATE_URL "
            "with a RabbitMQ broker) and that Redis runs (`ragship queue status`); retry once it is back."
        )
    cause = error.args[0] if isinstance(error, dramatiq.errors.ConnectionError) and error.args else None
    if isinstance(cause, pika.exceptions.ChannelClosedByBroker) and cause.reply_code == 406:
        return QueueConfigError(
            f"RabbitMQ refused ragship's queue declaration ({cause.reply_text}): a queue of that name exists with "
            "other arguments (a classic queue?). Delete it, or set RAGSHIP_QUEUE__NAME to another name."
        )
    if isinstance(error, pika.exceptions.AMQPConnectionError | dramatiq.errors.ConnectionError):
        # The exception's text is left out: pika's can carry connection parameters.
        return QueueUnavailableError(
            f"The job queue's broker (RabbitMQ) cannot be reached ({type(error).__name__}). Check RAGSHIP_QUEUE__URL "
            "and that RabbitMQ runs; retry once it is back."
        )
    return error


class JobStore:
    """Reads and writes job state in Redis.

    :param client: A client of the broker's Redis.
    :param keys: The queue's key layout.
    :param ttl_s: How long a job's state is kept after its last change.
    """

    def __init__(self, client: redis.Redis, keys: Keys, ttl_s: int) -> None:
        # Any: redis-py annotates results as "sync or awaitable"; this client is the sync one.
        self.client: Any = client
        self.keys = keys
        self.ttl_s = ttl_s
        self._transition = client.register_script(_TRANSITION)
        self._discard = client.register_script(_DISCARD)

    def transition(self, job_id: str, status: JobStatus, **fields: Any) -> JobStatus | None:
        """Set the status and fields of a job atomically; ``+name=n`` style increments go in ``increments``.

        :returns: The status before.
        """
        increments = fields.pop("increments", {})
        args: list[Any] = [str(status), self.ttl_s]
        for name, value in fields.items():
            if value is None:
                continue
            args += [name, json.dumps(value) if isinstance(value, dict | list) else str(value)]
        for name, value in increments.items():
            args += [f"+{name}", int(value)]
        old = self._transition(keys=[self.keys.job(job_id), self.keys.by_status], args=args)
        return JobStatus(old.decode()) if old else None

    def discard(self, job_id: str) -> None:
        """Remove a job's state and payload (a submission that could not be queued)."""
        self._discard(keys=[self.keys.job(job_id), self.keys.by_status, self.keys.payload(job_id)])

    def progress(self, job_id: str, done: int, total: int) -> None:
        """Record how far the current run is (no status change)."""
        self.client.hset(self.keys.job(job_id), mapping={"progress_done": done, "progress_total": total})

    def get(self, job_id: str) -> Job:
        """The state of a job.

        :raises JobNotFoundError: when there is no such job (never submitted, or expired).
        """
        raw = self.client.hgetall(self.keys.job(job_id))
        if not raw:
            raise JobNotFoundError(
                f"No job {job_id!r}: it was never submitted here, or its state expired (RAGSHIP_QUEUE__JOB_TTL_S)."
            )
        return Job.from_redis(job_id, raw)

    def counts_by_status(self) -> dict[str, int]:
        """Jobs per status (finished ones count until the broker's data is wiped; active ones are live)."""
        raw = self.client.hgetall(self.keys.by_status)
        counts = {status.value: 0 for status in JobStatus}
        counts.update({k.decode(): int(v) for k, v in raw.items()})
        return counts


def now() -> float:
    """Wall-clock seconds (job timestamps are compared across machines)."""
    return time.time()
