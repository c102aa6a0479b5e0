"""Stand-ins that let a pipeline use models served elsewhere (the BentoML Embedder and Generator).

The pipeline keeps its own components and wiring; only the model call crosses the network. An
embedder keeps preparing its texts (prefix, meta fields) and hands them to a remote backend; a chat
generator's place is taken by :class:`RemoteChatGenerator`, which has the same sockets.
"""

from __future__ import annotations

import functools
import logging
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.core.serialization import import_class_by_name
from haystack.dataclasses import ChatMessage, StreamingChunk
from haystack.dataclasses.streaming_chunk import StreamingCallbackT
from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_exponential

from ragship.errors import ModelError, ModelServiceUnavailableError

EmbedFn = Callable[[list[str]], list[list[float]]]
# (messages as ChatMessage.to_dict(), generation_kwargs or None) -> the reply, whole or in pieces. A whole
# reply is its text, or ``{"text", "usage"}`` (the Generator service's ``reply``: the LLM server's token counts).
GenerateFn = Callable[[list[dict[str, Any]], dict[str, Any] | None], "str | dict[str, Any]"]
StreamFn = Callable[[list[dict[str, Any]], dict[str, Any] | None], Iterable[str]]
RankFn = Callable[[str, list[str], bool], list[float]]


logger = logging.getLogger("ragship.serving")
_TRANSPORT_ERRORS = {"ClientConnectionError", "TransportError", "ConnectionError"}


def _transient(error: BaseException) -> bool:
    # 503: overloaded or starting (BentoML's adaptive batcher sheds load with it). Connection errors:
    # not up yet, or BentoML's client recycling its session under in-flight requests ("Server disconnected").
    code = getattr(error, "error_code", None)
    transport = bool({cls.__name__ for cls in type(error).__mro__} & _TRANSPORT_ERRORS)
    return getattr(code, "value", code) == 503 or transport


# Built once: a few quick retries ride out overload (503) and connection hiccups.
_RETRY = Retrying(
    retry=retry_if_exception(_transient),
    stop=stop_after_attempt(4),
    wait=wait_exponential(multiplier=0.1, max=2),
    before_sleep=before_sleep_log(logger, logging.INFO),
    reraise=True,
)


