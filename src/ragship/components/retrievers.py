"""Store-agnostic retrievers: the spec names them, the pipeline builder attaches the store."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ragship.errors import StoreError
from ragship.followups import history_weights
from ragship.relevance_feedback import expanded_query
from ragship.settings import DEFAULT_FEEDBACK_TERMS, DEFAULT_HISTORY_WEIGHT, DEFAULT_ORIGINAL_QUERY_WEIGHT
from ragship.stores.base import RetrievalStore


class StoreBound:
    """A component that works against whatever store :func:`ragship.pipelines.attach_store` gives it.

    The store is not part of the spec, so one spec runs unchanged on every store.
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
    """Keyword (BM25) retrieval from the attached store, optionally widened by pseudo-relevance feedback.

    :param top_k: Documents returned.
    :param filters: Haystack metadata filters applied to every query.
    :param feedback_docs: With more than 0, search twice: the second search adds the words of the first one's
        top ``feedback_docs`` chunks to the question (RM3, :mod:`ragship.relevance_feedback`).
    :param feedback_terms: How many words the feedback adds.
    :param original_query_weight: The question's share of the second search's weight (0 to 1).
    :param history_weight: Weight of each earlier user turn a follow-up question leans on, against the question's
        1 (:mod:`ragship.followups`; 0 ignores the history).
    """

    def __init__(
        self,
        top_k: int = 10,
        filters: dict[str, Any] | None = None,
        feedback_docs: int = 0,
        feedback_terms: int = DEFAULT_FEEDBACK_TERMS,
        original_query_weight: float = DEFAULT_ORIGINAL_QUERY_WEIGHT,
        history_weight: float = DEFAULT_HISTORY_WEIGHT,
    ) -> None:
        _Retriever.__init__(self, top_k=top_k, filters=filters)  # @component rebuilds the class: no bare super()
        if feedback_docs < 0:
            raise ValueError(f"feedback_docs must be >= 0 (0 turns feedback off), got {feedback_docs}")
        if feedback_terms < 1:
            raise ValueError(f"feedback_terms must be >= 1, got {feedback_terms}")
        if not 0 <= original_query_weight <= 1:
            raise ValueError(f"original_query_weight must be between 0 and 1, got {original_query_weight}")
        self.feedback_docs = feedback_docs
        self.feedback_terms = feedback_terms
        self.original_query_weight = original_query_weight
        self.history_weight = _checked_history_weight(history_weight)

    def to_dict(self) -> dict[str, Any]:
        """Serialize (without the store)."""
        return default_to_dict(
            self,
            top_k=self.top_k,
            filters=self.filters,
            feedback_docs=self.feedback_docs,
            feedback_terms=self.feedback_terms,
            original_query_weight=self.original_query_weight,
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
        """Retrieve documents matching ``query``'s words (and, with feedback, those of its best hits).

        :param history: The conversation's earlier user turns, oldest first; a follow-up's search adds the
            turns it leans on as clauses of weight ``history_weight``.
        """
        store, top_k, filters = self._store(), top_k or self.top_k, filters or self.filters
        earlier = history_weights(query, history or [], self.history_weight)
        if not self.feedback_docs:
            if not earlier:
                return {"documents": store.bm25_retrieval(query, top_k=top_k, filters=filters)}
            clauses = [(query, 1.0), *earlier]
            return {"documents": store.weighted_bm25_retrieval(clauses, top_k=top_k, filters=filters)}
        first = [(query, 1.0), *earlier]
        hits = (
            store.weighted_bm25_retrieval(first, top_k=self.feedback_docs, filters=filters)
            if earlier
            else store.bm25_retrieval(query, top_k=self.feedback_docs, filters=filters)
        )
        if not hits:
            return {"documents": []}
        clauses = expanded_query(
            query,
            [(doc.content or "", doc.score or 0.0) for doc in hits],
            terms=self.feedback_terms,
            original_query_weight=self.original_query_weight,
        )
        # The earlier turns keep their weight against the question's clause, whatever share feedback left it.
        question_weight = clauses[0][1]
        clauses += [(turn, weight * question_weight) for turn, weight in earlier]
        return {"documents": store.weighted_bm25_retrieval(clauses, top_k=top_k, filters=filters)}


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
        docs = self._store().embedding_retrieval(
            query_embedding, top_k=top_k or self.top_k, filters=filters or self.filters
        )
        return {"documents": docs}
