"""The Embedder service: the spec's sentence-transformers model, adaptively batched, on GPU when present."""

from __future__ import annotations

import bentoml

from ragship.observability.tracing import bentoml_tracing
from ragship.serving.backends import SpecEmbedders
from ragship.serving.common import model_resources, spec_and_origin
from ragship.settings import get_settings

_SERVING = get_settings().serving
_BATCHING = {
    "batchable": _SERVING.embedder_batching,
    "max_batch_size": _SERVING.embedder_max_batch_size,
    "max_latency_ms": _SERVING.embedder_max_latency_ms,
}


@bentoml.service(
    name="ragship-embedder",
    **bentoml_tracing(get_settings().tracing),
    resources=model_resources(),
    traffic={"timeout": _SERVING.timeout_s},
    workers=1,
    threads=4,
)
class Embedder:
    """Encodes query and chunk texts; concurrent requests are merged into batches (adaptive batching)."""

    def __init__(self) -> None:
        spec, _ = spec_and_origin()
        self.models = SpecEmbedders(spec)
        self.models.warm_up()

    @bentoml.api(**_BATCHING)
    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        """Query vectors, one per text (texts already carry the spec's prefix)."""
        return self.models.embed_queries(texts)

    @bentoml.api(**_BATCHING)
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Chunk vectors, one per text (texts already carry title/meta as the spec says)."""
        return self.models.embed_documents(texts)

    @bentoml.api
    def rank(self, query: str, texts: list[str], scale: bool = True) -> list[float]:
        """Cross-encoder scores of (query, text) pairs for the spec's rerank stage, in order."""
        return self.models.rank(query, texts, scale)

    @bentoml.api
    def model_info(self) -> dict[str, str | bool]:
        """Model reference, torch device and whether requests are batched."""
        return {"model": self.models.model, "device": self.models.device, "batching": _SERVING.embedder_batching}

    def __is_ready__(self) -> bool:
        return self.models.query is None or self.models.query.embedding_backend is not None
