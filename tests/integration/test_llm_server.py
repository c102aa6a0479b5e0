"""The ``openai`` generator against a real OpenAI-compatible server: llama.cpp serving SmolLM2-135M-Instruct.

The server is llama-cpp-python's, built once by ``make llm-server`` (``make test`` depends on it) and started
here on a free loopback port with a required API key. Answers are short (``max_tokens``) so each takes
about a second on two cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
import yaml
from haystack.core.errors import PipelineRuntimeError

from ragship.assembly import open_query_engine
from ragship.errors import ConfigError
from ragship.local.llama_server import LocalLlama, LocalLlamaError
from ragship.serving.launch import bentoml_serve
from ragship.settings import load_settings
from ragship.spec import PipelineSpec, default_spec

REPO = Path(__file__).resolve().parents[2]
RAGSHIP = str(Path(sys.executable).parent / "ragship")
KEY_ENV = "RAGSHIP_TEST_LLM_KEY"
KEY = "sk-local-llama-test"
MODEL = "smollm2"
QUESTION = "How do I run the tests?"
# llama-cpp-python reads `max_tokens` and ignores the spec's `max_completion_tokens` (OpenAI's newer name):
# without it an answer runs on until the model stops (docs/querying.md).
MAX_TOKENS = 32
SMALL_LIMIT = 6
# An answer takes about a second on 2 idle cores, but llama.cpp's threads spin at their barriers: on a
# machine shared with other builds (load 27 on 2 cores) one was seen to take over 60 s.
LLM_TIMEOUT_S = 300

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server's base URL (``http://127.0.0.1:PORT/v1``); it requires KEY as a bearer token."""
    settings = load_settings(home=tmp_path_factory.mktemp("llama-home"), local_llama={"venv": REPO / ".tools/llama"})
    server = LocalLlama(settings.local_llama, home=settings.home)
    try:
        server.python()
    except LocalLlamaError as e:
        pytest.fail(f"{e} (`make test` builds it first; here: run `make llm-server`)")
    base_url = server.start(port=0, api_key=KEY)
    try:
        yield base_url
    finally:
        server.stop()
        assert not server.status().running


@pytest.fixture
def llm_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, KEY)
    return KEY


