"""The one place that reads the queue's figures from the broker: backpressure, ``ragship queue status``,
the API's gauges and the dead-letter listing all go through :func:`open_reader`.

* Redis: the lengths of Dramatiq's keys (the list ``NAMESPACE:NAME`` is what KEDA's redis scaler reads).
* RabbitMQ: message counts of the queues by passive declare (``NAME`` is what KEDA's rabbitmq scaler reads);
  see :mod:`ragship.queue.rabbitmq`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from ragship.queue.broker import BrokerKind, Keys, broker_kind, redis_client
from ragship.queue.counts import DeadLetter, QueueCounts, last_line
from ragship.settings import QueueSettings

if TYPE_CHECKING:
    import redis


class QueueReader(Protocol):
    """Reads one queue's figures from its broker."""

    def waiting(self) -> int:
        """Messages waiting for a worker (what KEDA scales on)."""
        ...

    def counts(self) -> QueueCounts:
        """Waiting, delayed (retries in backoff), held by workers, dead-lettered."""
        ...

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters; ``reason`` is what the message itself says (the job state may say more)."""
        ...

    def oldest_waiting_since(self) -> float | None:
        """When the job next in line was enqueued (epoch seconds); None: none waiting (or the broker cannot tell)."""
        ...


class RedisQueueReader:
    """The figures of Dramatiq's Redis layout.

    :param client: A client of the broker's Redis.
    :param keys: The queue's key layout.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        # Any: redis-py annotates results as "sync or awaitable"; this client is the sync one.
        self.client: Any = client
        self.keys = keys

    def waiting(self) -> int:
        return int(self.client.llen(self.keys.waiting))

    def counts(self) -> QueueCounts:
        pipe = self.client.pipeline(transaction=False)
        pipe.llen(self.keys.waiting)
        pipe.hlen(self.keys.delayed_messages)
        pipe.hlen(self.keys.messages)
        pipe.zcard(self.keys.dead)
        waiting, delayed, bodies, dead = (int(x) for x in pipe.execute())
        # .msgs holds the bodies of waiting and held messages alike.
        return QueueCounts(waiting=waiting, delayed=delayed, in_flight=max(bodies - waiting, 0), dead_lettered=dead)

    def oldest_waiting_since(self) -> float | None:
        """The enqueue time of the list's head: workers take from the head, so it has waited longest."""
        from dramatiq import Message

        message_id = self.client.lindex(self.keys.waiting, 0)
        body = self.client.hget(self.keys.messages, message_id) if message_id is not None else None
        return Message.decode(body).message_timestamp / 1000 if body is not None else None

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest ``limit`` dead letters."""
        from dramatiq import Message

        letters = []
        for message_id, score in self.client.zrevrange(self.keys.dead, 0, limit - 1, withscores=True):
            body = self.client.hget(self.keys.dead_messages, message_id)
            if body is None:
                continue
            message = Message.decode(body)
            letters.append(
                DeadLetter(
                    job_id=str(message.args[0]) if message.args else "?",
                    message_id=message_id.decode(),
                    dead_since=score / 1000,
                    retries=int(message.options.get("retries", 0)),
                    reason=last_line(message.options.get("traceback")),
                )
            )
        return letters


def open_reader(settings: QueueSettings, client: redis.Redis | None = None) -> QueueReader:
    """The reader of the configured broker.

    :param client: The job state's Redis client, reused when the Redis broker lives on the same URL.
    """
    if broker_kind(settings) == BrokerKind.RABBITMQ:
        from ragship.queue.rabbitmq import RabbitmqQueueReader

        return RabbitmqQueueReader(settings.url, settings.name, settings.timeout_s)

    shared = client is not None and settings.state_url in (None, settings.url)
    return RedisQueueReader(
        client if shared and client is not None else redis_client(settings, settings.url), Keys.of(settings)
    )
