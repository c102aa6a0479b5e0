"""The LLM answer paths, through real loading code and a real HTTP endpoint."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from ragship.assembly import open_query_engine
from ragship.errors import ConfigError
from ragship.spec import DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT, default_spec

QUESTION = "How do I run the tests?"


def test_local_generator_answers_through_transformers(docs_store: str, tiny_causal_lm: Path) -> None:
    spec = default_spec(generator="local", local_model=str(tiny_causal_lm))
    spec.query["components"]["llm"]["init_parameters"]["generation_kwargs"]["max_new_tokens"] = 12
    engine = open_query_engine(spec, docs_store)
    first = engine.ask(QUESTION)
    second = engine.ask(QUESTION)
    # random weights produce words from the tiny vocabulary; greedy decoding makes them repeatable
    assert first.answer.strip()
    assert first.answer == second.answer
    assert len(first.sources) == 5
    assert first.sources[0].source.endswith("docs/testing.md")


@pytest.fixture(scope="module")
def smollm2() -> Any:
    """The bundled SmolLM2-135M-Instruct (GGUF, dequantized by transformers), loaded once: greedy, short replies."""
    from ragship.components.generators import LocalChatGenerator

    generator = LocalChatGenerator(
        model="smollm2", task="text-generation", generation_kwargs={"max_new_tokens": 24, "do_sample": False}
    )
    generator.warm_up()
    return generator


def test_bundled_smollm2_answers_through_its_chat_template(smollm2: Any) -> None:
    from haystack.dataclasses import ChatMessage

    [reply] = smollm2.run([ChatMessage.from_user("What is the capital of France?")])["replies"]
    # a base model continues the text; the instruct model, prompted through its template, answers it
    assert "Paris" in reply.text
    assert reply.meta["model"] == "smollm2"  # the reference, as the spec holds it


def test_smollm2_answers_from_the_given_documents_and_streams(smollm2: Any) -> None:
    from haystack import Document
    from haystack.components.builders import ChatPromptBuilder
    from haystack.dataclasses import ChatMessage

    documents = [
        Document(content="Elasticsearch stores chunks when RAGSHIP_STORE is an http URL.", meta={"title": "Stores"}),
        Document(content="The page at http://localhost:3000 shows answers with their sources.", meta={"title": "Page"}),
        Document(content="Run `make test` to run the linters and the whole pytest suite.", meta={"title": "Testing"}),
    ]
    builder = ChatPromptBuilder(
        template=[ChatMessage.from_system(DEFAULT_SYSTEM_PROMPT), ChatMessage.from_user(DEFAULT_USER_PROMPT)],
        required_variables=["query"],
    )
    prompt = builder.run(query="Where does the page show answers?", documents=documents)["prompt"]
    pieces: list[str] = []
    [reply] = smollm2.run(prompt, streaming_callback=lambda chunk: pieces.append(chunk.content))["replies"]

    # SmolLM2-135M does not reliably write [n] citations (the golden QA figures in the report show how often);
    # what it reliably does with the documents is answer from the right one, in its words
    assert "localhost:3000" in reply.text
    assert len([p for p in pieces if p]) > 3  # token by token, not the whole reply at once
    assert "".join(pieces).strip() == reply.text.strip()


class _ChatCompletions(BaseHTTPRequestHandler):
    """Just enough of the OpenAI chat-completions protocol, recording what it was sent."""

    requests: ClassVar[list[dict[str, Any]]] = []
    reply = "Run `make test`, which runs the linters and the whole pytest suite [1]."

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        payload = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.reply}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
        }
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def openai_server() -> Iterator[str]:
    _ChatCompletions.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChatCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_compatible_endpoint(docs_store: str, openai_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSHIP_TEST_LLM_KEY", "sk-test-not-a-real-key")
    spec = default_spec(
        generator="openai",
        openai_base_url=openai_server,
        openai_model="tiny",
        openai_api_key_env="RAGSHIP_TEST_LLM_KEY",
    )
    assert "sk-test-not-a-real-key" not in spec.to_yaml()
    answer = open_query_engine(spec, docs_store).ask(QUESTION)

    assert answer.answer == _ChatCompletions.reply
    [request] = _ChatCompletions.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer sk-test-not-a-real-key"
    assert request["body"]["model"] == "tiny"
    system, user = request["body"]["messages"]
    assert system["role"] == "system" and "square brackets" in system["content"]
    assert f"Question: {QUESTION}" in user["content"]
    assert answer.sources[0].snippet.split(" ...")[0][:60] in " ".join(user["content"].split())
    assert [s.cited for s in answer.sources] == [True, False, False, False, False]


def test_openai_without_key_fails_clearly(docs_store: str, openai_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAGSHIP_MISSING_KEY", raising=False)
    spec = default_spec(generator="openai", openai_base_url=openai_server, openai_api_key_env="RAGSHIP_MISSING_KEY")
    with pytest.raises(ConfigError) as err:
        open_query_engine(spec, docs_store)
    assert str(err.value) == (
        "query.components.llm.init_parameters.api_key reads a secret from RAGSHIP_MISSING_KEY, "
        "which is not set; export it before running."
    )
    assert _ChatCompletions.requests == []
