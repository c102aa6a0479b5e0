"""The broker (chosen by the scheme of ``RAGSHIP_QUEUE__URL``), the Redis client of job state, and where
everything lives.

Redis broker (``redis://``, ``rediss://``): Dramatiq's ``RedisBroker`` keeps, under the namespace (``ragship``
by default):

* ``ragship:indexing``: a plain Redis list of waiting message ids; KEDA's redis scaler reads its length;
* ``ragship:indexing.msgs``: message bodies until they are acknowledged;
* ``ragship:__acks__.<worker>.indexing``: what each worker holds; a worker whose heartbeat is older than
  ``heartbeat_timeout`` is dead and its held messages go back on the list (at-least-once delivery);
* ``ragship:indexing.DQ``: retries waiting for their backoff; ``ragship:indexing.XQ``: the dead letters.

RabbitMQ broker (``amqp://``, ``amqps://``): the quorum queues ``indexing``, ``indexing.DQ`` and
``indexing.XQ`` (see :mod:`ragship.queue.rabbitmq`); KEDA's rabbitmq scaler reads ``indexing``.

Job state sits in Redis whatever the broker (``RAGSHIP_QUEUE__STATE_URL``, the broker URL by default):
``ragship:job:<id>`` (a hash) and ``ragship:job:<id>:payload``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ragship.errors import ConfigError
from ragship.settings import QueueSettings

if TYPE_CHECKING:
    import redis
    from dramatiq import Broker

#: The one actor: ``index_job(job_id)``.
ACTOR_NAME = "index_job"


class BrokerKind(StrEnum):
    """Which broker carries the messages."""

    REDIS = "redis"
    RABBITMQ = "rabbitmq"


#: URL scheme -> broker; the one list of the schemes ``RAGSHIP_QUEUE__URL`` accepts.
SCHEMES: dict[str, BrokerKind] = {
    "redis": BrokerKind.REDIS,
    "rediss": BrokerKind.REDIS,
    "amqp": BrokerKind.RABBITMQ,
    "amqps": BrokerKind.RABBITMQ,
}


def broker_kind(settings: QueueSettings) -> BrokerKind:
    """The broker that ``settings.url`` names, by its scheme.

    :raises ConfigError: for any other scheme.
    """
    scheme = urlsplit(settings.url).scheme.lower()
    if scheme not in SCHEMES:
        accepted = ", ".join(f"{s}://" for s in SCHEMES)
        raise ConfigError(
            f"RAGSHIP_QUEUE__URL has the scheme {scheme + '://' if scheme else '(none)'}, which names no broker; "
            f"use one of {accepted} (e.g. redis://127.0.0.1:6379/0 or amqp://guest:guest@127.0.0.1:5672/%2F)."
        )
    return SCHEMES[scheme]


def state_url(settings: QueueSettings) -> str:
    """The Redis URL of job state and uploaded documents: ``state_url``, or the broker URL when that is Redis.

    :raises ConfigError: when the broker is RabbitMQ and no state URL is set, or the state URL is not Redis.
    """
    if settings.state_url is None:
        if broker_kind(settings) != BrokerKind.REDIS:
            raise ConfigError(
                "RAGSHIP_QUEUE__URL points at RabbitMQ, which carries the job messages only; job state and uploaded "
                "documents live in Redis. Set RAGSHIP_QUEUE__STATE_URL to a Redis URL (e.g. redis://127.0.0.1:6379/0)."
            )
        return settings.url
    if SCHEMES.get(urlsplit(settings.state_url).scheme.lower()) != BrokerKind.REDIS:
        raise ConfigError(
            "RAGSHIP_QUEUE__STATE_URL must be a Redis URL (redis:// or rediss://), e.g. redis://127.0.0.1:6379/0."
        )
    return settings.state_url


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


def redis_client(settings: QueueSettings, url: str | None = None) -> redis.Redis:
    """A Redis client with bounded timeouts (it connects on first use, not here).

    :param url: The Redis to reach; the job state's (:func:`state_url`) when None.
    """
    import redis

    options: dict[str, Any] = {
        "socket_connect_timeout": settings.timeout_s,
        "socket_timeout": settings.timeout_s,
        "health_check_interval": 30,
    }
    if settings.password is not None:
        options["password"] = settings.password.get_secret_value()
    return redis.Redis.from_url(url or state_url(settings), **options)


def open_broker(
    settings: QueueSettings, middleware: list[Any] | None = None, client: redis.Redis | None = None
) -> Broker:
    """The Dramatiq broker that ``settings.url`` names: acks late, bounded retries with exponential backoff,
    a time limit per job.

    :param middleware: Extra middleware, placed so that it sees a failed job's fate (retry or dead letter)
        decided by ``Retries``.
    :param client: The job state's Redis client, reused by a Redis broker on the same URL (one connection pool).
    """
    from dramatiq.middleware import CurrentMessage, Retries, TimeLimit

    stack = [
        TimeLimit(time_limit=int(settings.time_limit_s * 1000)),
        CurrentMessage(),
        # after_* hooks run last-to-first: what comes before Retries sees message.failed already set.
        *(middleware or []),
        Retries(
            max_retries=settings.max_retries,
            min_backoff=settings.min_backoff_ms,
            max_backoff=settings.max_backoff_ms,
        ),
    ]
    if broker_kind(settings) == BrokerKind.RABBITMQ:
        from ragship.queue.rabbitmq import QuorumRabbitmqBroker

        return QuorumRabbitmqBroker(
            url=settings.url,
            middleware=stack,
            dead_letter_ttl_ms=settings.dead_letter_ttl_s * 1000,
            delivery_limit=settings.delivery_limit,
        )
    from dramatiq.brokers.redis import RedisBroker

    shared = client is not None and settings.state_url in (None, settings.url)
    return RedisBroker(
        client=client if shared else redis_client(settings, settings.url),
        namespace=settings.namespace,
        heartbeat_timeout=settings.heartbeat_timeout_ms,
        dead_message_ttl=settings.dead_letter_ttl_s * 1000,
        maintenance_chance=settings.maintenance_chance,
        middleware=stack,
    )
