"""The Redis connection, the Dramatiq broker, and where everything lives in Redis.

Dramatiq's ``RedisBroker`` keeps, under the namespace (``ragship`` by default):

* ``ragship:indexing``: a plain Redis list of waiting message ids; KEDA's redis scaler reads its length;
* ``ragship:indexing.msgs``: message bodies until they are acknowledged;
* ``ragship:__acks__.<worker>.indexing``: what each worker holds; a worker whose heartbeat is older than
  ``heartbeat_timeout`` is dead and its held messages go back on the list (at-least-once delivery);
* ``ragship:indexing.DQ``: retries waiting for their backoff; ``ragship:indexing.XQ``: the dead letters.

Job state sits beside them: ``ragship:job:<id>`` (a hash) and ``ragship:job:<id>:payload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ragship.settings import QueueSettings

if TYPE_CHECKING:
    import redis
    from dramatiq.brokers.redis import RedisBroker

#: The one actor: ``index_job(job_id)``.
ACTOR_NAME = "index_job"


@dataclass(frozen=True)
class Keys:
    """Redis key names of one queue (Dramatiq's layout plus ragship's job state)."""

    namespace: str
    queue: str

    @classmethod
    def of(cls, settings: QueueSettings) -> Keys:
        """The keys of the configured queue."""
        return cls(settings.namespace, settings.name)

    @property
    def waiting(self) -> str:
        """The list of waiting message ids (what KEDA's redis scaler reads: ``listName``)."""
        return f"{self.namespace}:{self.queue}"

    @property
    def messages(self) -> str:
        """Bodies of waiting and held messages."""
        return f"{self.waiting}.msgs"

    @property
    def delayed_messages(self) -> str:
        """Bodies of retries waiting out their backoff."""
        return f"{self.waiting}.DQ.msgs"

    @property
    def dead(self) -> str:
        """The dead-letter queue: a sorted set of message ids by time of death."""
        return f"{self.waiting}.XQ"

    @property
    def dead_messages(self) -> str:
        """Bodies of dead-lettered messages."""
        return f"{self.waiting}.XQ.msgs"

    @property
    def by_status(self) -> str:
        """Hash: job status -> number of jobs in it."""
        return f"{self.namespace}:jobs:by-status"

    def job(self, job_id: str) -> str:
        """Hash of one job's state."""
        return f"{self.namespace}:job:{job_id}"

    def payload(self, job_id: str) -> str:
        """Hash of an upload job's documents (source -> bytes)."""
        return f"{self.namespace}:job:{job_id}:payload"


def redis_client(settings: QueueSettings) -> redis.Redis:
    """A client of the broker with bounded timeouts (it connects on first use, not here)."""
    import redis

    options: dict[str, Any] = {
        "socket_connect_timeout": settings.timeout_s,
        "socket_timeout": settings.timeout_s,
        "health_check_interval": 30,
    }
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    return redis.Redis.from_url(settings.url, **options)


def open_broker(
    settings: QueueSettings, middleware: list[Any] | None = None, client: redis.Redis | None = None
) -> RedisBroker:
    """The Dramatiq broker: acks late, bounded retries with exponential backoff, a time limit per job.

    :param client: The Redis client to use (a new one when None).
    :param middleware: Extra middleware, placed so that it sees a failed job's fate (retry or dead letter)
        decided by ``Retries``.
    """
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.middleware import CurrentMessage, Retries, TimeLimit

    return RedisBroker(
        client=client or redis_client(settings),
        namespace=settings.namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        dead_message_ttl=settings.dead_letter_ttl_s * 1000,
        maintenance_chance=settings.maintenance_chance,
        middleware=[
            TimeLimit(time_limit=int(settings.time_limit_s * 1000)),
            CurrentMessage(),
            # after_* hooks run last-to-first: what comes before Retries sees message.failed already set.
            *(middleware or []),
            Retries(
                max_retries=settings.max_retries,
                min_backoff=settings.min_backoff_ms,
                max_backoff=settings.max_backoff_ms,
            ),
        ],
    )
