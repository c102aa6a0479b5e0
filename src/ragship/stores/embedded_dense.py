"""Dense search of the embedded store: an in-memory matrix of L2-normalised embeddings, searched exactly.

The matrix is built from the SQLite rows that hold an embedding; a query is one matrix-vector product
(cosine similarity), with Haystack filters applied as a mask over the rows' metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from haystack import Document
from haystack.utils.filters import document_matches_filter

from ragship.access.scope import ACCESS_META, AccessScope
from ragship.errors import StoreError


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
        self.metas = metas
        # Rows of each access group, and the unmarked rows: a scope's mask is an OR of a few boolean arrays.
        self.unmarked = np.ones(len(metas), dtype=bool)
        self.group_rows: dict[str, np.ndarray] = {}
        for i, meta in enumerate(metas):
            for group in meta.get(ACCESS_META) or []:
                rows = self.group_rows.setdefault(group, np.zeros(len(metas), dtype=bool))
                rows[i] = True
                self.unmarked[i] = False

    def access_mask(self, access: AccessScope) -> np.ndarray | None:
        """Rows ``access`` may read (None: all)."""
        if access.groups is None:
            return None
        mask = self.unmarked.copy() if access.include_unmarked else np.zeros(len(self.metas), dtype=bool)
        for group in access.groups:
            if group in self.group_rows:
                mask |= self.group_rows[group]
        return mask

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
        allowed = self.access_mask(access) if access is not None else None
        if allowed is not None:
            scores = np.where(allowed, scores, -np.inf)
        if filters:
            mask = np.fromiter(
                (document_matches_filter(filters, Document(content="", meta=m)) for m in self.metas),
                dtype=bool,
                count=len(self.metas),
            )
            scores = np.where(mask, scores, -np.inf)
        k = min(top_k, int(np.isfinite(scores).sum()))
        if k == 0:
            return [], []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [int(self.rowids[i]) for i in top], [float(scores[i]) for i in top]
