"""Run the Helm chart's own pod specs with `podman kube play` (make test-pods).

The chart is rendered with helm; its ConfigMaps, Deployments and the reindex CronJob's pod template are
handed to podman unchanged but for `hostNetwork: true`: kube play has no Services or cluster DNS, so the
pods reach Elasticsearch, Redis and MLflow on loopback, as the published port of a Service would.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from ragship.local.process import poll

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "ragship"
HELM = ROOT / ".tools" / "bin" / "helm"
RELEASE = "pods"
# runc and ulimits that work on this kind of host (deploy/images/containers.conf).
PODMAN_ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "images" / "containers.conf")}


def podman(*args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
    """One podman command; a failure shows its stderr."""
    result = subprocess.run(["podman", *args], env=PODMAN_ENV, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result


def render(values: dict[str, Any], workdir: Path) -> list[dict[str, Any]]:
    """`helm template` of the chart with ``values``: the rendered objects."""
    values_file = workdir / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    out = subprocess.run(
        [str(HELM), "template", RELEASE, str(CHART), "--namespace", "default", "-f", str(values_file)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def find(objects: list[dict[str, Any]], kind: str, component: str) -> dict[str, Any]:
    """The one rendered object of ``kind`` for ``component``."""
    found = [
        o
        for o in objects
        if o["kind"] == kind and o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    assert len(found) == 1, f"{kind} of {component}: {len(found)} rendered"
    return found[0]


def on_host_network(deployment: dict[str, Any]) -> dict[str, Any]:
    """The Deployment with its pod template on the host's network (kube play has no Services)."""
    deployment["spec"]["template"]["spec"]["hostNetwork"] = True
    return deployment


def cronjob_pod(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """The CronJob's pod template as a Pod: what the Job controller would create on a schedule."""
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    spec = {**template["spec"], "hostNetwork": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **template["metadata"]}, "spec": spec}


def write_yaml(path: Path, *objects: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(objects))
    return path


def containers(pod: str) -> list[dict[str, Any]]:
    """The containers of a pod (its infra container left out)."""
    listed = json.loads(podman("ps", "-a", "--filter", f"pod={pod}", "--format", "json").stdout or "[]")
    return [c for c in listed if not c.get("IsInfra")]


def http_json(method: str, url: str, body: Any = None, timeout: float = 120) -> tuple[int, Any]:
    """A JSON request on loopback; the status and the decoded body (errors included)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def wait_until(what: str, check: Any, timeout_s: float, every_s: float = 1.0, logs: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and the pod's logs)."""
    result = poll(check, timeout_s, every_s)
    if result:
        return result
    tail = podman("logs", "--tail", "60", logs, check=False).stderr if logs else ""
    raise AssertionError(f"{what} not within {timeout_s:.0f}s\n{tail}")
