"""Submitting jobs and reading the queue: what the API and ``ragship enqueue`` / ``ragship queue`` call.

Usage::

    queue = JobQueue(get_settings().queue)
    job_id = queue.submit_paths(["/data/docs/a.md", "/data/docs/b.pdf"])
    queue.job(job_id).status          # queued, running, done, ...

A submission returns at once with the job id. It is refused with :class:`QueueFullError` when the
queue already holds ``max_length`` waiting jobs (backpressure), with :class:`JobTooLargeError` over the
size limits, and with :class:`QueueUnavailableError` when the broker or the job state's Redis cannot be
reached. They are asked afresh on every call, so once they are back submissions work again without
restarting anything. A submission that fails leaves no job state behind.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragship.observability.tracing import job_trace_context, submit_span
from ragship.queue.broker import ACTOR_NAME, BrokerKind, Keys, broker_kind, open_broker, redis_client
from ragship.queue.counts import DeadLetter
from ragship.queue.job_state import (
    Job,
    JobStatus,
    JobStore,
    JobTooLargeError,
    QueueFullError,
    now,
    queue_errors,
)
from ragship.queue.reader import open_reader
from ragship.settings import QueueSettings, redacted_url

if TYPE_CHECKING:
    from dramatiq import Broker, Message

__all__ = ["DeadLetter", "JobQueue", "QueueStats", "redacted_url"]

logger = logging.getLogger("ragship.queue")

PAYLOAD_FORMAT = b"ragship-documents-v1"
FORMAT_FIELD = b"\x00format"


@dataclass
class QueueStats:
    """What ``ragship queue status`` and the API's metrics report."""

    url: str
    queue: str
    waiting: int
    delayed: int
    in_flight: int | None  # None: the broker does not tell (RabbitMQ)
    dead_lettered: int
    jobs: dict[str, int]
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        data = dict(self.__dict__)
        data["dead_letters"] = [d.to_dict() for d in self.dead_letters]
        return data


