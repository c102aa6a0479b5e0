"""Which spec a command or a service uses: a path, a registered model, the settings' spec or the built-in default.

Apart from :mod:`ragship.assembly` so that it loads no pipeline code: BentoML's supervisor resolves the served
spec to decide which services to start (:mod:`ragship.serving.topology`), and must not import Haystack for it.
"""

from __future__ import annotations

from pathlib import Path

from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, load_spec, spec_from_settings


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
