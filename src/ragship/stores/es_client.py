"""The Elasticsearch client of a store: creation, auth, TLS, and errors turned into ragship's.

Nothing here knows about indices or documents; :mod:`ragship.stores.elasticsearch` builds on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from elastic_transport import TlsError
from elasticsearch import AuthenticationException, AuthorizationException, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout

from ragship.errors import StoreUnavailableError

# Failures where the request may succeed on a retry (the server is down, restarting or slow).
TRANSIENT = (ESConnectionError, ESConnectionTimeout)


def auth_options(api_key: str | None, username: str | None, password: str | None) -> dict[str, Any]:
    """Client keyword arguments for the credentials: an API key wins over basic auth; none for neither."""
    if api_key:
        return {"api_key": api_key}
    if username:
        return {"basic_auth": (username, password or "")}
    return {}


def tls_options(url: str, ca_certs: str | None, verify_certs: bool) -> dict[str, Any]:
    """Client keyword arguments for TLS (only for https URLs)."""
    return {"ca_certs": ca_certs, "verify_certs": verify_certs} if url.startswith("https") else {}


def new_client(url: str, *, request_timeout_s: float, auth: dict[str, Any], tls: dict[str, Any]) -> Elasticsearch:
    """A client that retries timeouts and 502/503/504 answers (twice) before giving up."""
    return Elasticsearch(
        url,
        request_timeout=request_timeout_s,
        max_retries=2,
        retry_on_timeout=True,
        retry_on_status=(502, 503, 504),
        **auth,
        **tls,
    )


@contextmanager
def translated_errors(where: str, alias: str) -> Iterator[None]:
    """Turn connection, TLS and auth failures of client calls into one actionable :class:`StoreUnavailableError`.

    :param where: The cluster's URL, already redacted.
    :param alias: The store's alias, named in the privileges hint of a 403.
    """
    try:
        yield
    except AuthenticationException as e:
        raise StoreUnavailableError(
            f"Elasticsearch at {where} rejected the credentials (HTTP 401); check RAGSHIP_ES__API_KEY "
            "or RAGSHIP_ES__USERNAME / RAGSHIP_ES__PASSWORD."
        ) from e
    except AuthorizationException as e:
        raise StoreUnavailableError(
            f"Elasticsearch at {where} refused the request (HTTP 403): the user or API key lacks privileges "
            f"on '{alias}*' (needs read, write, create_index, manage)."
        ) from e
    except TlsError as e:
        raise StoreUnavailableError(
            f"TLS to Elasticsearch at {where} failed ({e.message}); set RAGSHIP_ES__CA_CERTS to the "
            "cluster's CA bundle."
        ) from e
    except TRANSIENT as e:
        raise StoreUnavailableError(
            f"Cannot reach Elasticsearch at {where} ({type(e).__name__}); check that it runs "
            "(`ragship es start` for a local node) and that --store / RAGSHIP_ES__URL is right."
        ) from e
