"""Sentence-transformers embedders that resolve ragship model references (bundled MiniLM, paths)."""

from __future__ import annotations

from typing import Any

from haystack import component
from haystack.utils import ComponentDevice
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)

from ragship.models import resolve_embedding_model


class _ResolvesModel:
    """Keeps the spec portable: the model name is resolved only when the model loads, and an
    unpinned device stays unpinned (so the same spec uses the GPU wherever one exists).
    """

    model: str

    def __init__(self, *args: Any, device: ComponentDevice | None = None, **kwargs: Any) -> None:
        parent: Any = super()
        parent.__init__(*args, device=device, **kwargs)
        self._device_pinned = device is not None

    def to_dict(self) -> dict[str, Any]:
        """Serialize; the device is written only when it was pinned."""
        parent: Any = super()
        data: dict[str, Any] = parent.to_dict()
        if not self._device_pinned:
            data["init_parameters"]["device"] = None
        return data

    def warm_up(self) -> None:
        """Load the model once; Haystack shares the backend between embedders of the same model."""
        declared = self.model
        self.model = resolve_embedding_model(declared)
        try:
            parent: Any = super()
            parent.warm_up()
        finally:
            self.model = declared


@component
class DocumentEmbedder(_ResolvesModel, SentenceTransformersDocumentEmbedder):
    """Embeds chunks with a sentence-transformers model."""


@component
class TextEmbedder(_ResolvesModel, SentenceTransformersTextEmbedder):
    """Embeds a query with a sentence-transformers model."""
