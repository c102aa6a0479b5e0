"""Dense search of the embedded store: an int8 scan of every embedding, the best candidates rescored exactly.

The float32 matrix of 500,000 384-d embeddings is 768 MB and one query reads all of it (200 ms on the
loaded 2-core machine, benchmarks/README.md). The index holds int8 codes instead (a quarter of the
memory and of the bytes a query reads), scanned with numkong's SIMD kernels; the best candidates are
rescored from their float32 embeddings, so the scores returned are exact cosine similarities. While they fit
``embedded.exact_vectors_mib`` those stay in memory beside the codes (reading 200 of them back from SQLite
was a quarter of a served query's store time, benchmarks/README.md); a larger store reads them per query. The codes
are built from the SQLite rows that hold an embedding and follow writes incrementally; Haystack filters
and the access scope are a mask over the rows' metadata, applied before ranking.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable

import numkong as nk
import numpy as np

from ragship.errors import StoreError
from ragship.stores.embedded_delta import EMPTY, Seen, delta, snapshot
from ragship.stores.embedded_mask import RowMask

RESCORED = 200  # candidates of the int8 scan rescored exactly (at least 10 x top_k)
HEADROOM = 1.25  # codes leave room for later rows larger than the first ones read
BATCH = 10_000

logger = logging.getLogger(__name__)


def to_blob(embedding: Iterable[float] | None) -> bytes | None:
    """An embedding as stored in SQLite (float32 bytes); None stays None."""
    return None if embedding is None else np.asarray(list(embedding), dtype=np.float32).tobytes()


def from_blob(blob: bytes | None) -> list[float] | None:
    """Inverse of :func:`to_blob`."""
    return None if blob is None else np.frombuffer(blob, dtype=np.float32).tolist()


class DenseIndex:
    """int8 codes of the normalised embeddings (one scale per dimension), with their row ids and metadata.

    The codes are a view of a larger buffer, so rows added by a write are copied in after it and the
    index follows writes without reading the table again (:meth:`updated`). ``exact``, when kept, holds the
    normalised float32 rows the same way; it is dropped for good once it would pass ``exact_limit`` bytes.
    """

    def __init__(
        self,
        rowids: np.ndarray,
        buffer: np.ndarray,
        scale: np.ndarray | None,
        mask: RowMask,
        seen: Seen,
        exact_buffer: np.ndarray | None = None,
        exact_limit: int = 0,
    ) -> None:
        self.rowids = rowids
        self._buffer = buffer
        self.codes = buffer[: len(rowids)]
        self.scale = scale
        self.mask = mask
        self.seen = seen
        self._exact_buffer = exact_buffer
        self.exact = None if exact_buffer is None else exact_buffer[: len(rowids)]
        self.exact_limit = exact_limit

    @classmethod
    def build(cls, conn: sqlite3.Connection, exact_limit: int = 0) -> DenseIndex | None:
        """Read every stored embedding; None when there are none. ``exact_limit``: bytes the float32 rows
        may take in memory (0: read them from SQLite per query)."""
        exact = np.zeros((0, 0), dtype=np.float32) if exact_limit > 0 else None
        codes = np.zeros((0, 0), dtype=np.int8)
        return cls(np.zeros(0, dtype=np.int64), codes, None, RowMask([]), EMPTY, exact, exact_limit).updated(conn)

    @property
    def nbytes(self) -> tuple[int, int]:
        """Bytes held by the int8 codes and by the float32 rows kept for rescoring (0 when not kept)."""
        return self._buffer.nbytes, 0 if self._exact_buffer is None else self._exact_buffer.nbytes

    def updated(self, conn: sqlite3.Connection) -> DenseIndex | None:
        """The index of the table as it is now (deleted rows dropped, added rows appended); None when empty.

        This index is left as it was (searches may be reading it).
        """
        with snapshot(conn):
            change = delta(conn, self.seen)
            if change.alive is None and change.now.high == change.since.high:
                return self if len(self.rowids) else None
            rowids, buffer, scale, exact = self.rowids, self._buffer, self.scale, self._exact_buffer
            keep = change.keep(rowids)
            if keep is not None:
                rowids, buffer = rowids[keep], self.codes[keep]
                exact = None if self.exact is None else self.exact[keep]
            metas: list[str] = []
            cursor = conn.execute(
                "SELECT rowid, embedding, meta FROM documents "
                "WHERE rowid > ? AND rowid <= ? AND embedding IS NOT NULL ORDER BY rowid",
                (change.since.high, change.now.high),
            )
            while batch := cursor.fetchmany(BATCH):
                added = _normalised(np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch]))
                n = len(rowids)
                if n == 0 and (scale is None or scale.shape != added.shape[1:]):
                    scale = _scale(added)  # set by the first rows read; a store rebuilt on open re-derives it
                    buffer = np.zeros((0, added.shape[1]), dtype=np.int8)
                    exact = None if exact is None else np.zeros((0, added.shape[1]), dtype=np.float32)
                assert scale is not None
                buffer = _room(buffer, n, len(added))
                buffer[n : n + len(added)] = np.clip(np.rint(added / scale), -127, 127)
                if exact is not None and (n + len(added)) * added[0].nbytes > self.exact_limit:
                    logger.info(
                        "Embedded store over embedded.exact_vectors_mib (%d MiB): rescoring reads SQLite per query.",
                        self.exact_limit >> 20,
                    )
                    exact = None
                if exact is not None:
                    exact = _room(exact, n, len(added))
                    exact[n : n + len(added)] = added
                ids = np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch))
                rowids = np.concatenate((rowids, ids))
                metas.extend(r[2] for r in batch)
            mask = self.mask.updated(keep, metas)
        if not len(rowids):
            return None
        return DenseIndex(rowids, buffer, scale, mask, change.now, exact, self.exact_limit if exact is not None else 0)

    def top(
        self,
        query_embedding: list[float],
        top_k: int,
        allowed: np.ndarray | None,
        vectors: Callable[[list[int]], dict[int, bytes]],
    ) -> tuple[list[int], list[float]]:
        """Row ids and cosine similarities of the ``top_k`` best ``allowed`` rows (None: all), best first.

        The int8 scan ranks every row; its best ``max(RESCORED, 10 x top_k)`` are rescored exactly from
        their float32 embeddings (``vectors`` reads them by rowid), so scores are exact and only a row the
        scan ranks below that many others could be missed (recall is measured in benchmarks/README.md).

        :raises StoreError: when the query's size differs from the stored embeddings'.
        """
        query = np.asarray(query_embedding, dtype=np.float32)
        if query.shape != self.codes.shape[1:]:
            raise StoreError(
                f"Query embedding has {query.size} dimensions but the store holds {self.codes.shape[1]}; "
                "query with the model that indexed the store."
            )
        norm = float(np.linalg.norm(query))
        query = query / norm if norm else query
        assert self.scale is not None
        scaled = query * self.scale  # the codes times their scale approximate the vectors
        peak = float(np.abs(scaled).max())
        code = np.rint(scaled * (127 / peak) if peak else scaled).astype(np.int8)
        coarse = np.asarray(nk.cdist(code[None, :], self.codes, metric="dot"), dtype=np.float64)[0]
        if allowed is not None:
            coarse = np.where(allowed, coarse, -np.inf)
        reachable = len(coarse) if allowed is None else int(allowed.sum())
        count = min(reachable, max(RESCORED, 10 * top_k))
        if count == 0 or top_k <= 0:
            return [], []
        if count < len(coarse):
            candidates = np.argpartition(-coarse, count - 1)[:count]
        else:
            candidates = np.flatnonzero(coarse > -np.inf)
        if self.exact is not None:
            exact = self.exact[candidates]
        else:
            found = vectors([int(r) for r in self.rowids[candidates]])
            candidates = np.array([c for c in candidates if int(self.rowids[c]) in found], dtype=np.int64)
            if len(candidates) == 0:
                return [], []
            rows = [np.frombuffer(found[int(self.rowids[c])], dtype=np.float32) for c in candidates]
            exact = _normalised(np.stack(rows))
        scores = exact @ query
        best = np.lexsort((candidates, -scores))[:top_k]
        return [int(r) for r in self.rowids[candidates[best]]], [float(s) for s in scores[best]]


def _room(buffer: np.ndarray, used: int, extra: int) -> np.ndarray:
    """``buffer`` with room for ``extra`` rows after its first ``used``: grown by a quarter when full, so appends
    rarely copy; the rows past ``used`` are written in place (an older index's view ends at ``used``)."""
    if used + extra <= len(buffer):
        return buffer
    grown = np.empty((max(used + extra, len(buffer) * 5 // 4), buffer.shape[1]), dtype=buffer.dtype)
    grown[:used] = buffer[:used]
    return grown


def _scale(vectors: np.ndarray) -> np.ndarray:
    """Per-dimension int8 scale: the first rows' largest magnitude, with headroom, maps to 127 / 1.25."""
    peak = np.abs(vectors).max(axis=0) * HEADROOM
    return np.where(peak > 0, peak / 127, 1 / 127).astype(np.float32)


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms == 0, 1, norms)).astype(np.float32)
