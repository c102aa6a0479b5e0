"""MLflow: runs, artifacts, traces, the registered spec model and the promotion gate."""

from __future__ import annotations

import subprocess
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragship.errors import RagshipError
from ragship.settings import Settings, configure_mlflow_client, get_settings
from ragship.spec import PipelineSpec

CHAMPION = "champion"


class TrackingError(RagshipError):
    """MLflow is unreachable, or a run/model is not what an operation needs."""


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
    splitter = next(iter(spec.components_of("indexing", "DocumentSplitter").values()), {})
    split = splitter.get("init_parameters", {})
    return {
        "spec_name": spec.name,
        "spec_hash": spec.hash,
        "embedding_model": spec.embedding_model or "none",
        "split_by": split.get("split_by"),
        "split_length": split.get("split_length"),
        "split_overlap": split.get("split_overlap"),
        "retrieval_mode": spec.retrieval_mode,
    }


@contextmanager
def spec_file(spec: PipelineSpec) -> Iterator[Path]:
    """The spec written to a temporary ``spec.yaml`` (for logging as an artifact)."""
    with tempfile.TemporaryDirectory() as tmp:
        yield spec.save(Path(tmp) / "spec.yaml")


def log_spec_model(spec: PipelineSpec, settings: Settings | None = None) -> str:
    """Log the spec as a pyfunc model in the active run and register it; returns the model version."""
    import mlflow

    from ragship.serving_model import RagshipModel

    settings = settings or get_settings()
    with spec_file(spec) as path:
        info = mlflow.pyfunc.log_model(
            name="ragship",
            python_model=RagshipModel(),
            artifacts={"spec": str(path)},
            registered_model_name=settings.mlflow.registered_model,
            pip_requirements=["ragship"],
        )
    return str(info.registered_model_version)


@dataclass
class PromotionDecision:
    """What `ragship promote` decided and why."""

    promoted: bool
    version: str
    reason: str
    metric: str
    value: float | None
    champion_value: float | None

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dict(self.__dict__)


def promote(
    run_id: str, force: bool = False, reason: str | None = None, settings: Settings | None = None
) -> PromotionDecision:
    """Give the run's registered model the ``champion`` alias if it is at least as good as the current one.

    Comparable only on the same dataset fingerprint. ``force`` overrides the gate and needs a reason,
    recorded as a tag on the model version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    init_mlflow(settings)
    client = MlflowClient()
    name, metric = settings.mlflow.registered_model, settings.mlflow.primary_metric
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise TrackingError(f"Run {run_id} not found in {settings.tracking_uri}.") from e
    versions = client.search_model_versions(f"run_id='{run_id}' and name='{name}'")
    if not versions:
        raise TrackingError(f"Run {run_id} registered no '{name}' model version; evaluate with `ragship eval` first.")
    version = str(versions[0].version)
    value = run.data.metrics.get(metric)
    if value is None:
        raise TrackingError(f"Run {run_id} has no metric {metric!r} (RAGSHIP_MLFLOW__PRIMARY_METRIC).")
    champion_value = None
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is not None and not force:
        champion_run = client.get_run(str(current.run_id))
        champion_value = champion_run.data.metrics.get(metric)
        ours, theirs = run.data.params.get("dataset_fingerprint"), champion_run.data.params.get("dataset_fingerprint")
        if ours != theirs:
            return PromotionDecision(
                False,
                version,
                f"not comparable: dataset fingerprint {ours} differs from the champion's {theirs}; "
                "evaluate on the champion's dataset or use --force --reason",
                metric,
                value,
                champion_value,
            )
        if champion_value is not None and value < champion_value:
            return PromotionDecision(
                False,
                version,
                f"{metric} {value:.4f} is below the champion's {champion_value:.4f} (version {current.version})",
                metric,
                value,
                champion_value,
            )
    if force:
        if not reason:
            raise TrackingError("--force needs --reason TEXT, recorded on the model version.")
        client.set_model_version_tag(name, version, "promotion_forced_reason", reason)
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "promoted_from_run", run_id)
    why = (
        "forced: " + str(reason)
        if force
        else ("no champion yet" if current is None else f"{metric} {value:.4f} >= champion's {champion_value:.4f}")
    )
    return PromotionDecision(True, version, why, metric, value, champion_value)


def best_run(settings: Settings | None = None) -> str:
    """The finished evaluation run with the highest primary metric that registered a spec model."""
    import mlflow

    settings = settings or get_settings()
    init_mlflow(settings)
    metric = settings.mlflow.primary_metric
    runs = mlflow.search_runs(
        experiment_names=[settings.mlflow.experiment],
        filter_string=f"attributes.status = 'FINISHED' and metrics.{metric} >= 0",
        order_by=[f"metrics.{metric} DESC"],
        max_results=50,
        output_format="list",
    )
    client = mlflow.MlflowClient()
    for run in runs:
        name = settings.mlflow.registered_model
        if client.search_model_versions(f"run_id='{run.info.run_id}' and name='{name}'"):
            return str(run.info.run_id)
    raise TrackingError(
        f"No finished evaluation run with metric {metric!r} in experiment '{settings.mlflow.experiment}'; "
        "run `ragship eval` (or notebook 02) first."
    )


def champion(settings: Settings | None = None) -> dict[str, Any] | None:
    """The current champion: version, run, metrics and dataset, or None."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    settings = settings or get_settings()
    init_mlflow(settings)
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(settings.mlflow.registered_model, CHAMPION)
    except MlflowException:
        return None
    run = client.get_run(str(version.run_id))
    return {
        "model_uri": f"models:/{settings.mlflow.registered_model}@{CHAMPION}",
        "version": version.version,
        "run_id": version.run_id,
        "metrics": run.data.metrics,
        "dataset": run.data.params.get("dataset"),
        "dataset_fingerprint": run.data.params.get("dataset_fingerprint"),
        "spec_hash": run.data.params.get("spec_hash"),
        "tags": version.tags,
    }


