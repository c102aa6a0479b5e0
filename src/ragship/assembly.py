"""One-call constructors used by the CLI, notebooks and services: settings -> spec -> store -> pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ragship.components.remote import RemoteModels
from ragship.enums import RetrievalMode
from ragship.models.resolve import embedding_dimension
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec
from ragship.spec_source import resolve_spec as resolve_spec  # re-exported: callers import it from here
from ragship.spec_source import served_spec as served_spec
from ragship.stores import open_store
from ragship.stores.base import RetrievalStore
from ragship.sync import Syncer

if TYPE_CHECKING:  # imported when built: the query pipeline's model libraries are not an indexer's business
    from ragship.pipelines.query import QueryEngine


def store_for(
    spec: PipelineSpec, location: str | RetrievalStore | None = None, settings: Settings | None = None
) -> RetrievalStore:
    """Open the store, telling it the spec's embedding dimension so mismatches fail early.

    An already open store is returned as it is, so several pipelines can share one.
    """
    if location is not None and not isinstance(location, str):
        return location
    model = spec.embedding_model
    return open_store(location, embedding_dim=embedding_dimension(model) if model else None, settings=settings)


def open_indexer(
    spec: PipelineSpec | str | Path | None = None,
    store: str | RetrievalStore | None = None,
    settings: Settings | None = None,
    remote: RemoteModels | None = None,
    batch_files: int | None = None,
) -> Syncer:
    """The one indexing path (:class:`~ragship.sync.Syncer`) for ``spec`` writing to ``store``
    (settings fill what is None). Every entry point (CLI, reindex, workers, uploads, evaluation) builds
    its syncer here, so an indexing setting added later reaches them all."""
    settings = settings or get_settings()
    resolved = resolve_spec(spec, settings)
    return Syncer(
        resolved,
        store_for(resolved, store, settings),
        batch_files=batch_files or settings.index_batch_files,
        max_file_bytes=settings.max_file_bytes,
        remote=remote,
        access_rules=settings.access.rules,
    )


def open_query_engine(
    spec: PipelineSpec | str | Path | None = None,
    store: str | RetrievalStore | None = None,
    mode: RetrievalMode | None = None,
    settings: Settings | None = None,
    remote: RemoteModels | None = None,
) -> QueryEngine:
    """A :class:`QueryEngine` for ``spec`` over ``store`` (settings fill what is None)."""
    from ragship.pipelines.query import QueryEngine

    resolved = resolve_spec(spec, settings)
    return QueryEngine(resolved, store_for(resolved, store, settings), mode=mode, remote=remote)
