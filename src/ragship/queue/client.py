"""Submitting jobs and reading the queue: what the API and ``ragship enqueue`` / ``ragship queue`` call.

Usage::

    queue = JobQueue(get_settings().queue)
    job_id = queue.submit_paths(["/data/docs/a.md", "/data/docs/b.pdf"])
    queue.job(job_id).status          # queued, running, done, ...

A submission returns at once with the job id. It is refused with :class:`QueueFullError` when the
queue already holds ``max_length`` waiting jobs (backpressure), with :class:`JobTooLargeError` over the
size limits, and with :class:`QueueUnavailableError` when Redis cannot be reached. Redis is asked afresh
on every call, so once it is back submissions work again without restarting anything.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ragship.queue.broker import ACTOR_NAME, Keys, open_broker, redis_client
from ragship.queue.jobs import (
    Job,
    JobStatus,
    JobStore,
    JobTooLargeError,
    QueueFullError,
    now,
    queue_errors,
)
from ragship.settings import QueueSettings

if TYPE_CHECKING:
    from dramatiq import Message
    from dramatiq.brokers.redis import RedisBroker

PAYLOAD_FORMAT = b"ragship-documents-v1"
FORMAT_FIELD = b"\x00format"


@dataclass
class DeadLetter:
    """A job in the dead-letter queue and why it died."""

    job_id: str
    message_id: str
    dead_since: float
    retries: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dict(self.__dict__)


@dataclass
class QueueStats:
    """What ``ragship queue status`` and the API's metrics report."""

    url: str
    queue: str
    waiting: int
    delayed: int
    in_flight: int
    dead_lettered: int
    jobs: dict[str, int]
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        data = dict(self.__dict__)
        data["dead_letters"] = [d.to_dict() for d in self.dead_letters]
        return data


def redacted_url(url: str) -> str:
    """The URL without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class JobQueue:
    """The submitting side of the indexing queue.

    :param settings: Broker URL, limits and retry policy.
    """

    def __init__(self, settings: QueueSettings) -> None:
        self.settings = settings
        self.keys = Keys.of(settings)
        # Any: redis-py annotates results as "sync or awaitable"; this client is the sync one.
        self.client: Any = redis_client(settings)
        self.jobs = JobStore(self.client, self.keys, settings.job_ttl_s)
        self._broker: RedisBroker | None = None

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

    def submit_documents(self, documents: Mapping[str, bytes]) -> str:
        """Queue uploaded documents (source name -> content) for indexing; their bytes wait in Redis.

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
        return self._submit("documents", len(documents), {}, payload)

    def _check_count(self, count: int) -> None:
        if count > self.settings.max_job_documents:
            raise JobTooLargeError(
                f"The job has {count:,} documents, over the limit of {self.settings.max_job_documents:,} per job; "
                "split it into several jobs (or raise RAGSHIP_QUEUE__MAX_JOB_DOCUMENTS)."
            )

    def _submit(self, kind: str, count: int, fields: dict[str, Any], payload: dict[bytes, bytes] | None) -> str:
        from dramatiq import Message

        job_id = uuid.uuid4().hex
        with self._redis():
            waiting = int(self.client.llen(self.keys.waiting))
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
            self.jobs.transition(job_id, JobStatus.QUEUED, kind=kind, sources=count, submitted_at=now(), **fields)
            message: Message[Any] = Message(
                queue_name=self.settings.name,
                actor_name=ACTOR_NAME,
                args=(job_id,),
                kwargs={},
                options={},
            )
            self._enqueue(message)
        return job_id

    def _enqueue(self, message: Message[Any]) -> None:
        # The broker's own enqueue (a Lua script: body into .msgs, id onto the list), without declaring
        # the actor here: submitting needs no worker code.
        if self._broker is None:
            self._broker = open_broker(self.settings, client=self.client)
        self._broker.enqueue(message)

    # -- read -------------------------------------------------------------------------------------
    def job(self, job_id: str) -> Job:
        """The state of a job.

        :raises JobNotFoundError: unknown or expired id.
        :raises QueueUnavailableError: when Redis cannot be reached.
        """
        with self._redis():
            return self.jobs.get(job_id)

    def paths_of(self, job_id: str) -> list[str]:
        """The paths of a ``paths`` job."""
        with self._redis():
            raw = self.client.hget(self.keys.job(job_id), "paths")
        return list(json.loads(raw)) if raw else []

    def stats(self, dead_letters: int = 20) -> QueueStats:
        """Queue lengths, jobs by status and the newest dead letters with their reasons."""
        with self._redis():
            pipe = self.client.pipeline(transaction=False)
            pipe.llen(self.keys.waiting)
            pipe.hlen(self.keys.delayed_messages)
            pipe.hlen(self.keys.messages)
            pipe.zcard(self.keys.dead)
            waiting, delayed, bodies, dead = (int(x) for x in pipe.execute())
            jobs = self.jobs.counts_by_status()
            letters = self.dead_letters(dead_letters) if dead_letters else []
        return QueueStats(
            url=redacted_url(self.settings.url),
            queue=self.keys.waiting,
            waiting=waiting,
            delayed=delayed,
            in_flight=max(bodies - waiting, 0),
            dead_lettered=dead,
            jobs=jobs,
            dead_letters=letters,
        )

    def dead_letters(self, limit: int = 20) -> list[DeadLetter]:
        """The newest ``limit`` dead-lettered jobs, each with the reason kept in its job state."""
        from dramatiq import Message

        with self._redis():
            entries = self.client.zrevrange(self.keys.dead, 0, limit - 1, withscores=True)
            letters = []
            for message_id, score in entries:
                body = self.client.hget(self.keys.dead_messages, message_id)
                if body is None:
                    continue
                message = Message.decode(body)
                job_id = str(message.args[0]) if message.args else "?"
                reason = self.client.hget(self.keys.job(job_id), "error")
                fallback = str(message.options.get("traceback", "")).strip().splitlines()[-1:] or ["unknown"]
                letters.append(
                    DeadLetter(
                        job_id=job_id,
                        message_id=message_id.decode(),
                        dead_since=score / 1000,
                        retries=int(message.options.get("retries", 0)),
                        reason=reason.decode() if reason else fallback[0],
                    )
                )
        return letters

    def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(self.client.ping())
        except Exception:
            return False

    @contextmanager
    def _redis(self) -> Iterator[None]:
        try:
            yield
        except Exception as e:
            mapped = queue_errors(e)
            if mapped is e:
                raise
            raise mapped from e
