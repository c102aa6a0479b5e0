"""Document store factory: the only place that decides which store is in use."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ragship.settings import Settings, get_settings
from ragship.stores.base import RetrievalStore
from ragship.stores.embedded import EmbeddedDocumentStore

__all__ = ["EmbeddedDocumentStore", "RetrievalStore", "is_remote", "open_store", "redact_url"]


def is_remote(location: str) -> bool:
    """Whether a store location names an Elasticsearch URL rather than a directory."""
    return location.startswith(("http://", "https://"))


def redact_url(url: str) -> str:
    """A URL without credentials, query or fragment, safe for logs, messages and MLflow."""
    if not is_remote(url):
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def open_store(
    location: str | None = None, *, embedding_dim: int | None = None, settings: Settings | None = None
) -> RetrievalStore:
    """Open the store at ``location`` (directory or http(s) URL); settings decide when None.

    :param location: A directory for the embedded store, or an Elasticsearch URL.
    :param embedding_dim: Vector size the spec's model produces; checked against the store.
    :param settings: Settings to read defaults and credentials from.
    """
    settings = settings or get_settings()
    location = location or settings.store_location
    if is_remote(location):
        from ragship.stores.elasticsearch import ElasticsearchStore

        return ElasticsearchStore.from_settings(settings.es, url=location, embedding_dim=embedding_dim)
    return EmbeddedDocumentStore(location, embedding_dim=embedding_dim)