def load_champion_spec(settings: Settings | None = None) -> PipelineSpec:
    """The spec of ``models:/<name>@champion`` (what serving and reindexing run)."""
    settings = settings or get_settings()
    return load_registered_spec(f"models:/{settings.mlflow.registered_model}@{CHAMPION}", settings)


def load_registered_spec(uri: str, settings: Settings | None = None) -> PipelineSpec:
    """The spec stored with a registered model version, e.g. ``models:/ragship@champion`` or ``models:/ragship/3``."""
    import mlflow

    from ragship.spec import load_spec

    init_mlflow(settings)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/spec.yaml")
    except Exception as e:  # mlflow raises several types for a missing alias/model
        raise TrackingError(f"No spec at {uri}: {e}. Promote a run with `ragship promote RUN_ID`.") from e
    return load_spec(local)


@dataclass
class Feedback:
    """A user's rating of one served answer."""

    rating: int
    question: str
    answer: str
    comment: str = ""
    sources: list[str] = field(default_factory=list)


class FeedbackRecorder:
    """Records ratings in MLflow against what is being served.

    Each rating becomes a run in the feedback experiment, tagged with the served spec's hash and the
    champion's version and run; the champion's run also gets a ``feedback_rating`` metric point, so
    its page shows how users rate it.

    :param spec: The served spec.
    :param served: Where the spec came from (``models:/ragship@champion (version 3)``, a path, ...).
    """

    def __init__(self, spec: PipelineSpec, served: str, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.spec = spec
        self.served = served
        self._client: Any = None
        self._experiment_id = ""
        self._champion: dict[str, Any] | None = None

    def _connect(self) -> Any:
        """The MLflow client, the feedback experiment and the champion, looked up on first use."""
        from mlflow import MlflowClient

        if self._client is None:
            init_mlflow(self.settings, self.settings.serving.feedback_experiment)
            client = MlflowClient()
            experiment = client.get_experiment_by_name(self.settings.serving.feedback_experiment)
            assert experiment is not None  # init_mlflow created it
            self._experiment_id = experiment.experiment_id
            current = champion(self.settings)
            # Only tie ratings to the champion when the champion is what is served.
            if current is not None and current.get("spec_hash") == self.spec.hash:
                self._champion = current
            self._client = client
        return self._client

    def record(self, feedback: Feedback) -> str:
        """Log ``feedback``; returns the MLflow run id holding it.

        :raises TrackingError: when MLflow cannot take it (it raises many types when its store is down).
        """
        try:
            return self._record(feedback)
        except TrackingError:
            raise
        except Exception as e:
            raise TrackingError(f"Feedback could not be recorded in MLflow: {e}") from e

    def _record(self, feedback: Feedback) -> str:
        client = self._connect()
        rating = "up" if feedback.rating > 0 else "down"
        tags = {
            "ragship.kind": "feedback",
            "ragship.served": self.served,
            "ragship.spec_hash": self.spec.hash,
            "ragship.rating": rating,
        }
        if self._champion is not None:
            tags["ragship.champion_version"] = str(self._champion["version"])
            tags["ragship.champion_run_id"] = str(self._champion["run_id"])
        if feedback.comment:
            tags["mlflow.note.content"] = feedback.comment
        run_id = str(client.create_run(self._experiment_id, tags=tags, run_name=f"feedback-{rating}").info.run_id)
        client.log_metric(run_id, "rating", feedback.rating)
        client.log_dict(run_id, asdict(feedback), "feedback.json")
        client.set_terminated(run_id)
        if self._champion is not None:
            client.log_metric(str(self._champion["run_id"]), "feedback_rating", feedback.rating)
        return run_id
