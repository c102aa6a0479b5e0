"""Quality metrics and the shadow challenger on a real `bentoml serve`, logging to a real MLflow server.

The champion retrieves with BM25 only (a question in no document's words finds nothing); the challenger is
the hybrid default spec, shadowing every question (sampling 1.0) over the same embedded store (the
session's ``docs_store``, which it indexed).
"""

from __future__ import annotations

import os
import re
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ragship.local.process import free_port
from ragship.serving.launch import bentoml_serve, serving
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
MLFLOW = str(Path(sys.executable).parent / "mlflow")
QUESTION = "How do I run the tests?"
# In no document's words: BM25 finds nothing, and the answer says so.
UNKNOWN = "Qwzx vroomplank zyggurath fnordle?"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Live:
    url: str
    tracking_uri: str
    log: Path
    env: dict[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=30).text


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, docs_store: str) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live-home")
    champion = default_spec(mode="bm25")
    champion.name = "bm25-champion"
    challenger = default_spec()
    challenger.name = "hybrid-challenger"
    port = free_port()
    tracking = f"http://127.0.0.1:{port}"
    mlflow_cmd = [
        MLFLOW,
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--backend-store-uri",
        f"sqlite:///{home / 'mlflow.db'}",
        "--default-artifact-root",
        str(home / "artifacts"),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": docs_store,
        "RAGSHIP_SERVING__SPEC": str(champion.save(home / "champion.yaml")),
        "RAGSHIP_SERVING__QUERY_MODELS": "api",
        "RAGSHIP_SERVING__WORKERS": "1",
        "RAGSHIP_MLFLOW__TRACKING_URI": tracking,
        "RAGSHIP_SHADOW__ENABLED": "true",
        "RAGSHIP_SHADOW__SAMPLE_RATIO": "1.0",
        "RAGSHIP_SHADOW__CHALLENGER": str(challenger.save(home / "challenger.yaml")),
        "RAGSHIP_SHADOW__EXPERIMENT": f"shadow-{uuid.uuid4().hex[:6]}",
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    with serving(mlflow_cmd, env=env, log=home / "mlflow.log", cwd=home, url=tracking, ready_path="/health"):
        log = home / "serve.log"
        with bentoml_serve("bentos.query:RAG", env=env, log=log, cwd=REPO, timeout_s=480) as url:
            yield Live(url=url, tracking_uri=tracking, log=log, env=env)


def _wait_for(check, timeout_s: float = 60, explain=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out; {explain()}"
        time.sleep(0.5)


def test_questions_move_the_quality_counters_and_never_reach_metrics(live: Live) -> None:
    spec = "bm25-champion"
    before = live.metrics()
    with live.client() as client:
        answer = client.post("/ask", json={"question": QUESTION}).json()
        assert answer["sources"] and "[1]" in answer["answer"]
        nothing = client.post("/ask", json={"question": UNKNOWN}).json()
        assert nothing["sources"] == []
        assert client.post("/retrieve", json={"question": QUESTION}).json()["documents"]
        chat = client.post(
            "/v1/chat/completions", json={"model": "ragship", "messages": [{"role": "user", "content": QUESTION}]}
        )
        assert chat.status_code == 200
        rated = client.post("/feedback", json={"rating": "down", "question": QUESTION, "answer": answer["answer"]})
        assert rated.status_code == 200
    after = live.metrics()

    def delta(name: str, **labels: str) -> float:
        return sample(after, name, spec=spec, **labels) - sample(before, name, spec=spec, **labels)

    assert delta("ragship_questions_total", route="/ask") == 2
    assert delta("ragship_questions_without_sources_total", route="/ask") == 1
    assert delta("ragship_answers_found_nothing_total", route="/ask") == 1
    assert delta("ragship_answers_citing_total", route="/ask") == 1
    assert delta("ragship_answer_chars_count", route="/ask") == 2
    assert delta("ragship_retrieval_top_score_count", route="/ask") == 1  # the empty one has no score
    assert delta("ragship_questions_total", route="/retrieve") == 1
    assert delta("ragship_questions_without_sources_total", route="/retrieve") == 0
    assert delta("ragship_questions_total", route="/v1/chat/completions") == 1
    assert delta("ragship_feedback_total", rating="down") == 1
    assert delta("ragship_feedback_total", rating="up") == 0
    assert QUESTION not in after and "vroomplank" not in after


def test_the_challenger_shadows_every_question_without_touching_the_answer(live: Live) -> None:
    from mlflow import MlflowClient

    questions = ["How do I run the tests?", "What does the promotion gate compare?", "How is the API key sent?"]
    before = live.metrics()
    done = sample(before, "ragship_shadow_runs_total", outcome="done")

    def shadows() -> str:
        return "\n".join(line for line in live.metrics().splitlines() if line.startswith("ragship_shadow_runs_total"))

    with live.client() as client:
        for n, q in enumerate(questions, 1):
            response = client.post("/ask", json={"question": q})
            assert response.status_code == 200 and response.json()["sources"]
            # One at a time: a question that finds every shadow slot busy is skipped by design (never queued),
            # and the challenger (hybrid) loads its query embedder on its first question, in the background.
            _wait_for(
                lambda n=n: sample(live.metrics(), "ragship_shadow_runs_total", outcome="done") >= done + n,
                timeout_s=300,
                explain=shadows,
            )
    after = live.metrics()
    assert sample(after, "ragship_shadow_runs_total", outcome="failed") == 0
    ran = sample(after, "ragship_shadow_runs_total", outcome="done") - done
    assert ran >= len(questions)
    overlaps = sample(after, "ragship_shadow_source_overlap_count") - sample(
        before, "ragship_shadow_source_overlap_count"
    )
    assert overlaps == ran  # one overlap per challenger run
    for role in ("champion", "challenger"):
        count = sample(after, "ragship_shadow_latency_seconds_count", role=role)
        assert count - sample(before, "ragship_shadow_latency_seconds_count", role=role) == ran
        assert sample(after, "ragship_shadow_latency_seconds_sum", role=role) > 0

    client = MlflowClient(tracking_uri=live.tracking_uri)
    runs = client.search_runs(
        [e.experiment_id for e in client.search_experiments() if e.name.startswith("shadow-")],
        filter_string="tags.`ragship.kind` = 'shadow'",
    )
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["ragship.challenger_spec"] == "hybrid-challenger"
    history = client.get_metric_history(run.info.run_id, "source_overlap")
    assert len(history) >= len(questions)
    assert all(0.0 <= m.value <= 1.0 for m in history)
    assert len(client.get_metric_history(run.info.run_id, "challenger_latency_s")) == len(history)


def test_shadow_report_and_promote_show_the_live_comparison(live: Live, cli) -> None:
    import json

    from mlflow import MlflowClient

    from ragship.observability.shadow_report import live_comparison
    from ragship.settings import load_settings
    from ragship.spec import load_spec

    result = cli("shadow", "report", "--json", env=live.env)
    assert result.returncode == 0, result.stderr
    [summary] = json.loads(result.stdout)
    assert summary["champion"] == "bm25-champion" and summary["challenger"] == "hybrid-challenger"
    assert summary["questions"] >= 3
    assert 0.0 <= summary["source_overlap_mean"] <= 1.0 and summary["challenger_p50_s"] > 0
    table = cli("shadow", "report", env=live.env)
    assert "source overlap" in table.stdout and "hybrid-challenger" in table.stdout

    # `ragship promote` prints this beside the offline metric for an evaluation run of the challenger's spec.
    settings = load_settings(
        mlflow={"tracking_uri": live.tracking_uri}, shadow={"experiment": live.env["RAGSHIP_SHADOW__EXPERIMENT"]}
    )
    challenger = load_spec(live.env["RAGSHIP_SHADOW__CHALLENGER"])
    client = MlflowClient(tracking_uri=live.tracking_uri)
    experiment = client.create_experiment(f"eval-{uuid.uuid4().hex[:6]}")
    run = client.create_run(experiment)
    client.log_param(run.info.run_id, "spec_hash", challenger.hash)
    assert live_comparison(run.info.run_id, settings).questions == summary["questions"]
    other = client.create_run(experiment)
    client.log_param(other.info.run_id, "spec_hash", "not-shadowed")
    assert live_comparison(other.info.run_id, settings) is None
