"""Resolve a request's caller from its credentials: the shared API key, a keys-file key, or an OIDC token.

Credentials arrive as ``Authorization: Bearer <key or JWT>`` or in the API key header. With nothing
configured (a development server) every caller is an admin, as before principals existed.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from ragship.access.keys import PREFIX, KeysFile
from ragship.access.principal import Principal
from ragship.access.tokens import TokenVerifier, looks_like_jwt
from ragship.errors import AuthenticationError
from ragship.settings import Settings

SHARED_KEY_PRINCIPAL = "api-key"
OPEN_PRINCIPAL = "anonymous (no auth configured)"


class Authenticator:
    """Turns request headers into a :class:`Principal`.

    :param settings: ``serving`` (shared key, header, keys file) and ``auth`` (OIDC) settings.
    """

    def __init__(self, settings: Settings) -> None:
        serving = settings.serving
        self.header = serving.api_key_header.lower().encode("latin-1")
        self.shared_key = serving.api_key.get_secret_value().encode() if serving.api_key else None
        self.keys = KeysFile(serving.keys_file, serving.keys_reload_ms) if serving.keys_file else None
        self.tokens = TokenVerifier(settings.auth) if settings.auth.enabled else None

    @property
    def enabled(self) -> bool:
        """Whether any credential is required at all."""
        return bool(self.shared_key or self.keys or self.tokens)

    def credential(self, headers: Mapping[bytes, bytes]) -> str:
        """The key or token the request carries ("" when none)."""
        auth = headers.get(b"authorization", b"").decode("latin-1").strip()
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return headers.get(self.header, b"").decode("latin-1").strip()

    def principal(self, headers: Mapping[bytes, bytes]) -> Principal:
        """The caller.

        :raises AuthenticationError: ``no_credentials`` when none came, ``bad_credentials`` when they fail.
        """
        if not self.enabled:
            return Principal.admin(OPEN_PRINCIPAL)
        given = self.credential(headers)
        if not given:
            raise AuthenticationError(
                f"No credentials: send an API key or token as 'Authorization: Bearer ...' "
                f"(or in the {self.header.decode()} header).",
                reason="no_credentials",
            )
        if self.shared_key is not None and hmac.compare_digest(given.encode(), self.shared_key):
            return Principal.admin(SHARED_KEY_PRINCIPAL)
        if self.keys is not None and given.startswith(PREFIX):
            return self.keys.principal(given)
        if self.tokens is not None and looks_like_jwt(given):
            return self.tokens.principal(given)
        raise AuthenticationError(
            f"The API key or token is wrong: send a valid one as Authorization: Bearer ... or in the "
            f"{self.header.decode()} header."
        )