class JobQueue:
    """The submitting side of the indexing queue.

    :param settings: Broker URL, job state URL, limits and retry policy.
    :raises ConfigError: when the broker URL's scheme names no broker, or RabbitMQ has no state URL.
    """

    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self.keys = Keys.of(settings)
        # Any: redis-py annotates results as "sync or awaitable"; this client is the sync one. Job state and
        # uploads live in this Redis whatever the broker.
        self.client: Any = redis_client(settings)
        self.jobs = JobStore(self.client, self.keys, settings.job_ttl_s)
        self.reader = open_reader(settings, self.client)
        self._broker: Broker | None = None

    # -- submit -----------------------------------------------------------------------------------
    def submit_paths(self, paths: Sequence[str | Path]) -> str:
        """Queue files and directories for indexing (workers must see the same paths: a shared volume).

        :returns: The job id.
        :raises JobTooLargeError: over ``max_job_documents`` paths.
        :raises QueueFullError: when the queue is full.
        :raises QueueUnavailableError: when Redis cannot be reached.
        """
        names = [str(Path(p).absolute()) for p in paths]
        if not names:
            raise JobTooLargeError("A job needs at least one path.")
        self._check_count(len(names))
        return self._submit("paths", len(names), {"paths": names}, None)

    def submit_documents(self, documents: Mapping[str, bytes], submitted_by: str = "") -> str:
        """Queue uploaded documents (source name -> content) for indexing; their bytes wait in Redis.

        :param submitted_by: The submitting principal's name, kept in the job's record.

        :returns: The job id.
        :raises JobTooLargeError: over ``max_job_documents`` documents or ``max_job_bytes`` bytes.
        :raises QueueFullError: when the queue is full.
        :raises QueueUnavailableError: when Redis cannot be reached.
        """
        if not documents:
            raise JobTooLargeError("A job needs at least one document.")
        self._check_count(len(documents))
        size = sum(len(v) for v in documents.values())
        if size > self.settings.max_job_bytes:
            raise JobTooLargeError(
                f"The job's documents hold {size:,} bytes, over the {self.settings.max_job_bytes:,}-byte limit; "
                "split them into several jobs (or raise RAGSHIP_QUEUE__MAX_JOB_BYTES)."
            )
        payload: dict[bytes, bytes] = {FORMAT_FIELD: PAYLOAD_FORMAT}
        payload.update({source.encode(): content for source, content in documents.items()})
        return self._submit(
            "documents", len(documents), {"submitted_by": submitted_by} if submitted_by else {}, payload
        )

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_job_documents:
            raise JobTooLargeError(
                f"The job has {count:,} documents, over the limit of {self.settings.max_job_documents:,} per job; "
                "split it into several jobs (or raise RAGSHIP_QUEUE__MAX_JOB_DOCUMENTS)."
            )

    def _submit(self, kind: str, count: int, fields: dict[str, Any], payload: dict[bytes, bytes] | None) -> str:
        from dramatiq import Message

        job_id = uuid.uuid4().hex
        with submit_span(kind), self._errors():
            waiting = self.reader.waiting()
            if waiting >= self.settings.max_length:
                raise QueueFullError(
                    f"The indexing queue is full ({waiting:,} jobs waiting, limit {self.settings.max_length:,}); "
                    f"retry in {self.settings.retry_after_s}s.",
                    self.settings.retry_after_s,
                )
            if payload is not None:
                pipe = self.client.pipeline(transaction=True)
                pipe.hset(self.keys.payload(job_id), mapping=payload)
                pipe.expire(self.keys.payload(job_id), self.settings.job_ttl_s)
                pipe.execute()
            # State before message: a worker that takes the message at once must find the job. If the
            # message cannot be sent, the state and payload are removed again, so no "queued" job is left
            # that no worker will ever run.
            try:
                self.jobs.transition(job_id, JobStatus.QUEUED, kind=kind, sources=count, submitted_at=now(), **fields)
                message: Message[Any] = Message(
                    queue_name=self.settings.name,
                    actor_name=ACTOR_NAME,
                    args=(job_id,),
                    kwargs={},
                    options=job_trace_context(),  # the worker continues this trace
                )
                self._enqueue(message)
            except BaseException:
                self._discard(job_id)
                raise
        return job_id

    def _discard(self, job_id: str) -> None:
        """Remove a job that was never queued (best effort: its state expires anyway when Redis is down)."""
        try:
            self.jobs.discard(job_id)
        except Exception:
            logger.warning("job %s could not be queued and its state could not be removed; it expires", job_id)

    def _enqueue(self, message: Message[Any]) -> None:
        # The broker's own enqueue (Redis: a Lua script putting the body in .msgs and the id on the list;
        # RabbitMQ: a confirmed publish), without declaring the actor here: submitting needs no worker code.
        if self._broker is None:
            self._broker = open_broker(self.settings, client=self.client)
        self._broker.enqueue(message)

    # -- read -------------------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        """The state of a job.

        :raises JobNotFoundError: unknown or expired id.
        :raises QueueUnavailableError: when Redis cannot be reached.
        """
        with self._errors():
            return self.jobs.get(job_id)

    def stats(self, dead_letters: int = 20) -> QueueStats:
        """Queue lengths, jobs by status and the newest dead letters with their reasons."""
        with self._errors():
            counts = self.reader.counts()
            jobs = self.jobs.counts_by_status()
            letters = self.dead_letters(dead_letters) if dead_letters else []
        return QueueStats(
            url=redacted_url(self.settings.url),
            queue=self.keys.waiting if broker_kind(self.settings) == BrokerKind.REDIS else self.settings.name,
            waiting=counts.waiting,
            delayed=counts.delayed,
            in_flight=counts.in_flight,
            dead_lettered=counts.dead_lettered,
            jobs=jobs,
            dead_letters=letters,
        )

    def oldest_waiting_s(self) -> float | None:
        """How long the job next in line has waited, in seconds (0: none waiting; None: the broker cannot tell)."""
        if broker_kind(self.settings) == BrokerKind.RABBITMQ:
            return None  # AMQP cannot peek at a message's age
        with self._errors():
            since = self.reader.oldest_waiting_since()
        return 0.0 if since is None else max(0.0, now() - since)

    def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        """Dead-lettered jobs (the newest ``limit``), each with the reason kept in its job state."""
        with self._errors():
            letters = self.reader.dead_letters(limit)
            for letter in letters:
                reason = self.client.hget(self.keys.job(letter.job_id), "error")
                if reason:
                    letter.reason = reason.decode()
        return letters

    def ping(self) -> bool:
        """Whether the broker and the job state's Redis answer."""
        try:
            self.reader.waiting()
            return bool(self.client.ping())
        except Exception:
            return False

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            mapped = queue_errors(e)
            if mapped is e:
                raise
            raise mapped from e
