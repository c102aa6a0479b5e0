"""One `bentoml serve` of the default spec over the project's docs, as several benchmarks set it up."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ragship.serving.launch import bentoml_serve

REPO = Path(__file__).resolve().parents[1]
RAGSHIP = str(Path(sys.executable).parent / "ragship")


@contextmanager
def docs_service(work: Path) -> Iterator[str]:
    """Index docs/ + README.md into ``work``/store and serve ``bentos.query:RAG`` over it; yields its URL."""
    store = str(work / "store")
    env = {**os.environ, "RAGSHIP_HOME": str(work), "RAGSHIP_STORE": store, "HF_HUB_OFFLINE": "1"}
    env["BENTOML_HOME"] = str(work / "bentoml")
    subprocess.run([RAGSHIP, "sync", "docs", "README.md", "--store", store], cwd=REPO, env=env, check=True)
    with bentoml_serve("bentos.query:RAG", env=env, log=work / "rag.log", cwd=REPO) as url:
        yield url
