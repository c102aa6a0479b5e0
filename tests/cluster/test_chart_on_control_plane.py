"""The Helm chart on a real control plane: the apiserver accepts every object, the HPAs carry the planned
targets, and KEDA scales the workers Deployment from 0 up with the Redis queue and back to 0.

There is no kubelet (nor scheduler): pods stay Pending, so these tests assert the control plane's
decisions, i.e. the replica counts it sets over time, never running pods.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from cluster_harness import CHART, RESULTS, ControlPlane
from cluster_kube import Kube, wait_for

from ragship.planning.capacity import Capacity, Load, ServiceProfile, plan
from ragship.planning.capacity_values import chart_values as plan_values

pytestmark = pytest.mark.cluster  # its only marker: `-m slow` must not start a control plane

RELEASE = "rs"
NAMESPACE = "ragship"
QUEUE = "ragship:indexing"
REDIS_SECRET = "ragship-redis"
# What `ragship plan` makes of these capacities and this load is what the chart is installed with (its values
# file first, the test's own values over it): an API replica doing 40 req/s (25 ms alone), an Embedder 240
# queries/s, a worker 0.5 documents/s; 120 questions/s at p95 250 ms, 10,800 documents in one hour in jobs of 6.
PLAN = plan(
    Capacity(api=ServiceProfile(mean_ms=25, p95_ms=45, max_rps=40), embedder_queries_per_s=240, worker_docs_per_s=0.5),
    Load(peak_qps=120, p95_ms=250, docs_per_day=10_800, ingest_hours=1, docs_per_job=6),
)
assert PLAN.worker is not None and PLAN.embedder is not None
LIST_LENGTH = PLAN.worker.list_length  # jobs per worker the ScaledObject targets: a minute of a worker's work
MAX_WORKERS = PLAN.worker.max_replicas
POLLING_S = 5
COOLDOWN_S = 20
HPA_TARGETS = {  # min, max, CPU %
    "api": (PLAN.api.min_replicas, PLAN.api.max_replicas, PLAN.api.target_cpu_percent),
    "embedder": (PLAN.embedder.min_replicas, PLAN.embedder.max_replicas, PLAN.embedder.target_cpu_percent),
    "generator": (1, 2, 65),
}


def chart_values(redis_host: str, redis_port: int) -> dict[str, Any]:
    """The test's own values over the plan's: the queue's address, KEDA's short intervals, the generator."""
    (lo, hi, cpu) = HPA_TARGETS["generator"]
    return {
        "redis": {
            "url": f"redis://{redis_host}:{redis_port}/0",
            "existingSecret": REDIS_SECRET,
            "passwordKey": "password",
        },
        "worker": {"keda": {"pollingInterval": POLLING_S, "cooldownPeriod": COOLDOWN_S}},
        "generator": {
            "hpa": {"enabled": True, "minReplicas": lo, "maxReplicas": hi, "targetCPUUtilizationPercentage": cpu}
        },
    }


@dataclass
class Release:
    """The installed chart: its rendered objects and the plane it lives on."""

    plane: ControlPlane
    kube: Kube
    objects: list[dict[str, Any]]

    def deployment(self, component: str) -> dict[str, Any]:
        return self.kube.get(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{RELEASE}-{component}")


def helm(plane: ControlPlane, helm_bin: str, *args: str) -> str:
    """Run helm against the plane (its own kubeconfig, never the user's)."""
    result = subprocess.run(
        [helm_bin, "--kubeconfig", str(plane.kubeconfig), *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def release(plane: ControlPlane, binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Release:
    """The chart installed with ``helm install`` (no --wait: no pod can become ready without a kubelet)."""
    if not (CHART / "Chart.yaml").exists():
        pytest.fail(f"no chart at {CHART}: merge the chart or set RAGSHIP_TEST_CHART to one")
    assert plane.kube is not None and plane.netns is not None
    kube = plane.kube
    kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": REDIS_SECRET, "namespace": NAMESPACE},
            "stringData": {"password": plane.redis_password},
        }
    )
    folder = tmp_path_factory.mktemp("values")
    planned, values = folder / "plan.yaml", folder / "values.yaml"
    planned.write_text(yaml.safe_dump(plan_values(PLAN)))
    # KEDA's operator runs in the test's network namespace: it reaches Redis on the host end of the veth.
    values.write_text(yaml.safe_dump(chart_values(plane.netns.host_ip, plane.redis_port)))
    files = ["-f", str(planned), "-f", str(values)]
    helm(plane, binaries["helm"], "install", RELEASE, str(CHART), "-n", NAMESPACE, *files, "--wait=false")
    manifest = helm(plane, binaries["helm"], "get", "manifest", RELEASE, "-n", NAMESPACE)
    objects = [doc for doc in yaml.safe_load_all(manifest) if doc]
    return Release(plane, kube, objects)


def test_apiserver_accepted_every_object(release: Release) -> None:
    kinds = sorted({obj["kind"] for obj in release.objects})
    assert {"Deployment", "HorizontalPodAutoscaler", "ScaledObject", "TriggerAuthentication"} <= set(kinds), kinds
    for obj in release.objects:
        obj.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        stored = release.kube.get(release.kube.path(obj))
        assert stored["metadata"]["name"] == obj["metadata"]["name"]
        # And a server-side dry-run apply of the rendered object validates against the served schema.
        release.kube.apply(obj, dry_run=True)


def test_hpas_have_planned_targets(release: Release) -> None:
    hpas = f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers"
    for component, (lo, hi, cpu) in HPA_TARGETS.items():
        hpa = release.kube.get(f"{hpas}/{RELEASE}-{component}")["spec"]
        assert hpa["scaleTargetRef"]["name"] == f"{RELEASE}-{component}"
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (lo, hi)
        cpu_targets = [m["resource"]["target"] for m in hpa["metrics"] if m["type"] == "Resource"]
        assert {"type": "Utilization", "averageUtilization": cpu} in cpu_targets
    # KEDA makes the workers' HPA from the ScaledObject: the queue length as an external metric.
    hpa_name = f"keda-hpa-{RELEASE}-worker"
    wait_for(hpa_name, lambda: release.kube.status(f"{hpas}/{hpa_name}") == 200, 60)
    keda_hpa = release.kube.get(f"{hpas}/{hpa_name}")["spec"]
    assert keda_hpa["maxReplicas"] == MAX_WORKERS
    (external,) = [m["external"] for m in keda_hpa["metrics"] if m["type"] == "External"]
    assert external["target"] == {"type": "AverageValue", "averageValue": str(LIST_LENGTH)}


class Timeline:
    """(seconds, queue length, worker replicas) samples, one a second, written as JSON."""

    def __init__(self, release: Release) -> None:
        self.release = release
        self.start = time.monotonic()
        self.samples: list[dict[str, Any]] = []

    def sample(self, note: str = "") -> int:
        replicas = int(self.release.deployment("worker")["spec"].get("replicas", 0))
        length = int(self.release.plane.redis_cli("LLEN", QUEUE) or 0)
        row: dict[str, Any] = {
            "t_s": round(time.monotonic() - self.start, 1),
            "queue_length": length,
            "replicas": replicas,
        }
        if note:
            row["event"] = note
        if not self.samples or (self.samples[-1]["queue_length"], self.samples[-1]["replicas"]) != (length, replicas):
            print(f"t={row['t_s']:6.1f}s queue={length:3d} replicas={replicas} {note}", flush=True)
        self.samples.append(row)
        return replicas

    def until(self, what: str, done: Any, timeout_s: float) -> int:
        """Sample every second until ``done(replicas)``; fail with the timeline after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            replicas = self.sample()
            if done(replicas):
                return replicas
            time.sleep(1)
        self.write()
        pytest.fail(f"{what}: not within {timeout_s:.0f}s; timeline: {self.changes()}")

    def changes(self) -> list[dict[str, Any]]:
        """Only the samples where the queue length or the replica count changed (and the events)."""
        out: list[dict[str, Any]] = []
        for row in self.samples:
            state = (row["queue_length"], row["replicas"])
            if not out or "event" in row or state != (out[-1]["queue_length"], out[-1]["replicas"]):
                out.append(row)
        return out

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / "keda-timeline.json"
        path.write_text(json.dumps({"changes": self.changes(), "samples": self.samples}, indent=1) + "\n")
        return path


def test_keda_scales_workers_from_zero_and_back(release: Release) -> None:
    first = LIST_LENGTH * 2 + 2  # the HPA wants ceil(12 / 5) = 3 workers
    total = LIST_LENGTH * MAX_WORKERS * 2  # enough to want every allowed worker
    timeline = Timeline(release)
    # With an empty queue KEDA keeps (or brings) the workers at 0.
    timeline.until("workers at 0 with an empty queue", lambda r: r == 0, 180)
    release.plane.redis_cli("LPUSH", QUEUE, *(f"job-{i}" for i in range(first)))
    timeline.sample(f"pushed {first} jobs")
    timeline.until("KEDA activation: workers 0 -> 1+", lambda r: r >= 1, 120)
    wanted = -(-first // LIST_LENGTH)
    assert timeline.until(f"the HPA scaling workers to {wanted}", lambda r: r >= wanted, 120) == wanted
    hold = time.monotonic() + 3 * POLLING_S  # a few more decisions: the count stays where the queue puts it
    while time.monotonic() < hold:
        assert timeline.sample() == wanted, timeline.changes()
        time.sleep(1)
    release.plane.redis_cli("LPUSH", QUEUE, *(f"job-{i}" for i in range(first, total)))
    timeline.sample(f"pushed {total - first} more jobs")
    peak = timeline.until("the HPA scaling workers to maxReplicaCount", lambda r: r >= MAX_WORKERS, 180)
    assert peak == MAX_WORKERS
    # The ReplicaSet made the pods; with no scheduler nor kubelet they stay Pending on no node.
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component=worker"
    pods_path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    wait_for(
        f"{MAX_WORKERS} worker pods",
        lambda: len(release.kube.get(pods_path, labelSelector=selector)["items"]) == MAX_WORKERS,
        60,
    )
    pods = release.kube.get(pods_path, labelSelector=selector)["items"]
    assert {(pod["status"].get("phase"), pod["spec"].get("nodeName")) for pod in pods} == {("Pending", None)}
    release.plane.redis_cli("DEL", QUEUE)
    timeline.sample("queue emptied")
    timeline.until("workers back to 0 after the cooldown", lambda r: r == 0, COOLDOWN_S + 180)
    path = timeline.write()
    print(f"KEDA timeline ({path}):\n" + "\n".join(json.dumps(row) for row in timeline.changes()))
