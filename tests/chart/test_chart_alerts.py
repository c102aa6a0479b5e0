"""The chart's alerts: a PrometheusRule only when ``alerts.enabled``, accepted by kubeconform and by Prometheus'
own ``promtool check rules``, and each alert fires on the series that should fire it and stays quiet on those
that should not (``promtool test rules`` with tests/chart/alerts/rules-test.yaml)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import RELEASE, TOOLS, find, one, run

RULES_TEST = Path(__file__).resolve().parent / "alerts" / "rules-test.yaml"
ALERTS = {
    "RagshipApiErrors",
    "RagshipApiLatencyHigh",
    "RagshipEmptyRetrievalsJump",
    "RagshipQueueStalled",
    "RagshipDeadLettersGrowing",
    "RagshipReplicaNotReady",
}

Render = Callable[..., list[dict[str, Any]]]


@pytest.fixture(scope="module")
def promtool() -> Path:
    path = TOOLS / "bin" / "promtool"
    if not path.exists():
        pytest.fail(f"missing {path}: run `make k8s-tools` (Go and the module proxy needed once)")
    return path


def _rules(render: Render, **alerts: Any) -> dict[str, Any]:
    objects = render(values={"alerts": {"enabled": True, **alerts}})
    return one(objects, "PrometheusRule", RELEASE)["spec"]


def _by_name(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in rules["groups"] for rule in group["rules"]}


def test_alerts_are_off_by_default(render: Render) -> None:
    assert find(render(), "PrometheusRule") == []


def test_promtool_accepts_the_rendered_rules(render: Render, promtool: Path, tmp_path: Path) -> None:
    rules = _rules(render)
    assert set(_by_name(rules)) == ALERTS
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    checked = run([promtool, "check", "rules", tmp_path / "rules.yaml"])
    assert checked.returncode == 0 and f"SUCCESS: {len(ALERTS)} rules found" in checked.output, checked.output


def test_promtool_refuses_a_broken_rule(promtool: Path, tmp_path: Path) -> None:
    broken = {"groups": [{"name": "x", "rules": [{"alert": "X", "expr": "sum(rate(up[5m])"}]}]}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(broken))
    checked = run([promtool, "check", "rules", tmp_path / "rules.yaml"])
    assert checked.returncode != 0 and "unclosed left parenthesis" in checked.output, checked.output


def test_each_alert_fires_and_stays_quiet_as_it_should(render: Render, promtool: Path, tmp_path: Path) -> None:
    rules = _rules(render)
    # promtool would compare annotations too; their templates are checked by `check rules` above
    for rule in _by_name(rules).values():
        rule.pop("annotations")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    shutil.copy(RULES_TEST, tmp_path / "rules-test.yaml")
    tested = run([promtool, "test", "rules", tmp_path / "rules-test.yaml"])
    assert tested.returncode == 0 and "SUCCESS" in tested.output, tested.output
    cases = [case for test in yaml.safe_load(RULES_TEST.read_text())["tests"] for case in test["alert_rule_test"]]
    assert {c["alertname"] for c in cases if c["exp_alerts"]} == ALERTS  # each fires somewhere...
    assert {c["alertname"] for c in cases if not c["exp_alerts"]} == ALERTS  # ...and stays quiet somewhere


def test_a_wrong_expectation_fails_promtool(render: Render, promtool: Path, tmp_path: Path) -> None:
    """The rules test can fail: expecting the quiet latency case to fire is caught."""
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(_rules(render)))
    spec = yaml.safe_load(RULES_TEST.read_text())
    [quiet] = [t for t in spec["tests"] if t["name"] == "latency quiet"]
    quiet["alert_rule_test"][0]["exp_alerts"] = [{"exp_labels": {"severity": "warning"}}]
    spec["tests"] = [quiet]
    (tmp_path / "rules-test.yaml").write_text(yaml.safe_dump(spec))
    assert run([promtool, "test", "rules", tmp_path / "rules-test.yaml"]).returncode != 0


def test_thresholds_and_labels_come_from_the_values(render: Render) -> None:
    rules = _rules(
        render,
        labels={"release": "kube-prometheus-stack"},
        severity="critical",
        errors={"ratio": 0.01},
        latency={"p95Seconds": 0.8, "endpoints": "/ask|/retrieve"},
        queue={"oldestJobAgeSeconds": 120},
    )
    by_name = _by_name(rules)
    assert by_name["RagshipApiErrors"]["expr"].rstrip().endswith("> 0.01")
    latency = by_name["RagshipApiLatencyHigh"]["expr"]
    assert 'endpoint=~"/ask|/retrieve"' in latency and latency.rstrip().endswith("> 0.8")
    assert by_name["RagshipQueueStalled"]["expr"].endswith("> 120")
    assert {rule["labels"]["severity"] for rule in by_name.values()} == {"critical"}
    labelled = render(values={"alerts": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}})
    assert one(labelled, "PrometheusRule", RELEASE)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_kubeconform_refuses_a_misspelt_rule(render: Render, kubeconform: Callable[..., Any]) -> None:
    rule = one(render(values={"alerts": {"enabled": True}}), "PrometheusRule", RELEASE)
    assert kubeconform(yaml.safe_dump(rule))[0].returncode == 0
    rule["spec"]["groups"][0]["rules"][0]["expresion"] = rule["spec"]["groups"][0]["rules"][0].pop("expr")
    result, _ = kubeconform(yaml.safe_dump(rule))
    assert result.returncode != 0 and "expresion" in result.output, result.output


def test_helm_refuses_a_threshold_of_the_wrong_type(helm_template: Callable[..., Any]) -> None:
    result = helm_template(values={"alerts": {"enabled": True, "latency": {"p95Seconds": "2s"}}})
    assert result.returncode != 0 and "p95Seconds" in result.output, result.output
