"""Embedded document store: SQLite for durability and BM25, numpy for dense search.

Why this design (figures: benchmarks/README.md, "Embedded store retrieval latency"):
- SQLite gives crash-safe, incremental writes and deletes in a single file; it is the truth.
- BM25 is FTS5's formula over FTS5's terms, answered by a pruned in-memory inverted index
  (:mod:`~ragship.stores.embedded_lexical`) built from SQLite on the first keyword search and then
  brought up to date with the rows written and deleted since (:mod:`~ragship.stores.embedded_delta`:
  rowids are never reused), so stores written before it need no migration and a crash cannot leave it behind.
- Dense search scans in-memory int8 codes of the L2-normalised embeddings and rescores the best
  candidates exactly from SQLite's float32 (:mod:`~ragship.stores.embedded_dense`), updated the same way
  after writes (also writes by other processes, detected through SQLite's ``data_version``).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from haystack import Document, default_from_dict, default_to_dict, logging
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.utils.filters import document_matches_filter

from ragship.access.scope import ACCESS_META, split_access
from ragship.errors import StoreError
from ragship.settings import EmbeddedStoreSettings, Settings
from ragship.stores.base import RetrievalStore, WeightedClause, WriteResult
from ragship.stores.embedded_access import access_sql
from ragship.stores.embedded_delta import next_rowid, record_high
from ragship.stores.embedded_dense import DenseIndex, from_blob, to_blob
from ragship.stores.embedded_lexical import LexicalIndex
from ragship.stores.embedded_manifest import MANIFEST_SCHEMA, EmbeddedManifest
from ragship.stores.embedded_schema import DB_FILE, SCHEMA, location_path
from ragship.stores.embedded_staging import remove_staged, staged_path, swap_in
from ragship.text.analysis import content_words

logger = logging.getLogger(__name__)


def fts_query(text: str) -> str:
    """Turn free text into an FTS5 OR-query of quoted terms (no FTS syntax leaks through)."""
    return " OR ".join(f'"{t}"' for t in content_words(text))


class EmbeddedDocumentStore:
    """A persistent, in-process document store for notebooks, tests and single-node serving.

    Usage::

        store = EmbeddedDocumentStore(".ragship/store")
        store.write_documents([Document(content="hello", embedding=[...])])
        store.bm25_retrieval("hello", top_k=3)

    :param path: Directory holding the store; created if missing.
    :param embedding_dim: Expected vector size. When given, it must match what is stored.
    :param settings: Memory the in-memory indexes may use (``Settings.embedded``); the defaults when None.
    """

    def __init__(
        self, path: str | Path, embedding_dim: int | None = None, settings: EmbeddedStoreSettings | None = None
    ) -> None:
        self.path = Path(path)
        self._configured_dim = embedding_dim
        self._settings = settings or EmbeddedStoreSettings.model_validate({})
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        # Searches read through one connection per thread, outside the lock: SQLite releases the GIL while it
        # searches and WAL lets readers run beside each other and beside a writer, so concurrent requests'
        # BM25 searches use every core instead of queueing on the lock (py-spy, benchmarks/README.md).
        self._thread = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._dense: DenseIndex | None = None
        self._dense_version: tuple[int, int] | None = None
        self._lexical: LexicalIndex | None = None
        self._lexical_version: tuple[int, int] | None = None
        self._local_writes = 0
        self.manifest = EmbeddedManifest(self._reading, self._transaction)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self.path.exists() and not self.path.is_dir():
                raise StoreError(
                    f"Embedded store path {self.path} is a file; give a directory (it is created if missing)."
                )
            try:
                self.path.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path / DB_FILE, check_same_thread=False, timeout=30)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(SCHEMA + MANIFEST_SCHEMA)
            except sqlite3.DatabaseError as e:
                raise StoreError(
                    f"Cannot open the embedded store at {self.path}: {e}. "
                    "Check the directory is writable and holds a ragship store."
                ) from e
            self._conn = conn
            self._check_dimension(conn)
        return self._conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connect()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connect()
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            finally:
                self._local_writes += 1

    def close(self) -> None:
        """Close the database connection (the store reopens on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for reader in self._readers:
                reader.close()
            self._readers.clear()
            self._thread = threading.local()
            self._dense = None
            self._lexical = None

    def _reader(self) -> sqlite3.Connection:
        """This thread's read-only connection (the schema exists once the main connection has opened)."""
        reader: sqlite3.Connection | None = getattr(self._thread, "reader", None)
        if reader is None:
            with self._lock:
                self._connect()
                # as_uri() percent-encodes the path: a '?' or '#' in a directory name cannot end it early.
                uri = f"{(self.path / DB_FILE).resolve().as_uri()}?mode=ro"
                reader = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
                self._readers.append(reader)
                self._thread.reader = reader
        return reader

    def _meta_value(self, conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM store_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _check_dimension(self, conn: sqlite3.Connection) -> None:
        stored = self._meta_value(conn, "embedding_dim")
        if stored is not None and self._configured_dim is not None and int(stored) != self._configured_dim:
            raise StoreError(
                f"The embedded store at {self.path} holds {stored}-dimensional embeddings but the spec's "
                f"model makes {self._configured_dim}. Use a new --store directory or reindex with --rebuild."
            )

    @property
    def embedding_dim(self) -> int | None:
        """Vector size stored (or configured when nothing is stored yet)."""
        with self._lock:
            stored = self._meta_value(self._connect(), "embedding_dim")
        return int(stored) if stored is not None else self._configured_dim

    def describe(self) -> str:
        """Human-readable location."""
        return f"embedded store at {self.path}"

    def sibling(self, name: str) -> EmbeddedDocumentStore:
        """A store beside this one (directory ``<path>-<name>``), e.g. for evaluation."""
        return EmbeddedDocumentStore(
            self.path.with_name(f"{self.path.name}-{name}"), self._configured_dim, self._settings
        )

    # -- Haystack DocumentStore protocol --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize to a dictionary."""
        return default_to_dict(self, path=str(self.path), embedding_dim=self._configured_dim)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbeddedDocumentStore:
        """Deserialize from a dictionary."""
        return default_from_dict(cls, data)

    def count_documents(self) -> int:
        """Number of stored chunks."""
        with self._lock:
            return int(self._connect().execute("SELECT count(*) FROM documents").fetchone()[0])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """All documents matching Haystack-style ``filters`` (all documents when None)."""
        with self._lock:
            rows = self._connect().execute("SELECT id, content, meta, embedding FROM documents").fetchall()
        docs = [self._row_to_document(*row) for row in rows]
        if filters:
            _check_filters(filters)
            access, filters = split_access(filters)
            if access is not None:
                docs = [d for d in docs if access.admits(d.meta.get(ACCESS_META))]
            if filters:
                docs = [d for d in docs if document_matches_filter(filters, d)]
        return docs

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents; OVERWRITE replaces same-id documents, SKIP keeps them, FAIL/NONE raise."""
        if not isinstance(documents, list) or any(not isinstance(d, Document) for d in documents):
            raise ValueError("write_documents expects a list of haystack Document objects.")
        if not documents:
            return 0
        dims = {len(d.embedding) for d in documents if d.embedding is not None}
        if len(dims) > 1:
            raise StoreError(f"Documents in one batch have different embedding sizes {sorted(dims)}.")
        written = 0
        with self._transaction() as conn:
            if dims:
                self._ensure_dimension(conn, dims.pop())
            rowid = next_rowid(conn)
            for doc in documents:
                exists = conn.execute("SELECT rowid FROM documents WHERE id = ?", (doc.id,)).fetchone()
                if exists is not None:
                    if policy == DuplicatePolicy.SKIP:
                        continue
                    if policy in (DuplicatePolicy.NONE, DuplicatePolicy.FAIL):
                        raise DuplicateDocumentError(f"Document with id '{doc.id}' already exists in the store.")
                    conn.execute("DELETE FROM documents WHERE id = ?", (doc.id,))
                conn.execute(
                    "INSERT INTO documents(rowid, id, content, meta, source, embedding) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        rowid + written,
                        doc.id,
                        doc.content,
                        json.dumps(doc.meta, default=str),
                        doc.meta.get("source"),
                        to_blob(doc.embedding),
                    ),
                )
                written += 1
            if written:
                record_high(conn, rowid + written - 1)
        return written

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete documents by id; unknown ids are ignored."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM documents WHERE id = ?", [(i,) for i in document_ids])

    def delete_all_documents(self) -> None:
        """Delete every document (the embedding dimension is forgotten too)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM documents")
            conn.execute("DELETE FROM store_meta WHERE key = 'embedding_dim'")

    # -- ragship store API --------------------------------------------------------------------
    def write_chunks(self, documents: list[Document]) -> WriteResult:
        """Write with overwrite semantics (one transaction: all chunks land or none do)."""
        return WriteResult(written=self.write_documents(documents, policy=DuplicatePolicy.OVERWRITE))

    def index_fingerprint(self) -> str | None:
        """What the store was built from, if recorded."""
        with self._reading() as conn:
            return self._meta_value(conn, "index_fingerprint")

    def set_index_fingerprint(self, fingerprint: str) -> None:
        """Record what the store was built from."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO store_meta(key, value) VALUES ('index_fingerprint', ?)", (fingerprint,)
            )

    def staged_rebuild(self) -> EmbeddedDocumentStore:
        """An empty store in a sibling directory, swapped in by :meth:`promote`."""
        return EmbeddedDocumentStore(staged_path(self.path), self._configured_dim, self._settings)

    def promote(self, staged: RetrievalStore) -> None:
        """Swap the staged directory in by two renames; the old data is deleted afterwards.

        Other processes holding the old store open keep reading it until they reopen.
        """
        if not isinstance(staged, EmbeddedDocumentStore):
            raise StoreError("promote() needs a store returned by staged_rebuild().")
        staged.close()
        with self._lock:
            self.close()
            swap_in(self.path, staged.path)

    def discard(self, staged: RetrievalStore) -> None:
        """Delete a staged rebuild."""
        if isinstance(staged, EmbeddedDocumentStore):
            staged.close()
            remove_staged(staged.path)

    def delete_by_source(self, sources: list[str], keep_ids: set[str] | None = None) -> int:
        """Delete the chunks of the given source files, except ids in ``keep_ids``."""
        keep = keep_ids or set()
        deleted = 0
        with self._transaction() as conn:
            for source in sources:
                ids = [r[0] for r in conn.execute("SELECT id FROM documents WHERE source = ?", (source,))]
                doomed = [(i,) for i in ids if i not in keep]
                conn.executemany("DELETE FROM documents WHERE id = ?", doomed)
                deleted += len(doomed)
        return deleted

    def ids_by_source(self, source: str) -> set[str]:
        """Ids stored for one source file."""
        with self._lock:
            rows = self._connect().execute("SELECT id FROM documents WHERE source = ?", (source,)).fetchall()
        return {r[0] for r in rows}

    def ids_by_sources(self, sources: list[str]) -> dict[str, set[str]]:
        """Ids stored for each of these source files (an indexed lookup each: nothing to save by grouping)."""
        return {source: self.ids_by_source(source) for source in sources}

    # Retrieval returns chunks without their embeddings, as Elasticsearch does: nothing downstream reads them,
    # and Haystack deep-copies every component's inputs, so 384 floats per chunk cost more than encoding the
    # question (py-spy on /retrieve, benchmarks/README.md).
    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """BM25 over chunk content (FTS5, Porter stemming)."""
        return self.weighted_bm25_retrieval([(query, 1.0)], top_k=top_k, filters=filters)

    def weighted_bm25_retrieval(
        self, clauses: Sequence[WeightedClause], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """BM25 of each clause, weighted and summed per chunk: FTS5's scores, from the pruned index.

        :mod:`~ragship.stores.embedded_lexical` ranks with top-k pruning and the filters as a mask; a query
        word that FTS5 reads as a phrase (``foo_bar``) goes to FTS5 itself.
        """
        words = [(found, weight) for text, weight in clauses if weight > 0 and (found := content_words(text))]
        if not words or top_k <= 0:
            return []
        if filters:
            _check_filters(filters)
        index = self._lexical_index()
        coef = index.query_terms(words) if index is not None else None
        if index is None or coef is None:
            return self.fts5_bm25_retrieval(clauses, top_k=top_k, filters=filters)
        access, rest = split_access(filters)
        rowids, scores = index.top(coef, top_k, index.mask.allowed(rest, access))
        return self._documents_by_rowid(rowids, scores) if rowids else []

    def fts5_bm25_retrieval(
        self, clauses: Sequence[WeightedClause], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """FTS5's BM25 of each clause, weighted and summed per chunk in one SQL statement.

        FTS5 has no per-term boost; its ``bm25()`` of an OR-query is the sum over its terms, so each clause
        is its own MATCH and SQLite adds them up. FTS5 scores every chunk holding a query word, so this
        is slow on large stores with common words; it serves phrases and is the benchmark's baseline.
        """
        matches = [(match, weight) for text, weight in clauses if weight > 0 and (match := fts_query(text))]
        if not matches or top_k <= 0:
            return []
        if filters:
            _check_filters(filters)
        access, filters = split_access(filters)
        where, access_params = access_sql(access)
        if len(matches) == 1:  # a plain search: no grouping, so SQLite ranks inside FTS5
            sql = (
                "SELECT d.id, d.content, d.meta, NULL, -bm25(documents_fts) * ? AS score "
                "FROM documents_fts JOIN documents d ON d.rowid = documents_fts.rowid "
                f"WHERE documents_fts MATCH ?{where} ORDER BY bm25(documents_fts) LIMIT ?"
            )
        else:
            per_clause = " UNION ALL ".join(
                "SELECT rowid, -bm25(documents_fts) * ? AS score FROM documents_fts WHERE documents_fts MATCH ?"
                for _ in matches
            )
            # Ranked and cut before the join, so only the chunks returned are read from the table.
            best = (
                f"SELECT c.rowid, SUM(c.score) AS score FROM ({per_clause}) c "
                + (f"JOIN documents d ON d.rowid = c.rowid WHERE 1{where} " if where else "")
                + "GROUP BY c.rowid ORDER BY score DESC, c.rowid LIMIT ?"
            )
            sql = (
                f"SELECT d.id, d.content, d.meta, NULL, s.score FROM ({best}) s "
                "JOIN documents d ON d.rowid = s.rowid ORDER BY s.score DESC, d.rowid"
            )
        params: list[Any] = [value for match, weight in matches for value in (weight, match)] + access_params
        limit = top_k if not filters else top_k * 10
        while True:
            rows = self._reader().execute(sql, (*params, limit)).fetchall()
            docs = [self._row_to_document(row[0], row[1], row[2], row[3], score=float(row[4])) for row in rows]
            if filters:
                docs = [d for d in docs if document_matches_filter(filters, d)]
            # Filtering can drop hits: widen the candidate pool until enough survive or none are left.
            if len(docs) >= top_k or len(rows) < limit:
                return docs[:top_k]
            limit *= 10

    def embedding_retrieval(
        self, query_embedding: list[float], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Cosine-similarity search over all stored embeddings (int8 scan, best candidates rescored exactly)."""
        index = self._dense_index()
        if index is None or top_k <= 0:
            return []
        if filters:
            _check_filters(filters)
        access, filters = split_access(filters)
        rowids, top_scores = index.top(query_embedding, top_k, index.mask.allowed(filters, access), self._embeddings)
        return self._documents_by_rowid(rowids, top_scores) if rowids else []

    # -- internals ------------------------------------------------------------------------------
    def _ensure_dimension(self, conn: sqlite3.Connection, dim: int) -> None:
        stored = self._meta_value(conn, "embedding_dim")
        if stored is None:
            if self._configured_dim is not None and dim != self._configured_dim:
                raise StoreError(
                    f"Documents have {dim}-dimensional embeddings but the store expects {self._configured_dim}."
                )
            conn.execute("INSERT INTO store_meta(key, value) VALUES ('embedding_dim', ?)", (str(dim),))
        elif int(stored) != dim:
            raise StoreError(
                f"The embedded store at {self.path} holds {stored}-dimensional embeddings; these documents have "
                f"{dim}. Use a new --store directory or reindex with --rebuild after changing the model."
            )

    def _version(self, conn: sqlite3.Connection) -> tuple[int, int]:
        # data_version changes when *another* connection commits; _local_writes covers our own.
        return int(conn.execute("PRAGMA data_version").fetchone()[0]), self._local_writes

    def _dense_index(self) -> DenseIndex | None:
        seen = self._seen_by_reader()
        if self._unchanged("dense", seen, self._dense):
            return self._dense
        with self._lock:
            conn = self._connect()
            version = self._version(conn)
            if self._dense is None or self._dense_version != version:
                # Built once, then brought up to date with the rows written and deleted since.
                if self._dense is None:
                    self._dense = DenseIndex.build(conn, self._settings.exact_vectors_mib << 20)
                    _report_memory(self._dense)
                else:
                    self._dense = self._dense.updated(conn)
                self._dense_version = version
            self._thread.dense = (seen, self._dense)
            return self._dense

    def _lexical_index(self) -> LexicalIndex | None:
        seen = self._seen_by_reader()
        if self._unchanged("lexical", seen, self._lexical):
            return self._lexical
        with self._lock:
            conn = self._connect()
            version = self._version(conn)
            if self._lexical is None or self._lexical_version != version:
                self._lexical = LexicalIndex.build(conn) if self._lexical is None else self._lexical.updated(conn)
                self._lexical_version = version
            self._thread.lexical = (seen, self._lexical)
            return self._lexical

    def _seen_by_reader(self) -> tuple[int, int]:
        """This thread's reader's ``data_version`` (it moves on any other connection's commit, this store's own
        connection's included) and the count of this store's writes."""
        return int(self._reader().execute("PRAGMA data_version").fetchone()[0]), self._local_writes

    def _unchanged(self, kind: str, seen: tuple[int, int], current: object) -> bool:
        """Whether ``current`` is the ``kind`` index this thread last brought up to date and nothing was
        committed since (``seen``, read before the index). Checked without the store lock, which every
        request thread otherwise queued on twice per question (py-spy, benchmarks/README.md, issue 30 goal 4,
        round 4); a commit after ``seen`` was read only costs the next search a recheck.
        """
        last: tuple[tuple[int, int], object] | None = getattr(self._thread, kind, None)
        return current is not None and last is not None and last[1] is current and last[0] == seen

    def _embeddings(self, rowids: list[int]) -> dict[int, bytes]:
        """The float32 embeddings of ``rowids`` (those still stored), read by this thread's reader."""
        marks = ",".join("?" * len(rowids))
        sql = f"SELECT rowid, embedding FROM documents WHERE rowid IN ({marks}) AND embedding IS NOT NULL"
        return dict(self._reader().execute(sql, rowids).fetchall())

    def _documents_by_rowid(self, rowids: list[int], scores: list[float]) -> list[Document]:
        marks = ",".join("?" * len(rowids))
        # This thread's reader, outside the lock: a row deleted since the index was read is just left out.
        sql = f"SELECT rowid, id, content, meta, NULL FROM documents WHERE rowid IN ({marks})"
        rows = self._reader().execute(sql, rowids).fetchall()
        by_rowid = {r[0]: r for r in rows}
        return [
            self._row_to_document(by_rowid[rid][1], by_rowid[rid][2], by_rowid[rid][3], by_rowid[rid][4], score=score)
            for rid, score in zip(rowids, scores, strict=True)
            if rid in by_rowid
        ]

    @staticmethod
    def _row_to_document(
        doc_id: str, content: str | None, meta: str, embedding: bytes | None, score: float | None = None
    ) -> Document:
        return Document(
            id=doc_id,
            content=content,
            meta=json.loads(meta),
            embedding=from_blob(embedding),
            score=score,
        )


def _report_memory(index: DenseIndex | None) -> None:
    if index is not None:
        codes, exact = index.nbytes
        logger.info(
            "Dense index of {rows} chunks: int8 codes {codes:.1f} MiB, float32 rescoring rows {exact:.1f} MiB "
            "in memory (embedded.exact_vectors_mib).",
            rows=len(index.rowids),
            codes=codes / 2**20,
            exact=exact / 2**20,
        )


def _check_filters(filters: dict[str, Any]) -> None:
    if "operator" not in filters and "conditions" not in filters:
        raise StoreError(
            f"Invalid filters {filters!r}: use Haystack filter syntax, e.g. "
            '{"field": "meta.source", "operator": "==", "value": "docs/setup.md"}.'
        )


def open_location(location: str, *, embedding_dim: int | None, settings: Settings) -> EmbeddedDocumentStore:
    """The registry's entry point: a directory path or a ``file://`` URL."""
    return EmbeddedDocumentStore(location_path(location), embedding_dim=embedding_dim, settings=settings.embedded)
