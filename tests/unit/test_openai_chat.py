"""The OpenAI-compatible chat's conversions without a server: the conversation contract, bounds, usage, kwargs."""

from __future__ import annotations

import json

import pytest

from ragship.pipelines.query import Answer, Source, llm_generation_kwargs, reported_usage
from ragship.serving.openai_routes import ChatRequestError, parse_request, question_and_history, sources_block
from ragship.serving.openai_schema import approx_tokens, error_body
from ragship.settings import ServingSettings

pytestmark = pytest.mark.unit
SERVING = ServingSettings(chat_max_messages=5, chat_max_message_chars=1000, max_question_chars=100)


def _request(messages: list[dict[str, object]], **extra: object) -> bytes:
    return json.dumps({"model": "ragship", "messages": messages, **extra}).encode()


def test_the_last_user_turn_is_the_question_and_earlier_user_turns_are_the_history() -> None:
    chat = parse_request(
        _request(
            [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "How do I run the tests?"},
                {"role": "assistant", "content": "Run make test [1]."},
                {"role": "user", "content": "   "},
                {"role": "user", "content": [{"type": "text", "text": "And only the fast ones?"}]},
            ],
            tools=[],  # sent by some clients; accepted and ignored
        ),
        SERVING,
    )
    assert question_and_history(chat, SERVING) == ("And only the fast ones?", ["How do I run the tests?"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (_request([]), "messages"),
        (_request([{"role": "user", "content": "q"}] * 6), "messages"),
        (_request([{"role": "user", "content": "x" * 1001}]), "messages.0.content"),
        (_request([{"role": "robot", "content": "q"}]), "messages.0.role"),
        (_request([{"role": "user", "content": "q"}], n=3), "n"),
        (_request([{"role": "user", "content": "q"}], temperature=5), "temperature"),
        (json.dumps({"messages": [{"role": "user", "content": "q"}]}).encode(), "model"),
    ],
)
def test_bad_requests_name_the_field(body: bytes, param: str | None) -> None:
    with pytest.raises(ChatRequestError) as bad:
        parse_request(body, SERVING)
    assert bad.value.param == param and bad.value.status == 400


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "system", "content": "q"}], "messages"),
        ([{"role": "user", "content": "x" * 101}], "messages.0.content"),
        ([{"role": "user", "content": " "}], "messages.0"),
    ],
)
def test_a_missing_empty_or_long_question_names_its_message(messages: list[dict[str, object]], param: str) -> None:
    with pytest.raises(ChatRequestError) as bad:
        question_and_history(parse_request(_request(messages), SERVING), SERVING)
    assert bad.value.param == param


def test_the_sources_block_lists_the_cited_sources_only() -> None:
    def source(n: int, cited: bool) -> Source:
        return Source(id=str(n), source=f"docs/{n}.md", score=1.0, snippet="...", citation=n, cited=cited, title=None)

    answer = Answer(answer="Run make test [2].", sources=[source(1, False), source(2, False), source(3, True)])
    assert sources_block(answer) == "\n\nSources:\n- [2] docs/2.md\n- [3] docs/3.md"
    assert sources_block(Answer(answer="I do not know.", sources=[source(1, False)])) == ""


def test_usage_estimate_and_error_body() -> None:
    assert (approx_tokens(""), approx_tokens("a b c"), approx_tokens("x" * 40)) == (0, 3, 10)
    assert error_body(404, "no such model", "model") == {
        "error": {"message": "no such model", "type": "not_found_error", "param": "model", "code": "model_not_found"}
    }
    assert error_body(503, "down")["error"]["type"] == "server_error"


def test_max_tokens_and_temperature_speak_each_generators_words() -> None:
    local = [("ragship.components.generators.LocalChatGenerator", {"max_new_tokens": 64, "do_sample": False})]
    remote = [("haystack.components.generators.chat.openai.OpenAIChatGenerator", {"temperature": 0.0})]
    older = [("some.Generator", {"max_tokens": 64})]
    assert llm_generation_kwargs([], 10, 0.5) == {}
    assert llm_generation_kwargs(local, 10, 0) == {"max_new_tokens": 10, "do_sample": False}
    assert llm_generation_kwargs(local, None, 0.7) == {"do_sample": True, "temperature": 0.7}
    both = {"max_completion_tokens": 10, "max_tokens": 10, "temperature": 0.2}  # llama.cpp reads only max_tokens
    assert llm_generation_kwargs(remote, 10, 0.2) == both
    assert llm_generation_kwargs(older, 10) == {"max_tokens": 10}
    assert llm_generation_kwargs([("x.Transformers", {})], 10) == {"max_new_tokens": 10}
    assert llm_generation_kwargs(remote) == {}


def test_reported_usage_is_the_llm_servers_counts_or_none() -> None:
    meta = {"usage": {"prompt_tokens": 300, "completion_tokens": 6, "total_tokens": 306, "prompt_tokens_details": None}}
    assert reported_usage(meta) == {"prompt_tokens": 300, "completion_tokens": 6, "total_tokens": 306}
    assert reported_usage(None) is None and reported_usage({}) is None  # an extractive answer: none
    assert reported_usage({"usage": {"completion_tokens": 6}}) is None
    assert reported_usage({"usage": None}) is None
