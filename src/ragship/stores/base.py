"""What a ragship document store offers beyond Haystack's DocumentStore protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from haystack import Document
from haystack.document_stores.types import DocumentStore


@dataclass(frozen=True)
class Rejection:
    """A chunk the store refused, with the store's reason."""

    id: str
    source: str
    reason: str


@dataclass
class WriteResult:
    """Outcome of writing a batch of chunks: how many landed, which were refused and why."""

    written: int = 0
    rejected: list[Rejection] = field(default_factory=list)


@runtime_checkable
class RetrievalStore(DocumentStore, Protocol):
    """A Haystack document store that ragship's retrievers and writer can drive.

    Every store keeps the chunk's originating file in ``meta["source"]``.
    """

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """Keyword (BM25) search; scores are higher-is-better."""
        ...

    def embedding_retrieval(
        self, query_embedding: list[float], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Dense (cosine) search; scores are higher-is-better."""
        ...

    def write_chunks(self, documents: list[Document]) -> WriteResult:
        """Write (overwriting same ids); a chunk the store refuses is reported, the rest still land."""
        ...

    def delete_by_source(self, sources: list[str], keep_ids: set[str] | None = None) -> int:
        """Delete the chunks of these source files (except ``keep_ids``); returns how many went."""
        ...

    def ids_by_source(self, source: str) -> set[str]:
        """Ids of the chunks stored for one source file."""
        ...

    def staged_rebuild(self) -> RetrievalStore:
        """A new, empty store of the same kind that readers do not see until :meth:`promote`."""
        ...

    def promote(self, staged: RetrievalStore) -> None:
        """Make ``staged`` the live store in one atomic step and drop the old data."""
        ...

    def discard(self, staged: RetrievalStore) -> None:
        """Throw away a staged rebuild; the live store is untouched."""
        ...

    def index_fingerprint(self) -> str | None:
        """What the live index was built from (set by evaluation to reuse an index), if recorded."""
        ...

    def set_index_fingerprint(self, fingerprint: str) -> None:
        """Record what the index was built from."""
        ...

    @property
    def embedding_dim(self) -> int | None:
        """Vector size the store holds (None until known)."""
        ...

    def describe(self) -> str:
        """Where the store lives, for messages (never contains secrets)."""
        ...
