"""Bearer JWTs from an OIDC provider: signature against its JWKS, then issuer, audience and expiry.

The JWKS comes from the provider's URL (PyJWT's client caches it and refetches on an unknown ``kid``, so key
rotation needs no restart) or from a file (a mounted Secret, re-read when it changes).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import jwt

from ragship.access.principal import Principal, parse_scopes
from ragship.enums import Scope
from ragship.errors import AuthenticationError, ConfigError
from ragship.settings import AuthSettings


def looks_like_jwt(token: str) -> bool:
    """Whether ``token`` has a JWT's three dot-separated parts."""
    return token.count(".") == 2


class TokenVerifier:
    """Checks bearer JWTs and turns their claims into a :class:`Principal`.

    :param settings: The ``auth`` settings (JWKS source, issuer, audience, claims).
    """

    def __init__(self, settings: AuthSettings) -> None:
        if not settings.enabled:
            raise ConfigError("OIDC tokens need RAGSHIP_AUTH__ISSUER and RAGSHIP_AUTH__JWKS_URL (or __JWKS_FILE).")
        self.settings = settings
        self._client = jwt.PyJWKClient(settings.jwks_url, cache_keys=True, lifespan=300) if settings.jwks_url else None
        self._lock = threading.Lock()
        self._file_stamp: tuple[int, int] | None = None
        self._file_keys: jwt.PyJWKSet | None = None

    def _key_from_file(self, kid: str | None) -> Any:
        path = Path(str(self.settings.jwks_file))
        with self._lock:
            try:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                if stamp != self._file_stamp:
                    self._file_keys = jwt.PyJWKSet.from_dict(json.loads(path.read_text()))
                    self._file_stamp = stamp
            except (OSError, ValueError, jwt.PyJWTError) as e:
                raise ConfigError(f"The JWKS file {path} cannot be read as a JWKS ({e}).") from e
        keys = self._file_keys.keys if self._file_keys else []
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        raise AuthenticationError("The bearer token was refused: no key of the provider matches its 'kid'.")

    def principal(self, token: str) -> Principal:
        """The principal a valid token stands for.

        :raises AuthenticationError: for a bad signature, an unknown key, a wrong issuer or audience, or an
            expired token (the reason, never the token).
        """
        s = self.settings
        try:
            if self._client is not None:
                key: Any = self._client.get_signing_key_from_jwt(token).key
            else:
                key = self._key_from_file(jwt.get_unverified_header(token).get("kid"))
            claims = jwt.decode(
                token,
                key,
                algorithms=s.algorithms,
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_s,
                options={"require": ["exp", "iss"] + (["aud"] if s.audience else [])},
            )
        except jwt.PyJWKClientConnectionError as e:
            raise ConfigError(f"The OIDC provider's JWKS cannot be fetched ({e}).") from e
        except jwt.PyJWTError as e:
            raise AuthenticationError(f"The bearer token was refused: {e}.") from e
        return Principal(
            str(claims.get(s.name_claim) or claims.get("sub") or "unnamed"),
            frozenset(_strings(claims.get(s.groups_claim))),
            self._scopes(claims.get(s.scopes_claim)),
        )

    def _scopes(self, value: Any) -> frozenset[Scope]:
        known = {scope.value for scope in Scope}
        named = [v for v in _strings(value) if v in known]
        return parse_scopes(named or self.settings.default_scopes)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.replace(",", " ").split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []
