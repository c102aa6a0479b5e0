"""The serving edges without a server: auth and size guard, input validation, remote stand-ins, packaging."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from haystack.dataclasses import ChatMessage, StreamingChunk
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ragship.components.remote import (
    RemoteChatGenerator,
    RemoteEmbeddingBackend,
    chat_generator_names,
    with_remote_generators,
)
from ragship.errors import ModelError, ModelServiceUnavailableError
from ragship.serving.http import GetAsPost, RequestGuard, http_errors, with_status
from ragship.serving.index_jobs import IndexDocument
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.unit


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


def _guarded(**options: Any) -> TestClient:
    app = Starlette(routes=[Route("/ask", _echo, methods=["POST"]), Route("/healthz", _echo, methods=["GET"])])
    return TestClient(RequestGuard(app, **options))


def test_guard_requires_the_key_except_on_public_paths() -> None:
    client = _guarded(api_key="s3cret", header="x-api-key", max_bytes=1024)
    missing = client.post("/ask", json={})
    wrong = client.post("/ask", json={}, headers={"x-api-key": "nope"})
    assert (missing.status_code, wrong.status_code) == (401, 401)
    assert "missing" in missing.json()["error"] and "wrong" in wrong.json()["error"]
    assert client.post("/ask", json={}, headers={"x-api-key": "s3cret"}).status_code == 200
    assert client.get("/healthz").status_code == 200


def test_guard_takes_a_bearer_key_and_answers_openai_routes_in_openai_errors() -> None:
    app = Starlette(
        routes=[Route("/ask", _echo, methods=["POST"]), Route("/v1/chat/completions", _echo, methods=["POST"])]
    )
    client = TestClient(RequestGuard(app, api_key="s3cret", header="x-api-key", max_bytes=1024))
    assert client.post("/ask", json={}, headers={"authorization": "Bearer s3cret"}).status_code == 200
    assert client.post("/ask", json={}, headers={"authorization": "Basic s3cret"}).status_code == 401
    wrong = client.post("/v1/chat/completions", json={}, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["type"] == "authentication_error" and "Bearer" in wrong.json()["error"]["message"]
    big = client.post("/v1/chat/completions", content=b"x" * 2048, headers={"authorization": "Bearer s3cret"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "request_too_large"
    assert isinstance(client.post("/ask", content=b"x" * 2048, headers={"x-api-key": "s3cret"}).json()["error"], str)


def test_guard_without_a_key_lets_everyone_in() -> None:
    assert _guarded(api_key=None).post("/ask", json={}).status_code == 200


def test_guard_refuses_bodies_over_the_limit_announced_or_chunked() -> None:
    client = _guarded(max_bytes=1024)
    assert client.post("/ask", content=b"x" * 1000).json() == {"bytes": 1000}
    announced = client.post("/ask", content=b"x" * 2000)
    chunked = client.post("/ask", content=iter([b"x" * 600, b"x" * 600]))
    assert announced.status_code == 413 and chunked.status_code == 413
    assert "1,024-byte limit" in announced.json()["error"]


def test_a_get_with_a_query_reaches_a_post_method_as_its_json_body() -> None:
    client = TestClient(GetAsPost(Starlette(routes=[Route("/ask", _echo_json, methods=["POST"])]), paths=["/ask"]))
    assert client.get("/ask", params={"job_id": "j-1"}).json() == {"job_id": "j-1"}
    assert client.get("/ask").json() == {}
    assert client.post("/ask", json={"job_id": "posted"}).json() == {"job_id": "posted"}


async def _echo_json(request: Request) -> JSONResponse:
    return JSONResponse(json.loads(await request.body()))


def test_with_status_answers_results_with_it_and_errors_with_their_own() -> None:
    from ragship.errors import InvalidRequestError

    @with_status(202)
    @http_errors
    def accept(ok: bool) -> dict[str, str]:
        if not ok:
            raise InvalidRequestError("Not ok.")
        return {"job_id": "j-1"}

    accepted, refused = accept(True), accept(False)
    assert isinstance(accepted, JSONResponse) and isinstance(refused, JSONResponse)
    assert (accepted.status_code, json.loads(accepted.body)) == (202, {"job_id": "j-1"})
    assert (refused.status_code, json.loads(refused.body)) == (400, {"error": "Not ok."})


def test_index_documents_take_text_or_base64_bytes_never_both() -> None:
    assert IndexDocument(source="notes/a.md", text="hi").content() == b"hi"
    pdf = base64.b64encode(b"%PDF-1.4").decode()
    assert IndexDocument(source="x.pdf", content_base64=pdf).content() == b"%PDF-1.4"
    for bad in (
        {"source": "a.md"},
        {"source": "a.md", "text": "x", "content_base64": pdf},
        {"source": "a.md", "content_base64": "***"},
        {"source": "noextension", "text": "x"},
    ):
        with pytest.raises(ValidationError):
            IndexDocument(**bad)


class OverloadedError(Exception):
    error_code = 503


def test_remote_embedding_backend_checks_the_count_and_retries_overload() -> None:
    calls: list[int] = []

    def flaky(texts: list[str]) -> list[list[float]]:
        calls.append(len(texts))
        if len(calls) == 1:
            raise OverloadedError("process is overloaded")
        return [[1.0, 2.0] for _ in texts]

    assert RemoteEmbeddingBackend(flaky).embed(["a", "b"]) == [[1.0, 2.0], [1.0, 2.0]]
    assert calls == [2, 2]
    with pytest.raises(ModelError, match="1 vectors for 2 texts"):
        RemoteEmbeddingBackend(lambda texts: [[0.0]]).embed(["a", "b"])

    def down(texts: list[str]) -> list[list[float]]:
        raise OverloadedError("process is overloaded")

    with pytest.raises(ModelServiceUnavailableError, match="embedding service failed"):
        RemoteEmbeddingBackend(down).embed(["a"])


def test_remote_chat_generator_streams_pieces_and_returns_the_whole_reply() -> None:
    generator = RemoteChatGenerator(served_type="x.OpenAIChatGenerator")
    sent: list[dict[str, Any] | None] = []
    generator.generate = lambda messages, kwargs: sent.append(kwargs) or "whole " + messages[-1]["content"][0]["text"]
    generator.stream = lambda messages, kwargs: sent.append(kwargs) or iter(["Run ", "make ", "test [1]"])
    question = [ChatMessage.from_user("q?")]
    assert generator.run(question)["replies"][0].text == "whole q?"
    chunks: list[StreamingChunk] = []
    limits = {"max_completion_tokens": 5}
    reply = generator.run(question, streaming_callback=chunks.append, generation_kwargs=limits)["replies"][0]
    assert [c.content for c in chunks] == ["Run ", "make ", "test [1]"]
    assert reply.text == "Run make test [1]"
    assert sent == [None, limits]  # the run's generation_kwargs travel to the Generator service

    # The Generator service's `reply`: the text with the LLM server's token counts, kept in the reply's meta
    usage = {"prompt_tokens": 300, "completion_tokens": 6, "total_tokens": 306}
    generator.generate = lambda messages, kwargs: {"text": "Run make test [1]", "usage": usage}
    counted = generator.run(question)["replies"][0]
    assert counted.text == "Run make test [1]" and counted.meta == {"usage": usage}
    generator.generate = lambda messages, kwargs: {"text": "no counts", "usage": None}
    assert generator.run(question)["replies"][0].meta == {}


def test_only_chat_generators_are_replaced_by_stand_ins() -> None:
    extractive = default_spec()
    assert chat_generator_names(extractive.query) == []
    assert with_remote_generators(extractive.query) is extractive.query
    llm = default_spec(generator="openai")
    replaced = with_remote_generators(llm.query)
    assert chat_generator_names(llm.query) == ["llm"]
    assert replaced["components"]["llm"]["type"] == "ragship.components.remote.RemoteChatGenerator"
    assert replaced["components"]["llm"]["init_parameters"]["served_type"].endswith("OpenAIChatGenerator")
    assert replaced["connections"] == llm.query["connections"]
    assert llm.query["components"]["llm"]["type"].endswith("OpenAIChatGenerator")  # the spec itself is untouched


def test_bento_requirements_match_the_lock_file() -> None:
    locked = {p["name"]: p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    pinned = dict(
        re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line).groups()  # type: ignore[union-attr]
        for line in (REPO / "bentos" / "requirements.txt").read_text().splitlines()
        if line and not line.startswith(("#", " "))
    )
    assert {"bentoml", "haystack-ai", "torch", "elasticsearch"} <= pinned.keys()
    stale = {name: (version, locked.get(name)) for name, version in pinned.items() if locked.get(name) != version}
    assert not stale, f"bentos/requirements.txt is out of date with uv.lock ({stale}): run `make bento-requirements`"


def test_served_spec_prefers_the_serving_setting_then_falls_back_to_the_default(tmp_path: Path) -> None:
    from ragship.assembly import served_spec
    from ragship.settings import load_settings

    custom = default_spec(split_length=99)
    path = custom.save(tmp_path / "custom.yaml")
    spec, origin = served_spec(load_settings(home=tmp_path, serving={"spec": str(path)}))
    assert spec.hash == custom.hash and origin == str(path)
    # no tracking database yet: no champion to look for, and none is created as a side effect
    spec, origin = served_spec(load_settings(home=tmp_path))
    assert spec.hash == default_spec().hash and origin == "built-in default spec"
    assert not (tmp_path / "mlflow.db").exists()


def test_query_models_run_in_the_api_on_a_cpu_host_unless_set_or_deployed_apart_with_one_torch_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ragship.serving.common import query_models_in_api
    from ragship.settings import get_settings

    cases = [
        ({"RAGSHIP_DEVICE": "cpu"}, True),  # auto, no GPU to use: one process, no HTTP hop
        ({"RAGSHIP_DEVICE": "cpu", "RAGSHIP_SERVING__EMBEDDER_URL": "http://embedder:3000"}, False),
        ({"RAGSHIP_SERVING__QUERY_MODELS": "service"}, False),
        ({"RAGSHIP_SERVING__QUERY_MODELS": "api", "RAGSHIP_SERVING__EMBEDDER_URL": "http://embedder:3000"}, True),
    ]
    for env, in_api in cases:
        for name in ("RAGSHIP_DEVICE", "RAGSHIP_SERVING__EMBEDDER_URL", "RAGSHIP_SERVING__QUERY_MODELS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        assert query_models_in_api() is in_api, env
    import torch

    from ragship.serving.common import limit_compute_threads

    before = torch.get_num_threads()
    limit_compute_threads(None)  # unset: torch's own default stays
    assert torch.get_num_threads() == before
    from threadpoolctl import threadpool_info, threadpool_limits

    blas_before = threadpool_limits(limits=None)  # records the current limits, changes nothing
    limit_compute_threads(1)
    assert torch.get_num_threads() == 1
    assert {pool["num_threads"] for pool in threadpool_info()} == {1}  # numpy's BLAS too (dense search)
    torch.set_num_threads(before)
    blas_before.restore_original_limits()
    monkeypatch.setenv("RAGSHIP_SERVING__QUERY_MODELS", "gpu")
    get_settings.cache_clear()
    with pytest.raises(Exception, match="query_models"):
        get_settings()
    monkeypatch.undo()
    get_settings.cache_clear()


# The services' dependency wiring, in a fresh interpreter: the URLs are read when the service modules are
# imported (BentoML decides at import which services `bentoml serve` starts).
_WIRING = """
import importlib, json, os
from ragship.settings import get_settings
import ragship.serving.rag as rag, ragship.serving.indexing_service as indexing

