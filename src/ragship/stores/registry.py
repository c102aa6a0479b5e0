"""Which document store a location names: one entry per backend, with the URL schemes it answers.

A backend is a module under ``ragship.stores`` with a function
``open_location(location, *, embedding_dim, settings) -> RetrievalStore``. Adding one is that module plus
one :class:`Backend` in :data:`BACKENDS`. Modules are named, not imported, here: the registry imports no
backend, so no backend's dependencies load until a location needs them and no backend can import back into
a circle.

Several backends can speak HTTP: a plain ``http(s)://`` URL goes to the backend that declares those schemes
(Elasticsearch), and a prefix names the backend outright, ``<backend>+<scheme>://``
(``elasticsearch+https://es.internal:9200``); the backend receives the URL without its prefix.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ragship.errors import ConfigError
from ragship.settings import Settings, get_settings, redacted_url

if TYPE_CHECKING:  # the registry stays light: a no-change sync asks it for the backend without loading Haystack
    from ragship.stores.base import RetrievalStore


@dataclass(frozen=True)
class Backend:
    """A store backend: its name (the URL prefix that picks it), its module, the schemes it answers unprefixed."""

    name: str
    module: str
    schemes: tuple[str, ...] = ()


# "" is a plain directory path. A scheme belongs to one backend at most; any backend is reachable by its prefix.
BACKENDS: tuple[Backend, ...] = (
    Backend("embedded", "ragship.stores.embedded", ("", "file")),
    Backend("elasticsearch", "ragship.stores.elasticsearch", ("http", "https")),
)


def backend_for(location: str) -> tuple[Backend, str]:
    """The backend a location names, and the location as that backend reads it (without a backend prefix).

    :raises ConfigError: for a scheme or prefix no backend handles, naming the ones that exist.
    """
    scheme = urlsplit(location).scheme.lower()
    name, plus, _ = scheme.partition("+")
    for backend in BACKENDS:
        if plus and backend.name == name:
            return backend, location[len(name) + 1 :]
        if not plus and scheme in backend.schemes:
            return backend, location
    known = ", ".join(f"{s}://" for b in BACKENDS for s in b.schemes if s)
    prefixes = ", ".join(f"{b.name}+" for b in BACKENDS)
    raise ConfigError(
        f"Store {redacted_url(location)!r}: no backend for '{scheme}://'. Give a directory (embedded store) "
        f"or one of {known}, or name the backend with a prefix ({prefixes}, e.g. elasticsearch+https://HOST); "
        "for a directory whose name has a colon, write it as ./NAME or file://PATH."
    )


def open_store(
    location: str | None = None, *, embedding_dim: int | None = None, settings: Settings | None = None
) -> RetrievalStore:
    """Open the store at ``location``: a directory, a ``file://`` path, an ``http(s)://`` Elasticsearch URL,
    or any backend's URL with its prefix (``<backend>+https://...``).

    :param location: Where the store is; the ``store`` setting when None.
    :param embedding_dim: Vector size the spec's model produces; checked against the store.
    :param settings: Settings to read defaults and credentials from.
    :raises ConfigError: when no backend handles the location's scheme.
    """
    settings = settings or get_settings()
    backend, location = backend_for(location or settings.store_location)
    module = importlib.import_module(backend.module)
    store: RetrievalStore = module.open_location(location, embedding_dim=embedding_dim, settings=settings)
    return store
