"""Cluster-test fixtures: the built binaries, a started control plane, the chart installed into it.

Run with ``make test-cluster`` (the default ``make test`` deselects the ``cluster`` marker)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from cluster_harness import BUILD, RESULTS, ControlPlane, control_plane


@pytest.fixture(scope="session")
def binaries() -> dict[str, str]:
    """Paths of etcd, kube-apiserver, kube-controller-manager, KEDA (built once, then cached) and helm
    (`make k8s-tools`)."""
    if os.geteuid() != 0:
        pytest.fail("the cluster test creates a network namespace: run it as root")
    result = subprocess.run([sys.executable, str(BUILD)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"building the control plane failed:\n{result.stderr[-4000:]}")
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="session")
def plane(binaries: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """A running control plane; every process is stopped and the network namespace deleted afterwards."""
    start = time.monotonic()
    with control_plane(binaries, tmp_path_factory.mktemp("cluster")) as started:
        started.timings["control plane total"] = round(time.monotonic() - start, 1)
        yield started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "startup-times.json").write_text(json.dumps(started.timings, indent=2) + "\n")