def wiring():
    return {
        "rag": {name: dep.url for name, dep in rag.RAG.dependencies.items()},
        "indexing": {name: dep.url for name, dep in indexing.Indexing.dependencies.items()},
        "started_by_serve": sorted(rag.RAG.all_services(exclude_urls=True)),
    }

remote = wiring()
for name in ("RAGSHIP_SERVING__EMBEDDER_URL", "RAGSHIP_SERVING__GENERATOR_URL"):
    os.environ.pop(name)
os.environ["RAGSHIP_SERVING__QUERY_MODELS"] = "service"  # the GPU layout on one machine
get_settings.cache_clear()
rag, indexing = importlib.reload(rag), importlib.reload(indexing)
print(json.dumps({"remote": remote, "local": wiring()}))
"""


@pytest.mark.slow
def test_service_urls_make_the_api_call_separate_embedder_and_generator_deployments(tmp_path: Path) -> None:
    from ragship.spec import default_spec

    env = {
        **os.environ,
        "RAGSHIP_HOME": str(tmp_path),
        # a spec with an LLM: the Generator is a dependency (an extractive one has none, tests/unit/test_topology.py)
        "RAGSHIP_SERVING__SPEC": str(default_spec(generator="openai").save(tmp_path / "llm.yaml")),
        "RAGSHIP_SERVING__EMBEDDER_URL": "http://rel-embedder:3000",
        "RAGSHIP_SERVING__GENERATOR_URL": "http://rel-generator:3000",
    }
    done = subprocess.run([sys.executable, "-c", _WIRING], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    wiring = json.loads(done.stdout.strip().splitlines()[-1])
    assert wiring["remote"] == {
        "rag": {"embedder": "http://rel-embedder:3000", "generator": "http://rel-generator:3000"},
        "indexing": {"embedder": "http://rel-embedder:3000"},
        "started_by_serve": ["ragship"],  # only the API runs in its pod
    }
    # unset, query models in the Embedder (`bentoml serve bentos.query:RAG` on one GPU machine): all three start
    assert wiring["local"] == {
        "rag": {"embedder": None, "generator": None},
        "indexing": {"embedder": None},
        "started_by_serve": ["ragship", "ragship-embedder", "ragship-generator"],
    }


@pytest.mark.parametrize("url", ["http://embedder:3000/embed_queries", "embedder:3000", "ftp://embedder"])
def test_service_urls_must_be_bare_http_origins(url: str) -> None:
    from ragship.errors import ConfigError
    from ragship.settings import load_settings

    with pytest.raises(ConfigError, match=r"serving\.embedder_url"):
        load_settings(serving={"embedder_url": url})


def test_the_api_encodes_questions_with_the_pipelines_own_embedder_in_batches() -> None:
    import threading

    import numpy as np

    from ragship.pipelines import load_pipeline
    from ragship.serving.batching import CoalescedBackend, coalesce_query_embedders
    from ragship.spec import default_spec

    spec = default_spec()
    questions = ["How do I run the tests?", "Where is the store kept?", "What is RM3?"]
    plain = load_pipeline(spec.query, "query").get_component("query_embedder")
    plain.warm_up()
    expected = [plain.run(text=q)["embedding"] for q in questions]
    full, retrieval = load_pipeline(spec.query, "query"), load_pipeline(spec.query, "query")
    full.warm_up()
    retrieval.warm_up()
    assert coalesce_query_embedders([full, retrieval], max_batch=8) == 2
    assert coalesce_query_embedders([full], max_batch=8) == 0  # already behind one
    embedder = full.get_component("query_embedder")
    backend = embedder.embedding_backend
    assert isinstance(backend, CoalescedBackend)
    assert retrieval.get_component("query_embedder").embedding_backend is backend  # one model, one queue
    sizes: list[int] = []
    inner = backend.backend.embed
    gate = threading.Event()

    def slow_embed(texts: list[str], **options: Any) -> Any:
        sizes.append(len(texts))
        gate.wait(5)
        return inner(texts, **options)

    backend.backend.embed = slow_embed
    results: dict[str, Any] = {}

    def ask(q: str) -> None:
        results[q] = embedder.run(text=q)["embedding"]

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    threads[0].start()
    while not sizes:
        threading.Event().wait(0.01)
    for t in threads[1:]:
        t.start()
    while backend._coalescers and next(iter(backend._coalescers.values())).waiting < 2:
        threading.Event().wait(0.01)
    gate.set()
    for t in threads:
        t.join()
    assert sizes == [1, 2]  # the two questions asked during the first encode went as one batch
    assert np.allclose([results[q] for q in questions], expected, atol=1e-5)
