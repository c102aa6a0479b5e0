"""Dense search of the embedded store: an in-memory matrix of L2-normalised embeddings, searched exactly.

The matrix is built from the SQLite rows that hold an embedding and follows writes incrementally; a query
is one matrix-vector product (cosine similarity), with Haystack filters applied as a mask over the rows'
metadata.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import numpy as np

from ragship.access.scope import AccessScope
from ragship.errors import StoreError
from ragship.stores.embedded_delta import EMPTY, Seen, delta, snapshot
from ragship.stores.embedded_mask import RowMask


def to_blob(embedding: Iterable[float] | None) -> bytes | None:
    """An embedding as stored in SQLite (float32 bytes); None stays None."""
    return None if embedding is None else np.asarray(list(embedding), dtype=np.float32).tobytes()


def from_blob(blob: bytes | None) -> list[float] | None:
    """Inverse of :func:`to_blob`."""
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).tolist()


class DenseIndex:
    """Normalised embedding matrix plus the row ids and metadata it was built from.

    The matrix is a view of a larger buffer, so rows added by a write are copied in after it and the
    index follows writes without reading the table again (:meth:`updated`).
    """

    def __init__(self, rowids: np.ndarray, buffer: np.ndarray, mask: RowMask, seen: Seen) -> None:
        self.rowids = rowids
        self._buffer = buffer
        self.matrix = buffer[: len(rowids)]
        self.mask = mask
        self.seen = seen

    @classmethod
    def build(cls, conn: sqlite3.Connection) -> DenseIndex | None:
        """Read every stored embedding; None when there are none."""
        empty = cls(np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=np.float32), RowMask([]), EMPTY)
        return empty.updated(conn)

    def updated(self, conn: sqlite3.Connection) -> DenseIndex | None:
        """The index of the table as it is now (deleted rows dropped, added rows appended); None when empty.

        This index is left as it was (searches may be reading it).
        """
        with snapshot(conn):
            change = delta(conn, self.seen)
            if change.alive is None and change.now.high == change.since.high:
                return self if len(self.rowids) else None
            rowids, buffer = self.rowids, self._buffer
            keep = change.keep(rowids)
            if keep is not None:
                rowids, buffer = rowids[keep], self.matrix[keep]
            metas: list[dict[str, Any]] = []
            cursor = conn.execute(
                "SELECT rowid, embedding, meta FROM documents "
                "WHERE rowid > ? AND rowid <= ? AND embedding IS NOT NULL ORDER BY rowid",
                (change.since.high, change.now.high),
            )
            while batch := cursor.fetchmany(10_000):
                added = _normalised(np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch]))
                n = len(rowids)
                if buffer.shape[1:] != added.shape[1:] and n == 0:
                    buffer = np.zeros((0, added.shape[1]), dtype=np.float32)
                if n + len(added) > len(buffer):  # grow by a quarter, so appends rarely copy the matrix
                    grown = np.empty((max(n + len(added), len(buffer) * 5 // 4), added.shape[1]), dtype=np.float32)
                    grown[:n] = buffer[:n]
                    buffer = grown
                buffer[n : n + len(added)] = added
                rowids = np.concatenate((rowids, np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))))
                metas.extend(json.loads(r[2]) for r in batch)
            mask = self.mask.updated(keep, metas)
        return DenseIndex(rowids, buffer, mask, change.now) if len(rowids) else None

    def scores(self, query_embedding: list[float]) -> np.ndarray:
        """Cosine similarity of the query with every row.

        :raises StoreError: when the query's size differs from the stored embeddings'.
        """
        query = np.asarray(query_embedding, dtype=np.float32)
        if query.shape != (self.matrix.shape[1],):
            raise StoreError(
                f"Query embedding has {query.size} dimensions but the store holds {self.matrix.shape[1]}; "
                "query with the model that indexed the store."
            )
        norm = float(np.linalg.norm(query))
        result: np.ndarray = self.matrix @ (query / norm if norm else query)
        return result

    def top(
        self, scores: np.ndarray, top_k: int, filters: dict[str, Any] | None, access: AccessScope | None = None
    ) -> tuple[list[int], list[float]]:
        """Row ids and scores of the ``top_k`` best rows that ``access`` may read and match ``filters``, best first."""
        allowed = self.mask.allowed(filters, access)
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        k = min(top_k, int(np.isfinite(scores).sum()))
        if k == 0:
            return [], []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(self.rowids[i]) for i in top], [float(scores[i]) for i in top]


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
