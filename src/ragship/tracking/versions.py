"""Registering an evaluated spec: one model version per promoted or explicitly registered run, never one per
evaluation, each with tags and a description that say what it is (spec, dataset, metrics, source run).

Low in the import graph, beside :mod:`ragship.tracking.registry` (which registers on promotion): it talks to
the MLflow client only and never loads the pyfunc model.
"""

from __future__ import annotations

import json
from typing import Any

from ragship.errors import TrackingError
from ragship.settings import Settings, get_settings
from ragship.tracking.runs import KIND_TAG, MODEL_URI_TAG, init_mlflow

#: Run params copied onto a version as tags (what the spec and its evaluation data were).
FACT_PARAMS = ("spec_name", "spec_hash", "dataset", "dataset_fingerprint", "retrieval_mode")
#: Prefix of the tags that carry answer metrics, from the latest ``ragship eval-qa`` run of the same spec.
ANSWER_PREFIX = "answers."


def run_version(run_id: str, settings: Settings) -> str | None:
    """The version registered from ``run_id`` (the newest if several), or None."""
    from mlflow import MlflowClient

    name = settings.mlflow.registered_model
    versions = MlflowClient().search_model_versions(f"run_id='{run_id}' and name='{name}'")
    return str(max(int(v.version) for v in versions)) if versions else None


def version_facts(run: Any, settings: Settings) -> dict[str, str]:
    """The tags a version registered from ``run`` carries: spec, dataset, primary metric, answer metrics, run."""
    params, metric = run.data.params, settings.mlflow.primary_metric
    facts = {k: str(params[k]) for k in FACT_PARAMS if k in params}
    if metric in run.data.metrics:
        facts[metric] = f"{run.data.metrics[metric]:.4f}"
    facts["run_id"] = str(run.info.run_id)
    qa = _latest_answer_run(str(params.get("spec_hash", "")), settings)
    if qa is not None:
        facts[f"{ANSWER_PREFIX}run_id"] = str(qa.info.run_id)
        facts[f"{ANSWER_PREFIX}qa_set"] = str(qa.data.params.get("qa_set", ""))
        # genai.evaluate's aggregates (``token_f1/mean``) repeat ragship's own means: keep ragship's.
        facts.update({f"{ANSWER_PREFIX}{k}": f"{v:.4f}" for k, v in sorted(qa.data.metrics.items()) if "/" not in k})
    return facts


def describe(facts: dict[str, str], settings: Settings) -> str:
    """A version's description (Markdown, as the MLflow UI shows it) from its facts."""
    metric = settings.mlflow.primary_metric
    answers = {k.removeprefix(ANSWER_PREFIX): v for k, v in facts.items() if k.startswith(ANSWER_PREFIX)}
    scores = ", ".join(f"{k} {v}" for k, v in answers.items() if k not in ("run_id", "qa_set"))
    answer_line = (
        f"Answers on {answers.get('qa_set')} (run {answers.get('run_id')}): {scores}."
        if answers
        else "Answers: not evaluated for this spec (run `ragship eval-qa`)."
    )
    return "\n\n".join(
        [
            f"Spec **{facts.get('spec_name', '?')}** (hash `{facts.get('spec_hash', '?')}`, "
            f"{facts.get('retrieval_mode', '?')} retrieval).",
            f"Retrieval on {facts.get('dataset', '?')} (fingerprint `{facts.get('dataset_fingerprint', '?')}`): "
            f"{metric} {facts.get(metric, '?')}.",
            answer_line,
            f"From run `{facts['run_id']}`.",
        ]
    )


def register_run(run_id: str, settings: Settings | None = None) -> str:
    """Register the spec model logged in ``run_id`` (once: a second call returns the same version).

    :returns: the version number.
    :raises TrackingError: when the run is missing or logged no spec model.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from mlflow.utils.mlflow_tags import MLFLOW_MODEL_VERSIONS

    settings = settings or get_settings()
    init_mlflow(settings)
    client = MlflowClient()
    existing = run_version(run_id, settings)
    if existing is not None:
        return existing
    try:
        run = client.get_run(run_id)
    except MlflowException as e:
        raise TrackingError(f"Run {run_id} not found in {settings.tracking_uri}.") from e
    model_uri = run.data.tags.get(MODEL_URI_TAG)
    if not model_uri:
        raise TrackingError(f"Run {run_id} logged no spec model; evaluate with `ragship eval` first.")
    name = settings.mlflow.registered_model
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(
            name, description="Pipeline specs promoted or registered from ragship evaluations (`ragship promote`)."
        )
    facts = version_facts(run, settings)
    model_id = model_uri.removeprefix("models:/")
    version = client.create_model_version(
        name, model_uri, run_id=run_id, tags=facts, description=describe(facts, settings), model_id=model_id
    )
    # What mlflow.register_model also records: the logged model's page links to its versions.
    link = [{"name": name, "version": str(version.version)}]
    client.set_logged_model_tags(model_id, {MLFLOW_MODEL_VERSIONS: json.dumps(link)})
    return str(version.version)


def _latest_answer_run(spec_hash: str, settings: Settings) -> Any | None:
    import mlflow

    if not spec_hash:
        return None
    runs = mlflow.search_runs(
        experiment_names=[settings.mlflow.experiment],
        filter_string=(
            f"tags.`{KIND_TAG}` = 'qa' and params.spec_hash = '{spec_hash}' and attributes.status = 'FINISHED'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    return runs[0] if runs else None
