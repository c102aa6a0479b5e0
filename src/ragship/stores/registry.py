"""Which document store a location names: one table from URL scheme to backend module.

A backend is a module under ``ragship.stores`` with a function
``open_location(location, *, embedding_dim, settings) -> RetrievalStore``. Adding one is that module plus
one line in :data:`BACKENDS`. Modules are named, not imported, here: the registry imports no backend, so
no backend's dependencies load until a location needs them and no backend can import back into a circle.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit, urlunsplit

from ragship.errors import ConfigError
from ragship.settings import Settings, get_settings
from ragship.stores.base import RetrievalStore

# URL scheme -> backend module. "" is a plain directory path.
BACKENDS: dict[str, str] = {
    "": "ragship.stores.embedded",
    "file": "ragship.stores.embedded",
    "http": "ragship.stores.elasticsearch",
    "https": "ragship.stores.elasticsearch",
}


def scheme_of(location: str) -> str:
    """The URL scheme of a store location ("" for a plain path).

    :raises ConfigError: for a scheme no backend handles, naming the ones that exist.
    """
    scheme = urlsplit(location).scheme.lower()
    if scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in sorted(BACKENDS) if s)
        raise ConfigError(
            f"Store {redact_url(location)!r}: no backend for '{scheme}://'. Give a directory (embedded store) "
            f"or one of {known}; for a directory whose name has a colon, write it as ./NAME or file://PATH."
        )
    return scheme


def redact_url(location: str) -> str:
    """A location safe for logs, messages and MLflow: a URL loses credentials, query and fragment.

    A comma-separated list of node URLs (an Elasticsearch cluster) is redacted URL by URL.
    """
    if "," in location and "://" in location:
        return ",".join(redact_url(part) for part in location.split(","))
    parts = urlsplit(location)
    if not parts.netloc:
        return location
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_store(
    location: str | None = None, *, embedding_dim: int | None = None, settings: Settings | None = None
) -> RetrievalStore:
    """Open the store at ``location`` (a directory, ``file://`` path or ``http(s)://`` Elasticsearch URL).

    :param location: Where the store is; the ``store`` setting when None.
    :param embedding_dim: Vector size the spec's model produces; checked against the store.
    :param settings: Settings to read defaults and credentials from.
    :raises ConfigError: when no backend handles the location's scheme.
    """
    settings = settings or get_settings()
    location = location or settings.store_location
    backend = importlib.import_module(BACKENDS[scheme_of(location)])
    store: RetrievalStore = backend.open_location(location, embedding_dim=embedding_dim, settings=settings)
    return store
