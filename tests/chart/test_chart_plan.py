"""`ragship plan --values` writes a values file the chart accepts, and the rendered objects carry the plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import RELEASE, Result, one
from typer.testing import CliRunner

from ragship.cli import app
from ragship.planning.capacity import Capacity, Load, ServiceProfile, plan

CAPACITY = Capacity(
    api=ServiceProfile(mean_ms=25, p95_ms=45, max_rps=40), embedder_queries_per_s=240, worker_docs_per_s=4
)


@pytest.fixture
def planned_values(tmp_path: Path) -> dict[str, Any]:
    capacity = tmp_path / "capacity.json"
    capacity.write_text(json.dumps(CAPACITY.to_dict()))
    values = tmp_path / "plan.yaml"
    args = ["plan", "--peak-qps", "120", "--p95-ms", "250", "--docs-per-day", "50000", "--gpu"]
    result = CliRunner().invoke(app, [*args, "--capacity", str(capacity), "--values", str(values)])
    assert result.exit_code == 0, result.output
    loaded: dict[str, Any] = yaml.safe_load(values.read_text())
    return loaded


def test_planned_values_render_valid_objects_with_the_planned_scaling(
    planned_values: dict[str, Any],
    render: Callable[..., list[dict[str, Any]]],
    helm_template: Callable[..., Result],
    kubeconform: Callable[[str], tuple[Result, list[dict[str, Any]]]],
) -> None:
    expected = plan(CAPACITY, Load(peak_qps=120, p95_ms=250, docs_per_day=50000))
    objects = render(values=planned_values)
    api_hpa = one(objects, "HorizontalPodAutoscaler", f"{RELEASE}-api")["spec"]
    assert (api_hpa["minReplicas"], api_hpa["maxReplicas"]) == (expected.api.min_replicas, expected.api.max_replicas)
    cpu = next(m for m in api_hpa["metrics"] if m["type"] == "Resource")
    assert cpu["resource"]["target"]["averageUtilization"] == expected.api.target_cpu_percent
    api_env = one(objects, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "RAGSHIP_SERVING__MAX_CONCURRENCY", "value": str(expected.api.max_concurrency)} in api_env
    scaled = one(objects, "ScaledObject", f"{RELEASE}-worker")["spec"]
    assert expected.worker is not None
    assert scaled["maxReplicaCount"] == expected.worker.max_replicas
    assert scaled["triggers"][0]["metadata"]["listLength"] == str(expected.worker.list_length)
    embedder = one(objects, "Deployment", f"{RELEASE}-embedder")["spec"]["template"]["spec"]["containers"][0]
    assert embedder["resources"]["limits"]["nvidia.com/gpu"] == 1
    result, _ = kubeconform(helm_template(values=planned_values).output)
    assert result.returncode == 0, result.output
