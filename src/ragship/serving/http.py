"""HTTP edges of the services: API-key auth, body size limit, and errors as honest status codes.

Errors reach the caller here and nowhere else: a :class:`~ragship.errors.RagshipError` answers with
its own ``http_status`` and message; anything else is a bug, logged with its traceback under a
request id, and the caller gets a bare 500 that names only that id.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import parse_qsl

from pydantic import TypeAdapter
from starlette.responses import JSONResponse, Response

from ragship.errors import RagshipError
from ragship.serving.openai_schema import error_body

logger = logging.getLogger("ragship.serving")

P = ParamSpec("P")
R = TypeVar("R")
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

# Probes, metrics and the page itself stay open so orchestrators and browsers can reach them.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/ui/config.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/ui/static/",)
# Routes that speak OpenAI's protocol: the guard's refusals there use OpenAI's error body.
OPENAI_PREFIX = "/v1/"


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body every ragship endpoint uses: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def request_id() -> str:
    """BentoML's id of the request being served (its X-BentoML-Request-ID header), or a fresh one."""
    try:
        # Not public API, hence the fallback; it is what the response header shows the caller.
        from bentoml._internal.context import trace_context

        rid = trace_context.request_id
    except (ImportError, AttributeError):
        rid = None
    return format(rid, "016x") if isinstance(rid, int) else uuid.uuid4().hex[:16]


def public_error(error: BaseException) -> tuple[int, str]:
    """The status and message a caller may see for ``error``; logs it as that status deserves.

    :returns: ``(status, message)``. A ragship error keeps its message (plus its class's ``fix``);
        any other exception is a bug whose text may hold internals, so the message names only the
        request id that its logged traceback carries.
    """
    if not isinstance(error, RagshipError):
        rid = request_id()
        logger.error("internal error (request id %s)", rid, exc_info=error)
        return 500, f"internal error; see the server log (request id {rid})"
    status = error.http_status
    message = f"{error} {error.fix}" if error.fix else str(error)
    if status == 503:  # an outage: expected now and then, and the message says it all
        logger.warning("%s: %s", type(error).__name__, error)
    elif status >= 500:  # the service itself is misconfigured or broken: keep the traceback
        rid = request_id()
        logger.error("%s (request id %s)", type(error).__name__, rid, exc_info=error)
        message = f"{message} (request id {rid})"
    else:
        logger.info("refused with %d: %s", status, error)
    return status, message


def response_for(error: BaseException) -> JSONResponse:
    """The JSON response for ``error`` (see :func:`public_error`), with Retry-After on outages."""
    status, message = public_error(error)
    retry = error.retry_after_s if isinstance(error, RagshipError) else None
    return error_response(status, message, {"Retry-After": str(retry)} if retry is not None else None)


def http_errors(func: Callable[P, R]) -> Callable[P, R | JSONResponse]:
    """Answer any exception a (sync) API method raises with :func:`response_for`.

    The method itself stays typed by what it returns (BentoML builds its schema from that); the
    decorated one honestly may return a JSONResponse too, which BentoML passes through untouched.
    Errors never reach BentoML's own handler: it answers 500 to anything but its own exceptions,
    which cannot carry ragship's status, ``{"error": ...}`` body or Retry-After header.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | JSONResponse:
        try:
            return func(*args, **kwargs)
        except Exception as e:
            return response_for(e)

    return wrapper


def with_status(status: int) -> Callable[[Callable[P, R]], Callable[P, R | Response]]:
    """Answer a (sync) API method's result with ``status`` (e.g. 202 Accepted) instead of 200.

    A Response the method returns (an error from :func:`http_errors`) passes through with its own status.
    """

    def decorate(func: Callable[P, R]) -> Callable[P, R | Response]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | Response:
            result = func(*args, **kwargs)
            if isinstance(result, Response):
                return result
            return JSONResponse(TypeAdapter(type(result)).dump_python(result, mode="json"), status_code=status)

        return wrapper

    return decorate


class GetAsPost:
    """ASGI middleware: ``GET path?a=1`` reaches the API method at ``path`` as ``POST {"a": "1"}``.

    BentoML routes its API methods for POST only; a read such as ``GET /index/status?job_id=...`` stays
    a GET for callers (and caches) while the method, its typed input and its errors are the same as any.
    """

    def __init__(self, app: ASGIApp, paths: Iterable[str] = ()) -> None:
        self.app = app
        self.paths = frozenset(paths)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        body = json.dumps(query).encode()
        headers = [(k, v) for k, v in scope.get("headers", []) if k not in (b"content-type", b"content-length")]
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app({**scope, "method": "POST", "headers": headers}, replay, send)


class RequestGuard:
    """ASGI middleware: require the API key (when configured) and cap request bodies.

    :param api_key: Expected key; None disables auth.
    :param header: Header carrying the key; ``Authorization: Bearer <key>`` is accepted too (OpenAI and MCP
        clients send that).
    :param max_bytes: Largest accepted body; larger ones get 413 whether announced or streamed.
    :param public_paths: Paths reachable without a key.
    """

    def __init__(
        self,
        app: ASGIApp,
        api_key: str | None = None,
        header: str = "x-api-key",
        max_bytes: int = 10 * 1024 * 1024,
        public_paths: Iterable[str] = PUBLIC_PATHS,
    ) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.header = header.lower().encode("latin-1")
        self.max_bytes = max_bytes
        self.public_paths = frozenset(public_paths)

    def _public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(PUBLIC_PREFIXES)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and not self._public(scope["path"]):
            given = headers.get(self.header, b"") or _bearer(headers.get(b"authorization", b""))
            if not hmac.compare_digest(given, self.api_key):
                problem = "is missing" if not given else "is wrong"
                message = (
                    f"The API key {problem}: send it in the {self.header.decode()} header "
                    "or as Authorization: Bearer <key>."
                )
                await self._refuse(scope, 401, message)(scope, receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, 413, self._too_large(int(declared)))(scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    @staticmethod
    def _refuse(scope: dict[str, Any], status: int, message: str) -> JSONResponse:
        """The refusal in the body the route's clients read (:func:`refusal`)."""
        return refusal(scope, status, message)

    def _too_large(self, size: int | None) -> str:
        got = f" ({size:,} bytes)" if size is not None else ""
        return (
            f"The request body{got} is over the {self.max_bytes:,}-byte limit; send less per request "
            "(or raise RAGSHIP_SERVING__MAX_REQUEST_BYTES)."
        )

    async def _guarded(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Count streamed (chunked) bodies too; past the limit the app sees a disconnect and the caller a 413."""
        received = 0
        exceeded = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, exceeded
            message: dict[str, Any] = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            if exceeded:
                if not started:
                    started = True
                    await self._refuse(scope, 413, self._too_large(None))(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            # The app may raise on the disconnect it was shown; the caller still gets the 413.
            if not exceeded:
                raise
            if not started:
                started = True
                await self._refuse(scope, 413, self._too_large(None))(scope, receive, send)


def refusal(scope: dict[str, Any], status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """A guard's refusal in the body the route's clients read: OpenAI's under /v1, ragship's elsewhere."""
    if scope["path"].startswith(OPENAI_PREFIX):
        return JSONResponse(error_body(status, message), status_code=status, headers=headers)
    return error_response(status, message, headers)


def _bearer(authorization: bytes) -> bytes:
    """The token of an ``Authorization: Bearer <token>`` header (b'' for any other scheme)."""
    scheme, _, token = authorization.partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" else b""


def is_public(path: str) -> bool:
    """Whether ``path`` is reachable without credentials (probes, metrics, the page's files)."""
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
