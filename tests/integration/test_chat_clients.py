"""The RAG API's OpenAI-compatible chat (/v1) and MCP server (/mcp), driven by the official clients.

A real `bentoml serve` of the extractive default spec over an embedded store of the project's docs, with an
API key; the clients are the ``openai`` SDK and the ``mcp`` SDK's streamable HTTP client, as users run them.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from ragship.serving.launch import bentoml_serve
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
API_KEY = "chat-key-" + uuid.uuid4().hex[:8]
MAX_BODY = 16 * 1024 * 1024  # over the 10 MB turn below, so that turn meets the chat bounds, not the body limit
FIRST = "How do I run the tests?"
FOLLOW_UP = "Which markers do the integration tests use?"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@dataclass
class Chat:
    url: str
    spec_name: str

    def client(self, key: str | None = API_KEY) -> openai.OpenAI:
        """The SDK as a user sets it up; ``key=None``: no Authorization header at all (the SDK insists on a key)."""

        def drop_key(request: httpx.Request) -> None:
            request.headers.pop("authorization", None)

        hooks = {"request": [drop_key]} if key is None else {}
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=key or "unset",
            max_retries=0,
            timeout=120,
            http_client=httpx.Client(event_hooks=hooks),
        )


@pytest.fixture(scope="module")
def chat(tmp_path_factory: pytest.TempPathFactory, docs_store: str) -> Iterator[Chat]:
    home = tmp_path_factory.mktemp("chat-home")
    spec = default_spec()
    spec_path = spec.save(home / "spec.yaml")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGSHIP_")},
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": docs_store,
        "RAGSHIP_SERVING__SPEC": str(spec_path),
        "RAGSHIP_SERVING__API_KEY": API_KEY,
        "RAGSHIP_SERVING__MAX_REQUEST_BYTES": str(MAX_BODY),
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
    }
    with bentoml_serve("bentos.query:RAG", env=env, log=home / "serve.log", cwd=REPO, timeout_s=240) as url:
        yield Chat(url=url, spec_name=spec.name)


def _conversation(first_answer: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "Answer from the ragship documentation."},
        {"role": "user", "content": FIRST},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},
    ]


def _cited_files(content: str, sources: list[dict[str, Any]]) -> set[str]:
    return {s["source"] for s in sources if f"[{s['citation']}]" in content}


def test_models_lists_the_stable_id_and_the_spec(chat: Chat) -> None:
    client = chat.client()
    assert [m.id for m in client.models.list()] == ["ragship", chat.spec_name]
    assert client.models.retrieve("ragship").id == "ragship"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_two_turn_conversation_cites_its_sources_whole_and_streamed(chat: Chat) -> None:
    client = chat.client()
    first = client.chat.completions.create(model="ragship", messages=[{"role": "user", "content": FIRST}])
    answer = first.choices[0].message.content or ""
    sources = (first.model_extra or {})["sources"]
    assert first.object == "chat.completion" and first.choices[0].finish_reason == "stop"
    assert "docs/testing.md" in _cited_files(answer, sources), answer
    # The cited files follow the answer for UIs that show only content (serving.chat_sources_in_content).
    assert "\n\nSources:\n- [" in answer and "docs/testing.md" in answer.split("Sources:")[1]
    assert first.usage is not None and first.usage.completion_tokens >= len(answer) // 4
    assert first.usage.total_tokens == first.usage.prompt_tokens + first.usage.completion_tokens

    messages = _conversation(answer)
    whole = client.chat.completions.create(model=chat.spec_name, messages=messages, max_tokens=64, temperature=0)
    content = whole.choices[0].message.content or ""
    whole_sources = (whole.model_extra or {})["sources"]
    assert whole.model == chat.spec_name
    assert _cited_files(content, whole_sources), content
    assert all({"id", "source", "snippet", "citation", "score"} <= set(s) for s in whole_sources)

    stream = client.chat.completions.create(
        model="ragship", messages=messages, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == content  # the extractive answer is deterministic
    finished = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finished) == 1 and (finished[0].model_extra or {})["sources"] == whole_sources
    assert chunks[-1].choices == [] and chunks[-1].usage == whole.usage


def test_the_stream_ends_with_done(chat: Chat) -> None:
    body = {"model": "ragship", "messages": [{"role": "user", "content": FIRST}], "stream": True}
    with (
        httpx.Client(base_url=chat.url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=120) as http,
        http.stream("POST", "/v1/chat/completions", json=body) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    assert json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"


def test_unknown_model_and_bad_keys_get_openai_errors(chat: Chat) -> None:
    messages = [{"role": "user", "content": FIRST}]
    with pytest.raises(openai.NotFoundError) as unknown:
        chat.client().chat.completions.create(model="gpt-4o", messages=messages)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    for key in (None, "wrong-key"):
        with pytest.raises(openai.AuthenticationError) as refused:
            chat.client(key).chat.completions.create(model="ragship", messages=messages)  # type: ignore[arg-type]
        assert refused.value.type == "authentication_error" and "Bearer" in refused.value.message
    with pytest.raises(openai.AuthenticationError):
        chat.client("wrong-key").models.list()


def test_a_body_over_the_limit_gets_413(chat: Chat) -> None:
    huge = "x" * (MAX_BODY + 1)
    with pytest.raises(openai.APIStatusError) as too_large:
        chat.client().chat.completions.create(model="ragship", messages=[{"role": "user", "content": huge}])
    assert too_large.value.status_code == 413
    assert "RAGSHIP_SERVING__MAX_REQUEST_BYTES" in too_large.value.message


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ([{"role": "system", "content": "Be brief."}], "messages"),
        ([{"role": "user", "content": FIRST}] * 10_000, "messages"),
        ([{"role": "user", "content": "x" * (10 * 1024 * 1024)}], "messages.0.content"),
        ([{"role": "user", "content": "x" * 5000}], "messages.0.content"),
        ([{"role": "user", "content": "   "}], "messages.0"),
        ([{"role": "user", "content": FIRST}, {"role": "wizard", "content": "hi"}], "messages.1.role"),
        ([{"content": FIRST}], "messages.0.role"),
    ],
    ids=["empty", "no-user-turn", "10k-turns", "10MB-turn", "long-question", "blank-question", "bad-role", "no-role"],
)
def test_bad_messages_get_400_naming_the_field(chat: Chat, messages: list[dict[str, Any]], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        chat.client().chat.completions.create(model="ragship", messages=messages)  # type: ignore[arg-type]
    assert bad.value.param == param, bad.value.message
    assert bad.value.type == "invalid_request_error" and param.split(".")[0] in bad.value.message


def test_unsupported_n_gets_400(chat: Chat) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        chat.client().chat.completions.create(model="ragship", messages=[{"role": "user", "content": FIRST}], n=2)
    assert bad.value.param == "n"


async def _mcp_session(url: str, key: str | None, statuses: list[int] | None = None) -> dict[str, Any]:
    """List the tools and call both through the official client; what came back, by name.

    :param statuses: Receives the HTTP status of every response the client got.
    """
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"authorization": f"Bearer {key}"} if key else {}

    async def record(response: Any) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    async with (
        httpx2.AsyncClient(headers=headers, timeout=120, event_hooks={"response": [record]}) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        search = await session.call_tool("search", {"question": FIRST, "top_k": 3})
        ask = await session.call_tool("ask", {"question": FIRST})
        bad = await session.call_tool("search", {"question": "", "top_k": 3})
    return {"tools": tools, "search": search, "ask": ask, "bad": bad}


def test_mcp_client_lists_and_calls_both_tools(chat: Chat) -> None:
    got = asyncio.run(_mcp_session(chat.url, API_KEY))
    tools = {t.name: t for t in got["tools"].tools}
    assert set(tools) == {"search", "ask"}
    assert all(len(t.description or "") > 100 for t in tools.values())
    assert tools["search"].input_schema["properties"]["top_k"]["maximum"] == 50

    found = got["search"].structured_content["sources"]
    assert not got["search"].is_error and len(found) == 3
    assert "docs/testing.md" in {s["file"] for s in found}
    assert all(s["snippet"] and s["id"] and s["score"] is not None for s in found)

    answer = got["ask"].structured_content
    assert not got["ask"].is_error
    assert "docs/testing.md" in {s["file"] for s in answer["sources"] if f"[{s['citation']}]" in answer["answer"]}
    assert got["bad"].is_error


def test_mcp_without_the_key_is_refused(chat: Chat) -> None:
    for key in (None, "wrong-key"):
        statuses: list[int] = []
        with pytest.raises(Exception, match="unhandled errors"):  # the SDK's task group re-raises the failed call
            asyncio.run(_mcp_session(chat.url, key, statuses))
        assert statuses == [401]
    response = httpx.post(f"{chat.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert response.status_code == 401
