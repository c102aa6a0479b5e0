"""Sentence-transformers embedders that resolve ragship model references (bundled MiniLM, paths)."""

from __future__ import annotations

import json
import logging
import math
import threading
from typing import Any

from haystack import component
from haystack.utils import ComponentDevice
from haystack_integrations.components.embedders.sentence_transformers import (
    SentenceTransformersDocumentEmbedder,
    SentenceTransformersTextEmbedder,
)
from haystack_integrations.components.embedders.sentence_transformers.embedding_backend.backend import (
    _SentenceTransformersEmbeddingBackend,
)

from ragship.components.followups import history_weights
from ragship.enums import EmbeddingBackend
from ragship.errors import SpecError
from ragship.models.resolve import resolve_embedding_model
from ragship.spec.knobs import default_of

logger = logging.getLogger(__name__)

# ONNX-backed models, shared by every embedder of the same export and options (as Haystack shares torch ones).
_onnx_backends: dict[str, _SentenceTransformersEmbeddingBackend] = {}
_onnx_lock = threading.Lock()


def parse_backend(value: object) -> EmbeddingBackend:
    """``value`` as an :class:`EmbeddingBackend`, or a :class:`SpecError` naming the field and the choices."""
    try:
        return EmbeddingBackend(str(value))
    except ValueError:
        choices = ", ".join(m.value for m in EmbeddingBackend)
        raise SpecError(f"embedder init_parameters.backend: {value!r} is not one of {choices}.") from None


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


class _ChoosesBackend(_ResolvesModel):
    """Adds ragship's ``backend`` to the embedders: ``torch``, or ONNX Runtime on the CPU from an export of
    the model made on this machine (``onnx``: float32; ``onnx-int8``: int8 weights), cached by
    ``ragship.models.onnx``. Embedders of the same export and options share one loaded model.
    """

    def __init__(self, *args: Any, backend: EmbeddingBackend | str = EmbeddingBackend.TORCH, **kwargs: Any) -> None:
        chosen = parse_backend(backend)
        super().__init__(*args, backend=chosen.value, **kwargs)

    def warm_up(self) -> None:
        """Load the model once: torch through Haystack's shared backends, ONNX through ragship's."""
        me: Any = self
        if me.backend == EmbeddingBackend.TORCH:
            super().warm_up()
        elif me.embedding_backend is None:
            me.embedding_backend = self._onnx_backend(resolve_embedding_model(self.model))

    def _onnx_backend(self, model_dir: str) -> _SentenceTransformersEmbeddingBackend:
        from ragship.models.onnx import onnx_model_path, use_onnx

        me: Any = self
        if self._device_pinned and not me.device.to_torch_str().startswith("cpu"):
            logger.warning("backend %s runs on the CPU; device %s is not used", me.backend, me.device)
        elif not self._device_pinned and _gpu_visible():
            logger.warning(
                "backend %s runs on the CPU although a GPU is visible: a spec with backend torch uses the GPU"
                " (ragship spec init SPEC --embedding-backend torch)",
                me.backend,
            )
        path = onnx_model_path(model_dir, EmbeddingBackend(me.backend))
        options = {
            "trust_remote_code": me.trust_remote_code,
            "truncate_dim": me.truncate_dim,
            "model_kwargs": me.model_kwargs,
            "tokenizer_kwargs": me.tokenizer_kwargs,
            "config_kwargs": me.config_kwargs,
        }
        key = json.dumps({"path": str(path), **options}, sort_keys=True, default=str)
        with _onnx_lock:
            loaded = _onnx_backends.get(key)
            if loaded is None:
                loaded = _SentenceTransformersEmbeddingBackend(
                    model=model_dir, device="cpu", local_files_only=True, backend="torch", **options
                )
                use_onnx(loaded.model, path, EmbeddingBackend(me.backend))
                _onnx_backends[key] = loaded
        if me.tokenizer_kwargs and me.tokenizer_kwargs.get("model_max_length"):
            loaded.model.max_seq_length = me.tokenizer_kwargs["model_max_length"]
        return loaded


def _gpu_visible() -> bool:
    import torch

    return bool(torch.cuda.is_available())


@component
class DocumentEmbedder(_ChoosesBackend, SentenceTransformersDocumentEmbedder):
    """Embeds chunks with a sentence-transformers model."""


@component
class TextEmbedder(_ChoosesBackend, SentenceTransformersTextEmbedder):
    """Embeds a query with a sentence-transformers model; a follow-up question with the turns it leans on.

    :param history_weight: Weight of each earlier user turn a follow-up leans on
        (:mod:`ragship.components.followups`), against the question's 1: the query vector is the weighted sum of
        the unit vectors of the question and those turns, so cosine search lands between them, nearest the
        question. 0 ignores the history.
    """

    def __init__(self, *args: Any, history_weight: float = default_of("history_weight"), **kwargs: Any) -> None:
        if history_weight < 0:
            raise ValueError(f"history_weight must be >= 0 (0 ignores the history), got {history_weight}")
        _ChoosesBackend.__init__(self, *args, **kwargs)  # @component rebuilds the class: no bare super()
        self.history_weight = history_weight

    def to_dict(self) -> dict[str, Any]:
        """Serialize, with ``history_weight``."""
        data = _ChoosesBackend.to_dict(self)
        data["init_parameters"]["history_weight"] = self.history_weight
        return data

    @component.output_types(embedding=list[float])
    def run(self, text: str, history: list[str] | None = None) -> dict[str, Any]:
        """Embed ``text``; a follow-up of ``history`` (earlier user turns, oldest first) together with the turns
        it leans on."""
        earlier = history_weights(text, history or [], self.history_weight)
        if not earlier:
            return dict(SentenceTransformersTextEmbedder.run(self, text=text))
        if self.embedding_backend is None:
            self.warm_up()
        texts = [self.prefix + t + self.suffix for t in (text, *(turn for turn, _ in earlier))]
        vectors = self.embedding_backend.embed(  # type: ignore[union-attr]  # set by warm_up
            texts,
            batch_size=self.batch_size,
            show_progress_bar=self.progress_bar,
            normalize_embeddings=self.normalize_embeddings,
            precision=self.precision,
            quantization_ranges=self.quantization_ranges,
            **(self.encode_kwargs or {}),
        )
        # Unit vectors first (a remote backend encodes with the spec's options), so each text weighs by its weight
        # alone, not by its vector's length.
        units = [_unit([float(x) for x in vector]) for vector in vectors]
        weights = [1.0, *(weight for _, weight in earlier)]
        combined = [sum(w * u[i] for w, u in zip(weights, units, strict=True)) for i in range(len(units[0]))]
        return {"embedding": _unit(combined)}


def _unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]
