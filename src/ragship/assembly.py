"""One-call constructors used by the CLI, notebooks and services: settings -> spec -> store -> pipeline."""

from __future__ import annotations

from pathlib import Path

from ragship.components.remote import RemoteModels
from ragship.enums import RetrievalMode
from ragship.models.resolve import embedding_dimension
from ragship.pipelines.query import QueryEngine
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, load_spec, spec_from_settings
from ragship.stores import open_store
from ragship.stores.base import RetrievalStore
from ragship.sync import Syncer


def resolve_spec(spec: PipelineSpec | str | Path | None, settings: Settings | None = None) -> PipelineSpec:
    """A spec object from an object, a path, a registered model URI, the settings' spec, or the built-in default
    (shaped by the settings' defaults, see :func:`ragship.spec.spec_from_settings`).

    ``models:/ragship@champion`` (any ``models:/`` URI) loads the spec registered in MLflow.
    """
    if isinstance(spec, PipelineSpec):
        return spec
    settings = settings or get_settings()
    path = spec or settings.spec
    if path is None:
        return spec_from_settings(settings)
    if str(path).startswith("models:/"):
        from ragship.tracking.registry import load_registered_spec

        return load_registered_spec(str(path), settings)
    return load_spec(path)


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
    resolved = resolve_spec(spec, settings)
    return QueryEngine(resolved, store_for(resolved, store, settings), mode=mode, remote=remote)


def served_spec(settings: Settings | None = None) -> tuple[PipelineSpec, str]:
    """The spec the services serve, and where it came from.

    ``serving.spec`` when set; else the registered champion when there is one; else the top-level
    ``spec`` setting or the built-in default (so a fresh checkout serves before anything is promoted).
    """
    settings = settings or get_settings()
    if settings.serving.spec:
        return resolve_spec(settings.serving.spec, settings), settings.serving.spec
    if settings.spec is None and _has_tracking_store(settings):
        from ragship.tracking.registry import champion

        current = champion(settings)
        if current is not None:
            return resolve_spec(
                current["model_uri"], settings
            ), f"{current['model_uri']} (version {current['version']})"
    return resolve_spec(None, settings), str(settings.spec or "built-in default spec")


def _has_tracking_store(settings: Settings) -> bool:
    # A sqlite store that does not exist yet holds no champion; creating it here would race with
    # the other services starting at the same time (MLflow migrates the schema on first open).
    uri = settings.tracking_uri
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()
