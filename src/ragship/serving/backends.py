"""The models a spec names, held by the services that run them (no BentoML here, so it is testable alone).

:class:`SpecEmbedders` encodes texts exactly as the spec's embedder components would; the pipeline
side (:class:`~ragship.components.remote.RemoteEmbeddingBackend`) has already prepared them.
:class:`SpecGenerator` runs the spec's chat generator, whole or streamed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from haystack.dataclasses import ChatMessage, StreamingChunk

from ragship.components.embedders import DocumentEmbedder, TextEmbedder
from ragship.components.rankers import CrossEncoderRanker
from ragship.components.remote import chat_generator_names
from ragship.errors import ModelError, SpecError
from ragship.pipelines import check_secrets, load_pipeline
from ragship.pipelines.query import reported_usage
from ragship.spec import PipelineSpec

_DONE = object()


def _only(spec_part: dict[str, Any], names: list[str], where: str) -> Any:
    """A pipeline holding just ``names`` of a serialized pipeline (so each loads with Haystack's own code)."""
    data = {"components": {n: spec_part["components"][n] for n in names}, "connections": []}
    check_secrets(data, where)
    return load_pipeline(data, where)


def _encode_options(embedder: Any) -> dict[str, Any]:
    """The encode arguments sentence-transformers embedders pass to their backend."""
    return {
        "batch_size": embedder.batch_size,
        "show_progress_bar": False,
        "normalize_embeddings": embedder.normalize_embeddings,
        "precision": embedder.precision,
        "quantization_ranges": embedder.quantization_ranges,
        **(embedder.encode_kwargs or {}),
    }


class SpecEmbedders:
    """The spec's query and document embedders, loaded once (one model in memory when they share it)."""

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.query = self._find(spec.query, TextEmbedder, "query")
        self.documents = self._find(spec.indexing, DocumentEmbedder, "indexing")
        # The rerank stage's cross-encoder is the other GPU-heavy model of querying: served here too.
        self.ranker = self._find(spec.query, CrossEncoderRanker, "query")

    @staticmethod
    def _find(part: dict[str, Any], kind: type, where: str) -> Any:
        names = [n for n, c in part["components"].items() if c.get("type") == f"{kind.__module__}.{kind.__name__}"]
        if len(names) > 1:
            raise SpecError(f"{where}: the embedder service serves one {kind.__name__}, found {names}.")
        if not names:
            return None
        return _only(part, names, where).get_component(names[0])

    @property
    def model(self) -> str:
        """The model reference the spec names (query embedder first)."""
        component = self.query or self.documents
        return str(component.model) if component else ""

    @property
    def device(self) -> str:
        """Torch device the model runs on."""
        component = self.query or self.documents
        if component is None or component.embedding_backend is None:
            return "none"
        return str(component.embedding_backend.model.device)

    def warm_up(self) -> None:
        """Load the model(s); the device is chosen by Haystack (GPU when one is visible) unless the spec pins it."""
        for component in (self.query, self.documents, self.ranker):
            if component is not None:
                component.warm_up()

    def rank(self, query: str, texts: list[str], scale: bool) -> list[float]:
        """Cross-encoder scores of (query, text) pairs, in order (sigmoid-scaled when ``scale``); the texts
        are prepared by the pipeline's ranker (meta fields, prefixes)."""
        if self.ranker is None:
            raise SpecError("query: the spec has no rerank stage, so there is nothing to rank with.")
        if not texts:
            return []
        self.ranker.warm_up()
        import torch

        activation = torch.nn.Sigmoid() if scale else torch.nn.Identity()
        scores = self.ranker._cross_encoder.predict(
            [(query, t) for t in texts], batch_size=self.ranker.batch_size, activation_fn=activation
        )
        return [float(x) for x in scores]

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Vectors of query texts, encoded with the query embedder's options."""
        return self._embed(self.query, texts, "query")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors of chunk texts, encoded with the document embedder's options."""
        return self._embed(self.documents, texts, "indexing")

    @staticmethod
    def _embed(component: Any, texts: list[str], where: str) -> list[list[float]]:
        if component is None:
            raise SpecError(f"{where}: the spec has no embedder, so there is nothing to encode with.")
        if not texts:
            return []
        if component.embedding_backend is None:
            component.warm_up()
        vectors = component.embedding_backend.embed(texts, **_encode_options(component))
        return [list(map(float, v)) for v in vectors]


class SpecGenerator:
    """The spec's chat generator (LLM), or nothing when the spec answers extractively."""

    def __init__(self, spec: PipelineSpec) -> None:
        names = chat_generator_names(spec.query)
        if len(names) > 1:
            raise SpecError(f"query: the generator service serves one chat generator, found {names}.")
        self.name = names[0] if names else None
        self.component: Any = _only(spec.query, names, "query").get_component(names[0]) if names else None

    @property
    def kind(self) -> str:
        """Type of the served generator, or 'extractive' (no LLM)."""
        return type(self.component).__name__ if self.component is not None else "extractive"

    def warm_up(self) -> None:
        """Load a local model (GPU when present); an endpoint proxy loads nothing."""
        if self.component is not None and hasattr(self.component, "warm_up"):
            self.component.warm_up()

    def _reply(self, messages: list[dict[str, Any]], **kwargs: Any) -> ChatMessage | None:
        if self.component is None:
            raise ModelError("This spec answers extractively; it has no LLM for the generator service to run.")
        chat = [ChatMessage.from_dict(m) for m in messages]
        replies = self.component.run(messages=chat, **kwargs)["replies"]
        return replies[0] if replies else None

    def _run(self, messages: list[dict[str, Any]], **kwargs: Any) -> str:
        reply = self._reply(messages, **kwargs)
        return reply.text or "" if reply else ""

    def generate(self, messages: list[dict[str, Any]], generation_kwargs: dict[str, Any] | None = None) -> str:
        """The reply to ``messages`` (``ChatMessage.to_dict()`` form); ``generation_kwargs`` override the spec's."""
        return self._run(messages, **_overrides(generation_kwargs))

    def reply(self, messages: list[dict[str, Any]], generation_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """:meth:`generate` with the token counts the LLM reported: ``{"text", "usage"}`` (usage None without)."""
        reply = self._reply(messages, **_overrides(generation_kwargs))
        return {"text": reply.text or "" if reply else "", "usage": reported_usage(reply.meta if reply else None)}

    def stream(self, messages: list[dict[str, Any]], generation_kwargs: dict[str, Any] | None = None) -> Iterator[str]:
        """The reply in pieces, as the model produces them."""
        pieces: queue.Queue[Any] = queue.Queue()
        failure: list[BaseException] = []

        def produce() -> None:
            try:
                self._run(
                    messages, streaming_callback=lambda chunk: _put(pieces, chunk), **_overrides(generation_kwargs)
                )
            except BaseException as e:  # re-raised in the consuming thread
                failure.append(e)
            finally:
                pieces.put(_DONE)

        threading.Thread(target=produce, name="ragship-generate", daemon=True).start()
        while (piece := pieces.get()) is not _DONE:
            yield piece
        if failure:
            raise failure[0]


def _overrides(generation_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    # Haystack generators merge run-time generation_kwargs over their own; none given: the spec's stand.
    return {"generation_kwargs": dict(generation_kwargs)} if generation_kwargs else {}


def _put(pieces: queue.Queue[Any], chunk: StreamingChunk) -> None:
    if chunk.content:
        pieces.put(chunk.content)
