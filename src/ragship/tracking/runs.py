"""Connect to MLflow, and what every run records about a spec (params, the spec file, the git commit)."""

from __future__ import annotations

import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragship.enums import SplitBy
from ragship.environment import configure_mlflow_client
from ragship.errors import TrackingError
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, Role

#: The tag that says what a run is (``qa``, ``feedback``...), so searches can pick one kind.
KIND_TAG = "ragship.kind"
#: The tag on an evaluation run that holds its logged spec model's URI (``models:/<model id>``).
MODEL_URI_TAG = "ragship.model_uri"


def git_commit(cwd: Path | None = None) -> str:
    """The current git commit of the working directory (``unknown`` outside a repository)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def init_mlflow(settings: Settings | None = None, experiment: str | None = None) -> str:
    """Point MLflow at the configured tracking store and select ``experiment``; returns the tracking URI.

    :raises TrackingError: when a configured server does not answer within the timeout.
    """
    import mlflow

    settings = settings or get_settings()
    configure_mlflow_client(settings.mlflow.request_timeout_s)
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        _check_server(uri, settings.mlflow.request_timeout_s)
    else:
        settings.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    name = experiment or settings.mlflow.experiment
    if mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=None if uri.startswith("http") else settings.artifact_root)
    mlflow.set_experiment(name)
    return uri


def _check_server(uri: str, timeout_s: int) -> None:
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
            if response.status == 200:
                return
    except (urllib.error.URLError, OSError) as e:
        raise TrackingError(
            f"MLflow server at {uri} did not answer within {timeout_s}s ({e}); start it or fix "
            "RAGSHIP_MLFLOW__TRACKING_URI (unset it to track into a local sqlite database)."
        ) from e
    raise TrackingError(f"MLflow server at {uri} is not healthy; check its logs.")


def spec_params(spec: PipelineSpec) -> dict[str, Any]:
    """Parameters that describe a spec (never secrets: the spec holds only env var names)."""
    splitter = next(iter(spec.components_of("indexing", Role.SPLITTER).values()), {})
    split = splitter.get("init_parameters", {})
    return {
        "spec_name": spec.name,
        "spec_hash": spec.hash,
        "embedding_model": spec.embedding_model or "none",
        "split_by": split.get("split_by", SplitBy.SECTION.value),
        "split_length": split.get("split_length"),
        "split_overlap": split.get("split_overlap"),
        "retrieval_mode": spec.retrieval_mode,
    }


@contextmanager
def spec_file(spec: PipelineSpec) -> Iterator[Path]:
    """The spec written to a temporary ``spec.yaml`` (for logging as an artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield spec.save(Path(tmp) / "spec.yaml")
