"""HTTP edges of the services: API-key auth, body size limit, and errors as honest status codes."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from starlette.responses import JSONResponse

from ragship.errors import (
    ConversionError,
    ModelError,
    ModelServiceUnavailableError,
    SpecError,
    StoreUnavailableError,
    TrackingError,
)
from ragship.settings import ServingSettings

logger = logging.getLogger("ragship.serving")

F = TypeVar("F", bound=Callable[..., Any])
ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]

# Probes, metrics and the page itself stay open so orchestrators and browsers can reach them.
PUBLIC_PATHS = frozenset({"/", "/healthz", "/livez", "/readyz", "/metrics", "/ui/config.json", "/favicon.ico"})
PUBLIC_PREFIXES = ("/ui/static/",)


def error_response(status: int, message: str) -> JSONResponse:
    """The JSON error body every ragship endpoint uses: ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


def _service_unavailable(what: str, error: BaseException) -> JSONResponse:
    logger.warning("%s unavailable: %s", what, error)
    return error_response(503, f"{what} is unavailable: {error}. Retry shortly; /readyz reports when it is back.")


def map_error(error: Exception) -> JSONResponse | None:
    """A response for failures a caller should see as such; None leaves the error to BentoML (500)."""
    from bentoml.exceptions import RemoteException

    if isinstance(error, StoreUnavailableError):
        return _service_unavailable("The document store", error)
    if isinstance(error, TrackingError):
        return _service_unavailable("MLflow tracking", error)
    if isinstance(error, ModelServiceUnavailableError | RemoteException | ConnectionError | TimeoutError):
        return _service_unavailable("A model service", error)
    if isinstance(error, ValueError | ConversionError):
        return error_response(400, str(error))
    if isinstance(error, ModelError | SpecError):
        logger.exception("model or spec failure")
        return error_response(500, str(error))
    return None


def http_errors(func: F) -> F:
    """Turn known failures raised by a (sync) API method into 4xx/503 JSON responses instead of a bare 500.

    BentoML passes a returned Response through untouched.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except Exception as e:
            response = map_error(e)
            if response is None:
                raise
            return response

    return wrapper  # type: ignore[return-value]


class RequestGuard:
    """ASGI middleware: require the API key (when configured) and cap request bodies.

    :param api_key: Expected key; None disables auth.
    :param header: Header carrying the key.
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
        validators: dict[str, Callable[[bytes], None]] | None = None,
    ) -> None:
        self.app = app
        self.api_key = api_key.encode() if api_key else None
        self.header = header.lower().encode("latin-1")
        self.max_bytes = max_bytes
        self.public_paths = frozenset(public_paths)
        self.validators = validators or {}

    def _public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(PUBLIC_PREFIXES)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.api_key is not None and not self._public(scope["path"]):
            given = headers.get(self.header, b"")
            if not hmac.compare_digest(given, self.api_key):
                problem = "is missing" if not given else "is wrong"
                message = f"The API key {problem}: send it in the {self.header.decode()} header."
                await error_response(401, message)(scope, receive, send)
                return
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, self._too_large(int(declared)))(scope, receive, send)
            return
        validate = self.validators.get(scope["path"])
        if validate is not None and scope["method"] == "POST":
            await self._validated(validate, scope, receive, send)
            return
        await self._guarded(scope, receive, send)

    async def _validated(
        self, validate: Callable[[bytes], None], scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        """Check a body before the app sees it: queued tasks would otherwise fail only after a 200."""
        from pydantic import ValidationError

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await error_response(413, self._too_large(None))(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        try:
            validate(body)
        except ValidationError as e:
            detail = e.errors(include_context=False, include_input=False, include_url=False)
            payload = {"error": f"{e.error_count()} validation error(s)", "detail": detail}
            await JSONResponse(payload, status_code=400)(scope, receive, send)
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

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
                    await error_response(413, self._too_large(None))(scope, receive, send)
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
                await error_response(413, self._too_large(None))(scope, receive, send)


def guard(service: Any, serving: ServingSettings) -> None:
    """Put :class:`RequestGuard` in front of ``service`` with the configured key and limits.

    Index submissions are validated before they are queued, so a bad one is a 400, not a failed task.
    """
    from ragship.serving.indexing import IndexRequest

    service.add_asgi_middleware(
        RequestGuard,
        api_key=serving.api_key.get_secret_value() if serving.api_key else None,
        header=serving.api_key_header,
        max_bytes=serving.max_request_bytes,
        validators={"/index/submit": IndexRequest.check},
    )