def patient(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` waiting up to LLM_TIMEOUT_S for the server (its 60 s default timed out on a busy machine)."""
    spec.query["components"]["llm"]["init_parameters"]["timeout"] = LLM_TIMEOUT_S
    return spec


def short(spec: PipelineSpec) -> PipelineSpec:
    """``spec`` with answers cut at MAX_TOKENS (and the key read from KEY_ENV)."""
    spec.query["components"]["llm"]["init_parameters"]["generation_kwargs"]["max_tokens"] = MAX_TOKENS
    return patient(spec)


def openai_spec(base_url: str) -> PipelineSpec:
    return short(
        default_spec(generator="openai", openai_base_url=base_url, openai_model=MODEL, openai_api_key_env=KEY_ENV)
    )


def test_server_lists_its_model_and_refuses_requests_without_the_key(llama: str) -> None:
    assert httpx.get(f"{llama}/models").status_code == 401
    listed = httpx.get(f"{llama}/models", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert [m["id"] for m in listed["data"]] == [MODEL]


def test_cli_starts_reports_and_stops_a_server(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGSHIP_")},
        "RAGSHIP_HOME": str(tmp_path),
        "RAGSHIP_LOCAL_LLAMA__VENV": str(REPO / ".tools/llama"),
        "RAGSHIP_LOCAL_LLAMA__PORT": "0",
        "PORT": "1",  # the server would take PORT from the environment over its config
    }

    def ragship(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([RAGSHIP, "llm", *args], env=env, capture_output=True, text=True, timeout=180)

    started = ragship("start")
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url), url
        assert [m["id"] for m in httpx.get(f"{url}/models").json()["data"]] == [MODEL]  # no key asked for
        assert ragship("start").stdout.strip() == url  # already running: the same server
        status = ragship("status")
        assert status.returncode == 0 and url in status.stdout
    finally:
        stopped = ragship("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stderr
    assert ragship("status").returncode == 1
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/models")


def test_openai_generator_answers_from_the_retrieved_documents(docs_store: str, llama: str, llm_key: str) -> None:
    spec = openai_spec(llama)
    assert llm_key not in spec.to_yaml()
    engine = open_query_engine(spec, docs_store)
    first = engine.ask(QUESTION)
    second = engine.ask(QUESTION)

    # Greedy decoding, but not word for word the same: the server reuses the first prompt's cached
    # evaluation, and a KV cache filled in other batch sizes rounds differently. Both are answers.
    assert first.answer.strip() and second.answer.strip()
    assert [s.id for s in first.sources] == [s.id for s in second.sources]
    assert len(first.sources) == 5
    assert first.sources[0].source.endswith("docs/testing.md")
    # SmolLM2-135M answers from the documents it was given: the command they name
    assert "make test" in first.answer


def test_a_requests_max_tokens_reaches_the_server_and_its_usage_comes_back(
    docs_store: str, llama: str, llm_key: str
) -> None:
    # The spec's own limit is OpenAI's max_completion_tokens (512), which llama.cpp ignores; a request's
    # limit is sent under max_tokens too, and the server's own token counts come back with the answer.
    spec = patient(
        default_spec(generator="openai", openai_base_url=llama, openai_model=MODEL, openai_api_key_env=KEY_ENV)
    )
    assert "max_tokens" not in spec.query["components"]["llm"]["init_parameters"]["generation_kwargs"]
    engine = open_query_engine(spec, docs_store)
    longer = engine.ask(QUESTION, generation_kwargs=engine.generation_kwargs(max_tokens=MAX_TOKENS))
    shorter = engine.ask(QUESTION, generation_kwargs=engine.generation_kwargs(max_tokens=SMALL_LIMIT))

    assert longer.usage and shorter.usage, (longer, shorter)
    assert shorter.usage["completion_tokens"] <= SMALL_LIMIT < longer.usage["completion_tokens"] <= MAX_TOKENS
    assert len(shorter.answer) < len(longer.answer)
    # counted by the server's tokenizer over the whole prompt: the retrieved documents, not just the question
    assert shorter.usage["prompt_tokens"] > 200
    assert shorter.usage["total_tokens"] == shorter.usage["prompt_tokens"] + shorter.usage["completion_tokens"]


def test_a_spec_without_a_base_url_follows_openai_base_url(
    docs_store: str, llama: str, llm_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # How the Helm chart moves generation (llm.endpoint): the spec names no endpoint, the environment does
    spec = short(default_spec(generator="openai", openai_model=MODEL, openai_api_key_env=KEY_ENV))
    assert spec.query["components"]["llm"]["init_parameters"]["api_base_url"] is None
    monkeypatch.setenv("OPENAI_BASE_URL", llama)
    answer = open_query_engine(spec, docs_store).ask(QUESTION)
    assert "make test" in answer.answer


def test_openai_generator_streams_token_by_token(docs_store: str, llama: str, llm_key: str) -> None:
    engine = open_query_engine(openai_spec(llama), docs_store)
    pieces: list[str] = []
    answer = engine.ask(QUESTION, on_token=pieces.append)

    assert len([p for p in pieces if p]) > 3  # token by token, not the whole reply at once
    assert "".join(pieces) == answer.answer
    assert answer.sources[0].source.endswith("docs/testing.md")


def test_a_wrong_key_is_refused_by_the_server_and_never_shown(
    docs_store: str, llama: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "sk-wrong-key-never-shown"
    monkeypatch.setenv(KEY_ENV, wrong)
    with pytest.raises(PipelineRuntimeError) as err:
        open_query_engine(openai_spec(llama), docs_store).ask(QUESTION)
    cause = err.value.__cause__
    assert isinstance(cause, openai.AuthenticationError) and cause.status_code == 401
    assert wrong not in str(err.value) + str(cause)


def test_openai_without_key_fails_clearly(docs_store: str, llama: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGSHIP_MISSING_KEY", raising=False)
    spec = default_spec(generator="openai", openai_base_url=llama, openai_api_key_env="RAGSHIP_MISSING_KEY")
    with pytest.raises(ConfigError) as err:
        open_query_engine(spec, docs_store)
    assert str(err.value) == (
        "query.components.llm.init_parameters.api_key reads a secret from RAGSHIP_MISSING_KEY, "
        "which is not set; export it before running."
    )


def test_bentoml_serve_streams_and_answers_through_the_llama_server(
    docs_store: str, llama: str, tmp_path: Path
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGSHIP_")},
        "RAGSHIP_HOME": str(tmp_path / "home"),
        "RAGSHIP_STORE": docs_store,
        "RAGSHIP_OPENAI__API_KEY_ENV": KEY_ENV,
        KEY_ENV: KEY,
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
        # An answer takes about a second on 2 idle cores, but llama.cpp's threads spin at their barriers:
        # on a machine shared with other builds one was seen to take over 60 s (BentoML's default here).
        "RAGSHIP_SERVING__TIMEOUT_S": "300",
    }
    spec_path = tmp_path / "spec.yaml"
    init_args = ["--generator", "openai", "--openai-base-url", llama, "--openai-model", MODEL]
    init = subprocess.run(
        [RAGSHIP, "spec", "init", str(spec_path), *init_args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    written = yaml.safe_load(spec_path.read_text())
    llm = written["query"]["components"]["llm"]["init_parameters"]
    assert llm["api_base_url"] == llama and llm["api_key"]["env_vars"] == [KEY_ENV]
    assert KEY not in spec_path.read_text()
    llm["generation_kwargs"]["max_tokens"] = MAX_TOKENS
    llm["timeout"] = LLM_TIMEOUT_S
    spec_path.write_text(yaml.safe_dump(written, sort_keys=False))
    env["RAGSHIP_SERVING__SPEC"] = str(spec_path)

    serve = bentoml_serve("bentos.query:RAG", env=env, log=tmp_path / "serve.log", cwd=REPO, timeout_s=240)
    with serve as url, httpx.Client(base_url=url, timeout=300) as http:
        arrivals: list[tuple[float, dict[str, object]]] = []
        with http.stream("POST", "/ask_stream", json={"question": QUESTION}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("application/x-ndjson")
            for line in response.iter_lines():
                if line:
                    arrivals.append((time.monotonic(), json.loads(line)))
        whole = http.post("/ask", json={"question": QUESTION})
        chat = http.post(
            "/v1/chat/completions",
            json={"model": "ragship", "max_tokens": SMALL_LIMIT, "messages": [{"role": "user", "content": QUESTION}]},
        )
    tokens = [str(event["token"]) for _, event in arrivals if "token" in event]
    final = arrivals[-1][1]
    assert len(tokens) > 3, arrivals
    assert "".join(tokens) == final["answer"]
    assert arrivals[0][0] < arrivals[-1][0]  # the first token came before the answer was done
    assert whole.status_code == 200, whole.text
    assert whole.json()["answer"] == final["answer"]  # greedy: the same answer whole or streamed
    sources = [s["source"] for s in whole.json()["sources"]]
    assert any(s.endswith("docs/testing.md") for s in sources), sources
    # the limit reached llama.cpp through the Generator service, and its own token counts came back
    assert chat.status_code == 200, chat.text
    usage = chat.json()["usage"]
    assert 0 < usage["completion_tokens"] <= SMALL_LIMIT
    assert usage["prompt_tokens"] > 200  # the server's count of the prompt with its documents, not an estimate
    assert KEY not in (tmp_path / "serve.log").read_text()
