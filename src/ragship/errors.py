"""Ragship's exceptions. Every message says what went wrong and how to fix it.

Each class also says how the HTTP edge (``serving/http.py``) answers it: ``http_status``, a
one-line ``fix`` for the caller (added after the message; the message's own fix is often for the
operator), and ``retry_after_s`` for outages. Anything that is not a :class:`RagshipError` is a bug
and reaches a caller only as a bare 500.
"""

from __future__ import annotations

from typing import ClassVar


class RagshipError(Exception):
    """Base class of every error ragship raises on purpose.

    Raise it with the message alone: ``raise StoreError("... ; reindex with --rebuild.")``.
    """

    #: The status the HTTP edge answers with: 4xx when the caller can fix the request, 503 when
    #: retrying helps, 500 when only the operator can fix the service.
    http_status: ClassVar[int] = 500
    #: One line on what an HTTP caller can do, added after the message ("" when the message says it).
    fix: ClassVar[str] = "The service's operator can fix this; the server log has the details."
    #: Seconds an HTTP caller should wait before retrying (the Retry-After header); None: don't retry.
    #: An instance may set its own (a full queue sends the configured wait).
    retry_after_s: int | None = None


class InvalidRequestError(RagshipError, ValueError):
    """A caller's input is unusable (an empty question, a bad parameter).

    Also a ``ValueError``, so library callers that caught ``ValueError`` for bad input still do.
    """

    http_status = 400
    fix = ""


class ConfigError(RagshipError):
    """A setting is missing or has a bad value."""


class SpecError(RagshipError):
    """A pipeline spec file is malformed or inconsistent."""


class StoreError(RagshipError):
    """The document store refused an operation (wrong dimension, bad path, ...)."""


class StoreUnavailableError(StoreError):
    """The document store cannot be reached."""

    http_status = 503
    fix = "The document store is unavailable; retry shortly (/readyz reports when it is back)."
    retry_after_s = 5


class ModelError(RagshipError):
    """A model could not be resolved or loaded."""


class ConversionError(RagshipError):
    """A file could not be turned into documents (empty, too large, unreadable, a parser failing on it).

    The converter raises it per file and records it as that file's failure, so one bad file never fails a
    sync or a job; an edge that converts one file for a caller answers 422 with the reason.
    """

    http_status = 422
    fix = "Send the file in a supported format, or as text."


class ModelServiceUnavailableError(RagshipError):
    """A service that runs a model (embedder, generator) cannot be reached or is overloaded."""

    http_status = 503
    fix = "A model service is unavailable; retry shortly (/readyz reports when it is back)."
    retry_after_s = 5


class TrackingError(RagshipError):
    """MLflow is unreachable, or a run/model is not what an operation needs.

    Served requests meet it only when MLflow fails to take feedback, hence 503.
    """

    http_status = 503
    fix = "MLflow tracking is unavailable; retry shortly."
    retry_after_s = 10


class QueueError(RagshipError):
    """The job queue could not take, find or run a job (broker down, queue full, job too large).

    The queue's own subclasses (``ragship.queue.job_state``) set the status each deserves.
    """

    http_status = 503
    fix = "The indexing queue is unavailable; retry shortly."
    retry_after_s: int | None = 5


class AuthenticationError(RagshipError):
    """No credentials, or credentials that do not check out (unknown, revoked or expired key or token).

    ``reason`` is ``no_credentials`` or ``bad_credentials``: the refusal counter's label, never a secret.
    """

    http_status = 401
    fix = "Send a valid API key or OIDC token (Authorization: Bearer ...)."

    def __init__(self, message: str, reason: str = "bad_credentials") -> None:
        super().__init__(message)
        self.reason = reason


class PermissionDeniedError(RagshipError):
    """The principal is known but lacks the scope or group the request needs."""

    http_status = 403
    fix = "Ask an administrator for the scope or group named above."
    reason = "scope"


class RateLimitedError(RagshipError):
    """The principal sent more requests than its limits allow; retry after ``retry_after_s``."""

    http_status = 429
    fix = ""
    reason = "rate"
    retry_after_s: int | None = 1

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