def call_service(what: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Call a model service, retrying brief overloads; failure becomes :class:`ModelServiceUnavailableError`."""
    try:
        return _RETRY(fn, *args)
    except Exception as e:
        raise ModelServiceUnavailableError(f"The {what} service failed: {e}") from e


@dataclass
class RemoteModels:
    """Where a pipeline's model calls go instead of local models; None keeps that model local.

    :param embed_queries: Encodes query texts (the query pipeline's text embedder).
    :param embed_documents: Encodes chunk texts (the indexing pipeline's document embedder).
    :param generate: Answers chat messages (as ``ChatMessage.to_dict()``) with the reply text.
    :param stream: Like ``generate``, yielding the reply in pieces as they are produced.
    :param rank: Scores (query, text) pairs with the rerank stage's cross-encoder (``scale``: sigmoid).
    """

    embed_queries: EmbedFn | None = None
    embed_documents: EmbedFn | None = None
    generate: GenerateFn | None = None
    stream: StreamFn | None = None
    rank: RankFn | None = None


class RemoteEmbeddingBackend:
    """Takes the place of sentence-transformers' embedding backend inside an embedder component.

    Encoding options (normalisation, precision) belong to the serving side, which reads them from
    the same spec; here only the prepared texts travel.
    """

    def __init__(self, embed: EmbedFn) -> None:
        self._embed = embed

    def embed(self, data: list[str], **_: Any) -> list[list[float]]:
        """Embeddings of ``data``, one per text, in order."""
        if not data:
            return []
        vectors = call_service("embedding", self._embed, list(data))
        if len(vectors) != len(data):
            raise ModelError(f"The embedding service returned {len(vectors)} vectors for {len(data)} texts.")
        return [list(map(float, v)) for v in vectors]


class RemoteCrossEncoder:
    """Takes the place of sentence-transformers' CrossEncoder inside a ranker component: the ranker keeps
    preparing its texts and ordering the documents; only the scoring crosses the network."""

    def __init__(self, rank: RankFn) -> None:
        self._rank = rank

    def rank(self, query: str, documents: list[str], activation_fn: Any = None, **_: Any) -> list[dict[str, Any]]:
        """CrossEncoder.rank's answer: ``corpus_id`` and ``score`` of every text, best first."""
        scale = type(activation_fn).__name__ == "Sigmoid"
        scores = call_service("rerank", self._rank, query, list(documents), scale)
        if len(scores) != len(documents):
            raise ModelError(f"The rerank service returned {len(scores)} scores for {len(documents)} texts.")
        ranked = [{"corpus_id": i, "score": float(s)} for i, s in enumerate(scores)]
        return sorted(ranked, key=lambda r: -r["score"])


@component
class RemoteChatGenerator:
    """A chat generator whose model runs in another service; streams when given a callback.

    :param served_type: Type of the component it stands in for (kept for logs and ``to_dict``).
    """

    def __init__(self, served_type: str = "") -> None:
        self.served_type = served_type
        self.generate: GenerateFn | None = None
        self.stream: StreamFn | None = None

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(self, served_type=self.served_type)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RemoteChatGenerator:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    @component.output_types(replies=list[ChatMessage])
    def run(
        self,
        messages: list[ChatMessage],
        streaming_callback: StreamingCallbackT | None = None,
        generation_kwargs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Send ``messages`` to the generator service.

        :param streaming_callback: Receives each piece of the reply as a :class:`StreamingChunk`.
        :param generation_kwargs: Overrides of the served generator's own ``generation_kwargs`` for this reply.
        :returns: ``replies``: the assistant's message.
        """
        if self.generate is None or self.stream is None:
            raise ModelError(f"RemoteChatGenerator standing in for {self.served_type!r} has no service attached.")
        payload = [m.to_dict() for m in messages]
        kwargs = dict(generation_kwargs) if generation_kwargs else None
        if streaming_callback is None:
            reply = call_service("generator", self.generate, payload, kwargs)
            if isinstance(reply, str):
                return {"replies": [ChatMessage.from_assistant(reply)]}
            usage = reply.get("usage")
            return {"replies": [ChatMessage.from_assistant(reply["text"], meta={"usage": usage} if usage else None)]}
        pieces: list[str] = []
        stream = self.stream
        try:
            for piece in call_service("generator", lambda p, k: iter(stream(p, k)), payload, kwargs):
                pieces.append(piece)
                streaming_callback(StreamingChunk(content=piece))
        except ModelServiceUnavailableError:
            raise
        except Exception as e:  # a failure mid-stream
            raise ModelServiceUnavailableError(f"The generator service failed while streaming: {e}") from e
        return {"replies": [ChatMessage.from_assistant("".join(pieces))]}


def chat_generator_names(data: dict[str, Any]) -> list[str]:
    """Components of a serialized pipeline whose class is a chat generator (its LLMs)."""
    return sorted(name for name, c in data.get("components", {}).items() if is_chat_generator(c["type"]))


@functools.cache
def is_chat_generator(type_name: str) -> bool:
    """Whether the component class ``type_name`` follows Haystack's ``ChatGenerator`` protocol:
    its ``run`` takes ``messages``, a list of :class:`ChatMessage` (a union with ``str`` included)."""
    try:
        cls: Any = import_class_by_name(type_name)  # ragship's own are allow-listed by the package
        hint = typing.get_type_hints(cls.run).get("messages")
    except Exception:  # an unknown or unimportable class: loading the pipeline names the problem
        return False
    return hint is not None and list[ChatMessage] in (hint, *typing.get_args(hint))


def with_remote_generators(data: dict[str, Any]) -> dict[str, Any]:
    """A copy of a serialized pipeline whose chat generators are :class:`RemoteChatGenerator` stand-ins."""
    names = chat_generator_names(data)
    if not names:
        return data
    remote_type = f"{RemoteChatGenerator.__module__}.{RemoteChatGenerator.__name__}"
    components = dict(data["components"])
    for name in names:
        components[name] = {"type": remote_type, "init_parameters": {"served_type": components[name]["type"]}}
    return {**data, "components": components}
