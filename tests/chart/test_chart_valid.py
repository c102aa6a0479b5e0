"""The chart lints, renders and validates strictly over the values matrix; wrong values fail loudly."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, VALUES, Result, Tools, container, find, one, run, values_args

pytestmark = pytest.mark.chart

# (id, value files from tests/chart/values): what a user deploys, each rendered and validated.
MATRIX = [
    ("defaults", []),
    ("gpu", ["gpu"]),
    ("es-api-key", ["es-api-key"]),
    ("keda-off", ["keda-off"]),
    ("trial-redis", ["trial-redis"]),
    ("monitoring", ["monitoring"]),
    ("rabbitmq", ["rabbitmq"]),
    ("llm-external", ["llm-external"]),
    ("llm-server", ["llm-server"]),
    ("everything", ["gpu", "es-api-key", "trial-redis", "monitoring", "llm-server"]),
]
CASES = [pytest.param(files, id=case) for case, files in MATRIX]


def test_every_values_file_is_in_the_matrix() -> None:
    in_matrix = {name for _, files in MATRIX for name in files}
    assert {p.stem for p in VALUES.glob("*.yaml")} == in_matrix


@pytest.mark.parametrize("files", CASES)
def test_helm_lint_is_clean(files: list[str], tools: Tools, tmp_path: Any) -> None:
    result = run(
        [
            tools.helm,
            "lint",
            "--strict",
            CHART,
            "--kube-version",
            tools.kube_version,
            *values_args(files, None, tmp_path),
        ]
    )
    assert result.returncode == 0, result.output
    assert "0 chart(s) failed" in result.output


@pytest.mark.parametrize("files", CASES)
def test_every_rendered_object_matches_its_schema_strictly(
    files: list[str], helm_template: Callable[..., Result], kubeconform: Callable[..., Any]
) -> None:
    rendered = helm_template(*files)
    assert rendered.returncode == 0, rendered.output
    kinds = [doc["kind"] for doc in yaml.safe_load_all(rendered.output) if doc]
    result, resources = kubeconform(rendered.output)
    assert result.returncode == 0, result.output
    # every object was checked against a schema: none skipped, none without one (ServiceMonitor included)
    assert [r["status"] for r in resources] == ["statusValid"] * len(kinds), result.output
    assert sorted(r["kind"] for r in resources) == sorted(kinds)


# --- negative: wrong values are refused, by Helm for the chart's own values, by kubeconform for the rest


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"api": {"resources": {"limitz": {"cpu": 1}}}}, "api.resources: Additional property limitz is not allowed"),
        ({"worker": {"keda": {"pollingIntervall": 10}}}, "worker.keda: Additional property pollingIntervall"),
        (
            {"worker": {"keda": {"pollingInterval": "15s"}}},
            "worker.keda.pollingInterval: Invalid type. Expected: integer",
        ),
        ({"embedder": {"hpa": {"maxReplicas": "4"}}}, "embedder.hpa.maxReplicas: Invalid type. Expected: integer"),
        ({"elasticsearch": {"auth": {"type": "apiKey"}}}, "elasticsearch.auth.existingSecret: String length must be"),
        ({"queue": {"broker": "kafka"}}, "queue.broker: queue.broker must be one of the following"),
    ],
    ids=[
        "unknown-resources-field",
        "unknown-keda-field",
        "keda-wrong-type",
        "hpa-wrong-type",
        "es-no-secret",
        "broker",
    ],
)
def test_helm_refuses_wrong_chart_values_with_the_path_in_the_message(
    values: dict[str, Any], message: str, helm_template: Callable[..., Result]
) -> None:
    result = helm_template(values=values)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.output
    assert message in result.output, result.output


def test_kubeconform_refuses_what_passes_through_the_values_unchecked(
    helm_template: Callable[..., Result], kubeconform: Callable[..., Any]
) -> None:
    # affinity and the security contexts are Kubernetes objects the chart passes through: a typo or a
    # wrong type there renders fine and only the strict schema check catches it
    rendered = helm_template(
        values={
            "generator": {"affinity": {"nodeAfinity": {}}},
            "podSecurityContext": {"runAsUser": "1034"},
        }
    )
    assert rendered.returncode == 0, rendered.output
    result, resources = kubeconform(rendered.output)
    assert result.returncode != 0
    errors = {(r["kind"], r["name"]): r["msg"] for r in resources if r["status"] == "statusInvalid"}
    assert "additional properties 'nodeAfinity' not allowed" in errors[("Deployment", "rel-generator")]
    assert (
        "at '/spec/template/spec/securityContext/runAsUser': got string, want null or integer"
        in (errors[("Deployment", "rel-api")])
    )


def test_kubeconform_refuses_unknown_fields_and_wrong_types_in_keda_objects(
    render: Callable[..., list[dict[str, Any]]], kubeconform: Callable[..., Any]
) -> None:
    objects = render("es-api-key")
    scaled = copy.deepcopy(one(objects, "ScaledObject", "rel-worker"))
    scaled["spec"]["pollingIntervall"] = 10
    auth = copy.deepcopy(one(objects, "TriggerAuthentication", "rel-worker"))
    auth["spec"]["secretTargetRef"][0]["parameter"] = 7
    deployment = copy.deepcopy(one(objects, "Deployment", "rel-api"))
    container(deployment)["resources"]["limitz"] = {"cpu": "1"}
    result, resources = kubeconform(yaml.safe_dump_all([scaled, auth, deployment]))
    assert result.returncode != 0
    errors = {r["kind"]: r["msg"] for r in resources}
    assert "at '/spec': additional properties 'pollingIntervall' not allowed" in errors["ScaledObject"]
    assert "at '/spec/secretTargetRef/0/parameter': got number, want string" in errors["TriggerAuthentication"]
    assert "additional properties 'limitz' not allowed" in errors["Deployment"]


def test_a_kind_without_a_schema_fails_instead_of_being_skipped(kubeconform: Callable[..., Any]) -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "x"}}
    result, resources = kubeconform(yaml.safe_dump(unknown))
    assert result.returncode != 0
    assert resources[0]["status"] == "statusError" and "could not find schema for Gadget" in resources[0]["msg"]


def test_the_values_files_in_the_matrix_render_what_they_promise(render: Callable[..., list[dict[str, Any]]]) -> None:
    everything = render("gpu", "es-api-key", "trial-redis", "monitoring")
    kinds = {o["kind"] for o in everything}
    assert {"ServiceMonitor", "NetworkPolicy", "TriggerAuthentication", "ScaledObject", "CronJob"} <= kinds
    assert find(everything, "Deployment", "rel-redis")
