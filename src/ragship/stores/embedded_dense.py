"""Dense search of the embedded store: an in-memory matrix of L2-normalised embeddings, searched exactly.

The matrix is built from the SQLite rows that hold an embedding; a query is one matrix-vector product
(cosine similarity), with Haystack filters applied as a mask over the rows' metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ragship.access.scope import AccessScope
from ragship.errors import StoreError
from ragship.stores.embedded_mask import RowMask


def to_blob(embedding: Iterable[float] | None) -> bytes | None:
    """An embedding as stored in SQLite (float32 bytes); None stays None."""
    return None if embedding is None else np.asarray(list(embedding), dtype=np.float32).tobytes()


def from_blob(blob: bytes | None) -> list[float] | None:
    """Inverse of :func:`to_blob`."""
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).tolist()


class DenseIndex:
    """Normalised embedding matrix plus the row ids and metadata it was built from."""

    def __init__(self, rowids: np.ndarray, matrix: np.ndarray, metas: list[dict[str, Any]]) -> None:
        self.rowids = rowids
        self.matrix = matrix
        self.mask = RowMask(metas)

    @classmethod
    def from_rows(cls, rows: Sequence[tuple[int, bytes, str]]) -> DenseIndex | None:
        """Build from ``(rowid, embedding blob, meta JSON)`` rows; None when there are none."""
        if not rows:
            return None
        matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
        rowids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        return cls(rowids, matrix, [json.loads(r[2]) for r in rows])

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
