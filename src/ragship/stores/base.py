"""What a ragship document store offers beyond Haystack's DocumentStore protocol, in parts.

A backend implements :class:`RetrievalStore` (search, chunk writes, a manifest, staged rebuilds) and, for
evaluation, :class:`EvaluationIndex`; callers type against the part they use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from haystack import Document
from haystack.document_stores.types import DocumentStore

from ragship.errors import StoreError
from ragship.stores.manifest_entry import FileStamp as FileStamp  # re-exported: callers import them from here
from ragship.stores.manifest_entry import ManifestEntry as ManifestEntry

# A keyword query and its weight: a weighted search scores each clause's text as BM25 does and sums
# the scores times the weights (how query expansion gives its new words less say than the question's).
WeightedClause = tuple[str, float]


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


# -- the parts of a store: each caller types against the part it uses ----------------------------------------
class Described(Protocol):
    """What every store says about itself (messages, the embedding check)."""

    @property
    def embedding_dim(self) -> int | None:
        """Vector size the store holds (None until known)."""
        ...

    def describe(self) -> str:
        """Where the store lives, for messages (never contains secrets)."""
        ...


class KeywordSearch(Protocol):
    """BM25 search (``StoreBM25Retriever`` and its query expansion)."""

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """Keyword (BM25) search; scores are higher-is-better."""
        ...

    def weighted_bm25_retrieval(
        self, clauses: Sequence[WeightedClause], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Keyword search scoring each chunk by the weighted sum of its BM25 score for each clause's text."""
        ...


class VectorSearch(Protocol):
    """Dense search (``StoreEmbeddingRetriever``)."""

    def embedding_retrieval(
        self, query_embedding: list[float], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Dense (cosine) search; scores are higher-is-better."""
        ...


class ChunkWriter(Protocol):
    """Writing a file's chunks and replacing its old ones (``StoreWriter``, :mod:`ragship.sync`).

    Every store keeps the chunk's originating file in ``meta["source"]``.
    """

    def write_chunks(self, documents: list[Document]) -> WriteResult:
        """Write (overwriting same ids); a chunk the store refuses is reported, the rest still land."""
        ...

    def delete_by_source(self, sources: list[str], keep_ids: set[str] | None = None) -> int:
        """Delete the chunks of these source files (except ``keep_ids``); returns how many went."""
        ...

    def ids_by_source(self, source: str) -> set[str]:
        """Ids of the chunks stored for one source file."""
        ...

    def ids_by_sources(self, sources: list[str]) -> dict[str, set[str]]:
        """Ids of the chunks stored for each of these source files (one lookup for a batch)."""
        ...


class Manifest(Protocol):
    """The record of what the index holds per source file (:mod:`ragship.sync`), kept beside the chunks."""

    def read(self) -> dict[str, ManifestEntry]:
        """Every entry by source (chunk ids left out, so this stays small for big corpora)."""
        ...

    def read_sources(self, sources: list[str]) -> dict[str, ManifestEntry]:
        """The entries of these sources only (a queue job's files: its cost follows the job, not the corpus)."""
        ...

    def write(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace entries (after their chunks have landed)."""
        ...

    def delete(self, sources: list[str]) -> None:
        """Drop entries (after their chunks are gone)."""
        ...

    def update_stamps(self, stamps: list[FileStamp]) -> None:
        """Record new sizes and modification times of existing entries (touched, unchanged files)."""
        ...


class Rebuilds(Protocol):
    """Staged rebuilds (:func:`ragship.stores.staging.staged`): fill a new index unseen, then swap it in."""

    def staged_rebuild(self) -> RetrievalStore:
        """A new, empty store of the same kind that readers do not see until :meth:`promote`."""
        ...

    def promote(self, staged: RetrievalStore) -> None:
        """Make ``staged`` the live store in one atomic step and drop the old data."""
        ...

    def discard(self, staged: RetrievalStore) -> None:
        """Throw away a staged rebuild; the live store is untouched."""
        ...


@runtime_checkable
class EvaluationIndex(Protocol):
    """What only evaluation needs: its own indices beside the live one, and reuse of one already built."""

    def sibling(self, name: str) -> EvaluationStore:
        """A separate store of the same backend beside this one."""
        ...

    def index_fingerprint(self) -> str | None:
        """What the index was built from, if recorded."""
        ...

    def set_index_fingerprint(self, fingerprint: str) -> None:
        """Record what the index was built from."""
        ...


class RetrievalStore(DocumentStore, Described, KeywordSearch, VectorSearch, ChunkWriter, Rebuilds, Protocol):
    """A Haystack document store that ragship's pipelines, writer and sync drive: what a new backend must offer."""

    @property
    def manifest(self) -> Manifest:
        """The store's manifest (it moves with the chunks in a rebuild)."""
        ...


class EvaluationStore(RetrievalStore, EvaluationIndex, Protocol):
    """A store evaluation can index into (``ragship eval``, ``ragship compare``)."""


def evaluation_store(store: RetrievalStore) -> EvaluationStore:
    """``store`` as an :class:`EvaluationStore`.

    :raises StoreError: when the backend keeps no evaluation indices.
    """
    if not isinstance(store, EvaluationIndex):
        raise StoreError(f"{store.describe()} cannot hold evaluation indices; evaluate on the embedded store.")
    return store
