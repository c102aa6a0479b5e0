"""What a queue reader reports, whatever the broker: the queue's figures and its dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class QueueCounts:
    """Messages in the queue, as the broker counts them.

    ``in_flight`` is None where the broker does not tell (RabbitMQ reports only ready messages over AMQP).
    """

    waiting: int
    delayed: int
    in_flight: int | None
    dead_lettered: int


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


def last_line(traceback: object) -> str:
    """The exception line of a traceback Dramatiq kept in a message's options ("unknown" when none)."""
    return (str(traceback or "").strip().splitlines()[-1:] or ["unknown"])[0]
