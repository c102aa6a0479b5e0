"""RabbitMQ as the broker: Dramatiq's ``RabbitmqBroker`` on quorum queues, and the reader of their figures.

Quorum queues are durable and replicated (Raft) across a RabbitMQ cluster, so losing a node loses no
job. Dramatiq declares three queues per queue name, all quorum here:

* ``indexing``: waiting jobs (what KEDA's rabbitmq scaler reads, ``queueLength``); a message a worker
  rejects for good is dead-lettered to ``indexing.XQ`` (``x-dead-letter-routing-key``), and one delivered
  ``x-delivery-limit`` times without an acknowledgement (its workers keep dying) goes there too;
* ``indexing.DQ``: retries waiting out their backoff (held by workers until due, then sent to ``indexing``);
* ``indexing.XQ``: the dead letters, kept ``dead_letter_ttl_s`` (``x-message-ttl``).

Delivery is at least once without heartbeats of our own: a message is acknowledged after its job ran,
and RabbitMQ requeues a consumer's unacknowledged messages as soon as its connection closes (a killed
worker's socket closes with it). Job state and uploads are not here: they stay in Redis.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.common import dq_name, xq_name

from ragship.queue.counts import DeadLetter, QueueCounts, last_line

T = TypeVar("T")


class QuorumRabbitmqBroker(RabbitmqBroker):
    """Dramatiq's RabbitMQ broker with quorum queues, publisher confirms and our dead-letter TTL.

    Dramatiq builds a queue's arguments in ``_build_queue_arguments`` (used for the queue and its delay
    queue) and declares the dead-letter queue in ``_declare_xq_queue``; both are overridden here, the
    one place its queue arguments can be changed. Quorum queues refuse ``x-max-priority``, so no
    ``max_priority`` is ever passed.

    :param url: ``amqp://`` or ``amqps://`` URL (credentials and vhost in it).
    :param middleware: The broker's middleware (see ``ragship.queue.broker.open_broker``).
    :param dead_letter_ttl_ms: How long dead letters are kept.
    :param delivery_limit: Deliveries without acknowledgement before RabbitMQ dead-letters a message.
    """

    def __init__(self, *, url: str, middleware: list[Any], dead_letter_ttl_ms: int, delivery_limit: int) -> None:
        # Publisher confirms: a submission is answered "queued" only once RabbitMQ has the message.
        super().__init__(url=url, middleware=middleware, confirm_delivery=True)
        self.dead_letter_ttl_ms = dead_letter_ttl_ms
        self.delivery_limit = delivery_limit

    def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)
        arguments["x-queue-type"] = "quorum"
        arguments["x-delivery-limit"] = self.delivery_limit
        return arguments

    def _declare_xq_queue(self, queue_name: str) -> Any:
        arguments = {"x-queue-type": "quorum", "x-message-ttl": self.dead_letter_ttl_ms}
        return self.channel.queue_declare(queue=xq_name(queue_name), durable=True, arguments=arguments)


class RabbitmqQueueReader:
    """Message counts of a queue by passive declare (nothing is created), and a look at its dead letters.

    One connection per thread, opened on first use and again after it failed.

    :param url: The broker URL.
    :param queue: The queue name (``indexing``).
    :param timeout_s: Connect and read timeout.
    """

    def __init__(self, url: str, queue: str, timeout_s: float) -> None:
        self.url = url
        self.queue = queue
        self.timeout_s = timeout_s
        self._local = threading.local()

    def waiting(self) -> int:
        return self._call(lambda: self._count(self.queue))

    def counts(self) -> QueueCounts:
        def read() -> QueueCounts:
            return QueueCounts(
                waiting=self._count(self.queue),
                delayed=self._count(dq_name(self.queue)),
                in_flight=None,  # AMQP reports ready messages only
                dead_lettered=self._count(xq_name(self.queue)),
            )

        return self._call(read)

    def oldest_waiting_since(self) -> float | None:
        """None: AMQP cannot read a message's age without taking it off the queue."""
        return None

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters from the head of the dead-letter queue, newest first.

        RabbitMQ cannot browse a queue: the messages are fetched unacknowledged and given back when the
        channel closes, so they stay where they were.
        """

        def read() -> list[DeadLetter]:
            from dramatiq import Message

            channel = self._connection().channel()
            letters = []
            try:
                for _ in range(limit):
                    method, properties, body = channel.basic_get(xq_name(self.queue), auto_ack=False)
                    if method is None:
                        break
                    message = Message.decode(body)
                    letters.append(_dead_letter(message, properties))
            except pika.exceptions.ChannelClosedByBroker as e:
                if e.reply_code != 404:  # 404: never declared, so nothing was ever dead-lettered
                    raise
            finally:
                if channel.is_open:
                    channel.close()
            return sorted(letters, key=lambda d: d.dead_since, reverse=True)

        return self._call(read)

    def _count(self, name: str) -> int:
        channel = self._channel()
        try:
            return int(channel.queue_declare(queue=name, passive=True).method.message_count)
        except pika.exceptions.ChannelClosedByBroker as e:
            if e.reply_code == 404:  # not declared yet: nothing was ever queued
                return 0
            raise

    def _connection(self) -> pika.BlockingConnection:
        connection: pika.BlockingConnection | None = getattr(self._local, "connection", None)
        if connection is None or not connection.is_open:
            parameters = pika.URLParameters(self.url)
            parameters.socket_timeout = self.timeout_s
            parameters.stack_timeout = self.timeout_s
            parameters.blocked_connection_timeout = self.timeout_s
            parameters.connection_attempts = 1
            connection = self._local.connection = pika.BlockingConnection(parameters)
            self._local.channel = None
        return connection

    def _channel(self) -> Any:
        connection = self._connection()
        channel = getattr(self._local, "channel", None)
        if channel is None or not channel.is_open:
            channel = self._local.channel = connection.channel()
        return channel

    def _call(self, read: Callable[[], T]) -> T:
        # A connection idle for a while is closed by the server (missed heartbeats: a blocking connection only
        # answers them while in use), so a failure is retried once on a fresh connection before it counts.
        stale = (pika.exceptions.AMQPConnectionError, pika.exceptions.ConnectionWrongStateError)
        try:
            return read()
        except stale:
            self._local.connection = None
        try:
            return read()
        except stale:
            self._local.connection = None  # the next call connects afresh
            raise


def _dead_letter(message: Any, properties: pika.BasicProperties) -> DeadLetter:
    """A dead letter from a message and the ``x-death`` header RabbitMQ added when it dead-lettered it."""
    headers = properties.headers or {}
    deaths = headers.get("x-death") or [{}]
    death = deaths[0]
    when = death.get("time")
    reason = last_line(message.options.get("traceback"))
    if death.get("reason") == "delivery_limit":
        reason = (
            f"delivered {headers.get('x-delivery-count', 'too many')} times without finishing: its workers died "
            "each time (RAGSHIP_QUEUE__DELIVERY_LIMIT)"
        )
    return DeadLetter(
        job_id=str(message.args[0]) if message.args else "?",
        message_id=message.message_id,
        dead_since=when.timestamp() if when is not None else message.message_timestamp / 1000,
        retries=int(message.options.get("retries", 0)),
        reason=reason,
    )
