"""ASGI middleware: resolve each request's principal once, check its scope and limits, and set its access scope.

Every route behind it reads the caller from context (``ragship.access``): the query engine takes the
access scope set here into every store search, and fails closed in a served process where none was set.
Refusals answer 401 (no or bad credentials), 403 (scope) or 429 (rate, with Retry-After); each is counted
on ``/metrics`` by reason and logged as one JSON line that holds no key or token (``refusals``).
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from ragship.access.authenticate import Authenticator
from ragship.access.limits import PrincipalLimits
from ragship.access.principal import Principal, set_current_principal
from ragship.access.scope import require_request_scope, set_current
from ragship.enums import AccessDefault, Scope
from ragship.errors import AuthenticationError, PermissionDeniedError, RagshipError, RateLimitedError
from ragship.serving.http import RequestGuard, is_public, refusal, response_for
from ragship.serving.refusals import record_refusal
from ragship.settings import Settings

ASGIApp = Any

# The scope each route needs; a path not listed needs admin, so a new route is closed until it is listed.
ROUTE_SCOPES: dict[str, Scope] = {
    "/ask": Scope.QUERY,
    "/ask_stream": Scope.QUERY,
    "/retrieve": Scope.QUERY,
    "/feedback": Scope.FEEDBACK,
    "/index/submit": Scope.INDEX,
    "/index/status": Scope.INDEX,
    "/docs": Scope.QUERY,
    "/docs.json": Scope.QUERY,
}
PREFIX_SCOPES: tuple[tuple[str, Scope], ...] = (("/v1/", Scope.QUERY), ("/mcp", Scope.QUERY))


class _RefusedError(Exception):
    """A refusal on its way out of the worker thread, with the principal's name when it is known."""

    def __init__(self, error: RagshipError, principal: str | None) -> None:
        super().__init__(str(error))
        self.error = error
        self.principal = principal


def scope_for(path: str) -> Scope:
    """The scope ``path`` needs (admin for any path not listed)."""
    if path in ROUTE_SCOPES:
        return ROUTE_SCOPES[path]
    for prefix, scope in PREFIX_SCOPES:
        if path.startswith(prefix):
            return scope
    return Scope.ADMIN


class AccessGuard:
    """Resolve the principal, check scope and limits, then run the app with the principal's access scope.

    :param settings: Serving (keys, limits), auth (OIDC) and access (default) settings.
    :param public: Whether a path is reachable without credentials (probes, the page's files).
    """

    def __init__(self, app: ASGIApp, settings: Settings, public: Any) -> None:
        self.app = app
        self.authenticator = Authenticator(settings)
        self.limits: Any = PrincipalLimits(
            settings.serving.rate_per_minute, settings.serving.max_concurrent_per_principal
        )
        if settings.serving.shared_limits:
            from ragship.serving.shared_limits import shared_limits

            self.limits = shared_limits(settings)
        self.default: AccessDefault = settings.access.default
        self.public = public
        require_request_scope()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.public(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            if self.authenticator.enabled:
                # In a worker thread: a key's first scrypt, a JWKS fetch or a shared-limits call must not
                # stall the event loop that every other request shares.
                principal, held = await anyio.to_thread.run_sync(self._admit, headers, scope["path"])
            else:  # open: everyone is the open admin, nothing to look up or wait for, so no thread hop
                principal, held = self._admit(headers, scope["path"])
        except _RefusedError as refused:
            await self._refuse(refused.error, refused.principal, scope, receive, send)
            return
        except RagshipError as e:  # the keys file or the JWKS cannot be read: the operator's to fix
            await response_for(e)(scope, receive, send)
            return
        try:
            self._bind(scope, principal)
            await self.app(scope, receive, send)
        finally:
            if held is not None:
                await anyio.to_thread.run_sync(held.__exit__, None, None, None)

    def _admit(self, headers: dict[bytes, bytes], path: str) -> tuple[Principal, Any]:
        """The caller, checked for the route's scope, holding one request of its limits (None for admins)."""
        try:
            principal = self.authenticator.principal(headers)
        except AuthenticationError as e:
            raise _RefusedError(e, None) from e
        try:
            principal.require(scope_for(path))
            # Admins are not limited: the operator's own key (sync, evaluation, load tests) must not be
            # throttled by the limits that share capacity among everyone else (docs/security.md).
            held = self.limits.request(principal.name) if not principal.is_admin else None
            if held is not None:
                held.__enter__()
        except (PermissionDeniedError, RateLimitedError) as e:
            raise _RefusedError(e, principal.name) from e
        return principal, held

    def _bind(self, scope: dict[str, Any], principal: Principal) -> None:
        scope.setdefault("state", {})["principal"] = principal
        set_current_principal(principal)
        set_current(principal.access(self.default))

    async def _refuse(
        self, error: RagshipError, principal: str | None, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        # One JSON line per refusal: the reason, the route and who, never the credential.
        record_refusal(
            getattr(error, "reason", "refused"),
            method=str(scope.get("method")),
            route=scope["path"],
            status=error.http_status,
            principal=principal,
        )
        retry = error.retry_after_s
        headers = {"Retry-After": str(retry)} if retry is not None else None
        if isinstance(error, AuthenticationError):
            headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
        message = f"{error} {error.fix}".strip() if error.fix else str(error)
        await refusal(scope, error.http_status, message, headers)(scope, receive, send)


def guard(service: Any, settings: Settings) -> None:
    """Put the guards in front of ``service``: principals, scopes, limits and the access scope of every search
    (:class:`AccessGuard`), and body limits (:class:`~ragship.serving.http.RequestGuard`)."""
    serving = settings.serving
    service.add_asgi_middleware(AccessGuard, settings=settings, public=is_public)
    service.add_asgi_middleware(
        RequestGuard, api_key=None, header=serving.api_key_header, max_bytes=serving.max_request_bytes
    )
