"""Run the Helm chart's own pod specs with `podman kube play` (make test-pods).

The chart is rendered with helm; its ConfigMaps, Deployments and the reindex CronJob's pod template are
handed to podman unchanged. Each pod gets its own network namespace (slirp4netns) with its containerPorts
published on the host's loopback; kube play has no Services or cluster DNS, so the values point the pods
at Elasticsearch, Redis and MLflow on the host's loopback, which slirp4netns shows them as HOST_FROM_POD.
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
# slirp4netns gives each pod its own network namespace, publishes its containerPorts on the host, and
# with allow_host_loopback shows the host's 127.0.0.1 to the pod as 10.0.2.2 (its gateway).
POD_NETWORK = "slirp4netns:allow_host_loopback=true"
HOST_FROM_POD = "10.0.2.2"
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


def cronjob_pod(cronjob: dict[str, Any], name: str) -> dict[str, Any]:
    """The CronJob's pod template as a Pod: what the Job controller would create on a schedule."""
    template = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    # Labels only: podman 4.3 holds a Pod's annotation values to the 63 characters of a label value and
    # refuses checksum/config (a sha256); the annotation only rolls pods on a change (tests/chart checks it).
    metadata = {"name": name, "labels": template["metadata"]["labels"]}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def from_pod(url: str) -> str:
    """A service URL on the host's loopback as the pods reach it (HOST_FROM_POD)."""
    return url.replace("127.0.0.1", HOST_FROM_POD).replace("localhost", HOST_FROM_POD)


def play(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """`podman kube play` on the pods' own network: published ports, the host's loopback as HOST_FROM_POD.

    Not hostNetwork: podman 4.3 refuses a containerPort on the host's network, and a pod of its own is
    what a kubelet gives it (probes on the pod's 127.0.0.1, the port reached from outside only as published).
    """
    return podman("kube", "play", "--replace", "--network", POD_NETWORK, *args, timeout=timeout)


def write_yaml(path: Path, *objects: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump_all(objects))
    return path


def configmap_args(objects: list[dict[str, Any]], workdir: Path, name: str) -> list[str]:
    """``--configmap FILE`` per rendered ConfigMap: podman 4.3 reads only the first document of each file."""
    args = []
    for configmap in (o for o in objects if o["kind"] == "ConfigMap"):
        path = write_yaml(workdir / f"{name}-{configmap['metadata']['name']}.yaml", configmap)
        args += ["--configmap", str(path)]
    return args


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
