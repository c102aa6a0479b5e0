"""The worker's side of a job's trace: the job runs in a span continuing its submitter's trace
(observability.tracing puts the submitter's context in the message's options)."""

from __future__ import annotations

import threading
from typing import Any

from dramatiq.middleware import Middleware
from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from ragship.observability.tracing import job_parent, tracer, tracing_enabled


class JobTrace(Middleware):
    """Opens a consumer span around each job, a child of the span that submitted it."""

    def __init__(self) -> None:
        self._local = threading.local()  # a worker thread runs one message at a time

    def before_process_message(self, broker: Any, message: Any) -> None:
        parent = job_parent(message.options)
        span = tracer().start_span(
            f"job {message.actor_name}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes={"ragship.job_id": str(message.args[0]) if message.args else ""},
        )
        self._local.open = (span, context.attach(trace.set_span_in_context(span, parent)))

    def after_process_message(
        self, broker: Any, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        opened = getattr(self._local, "open", None)
        if opened is None:
            return
        span, token = opened
        self._local.open = None
        if exception is not None:
            span.set_status(Status(StatusCode.ERROR, type(exception).__name__))
        span.end()
        context.detach(token)

    after_skip_message = after_process_message


def job_middleware() -> list[Middleware]:
    """The trace middleware when this process exports spans, else none."""
    return [JobTrace()] if tracing_enabled() else []
