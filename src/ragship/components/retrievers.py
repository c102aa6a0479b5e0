"""Store-agnostic retrievers: the spec names them, the pipeline builder attaches the store."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ragship.components.followups import history_weights
from ragship.components.query_expansion import QueryExpansion
from ragship.errors import StoreError
from ragship.spec.knobs import default_of
from ragship.stores.base import KeywordSearch, RetrievalStore, VectorSearch


class StoreBound:
    """A component that works against whatever store :func:`ragship.pipelines.attach_store` gives it.

    The store is not part of the spec, so one spec runs unchanged on every store. Each component uses one
    part of the store (:mod:`ragship.stores.base`): the BM25 retriever :class:`KeywordSearch`, the embedding
    retriever :class:`VectorSearch`, the writer :class:`~ragship.stores.base.ChunkWriter`.
    """

    document_store: RetrievalStore | None = None

    def _store(self) -> RetrievalStore:
        if self.document_store is None:
            raise StoreError(
                f"{type(self).__name__} has no document store; build pipelines with ragship.pipelines "
                "or call ragship.pipelines.attach_store()."
            )
        return self.document_store


class _Retriever(StoreBound):
    def __init__(self, top_k: int = 10, filters: dict[str, Any] | None = None) -> None:
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.top_k = top_k
        self.filters = filters

    def to_dict(self) -> dict[str, Any]:
        """Serialize (without the store)."""
        return default_to_dict(self, top_k=self.top_k, filters=self.filters)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Deserialize."""
        return default_from_dict(cls, data)


@component
class StoreBM25Retriever(_Retriever):
    """Keyword (BM25) retrieval from the attached store, with an optional query-expansion stage.

    :param top_k: Documents returned.
    :param filters: Haystack metadata filters applied to every query.
    :param feedback_docs: With more than 0, query expansion searches twice: the second search adds the words of
        the first one's top ``feedback_docs`` chunks to the question (RM3, :class:`QueryExpansion`).
    :param feedback_terms: How many words query expansion adds.
    :param original_query_weight: The question's share of the second search's weight (0 to 1).
    :param history_weight: Weight of each earlier user turn a follow-up question leans on, against the question's
        1 (:mod:`ragship.components.followups`; 0 ignores the history).
    """

    def __init__(
        self,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        feedback_docs: int = default_of("feedback_docs"),
        feedback_terms: int = default_of("feedback_terms"),
        original_query_weight: float = default_of("original_query_weight"),
        history_weight: float = default_of("history_weight"),
    ) -> None:
        _Retriever.__init__(self, top_k=top_k, filters=filters)  # @component rebuilds the class: no bare super()
        self.expansion = QueryExpansion(feedback_docs, feedback_terms, original_query_weight)
        self.history_weight = _checked_history_weight(history_weight)

    @property
    def feedback_docs(self) -> int:
        """Chunks query expansion reads (0: off); the spec's name for it."""
        return self.expansion.feedback_docs

    def to_dict(self) -> dict[str, Any]:
        """Serialize (without the store)."""
        return default_to_dict(
            self,
            top_k=self.top_k,
            filters=self.filters,
            feedback_docs=self.expansion.feedback_docs,
            feedback_terms=self.expansion.feedback_terms,
            original_query_weight=self.expansion.original_query_weight,
            history_weight=self.history_weight,
        )

    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        history: list[str] | None = None,
    ) -> dict[str, Any]:
        """Retrieve documents matching ``query``'s words (with query expansion, also its best hits' words).

        :param history: The conversation's earlier user turns, oldest first; a follow-up's search adds the
            turns it leans on as clauses of weight ``history_weight``.
        """
        store: KeywordSearch = self._store()
        top_k, filters = top_k or self.top_k, filters or self.filters
        earlier = history_weights(query, history or [], self.history_weight)
        if self.expansion.enabled:
            return {"documents": self.expansion.search(store, query, top_k, filters, earlier)}
        if earlier:
            return {"documents": store.weighted_bm25_retrieval([(query, 1.0), *earlier], top_k=top_k, filters=filters)}
        return {"documents": store.bm25_retrieval(query, top_k=top_k, filters=filters)}


def _checked_history_weight(history_weight: float) -> float:
    if history_weight < 0:
        raise ValueError(f"history_weight must be >= 0 (0 ignores the history), got {history_weight}")
    return history_weight


@component
class StoreEmbeddingRetriever(_Retriever):
    """Dense (cosine) retrieval from the attached store.

    :param top_k: Documents returned.
    :param filters: Haystack metadata filters applied to every query.
    """

    @component.output_types(documents=list[Document])
    def run(
        self, query_embedding: list[float], top_k: int | None = None, filters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Retrieve the documents nearest to ``query_embedding``."""
        store: VectorSearch = self._store()
        return {"documents": store.embedding_retrieval(query_embedding, top_k or self.top_k, filters or self.filters)}
