"""Store-agnostic retrievers: the spec names them, the pipeline builder attaches the store."""

from __future__ import annotations

from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ragship.errors import StoreError
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
    """Keyword (BM25) retrieval from the attached store.

    :param top_k: Documents returned.
    :param filters: Haystack metadata filters applied to every query.
    """

    @component.output_types(documents=list[Document])
    def run(self, query: str, top_k: int | None = None, filters: dict[str, Any] | None = None) -> dict[str, Any]:
        """Retrieve documents matching ``query``'s words."""
        docs = self._store().bm25_retrieval(query, top_k=top_k or self.top_k, filters=filters or self.filters)
        return {"documents": docs}


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
