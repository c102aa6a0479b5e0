"""The chart's pods, run for real with `podman kube play` from the images `make images` builds.

What this proves (docs/kubernetes.md, "Which test proves what"): the rendered pod specs start on the
images as the chart runs them (read-only root filesystem, uid 1034, capabilities dropped); the API pod's
probe paths answer inside the pod and /ask answers with cited sources on the published port; the worker
pod drains a job submitted through the API pod into Elasticsearch; the reindex CronJob's pod template
runs once and records its MLflow run; a changed spec ConfigMap (top_k) reaches the pod after a re-play;
`podman kube down` leaves nothing running. Services, the HPA and KEDA are tests/cluster's part.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pods_helpers import (
    configmap_args,
    containers,
    cronjob_pod,
    find,
    from_pod,
    http_json,
    play,
    podman,
    render,
    wait_until,
    write_yaml,
)

pytestmark = [pytest.mark.pods, pytest.mark.slow]

SOURCES_VOLUME = "ragship-pods-sources"
# kube play names a Deployment's pods <name>-pod-<replica> and their containers <pod>-<container>.
API_POD = "pods-api-pod-0"
WORKER_POD = "pods-worker-pod-0"
REINDEX_POD = "pods-reindex-once"


def _spec_yaml(tmp_path: Path, top_k: int) -> str:
    """The spec the pods serve (spec.inline -> the chart's spec ConfigMap), made by `ragship spec init`."""
    out = tmp_path / f"spec-{top_k}.yaml"
    ragship = Path(sys.executable).parent / "ragship"
    subprocess.run(
        [str(ragship), "spec", "init", str(out), "--top-k", str(top_k), "--embedding-backend", "torch", "--force"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.read_text()


def _values(es_url: str, index: str, redis_url: str, mlflow_url: str, spec: str, ports: dict[str, int]) -> dict:
    return {
        # The chart's default image names; podman resolves them to the localhost/ images `make images` tags.
        "elasticsearch": {"url": from_pod(es_url), "index": index},
        "redis": {"url": from_pod(redis_url)},
        "mlflow": {"trackingUri": from_pod(mlflow_url)},
        "spec": {"inline": spec},
        # One pod per component: the API runs the Embedder and Generator beside it (no Service to reach).
        "api": {"port": ports["api"], "replicas": 1, "hpa": {"enabled": False}, "topologySpread": []},
        "embedder": {"enabled": False},
        "generator": {"enabled": False},
        "worker": {"keda": {"enabled": False}, "replicas": 1, "metricsPort": ports["metrics"]},
        "reindex": {"sourcesClaim": SOURCES_VOLUME, "params": {"sources": "/data/docs", "mode": "incremental"}},
    }


def _play(tmp_path: Path, objects: list[dict[str, Any]], name: str) -> Path:
    """kube play the API and worker Deployments with the ConfigMaps (a re-play replaces the pods)."""
    pods_file = write_yaml(
        tmp_path / f"{name}-pods.yaml", find(objects, "Deployment", "api"), find(objects, "Deployment", "worker")
    )
    play(*configmap_args(objects, tmp_path, name), str(pods_file))
    return pods_file


def _ready(port: int) -> bool:
    """/readyz answers 200 on the published port; until the server listens, the port forwarder resets."""
    import http.client

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return answer.status == 200
    except (OSError, http.client.HTTPException):  # HTTPError (503 while loading) is an OSError too
        return False


def _probe_inside(container: str, port: int, path: str) -> int:
    """GET a probe's path from inside the container, as the kubelet's httpGet would reach it."""
    code = f"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=5).status)"
    return int(podman("exec", container, "python", "-c", code).stdout.strip())


def test_chart_pods_start_answer_index_reindex_and_reconfigure(
    images: str, es_url: str, es_alias: str, redis_url: str, mlflow_url: str, tmp_path: Path
) -> None:
    from ragship.local.process import free_port

    ports = {"api": free_port(), "metrics": free_port()}
    objects = render(_values(es_url, es_alias, redis_url, mlflow_url, _spec_yaml(tmp_path, 3), ports), tmp_path)
    api = find(objects, "Deployment", "api")["spec"]["template"]["spec"]
    assert api["containers"][0]["image"] == f"ragship-query:{images}"  # the chart's default names
    assert api["securityContext"]["runAsUser"] == 1034
    assert api["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True

    # The reindex sources: the PersistentVolumeClaim the CronJob mounts is a podman volume of that name.
    podman("volume", "rm", "--force", SOURCES_VOLUME, check=False)
    podman("volume", "create", SOURCES_VOLUME)
    mountpoint = Path(podman("volume", "inspect", SOURCES_VOLUME, "--format", "{{.Mountpoint}}").stdout.strip())
    (mountpoint / "docs").mkdir()
    (mountpoint / "docs" / "kestrel.md").write_text("# Kestrels\n\nThe kestrel hovers over the meadow at noon.\n")

    pods_file = None
    try:
        started = time.monotonic()
        pods_file = _play(tmp_path, objects, "first")
        api_container = f"{API_POD}-api"
        wait_until("the API pod answers /readyz", lambda: _ready(ports["api"]), timeout_s=600, logs=api_container)
        start_to_ready_s = time.monotonic() - started

        # Run as the chart says: uid 1034, read-only root filesystem, in every container of the two pods.
        for pod in (API_POD, WORKER_POD):
            for c in containers(pod):
                assert c["State"] == "running", c
                info = json.loads(podman("inspect", c["Id"]).stdout)[0]
                assert info["HostConfig"]["ReadonlyRootfs"] is True
                assert "no-new-privileges" in info["HostConfig"]["SecurityOpt"]  # allowPrivilegeEscalation: false
                assert podman("exec", c["Id"], "id", "-u").stdout.strip() == "1034"
                # capabilities: drop ALL empties the bounding set (a non-root user has no effective ones anyway).
                bounding = podman("exec", c["Id"], "grep", "CapBnd", "/proc/self/status").stdout.split()
                assert bounding == ["CapBnd:", "0000000000000000"], bounding
        write = podman("exec", api_container, "touch", "/opt/ragship/x", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr

        # Every probe path of the API container answers inside the pod.
        probes = api["containers"][0]
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert _probe_inside(api_container, ports["api"], probes[probe]["httpGet"]["path"]) == 200, probe

        # A job submitted through the API pod is drained by the worker pod into Elasticsearch.
        base = f"http://127.0.0.1:{ports['api']}"
        doc = {"source": "birds/heron.md", "text": "# Herons\n\nThe grey heron stands still in the shallow river.\n"}
        status, accepted = http_json("POST", f"{base}/index/submit", {"documents": [doc]})
        assert status == 202, accepted

        def job_done() -> bool:
            _, job = http_json("GET", f"{base}/index/status?job_id={accepted['job_id']}")
            assert isinstance(job, dict) and job["status"] not in ("failed", "dead_lettered"), job
            return job["status"] == "done"

        wait_until("the worker pod indexes the submitted job", job_done, timeout_s=300, logs=f"{WORKER_POD}-worker")
        status, answer = http_json("POST", f"{base}/ask", {"question": "Where does the grey heron stand?"})
        assert status == 200, answer
        assert "[1]" in answer["answer"] and answer["sources"][0]["source"] == "birds/heron.md", answer
        assert len(answer["sources"]) <= 3

        # The reindex CronJob's pod template, run once as a pod: its run is in MLflow, its file in the store.
        reindex_pod = cronjob_pod(find(objects, "CronJob", "reindex"), REINDEX_POD)
        reindex_file = write_yaml(tmp_path / "reindex.yaml", reindex_pod)
        play(*configmap_args(objects, tmp_path, "reindex"), str(reindex_file))
        reindex_container = f"{REINDEX_POD}-reindex"

        def exited() -> bool:
            state = json.loads(podman("inspect", reindex_container).stdout)[0]["State"]
            return state["Status"] == "exited"

        wait_until("the reindex pod finishes", exited, timeout_s=600, every_s=3)
        logs = podman("logs", reindex_container)
        state = json.loads(podman("inspect", reindex_container).stdout)[0]["State"]
        assert state["ExitCode"] == 0, logs.stderr[-3000:]
        counts = json.loads(logs.stdout.strip().splitlines()[-1])
        assert counts["added"] == 1 and counts["failed"] == 0, counts
        import mlflow

        run = mlflow.MlflowClient(tracking_uri=mlflow_url).get_run(counts["run_id"])
        assert run.info.status == "FINISHED" and run.data.metrics["added"] == 1
        status, answer = http_json("POST", f"{base}/ask", {"question": "What hovers over the meadow?"})
        assert status == 200 and any(s["source"].endswith("kestrel.md") for s in answer["sources"]), answer
        podman("kube", "down", str(reindex_file))

        # A changed ConfigMap (the spec's top_k 3 -> 1) reaches the API pod after a re-play.
        changed = render(_values(es_url, es_alias, redis_url, mlflow_url, _spec_yaml(tmp_path, 1), ports), tmp_path)
        pods_file = _play(tmp_path, changed, "second")
        wait_until("the re-played API pod is ready", lambda: _ready(ports["api"]), timeout_s=600, logs=api_container)
        status, answer = http_json("POST", f"{base}/ask", {"question": "Which bird hovers or stands in water?"})
        assert status == 200 and len(answer["sources"]) == 1, answer
        print(json.dumps({"api_pod_start_to_ready_s": round(start_to_ready_s, 1)}))
    finally:
        if pods_file is not None:
            podman("kube", "down", str(pods_file), check=False)
        podman("pod", "rm", "--force", REINDEX_POD, check=False)
        # kube play keeps a volume per mounted ConfigMap (pods-spec) after kube down; so does the sources claim.
        for volume in [o["metadata"]["name"] for o in objects if o["kind"] == "ConfigMap"] + [SOURCES_VOLUME]:
            if podman("volume", "exists", volume, check=False).returncode == 0:
                podman("volume", "rm", "--force", volume)

    # Teardown leaves nothing: no pod, container or volume of the release.
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.split()
    pods = podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    volumes = podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
    left = [n for n in names + pods + volumes if n.startswith("pods-") or n == SOURCES_VOLUME]
    assert not left, left
