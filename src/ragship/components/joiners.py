"""FusionJoiner: Haystack's DocumentJoiner with the reciprocal-rank-fusion constant as a setting."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.components.joiners import DocumentJoiner
from haystack.components.joiners.document_joiner import JoinMode

from ragship.spec.knobs import default_of


@component
class FusionJoiner(DocumentJoiner):
    """Fuses the retriever branches' ranked lists; the fusion method, weights and RRF ``k`` are spec settings.

    - ``reciprocal_rank_fusion``: score = sum over lists of weight / (k + rank), rank from 1;
    - ``distribution_based_rank_fusion``: each list's scores normalised by their spread, then summed;
    - ``merge``: the weighted sum of the raw scores (weights matter: BM25 and cosine scales differ).

    :param join_mode: One of the three above (``concatenate`` works too, but does not fuse).
    :param weights: One weight per incoming list, in the order the lists arrive: the order their retrievers
        ran. Haystack runs the components that are ready by name, so in the built-in spec bm25 comes first
        (``bm25_retriever`` needs no embedder), then dense.
    :param rrf_k: RRF's ``k``: larger values flatten the difference between top and lower ranks.
    :param top_k: Documents returned.
    """

    def __init__(
        self,
        join_mode: str | JoinMode = JoinMode.RECIPROCAL_RANK_FUSION,
        weights: list[float] | None = None,
        top_k: int | None = None,
        sort_by_score: bool = True,
        rrf_k: int = default_of("rrf_k"),
    ) -> None:
        # Explicit base call: @component rebuilds the class, which breaks a bare super() here.
        DocumentJoiner.__init__(self, join_mode=join_mode, weights=weights, top_k=top_k, sort_by_score=sort_by_score)
        if rrf_k < 1:
            raise ValueError(f"FusionJoiner needs rrf_k >= 1 (got {rrf_k}).")
        self.rrf_k = rrf_k
        self._raw_weights = weights
        if self.join_mode == JoinMode.RECIPROCAL_RANK_FUSION:
            self.join_mode_function = self._rrf_with_k

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(
            self,
            join_mode=str(self.join_mode),
            weights=self._raw_weights,
            top_k=self.top_k,
            sort_by_score=self.sort_by_score,
            rrf_k=self.rrf_k,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionJoiner:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    def _rrf_with_k(self, document_lists: list[list[Document]]) -> list[Document]:
        weights = self.weights or [1 / len(document_lists)] * len(document_lists)
        scores: dict[str, float] = defaultdict(float)
        docs: dict[str, Document] = {}
        for documents, weight in zip(document_lists, weights, strict=True):
            for rank, doc in enumerate(documents, start=1):
                scores[doc.id] += weight / (self.rrf_k + rank)
                docs.setdefault(doc.id, doc)
        return [replace(docs[i], score=s) for i, s in scores.items()]
