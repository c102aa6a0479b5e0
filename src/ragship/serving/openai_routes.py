"""``/v1/chat/completions`` and ``/v1/models``: the RAG API spoken in OpenAI's Chat Completions protocol.

Any OpenAI client (the ``openai`` SDK, Open WebUI, LangChain, ...) can talk to ragship: ``model`` is
``ragship`` (or the served spec's name), the last user message is the question and the earlier user turns
are its history. The answer keeps its ``[n]`` citations; the sources travel in the extra ``sources`` field
(and, with ``serving.chat_sources_in_content``, as a short list after the answer). Errors use OpenAI's error
body. The wire format lives in :mod:`ragship.serving.openai_schema`; the answering is the engine's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable
from typing import Any

import anyio.to_thread
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ragship.errors import InvalidRequestError, RagshipError
from ragship.pipelines.query import Answer
from ragship.serving.http import public_error
from ragship.serving.openai_schema import (
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    ModelCard,
    ModelList,
    Usage,
    approx_tokens,
    completion_id,
    error_body,
    now,
)
from ragship.serving.served import ServedEngine
from ragship.serving.streams import AnswerStream
from ragship.settings import ServingSettings


class ChatRequestError(InvalidRequestError):
    """A chat request that cannot be answered; ``param`` names the field at fault (OpenAI's ``param``)."""

    def __init__(self, message: str, param: str | None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


def openai_error(
    status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None
) -> Response:
    """An OpenAI error response."""
    return JSONResponse(error_body(status, message, param), status_code=status, headers=headers)


def error_response(error: BaseException) -> Response:
    """The OpenAI error response for anything the engine or the request raised (see ``public_error``)."""
    if isinstance(error, ChatRequestError):
        return openai_error(error.status, str(error), error.param)
    status, message = public_error(error)
    retry = error.retry_after_s if isinstance(error, RagshipError) else None
    return openai_error(status, message, headers={"Retry-After": str(retry)} if retry is not None else None)


def parse_request(body: bytes, serving: ServingSettings) -> ChatCompletionRequest:
    """The request, checked against OpenAI's schema and ragship's bounds.

    :raises ChatRequestError: naming the first field at fault (``messages.3.role``) and the fix.
    """
    try:
        raw = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise ChatRequestError(f"The body is not JSON ({e}); send a Chat Completions request object.", None) from e
    # Counted before validation, so 10,000 turns are refused without building 10,000 models.
    turns = raw.get("messages") if isinstance(raw, dict) else None
    if isinstance(turns, list) and len(turns) > serving.chat_max_messages:
        raise ChatRequestError(
            f"messages holds {len(turns):,} messages, over the limit of {serving.chat_max_messages:,}; "
            "send fewer earlier turns (or raise RAGSHIP_SERVING__CHAT_MAX_MESSAGES).",
            "messages",
        )
    try:
        request = ChatCompletionRequest.model_validate(raw)
    except ValidationError as e:
        first = e.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"] if not str(p).startswith(("str", "list[", "function-")))
        raise ChatRequestError(f"{where or 'body'}: {first['msg']}.", where or None) from e
    if not request.messages:
        raise ChatRequestError("messages is empty; send at least one user message (the question).", "messages")
    for i, message in enumerate(request.messages):
        size = len(message.text())
        if size > serving.chat_max_message_chars:
            raise ChatRequestError(
                f"messages.{i}.content holds {size:,} characters, over the limit of {serving.chat_max_message_chars:,}"
                "; shorten it (or raise RAGSHIP_SERVING__CHAT_MAX_MESSAGE_CHARS).",
                f"messages.{i}.content",
            )
    return request


def question_and_history(request: ChatCompletionRequest, serving: ServingSettings) -> tuple[str, list[str]]:
    """The last user message (the question) and the earlier user turns, oldest first.

    :raises ChatRequestError: when there is no user message, or the question is empty or too long.
    """
    users = [(i, m.text()) for i, m in enumerate(request.messages) if m.role == "user"]
    if not users:
        raise ChatRequestError("messages has no user message; the last user message is the question.", "messages")
    index, question = users[-1]
    question = question.strip()
    if not question:
        raise ChatRequestError(f"messages.{index}.content is empty; ask a question in words.", f"messages.{index}")
    if len(question) > serving.max_question_chars:
        raise ChatRequestError(
            f"messages.{index}.content: the question has {len(question):,} characters, over the limit of "
            f"{serving.max_question_chars:,}; ask a shorter question (or raise RAGSHIP_SERVING__MAX_QUESTION_CHARS).",
            f"messages.{index}.content",
        )
    return question, [text.strip() for _, text in users[:-1] if text.strip()]


def sources_block(answer: Answer) -> str:
    """The cited sources as a short Markdown list to follow the answer ('' when nothing is cited)."""
    cited = [s for s in answer.sources if s.cited or f"[{s.citation}]" in answer.answer]
    if not cited:
        return ""
    lines = [f"- [{s.citation}] {s.source}" + (f" ({s.title})" if s.title else "") for s in cited]
    return "\n\nSources:\n" + "\n".join(lines)


def _usage(request: ChatCompletionRequest, content: str, answer: Answer) -> Usage:
    """The LLM server's own counts when it reported them, else an estimate (extractive answers, most streams)."""
    if answer.usage:
        return Usage(**answer.usage)
    prompt = sum(approx_tokens(m.text()) for m in request.messages)
    completion = approx_tokens(content)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)


class ChatRoutes:
    """The ``/v1`` app's handlers over a :class:`ServedEngine`."""

    def __init__(self, served: ServedEngine, serving: ServingSettings) -> None:
        self.served = served
        self.serving = serving

    def _model(self, name: str) -> str:
        if name not in self.served.model_names:
            known = ", ".join(self.served.model_names) or "none yet (the service is starting)"
            raise ChatRequestError(f"The model {name!r} does not exist; this server serves: {known}.", "model", 404)
        return name

    async def models(self, request: Request) -> Response:
        """``GET /v1/models``: the stable id and the served spec's name."""
        created = now()
        return JSONResponse(
            ModelList(data=[ModelCard(id=n, created=created) for n in self.served.model_names]).model_dump()
        )

    async def model(self, request: Request) -> Response:
        """``GET /v1/models/{model}``."""
        try:
            name = self._model(request.path_params["model"])
        except ChatRequestError as e:
            return error_response(e)
        return JSONResponse(ModelCard(id=name, created=now()).model_dump())

    async def completions(self, request: Request) -> Response:
        """``POST /v1/chat/completions``."""
        try:
            chat = parse_request(await request.body(), self.serving)
            model = self._model(chat.model)
            question, history = question_and_history(chat, self.serving)
            engine = self.served.get()
        except Exception as e:
            return error_response(e)
        max_tokens = chat.max_completion_tokens or chat.max_tokens
        kwargs = engine.generation_kwargs(max_tokens=max_tokens, temperature=chat.temperature)

        def ask(on_token: Callable[[str], None] | None = None) -> Answer:
            return engine.ask(question, history=history, generation_kwargs=kwargs, on_token=on_token)

        if chat.stream:
            return await self._stream(chat, model, ask)
        try:
            answer = await anyio.to_thread.run_sync(ask)
        except Exception as e:
            return error_response(e)
        content = self._content(answer)
        completion = ChatCompletion(
            id=completion_id(),
            created=now(),
            model=model,
            choices=[Choice(message=AssistantMessage(content=content))],
            usage=_usage(chat, content, answer),
            sources=answer.to_dict()["sources"],
        )
        return JSONResponse(completion.model_dump())

    def _content(self, answer: Answer) -> str:
        return answer.answer + (sources_block(answer) if self.serving.chat_sources_in_content else "")

    async def _stream(
        self, chat: ChatCompletionRequest, model: str, ask: Callable[[Callable[[str], None] | None], Answer]
    ) -> Response:
        """Server-sent ``chat.completion.chunk`` events ending in ``data: [DONE]``.

        Errors before the first piece (store down) are real error responses; a later one is an ``error``
        event, which the openai SDK raises as an ``APIError``.
        """
        stream = AnswerStream(ask)
        first = await stream.start()
        if first[0] == "error":
            await stream.finish()
            return error_response(first[1])
        cid, created = completion_id(), now()

        def chunk(delta: Delta, **extra: Any) -> str:
            body = ChatCompletionChunk(
                id=cid, created=created, model=model, choices=[ChunkChoice(delta=delta, **extra)]
            ).model_dump(exclude_none=True)
            return f"data: {json.dumps(body)}\n\n"

        async def sse() -> AsyncGenerator[str, None]:
            yield chunk(Delta(role="assistant", content=""))
            kind, value = first
            streamed = False
            while kind == "token":
                streamed = True
                yield chunk(Delta(content=value))
                kind, value = await stream.next()
            if kind == "error":
                status, message = public_error(value)
                yield f"data: {json.dumps(error_body(status, message))}\n\n"
            else:
                answer: Answer = value
                # An extractive answer arrives whole; an LLM's has arrived in pieces already.
                rest = "" if streamed else answer.answer
                tail = rest + (sources_block(answer) if self.serving.chat_sources_in_content else "")
                if tail:
                    yield chunk(Delta(content=tail))
                last = ChatCompletionChunk(
                    id=cid,
                    created=created,
                    model=model,
                    choices=[ChunkChoice(delta=Delta(), finish_reason="stop")],
                    sources=answer.to_dict()["sources"],
                )
                yield f"data: {last.model_dump_json(exclude_none=True)}\n\n"
                if chat.stream_options and chat.stream_options.include_usage:
                    usage = ChatCompletionChunk(
                        id=cid,
                        created=created,
                        model=model,
                        choices=[],
                        usage=_usage(chat, self._content(answer), answer),
                    )
                    yield f"data: {usage.model_dump_json(exclude_none=True)}\n\n"
                yield "data: [DONE]\n\n"
            await stream.finish()

        return StreamingResponse(sse(), media_type="text/event-stream", headers={"cache-control": "no-cache"})


def openai_app(served: ServedEngine, serving: ServingSettings) -> Starlette:
    """The ``/v1`` ASGI app (mount it with ``@bentoml.asgi_app(app, path="/v1")``)."""
    routes = ChatRoutes(served, serving)
    return Starlette(
        routes=[
            Route("/chat/completions", routes.completions, methods=["POST"]),
            Route("/models", routes.models, methods=["GET"]),
            Route("/models/{model:path}", routes.model, methods=["GET"]),
        ]
    )


__all__ = ["ChatRoutes", "openai_app"]
