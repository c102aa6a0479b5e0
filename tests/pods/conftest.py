"""Fixtures of `make test-pods`: the images (`make images`), helm (`make k8s-tools`), and the real services
the chart's pods talk to on loopback: Elasticsearch (the session's node), Redis and an MLflow server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pods_helpers import HELM, podman, wait_until


@pytest.fixture(scope="module")
def images() -> str:
    """The package version the images are tagged with; fails when `make images` has not built them."""
    from importlib.metadata import version

    tag = version("ragship")
    if shutil.which("podman") is None or not HELM.exists():
        pytest.fail("podman or helm missing: run `make images k8s-tools` (or `make test-pods`)")
    for repository in ("ragship-query", "ragship-indexing"):
        if podman("image", "exists", f"localhost/{repository}:{tag}", check=False).returncode != 0:
            pytest.fail(f"no image localhost/{repository}:{tag}: run `make images`")
    return tag


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's redis-server on 127.0.0.1 (the queue's broker and job state)."""
    from ragship.local.redis_server import LocalRedis
    from ragship.settings import load_settings

    server = LocalRedis(load_settings().local_redis, home=tmp_path_factory.mktemp("redis-home"))
    url = server.start(port=0)
    yield url
    server.stop()


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An MLflow tracking server on 127.0.0.1 that serves artifacts (the reindex pod uploads to it)."""
    from ragship.local.process import free_port

    home = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    proc = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}", "--artifacts-destination", str(home / "artifacts")],
        stdout=(home / "log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                return answer.status == 200
        except OSError:
            assert proc.poll() is None, (home / "log").read_text()[-3000:]
            return False

    wait_until("MLflow server answers /health", healthy, timeout_s=120)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
