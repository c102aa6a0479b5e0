"""The OpenAI Chat Completions wire format, as the official ``openai`` SDK sends and reads it.

Only what ragship serves is modelled: ``POST /v1/chat/completions`` (whole or as ``chat.completion.chunk``
server-sent events), ``GET /v1/models`` and OpenAI's error body. Request fields ragship has no use for
(``tools``, ``logprobs``, ``user``, ...) are accepted and ignored, as OpenAI-compatible servers do, so that
clients such as Open WebUI, which send them by default, keep working; fields that would change the answer's
meaning and cannot be honoured (``n`` > 1) are refused with a 400 naming them.

Extra field: ``sources`` (the chunks the answer cites, numbered like its ``[n]``) on the completion and on
the last chunk of a stream. OpenAI's clients keep unknown fields (``completion.sources`` in the SDK's
``model_extra``); docs/clients.md shows how to read them.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# The id every deployment answers to, whatever spec it serves; the spec's own name is accepted too.
STABLE_MODEL_ID = "ragship"
# OpenAI's role names. "developer" is the newer name of "system"; "function" is the deprecated "tool".
Role = Literal["system", "developer", "user", "assistant", "tool", "function"]
CHARS_PER_TOKEN = 4  # OpenAI's rule of thumb for English; see approx_tokens


class TextPart(BaseModel):
    """A piece of a message's content given as parts (``[{"type": "text", "text": ...}]``)."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    """One message of the conversation."""

    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        """The message's words: its string content, or its text parts joined (images and audio have none)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text or "" for part in self.content if part.type == "text")


class StreamOptions(BaseModel):
    """``stream_options``: ``include_usage`` adds a last chunk with ``usage`` and no choices."""

    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """``POST /v1/chat/completions``: the fields ragship reads; the rest are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1)
    messages: list[ChatMessageIn]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    n: Annotated[int, Field(ge=1, le=1)] | None = None


class Usage(BaseModel):
    """Tokens of the request and the answer (see :func:`approx_tokens`)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AssistantMessage(BaseModel):
    """The answer as the assistant's message."""

    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None


class Choice(BaseModel):
    """The one answer of a completion."""

    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop", "length"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    """A whole answer (``object: chat.completion``) with the extra ``sources`` field."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None
    sources: list[dict[str, Any]] = Field(description="The chunks the answer cites by [n] (ragship's extra field).")


class Delta(BaseModel):
    """What a chunk adds to the answer."""

    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    """The answer's piece in one chunk."""

    index: int = 0
    delta: Delta
    finish_reason: Literal["stop", "length"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed answer (``object: chat.completion.chunk``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    sources: list[dict[str, Any]] | None = None


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models``."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "ragship"


class ModelList(BaseModel):
    """``GET /v1/models``."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


# OpenAI's error types by HTTP status (what its SDK and clients switch on).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}
ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 413: "request_too_large", 429: "rate_limit_exceeded"}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error body: ``{"error": {"message", "type", "param", "code"}}``."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code or ERROR_CODES.get(status)}}


def approx_tokens(text: str) -> int:
    """Tokens in ``text`` by OpenAI's rule of thumb (one per 4 characters, at least one per word).

    ragship's extractive answers pass through no tokenizer, so their ``usage`` is this estimate (as is that
    of an LLM answer whose server reported no counts); it is within about 25% of GPT tokenizers on English
    prose and never 0 for a non-empty text.
    """
    if not text:
        return 0
    return max(math.ceil(len(text) / CHARS_PER_TOKEN), len(text.split()))


def completion_id() -> str:
    """A fresh ``chatcmpl-...`` id."""
    return f"chatcmpl-{uuid.uuid4().hex}"


def now() -> int:
    """Unix seconds, OpenAI's ``created``."""
    return int(time.time())
