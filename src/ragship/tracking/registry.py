"""The model registry: registered specs, the promotion gate and the ``champion`` alias.

Low in the import graph (``ragship.assembly`` loads registered specs through it): it never imports the
runtime or the pyfunc model, which sit above.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ragship.errors import TrackingError
from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, load_spec
from ragship.tracking.runs import MODEL_URI_TAG, init_mlflow
from ragship.tracking.versions import register_run, run_version

CHAMPION = "champion"
#: What a refused decision names as its version when the run was never registered.
UNREGISTERED = "unregistered"


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
    """Register the run's spec model and give it the ``champion`` alias if it is at least as good as the
    current one. A refused run stays unregistered (its version is ``unregistered``) unless registered before.

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
    version = run_version(run_id, settings)
    if version is None and not run.data.tags.get(MODEL_URI_TAG):
        raise TrackingError(f"Run {run_id} logged no spec model; evaluate with `ragship eval` first.")
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
                version or UNREGISTERED,
                f"not comparable: dataset fingerprint {ours} differs from the champion's {theirs}; "
                "evaluate on the champion's dataset or use --force --reason",
                metric,
                value,
                champion_value,
            )
        if champion_value is not None and value < champion_value:
            return PromotionDecision(
                False,
                version or UNREGISTERED,
                f"{metric} {value:.4f} is below the champion's {champion_value:.4f} (version {current.version})",
                metric,
                value,
                champion_value,
            )
    if force and not reason:
        raise TrackingError("--force needs --reason TEXT, recorded on the model version.")
    # Registered only now that it is promoted (or earlier, by `ragship eval --register`).
    version = version or register_run(run_id, settings)
    if force:
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
    """The finished evaluation run with the highest primary metric that logged a spec model."""
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
    for run in runs:
        # Runs from before models were logged unregistered have a version instead of the tag.
        if run.data.tags.get(MODEL_URI_TAG) or run_version(run.info.run_id, settings):
            return str(run.info.run_id)
    raise TrackingError(
        f"No finished evaluation run with metric {metric!r} in experiment '{settings.mlflow.experiment}'; "
        "run `ragship eval` (or notebook 02) first."
    )


def champion(settings: Settings | None = None) -> dict[str, Any] | None:
    """The current champion: version, run, metrics, dataset, and the version's description and tags, or None."""
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
        "description": version.description,
        "tags": version.tags,
    }


def load_registered_spec(uri: str, settings: Settings | None = None) -> PipelineSpec:
    """The spec stored with a registered model version, e.g. ``models:/ragship@champion`` or ``models:/ragship/3``."""
    import mlflow

    init_mlflow(settings)
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=f"{uri.rstrip('/')}/artifacts/spec.yaml")
    except Exception as e:  # mlflow raises several types for a missing alias/model
        raise TrackingError(f"No spec at {uri}: {e}. Promote a run with `ragship promote RUN_ID`.") from e
    return load_spec(local)
