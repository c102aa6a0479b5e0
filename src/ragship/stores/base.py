"""What a ragship document store offers beyond Haystack's DocumentStore protocol."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from haystack import Document
from haystack.document_stores.types import DocumentStore

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


@dataclass(frozen=True)
class ManifestEntry:
    """What the index holds for one source file: the file's hash, the pipeline that indexed it, its chunks.

    Incremental sync compares these with the files on disk; the store keeps them next to the chunks
    (same SQLite database, or an Elasticsearch index paired with the live index) so they move together.
    """

    source: str
    content_hash: str
    pipeline_hash: str
    chunk_ids: tuple[str, ...] = ()
    indexed_at: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (stored as JSON)."""
        return {
            "source": self.source,
            "content_hash": self.content_hash,
            "pipeline_hash": self.pipeline_hash,
            "chunk_ids": list(self.chunk_ids),
            "indexed_at": self.indexed_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ManifestEntry:
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=data["source"],
            content_hash=data["content_hash"],
            pipeline_hash=data["pipeline_hash"],
            chunk_ids=tuple(data.get("chunk_ids") or ()),
            indexed_at=data.get("indexed_at", ""),
        )


@runtime_checkable
class RetrievalStore(DocumentStore, Protocol):
    """A Haystack document store that ragship's retrievers and writer can drive.

    Every store keeps the chunk's originating file in ``meta["source"]``.
    """

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """Keyword (BM25) search; scores are higher-is-better."""
        ...

    def weighted_bm25_retrieval(
        self, clauses: Sequence[WeightedClause], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Keyword search scoring each chunk by the weighted sum of its BM25 score for each clause's text."""
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

    def read_manifest(self) -> dict[str, ManifestEntry]:
        """Every manifest entry by source (chunk ids left out, so this stays small for big corpora)."""
        ...

    def write_manifest(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace manifest entries (after their chunks have landed)."""
        ...

    def delete_manifest(self, sources: list[str]) -> None:
        """Drop manifest entries (after their chunks are gone)."""
        ...

    @property
    def embedding_dim(self) -> int | None:
        """Vector size the store holds (None until known)."""
        ...

    def describe(self) -> str:
        """Where the store lives, for messages (never contains secrets)."""
        ...

    def sibling(self, name: str) -> RetrievalStore:
        """A separate store of the same backend beside this one (evaluation indices live there)."""
        ...


class StagedRebuild:
    """A rebuild in progress: write into :attr:`store`; call :meth:`keep_live` to throw it away instead."""

    def __init__(self, store: RetrievalStore) -> None:
        self.store = store
        self.outcome = "promoted"
        self._promote = True

    def keep_live(self, reason: str) -> None:
        """Discard the rebuild when the block ends, leaving the live index as it was."""
        self._promote = False
        self.outcome = f"discarded: {reason}, the live index is unchanged"


@contextmanager
def staged(live: RetrievalStore) -> Iterator[StagedRebuild]:
    """Build a new index beside ``live`` that readers do not see, then swap it in atomically.

    Usage::

        with staged(store) as rebuild:
            write_everything_into(rebuild.store)
            if something_failed:
                rebuild.keep_live("some files failed")
        print(rebuild.outcome)

    The rebuild is promoted when the block ends normally, and discarded when it raises or was told to
    :meth:`~StagedRebuild.keep_live`.
    """
    rebuild = StagedRebuild(live.staged_rebuild())
    try:
        yield rebuild
    except BaseException:
        live.discard(rebuild.store)
        raise
    if rebuild._promote:
        live.promote(rebuild.store)
    else:
        live.discard(rebuild.store)
