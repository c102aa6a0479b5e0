"""The chart passes the tracing settings: off by default, endpoint and ratio by ConfigMap, headers by Secret."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chart_helpers import container, find, one

from ragship.settings import load_settings

pytestmark = pytest.mark.chart

Render = Callable[..., list[dict[str, Any]]]


def test_tracing_is_off_unless_an_endpoint_is_given(render: Render) -> None:
    data = one(render(), "ConfigMap", "rel-config")["data"]
    assert not [k for k in data if k.startswith("RAGSHIP_TRACING__")]


def test_the_otlp_settings_reach_every_component_and_the_headers_come_from_a_secret(render: Render) -> None:
    tracing = {
        "endpoint": "http://mlflow:5000/v1/traces",
        "sampleRatio": 0.25,
        "recordQuestion": True,
        "headers": {"existingSecret": "otlp-headers", "key": "json"},
    }
    objects = render(values={"tracing": tracing})
    data = one(objects, "ConfigMap", "rel-config")["data"]
    env = {k: v for k, v in data.items() if k.startswith("RAGSHIP_TRACING__")}
    # The settings read these names and values as the chart writes them.
    settings = load_settings(tracing={k.removeprefix("RAGSHIP_TRACING__").lower(): v for k, v in env.items()})
    assert settings.tracing.endpoint == "http://mlflow:5000/v1/traces"
    assert (settings.tracing.sample_ratio, settings.tracing.record_question) == (0.25, True)
    assert settings.tracing.service_name == "ragship-worker"
    for workload in find(objects, "Deployment"):
        refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container(workload)["env"] if "valueFrom" in e}
        assert refs["RAGSHIP_TRACING__HEADERS"] == {"name": "otlp-headers", "key": "json"}, workload["metadata"]
