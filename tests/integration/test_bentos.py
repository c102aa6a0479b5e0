"""Packaging, run the way a new user runs it: `make run` serves the page over the embedded store, `make bento`
builds both bentos offline, and a built bento serves answers.

Every command here runs under ``bare_path``: the system's folders plus failing stand-ins for uv, pip, python,
bentoml and friends. Whatever these commands need must come from the project's own files (the Makefile, the
locked environment), never from a tool that happens to be on a developer's PATH.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ragship.serving.launch import BENTOML, bentoml_serve, free_port, serving

REPO = Path(__file__).resolve().parents[2]
QUESTION = "How do I run the tests?"
# Any attempt to reach the network goes to a closed port: the build must not need one.
OFFLINE = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "ALL_PROXY": "http://127.0.0.1:9"}
BENTOS = {"ragship-query": "query", "ragship-indexing": "indexing"}

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _answers(url: str) -> dict[str, object]:
    response = httpx.post(f"{url}/ask", json={"question": QUESTION}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["answer"]
    cited = [s for s in body["sources"] if f"[{s['citation']}]" in body["answer"]]
    assert any(s["source"] == "docs/testing.md" for s in cited), body
    return body


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, bare_path: str) -> Iterator[dict[str, str]]:
    home = tmp_path_factory.mktemp("bento-home")
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RAGSHIP_", "VIRTUAL_ENV", "MAKE"))},
        "PATH": bare_path,
        "RAGSHIP_HOME": str(home / "ragship"),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    yield environment
    shutil.rmtree(home, ignore_errors=True)


def test_make_run_indexes_the_docs_and_serves_the_page(env: dict[str, str]) -> None:
    make = shutil.which("make", path=env["PATH"])
    if make is None:
        pytest.skip("make is not installed")
    port = free_port()
    store = Path(env["RAGSHIP_HOME"]) / "store"
    log = Path(env["BENTOML_HOME"]).parent / "make-run.log"
    command = [make, "run", f"PORT={port}", f"STORE={store}"]
    run = {**env, "RAGSHIP_TEST_RUN": uuid.uuid4().hex}
    with serving(command, env=run, log=log, cwd=REPO, url=f"http://127.0.0.1:{port}") as url:
        page = httpx.get(url, timeout=10)
        assert page.status_code == 200 and "<title>ragship" in page.text
        _answers(url)
        _only_the_supervisor_and_the_api_run(f"RAGSHIP_TEST_RUN={run['RAGSHIP_TEST_RUN']}")
    assert "added" in log.read_text()  # the docs went through the incremental sync first


def _only_the_supervisor_and_the_api_run(marker: str) -> None:
    """On a CPU host with the extractive default, nobody calls the Embedder or the Generator: `make run` starts
    neither, and BentoML's supervisor holds no torch (it reads the services' definitions only)."""
    processes: dict[int, str] = {}
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "environ").read_bytes().split(b"\0"):
                processes[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone, or not ours
            continue
    services = [cmd.split("--service-name ")[1].split()[0] for cmd in processes.values() if "--service-name " in cmd]
    assert services == ["ragship"], processes
    supervisors = [pid for pid, cmd in processes.items() if "bentoml serve" in cmd]
    assert len(supervisors) == 1, processes
    assert "libtorch" not in (Path("/proc") / str(supervisors[0]) / "maps").read_text()


def test_make_bento_builds_both_bentos_offline(env: dict[str, str]) -> None:
    make = shutil.which("make", path=env["PATH"])
    if make is None:
        pytest.skip("make is not installed")
    result = subprocess.run(
        [make, "bento"], cwd=REPO, env={**env, **OFFLINE}, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "decoy" not in result.stdout + result.stderr
    for name, role in BENTOS.items():
        listed = subprocess.run([BENTOML, "list", name], env=env, capture_output=True, text=True, timeout=120)
        assert name in listed.stdout, listed.stderr
        bento_src = next((Path(env["BENTOML_HOME"]) / "bentos" / name).glob("*/src"))
        assert (bento_src / "src" / "ragship" / "serving" / "static" / "index.html").is_file()
        requirements = (bento_src.parent / "env" / "python" / "requirements.txt").read_text()
        assert "bentoml==" in requirements and "haystack-ai==" in requirements
        assert f"role: {role}" in (bento_src.parent / "bento.yaml").read_text()


def test_bentoml_build_needs_nothing_on_path(env: dict[str, str]) -> None:
    """Ops run `bentoml build` straight from the environment; with no uv on PATH BentoML falls back to the
    locked uv package of that environment (a decoy uv first on PATH would be the user's own choice)."""
    result = subprocess.run(
        [BENTOML, "build", "-f", "bentos/indexing/bentofile.yaml", "--output", "tag", "."],
        cwd=REPO,
        env={**env, **OFFLINE, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1].startswith("__tag__:ragship-indexing:")


def test_the_built_query_bento_serves_answers(env: dict[str, str]) -> None:
    # Uses the store `make run` indexed and the bento `make bento` built (tests run in file order).
    store = Path(env["RAGSHIP_HOME"]) / "store"
    assert store.exists(), "run with test_make_run_indexes_the_docs_and_serves_the_page"
    log = Path(env["BENTOML_HOME"]).parent / "bento-serve.log"
    with bentoml_serve("ragship-query:latest", env={**env, "RAGSHIP_STORE": str(store)}, log=log, cwd=REPO) as url:
        _answers(url)
        _concurrent_questions_get_their_own_results(url)
    assert "decoy" not in log.read_text()
    assert "query embedder and cross-encoder run in this process" in log.read_text()  # the CPU default


def _concurrent_questions_get_their_own_results(url: str) -> None:
    """On a CPU host the API encodes concurrent questions in shared batches: each still gets its own ranking."""
    questions = [
        "How do I run the tests?",
        "Where does the embedded store keep its data?",
        "How do I start a local Elasticsearch node?",
        "What does the reindex notebook do?",
        "How are indexing workers scaled on Kubernetes?",
        "Which metrics does the query API export?",
        "How is a spec promoted to champion?",
        "What does ragship plan print?",
    ] * 2

    def top(question: str) -> str:
        response = httpx.post(f"{url}/retrieve", json={"question": question, "top_k": 1}, timeout=120)
        assert response.status_code == 200, response.text
        return str(response.json()["documents"][0]["id"])

    alone = [top(q) for q in questions]
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(questions)) as pool:
        together = list(pool.map(top, questions))
    assert together == alone
    assert len(set(alone)) > 3  # distinct questions, distinct answers: a mix-up between callers would show
