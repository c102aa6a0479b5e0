"""Traces across processes: a real `bentoml serve` (API, Embedder, Generator in their own processes), a real
`ragship worker` on a real Redis, exporting OTLP to a real MLflow server (its /v1/traces receiver), read back
through MLflow's API. One request is one trace; no key, header or (by default) question is on any span.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities import Span, Trace

from ragship.assembly import open_indexer
from ragship.local.process import free_port
from ragship.local.redis_server import LocalRedis
from ragship.serving.launch import bentoml_serve, serving
from ragship.settings import load_settings
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
API_KEY = "trace-key-" + uuid.uuid4().hex[:8]
WORD = "zebrafjord" + uuid.uuid4().hex[:4]

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Traced:
    url: str
    env: dict[str, str]
    mlflow: MlflowClient
    experiment_id: str
    home: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"x-api-key": API_KEY}, timeout=120)

    def trace_with(self, found: Callable[[list[Span]], bool], timeout_s: float = 90) -> Trace:
        """The trace whose spans satisfy ``found``, once its spans from every process have arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            for trace in self.mlflow.search_traces(locations=[self.experiment_id]):
                if found(trace.data.spans):
                    return trace
            assert time.monotonic() < deadline, "no such trace reached MLflow"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traced]:
    home = tmp_path_factory.mktemp("tracing-home")
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    mlflow_cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    mlflow_cmd += ["--backend-store-uri", f"sqlite:///{home / 'traces.db'}", "--default-artifact-root", str(home)]
    docs = home / "docs"
    docs.mkdir()
    (docs / "animals.md").write_text(f"# Animals\n\nThe {WORD} lives in cold northern fjords and eats krill.\n")
    (docs / "plants.md").write_text("# Plants\n\nMoss grows on the north side of stones.\n")
    settings = load_settings(home=home)
    spec = default_spec()
    assert open_indexer(spec, settings=settings).index([docs]).ok
    broker = LocalRedis(settings.local_redis, home=home)
    try:
        with serving(
            mlflow_cmd, env=dict(os.environ), log=home / "mlflow.log", cwd=home, url=receiver, ready_path="/health"
        ):
            client = MlflowClient(receiver)
            experiment_id = client.create_experiment("ragship-traces")
            env = {
                **os.environ,
                "RAGSHIP_HOME": str(home),
                "RAGSHIP_SERVING__SPEC": str(spec.save(home / "spec.yaml")),
                "RAGSHIP_SERVING__API_KEY": API_KEY,
                "RAGSHIP_SERVING__QUERY_MODELS": "service",  # queries embedded in the Embedder's process
                "RAGSHIP_QUEUE__URL": broker.start(port=0),
                "RAGSHIP_WORKER__METRICS_PORT": "0",
                "RAGSHIP_TRACING__ENDPOINT": f"{receiver}/v1/traces",
                "RAGSHIP_TRACING__HEADERS": f'{{"x-mlflow-experiment-id": "{experiment_id}"}}',
                "OTEL_BSP_SCHEDULE_DELAY": "200",  # export within a fraction of a second (default 5 s)
                "BENTOML_HOME": str(home / "bentoml"),
                "BENTOML_DO_NOT_TRACK": "True",
                "HF_HUB_OFFLINE": "1",
            }
            with bentoml_serve("bentos.query:RAG", env=env, log=home / "serve.log", cwd=REPO, timeout_s=600) as url:
                yield Traced(url, env, client, experiment_id, home)
    finally:
        broker.remove()


def _names(spans: list[Span]) -> list[str]:
    return [s.name for s in spans]


def _components(spans: list[Span]) -> dict[str, str]:
    """Component name -> type of the Haystack component spans."""
    return {
        s.attributes["haystack.component.name"]: s.attributes["haystack.component.type"]
        for s in spans
        if s.name == "haystack.component.run"
    }


def _assert_no_secret(spans: list[Span], *secrets: str) -> None:
    for span in spans:
        for key, value in span.attributes.items():
            assert "authorization" not in key.lower() and "api-key" not in key.lower(), (span.name, key)
            assert "api_key" not in key.lower(), (span.name, key)
            for secret in secrets:
                assert secret not in str(value), (span.name, key)


def test_one_ask_is_one_trace_across_the_api_and_the_embedder(traced: Traced) -> None:
    question = f"Where does the {WORD} live?"
    with httpx.Client(base_url=traced.url, timeout=120) as http:  # the key as a bearer token this time
        answer = http.post("/ask", json={"question": question}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["sources"][0]["source"].endswith("animals.md")

    trace = traced.trace_with(
        lambda spans: (
            any(n.startswith("POST /ask") for n in _names(spans))
            and any("/embed_queries" in n for n in _names(spans))
            and any(c.endswith("Retriever") for c in _components(spans).values())
        )
    )
    spans = trace.data.spans
    root = [s for s in spans if s.parent_id is None]
    assert [s.name for s in root] == ["POST /ask"], _names(spans)  # one trace: the API route is its root
    by_id = {s.span_id: s for s in spans}
    embedder = next(s for s in spans if s.name.startswith("POST /embed_queries"))

    def ancestors(span: Span) -> list[str]:
        chain = []
        while span.parent_id is not None:
            span = by_id[span.parent_id]
            chain.append(span.name)
        return chain

    # The Embedder's route span (another process) hangs under the API's query embedder component.
    assert "haystack.component.run" in ancestors(embedder) and ancestors(embedder)[-1] == "POST /ask"
    assert {"bm25", "embedding"} <= {
        c.removeprefix("Store").removesuffix("Retriever").lower()
        for c in _components(spans).values()
        if c.endswith("Retriever")
    }, _components(spans)
    _assert_no_secret(spans, API_KEY, question, WORD)


def test_a_queued_job_is_one_trace_from_submit_to_the_write(traced: Traced) -> None:
    text = f"# Birds\n\nThe {WORD} heron nests on {uuid.uuid4().hex[:6]} cliffs."
    worker = subprocess.Popen(
        [str(BIN / "ragship"), "worker", "--processes", "1", "--threads", "1"],
        env=traced.env,
        stdout=(traced.home / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        with traced.client() as http:
            submitted = http.post("/index/submit", json={"documents": [{"source": "birds.md", "text": text}]})
            assert submitted.status_code == 202, submitted.text
            job_id = submitted.json()["job_id"]
            deadline = time.monotonic() + 240
            while (status := http.get("/index/status", params={"job_id": job_id}).json())["status"] != "done":
                assert status["status"] in {"queued", "running"} and time.monotonic() < deadline, status
                time.sleep(0.5)

        def whole(spans: list[Span]) -> bool:
            jobs = [s for s in spans if s.name.startswith("job ")]
            return bool(jobs) and jobs[0].attributes.get("ragship.job_id") == job_id and "writer" in _components(spans)

        spans = traced.trace_with(whole).data.spans
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=120)
    names = _names(spans)
    assert [s.name for s in spans if s.parent_id is None] == ["POST /index/submit"], names
    assert "queue submit" in names
    assert _components(spans)["writer"].endswith("Writer")
    _assert_no_secret(spans, API_KEY, text, WORD)
