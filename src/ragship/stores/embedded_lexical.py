"""BM25 of the embedded store with top-k pruning: an in-memory inverted index that scores exactly as FTS5 does.

FTS5 scores every chunk that holds a query word before it sorts them, so a common word costs a pass over
most of the store (953 ms at 500,000 Zipf chunks, benchmarks/README.md). This index holds, for each term,
the sorted rows that contain it and their BM25 term weights, and answers with MaxScore: terms are scored
in order of their best possible contribution until the ones left cannot lift a chunk into the top k; those
are then looked up only for the few candidates left. Results are FTS5's: the terms come from FTS5's own
tokenizer (``porter unicode61``, run on each distinct whitespace token), and the score is ``bm25()``'s
formula (k1 = 1.2, b = 0.75, idf floored at 1e-6), summed per chunk in float64.

The index is derived: SQLite stays the truth. It is built on the first keyword search after opening and
then follows writes incrementally (:meth:`LexicalIndex.updated`, with :mod:`~ragship.stores.embedded_delta`).
"""

from __future__ import annotations

import sqlite3
import threading
from array import array
from collections.abc import Iterable, Sequence

import numpy as np

from ragship.stores.embedded_delta import EMPTY, Seen, delta, snapshot
from ragship.stores.embedded_mask import RowMask

K1 = 1.2
B = 0.75
MIN_IDF = 1e-6  # FTS5's floor for terms in more than half the rows
# Rows tokenised at a time (their words are short-lived Python strings: few at once keep the heap small),
# and rows merged into the postings at a time (each merge copies the postings).
_FETCH = 10_000
_MERGE = 100_000
COMPACT = 0.2  # deleted rows' postings are dropped once they are this share of the rows


class Fts5Tokenizer:
    """FTS5's ``porter unicode61`` terms of short texts, read back from an in-memory FTS5 table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.executescript(
            "CREATE VIRTUAL TABLE t USING fts5(x, tokenize='porter unicode61');"
            "CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance');"
        )
        self._cache: dict[str, tuple[str, ...]] = {}

    def terms(self, texts: Sequence[str]) -> list[tuple[str, ...]]:
        """Each text's terms (a bag: their order is not kept)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            found: dict[int, list[str]] = {}
            with self._lock:
                self._conn.executemany("INSERT INTO t(rowid, x) VALUES (?, ?)", enumerate(missing))
                for term, row in self._conn.execute("SELECT term, doc FROM v"):
                    found.setdefault(row, []).append(term)
                self._conn.execute("DELETE FROM t")
            if len(self._cache) > 100_000:
                self._cache.clear()
            for i, text in enumerate(missing):
                self._cache[text] = tuple(found.get(i, ()))
        return [self._cache[t] for t in texts]


TOKENIZER = Fts5Tokenizer()


class LexicalIndex:
    """Postings (row positions and term frequencies) per term, over all chunks of the store.

    BM25 weights are computed when a query reads a term's postings, from its frequencies and the rows'
    length norms, because idf and the average length move with every write (FTS5 scores with today's
    values): a write then costs only its own rows (:meth:`updated` appends them; deleted rows are masked
    and counted out of the statistics, and their postings dropped once they are a fifth of the rows).
    """

    def __init__(
        self,
        rowids: np.ndarray,
        terms: dict[str, int],
        postings: tuple[np.ndarray, np.ndarray, np.ndarray],
        lengths: np.ndarray,
        bounds: tuple[np.ndarray, np.ndarray],
        dead: tuple[np.ndarray, np.ndarray] | None,
        mask: RowMask,
        seen: Seen,
    ) -> None:
        self.rowids = rowids
        self.terms = terms
        self.starts, self.rows, self.tf = postings
        self.lengths = lengths
        self.max_tf, self.min_length = bounds  # per term: its largest frequency, its shortest row
        self.dead = dead  # (deleted rows, their postings per term) while they are still in the postings
        self.mask = mask
        self.seen = seen
        self.positions = len(rowids)
        df = np.diff(self.starts)
        total = float(lengths.sum())
        self.alive: np.ndarray | None = None
        if dead is not None:
            self.alive = ~dead[0]
            df = df - dead[1]
            total -= float(lengths[dead[0]].sum())  # sums of whole numbers: exact in any order
        self.size = self.positions - (0 if dead is None else int(dead[0].sum()))  # FTS5's row count
        idf = np.log((self.size - df + 0.5) / (df + 0.5))
        self.idf = np.where(idf <= 0, MIN_IDF, idf)
        avg = total / self.size if self.size else 1.0
        self.norm = K1 * (1 - B + B * lengths / (avg or 1.0))  # per row; a weight is tf (k1+1) / (tf + norm)
        # An upper bound of each term's weights (largest tf over shortest row), a hair above for rounding.
        best = self.max_tf * (K1 + 1) / (self.max_tf + K1 * (1 - B + B * self.min_length / (avg or 1.0)))
        self.max_weight = np.where(df > 0, best * (1 + 1e-9), 0.0)

    @classmethod
    def build(cls, conn: sqlite3.Connection) -> LexicalIndex:
        """Read every chunk's content and metadata and index it (one pass over the table)."""
        empty = np.zeros(0, dtype=np.int64)
        postings = (empty, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.uint16))  # tf widens if needed
        index = cls(
            empty,
            {},
            (np.zeros(1, dtype=np.int64), *postings[1:]),
            np.zeros(0),
            (empty, np.zeros(0)),
            None,
            RowMask([]),
            EMPTY,
        )
        return index.updated(conn)

    def updated(self, conn: sqlite3.Connection) -> LexicalIndex:
        """A new index of the table as it is now: deleted rows masked (or dropped), added rows appended.

        This index is left as it was (searches may be reading it), so the result is a new object.
        """
        with snapshot(conn):
            change = delta(conn, self.seen)
            if change.alive is None and change.now.high == change.since.high:
                return self
            rowids, starts, rows, tf, lengths = self.rowids, self.starts, self.rows, self.tf, self.lengths
            max_tf, min_length = self.max_tf, self.min_length
            keep = change.keep(rowids)  # every row held that is still stored (the ones masked before are not)
            gone = self.dead[0] if keep is None and self.dead is not None else None if keep is None else ~keep
            mask_keep = None
            if gone is not None and gone.sum() > COMPACT * len(rowids):  # drop the deleted rows' postings
                keep = ~gone
                live = keep[rows]
                position = np.cumsum(keep) - 1
                starts = np.concatenate(([0], np.cumsum(live)))[starts]  # live postings before each run
                rows, tf = position[rows[live]].astype(np.int32), tf[live]
                rowids, lengths, mask_keep, gone = rowids[keep], lengths[keep], keep, None
            terms = dict(self.terms)
            metas: list[str] = []
            cursor = conn.execute(
                "SELECT rowid, content, meta FROM documents WHERE rowid > ? AND rowid <= ? ORDER BY rowid",
                (change.since.high, change.now.high),
            )
            parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
            while True:
                batch = cursor.fetchmany(_FETCH)
                if batch:
                    parts.append(_postings(batch, terms, metas))
                if parts and (not batch or sum(len(p[0]) for p in parts) >= _MERGE):
                    merged = _merge(rowids, (starts, rows, tf), lengths, (max_tf, min_length), parts, len(terms))
                    rowids, (starts, rows, tf), lengths, (max_tf, min_length) = merged
                    parts = []
                if not batch:
                    break
            dead = None
            if gone is not None and gone.any():
                gone = np.concatenate((gone, np.zeros(len(rowids) - len(gone), dtype=bool)))
                # Each dead posting's term: the run of starts it falls in.
                term_of = np.searchsorted(starts, np.flatnonzero(gone[rows]), side="right") - 1
                dead = (gone, np.bincount(term_of, minlength=len(starts) - 1))
            mask = self.mask.updated(mask_keep, metas)
        return LexicalIndex(rowids, terms, (starts, rows, tf), lengths, (max_tf, min_length), dead, mask, change.now)

    def query_terms(self, clauses: Iterable[tuple[list[str], float]]) -> dict[int, float] | None:
        """Each known term's coefficient (clause weight x idf, summed); None when a word is an FTS5 phrase.

        A query word that FTS5 splits into several terms is a phrase, which this index cannot match:
        the caller then asks FTS5.
        """
        coef: dict[int, float] = {}
        for words, weight in clauses:
            for terms in TOKENIZER.terms(words):
                if len(terms) != 1:
                    return None
                term = self.terms.get(terms[0])
                if term is not None:
                    coef[term] = coef.get(term, 0.0) + weight * float(self.idf[term])
        return coef

    def _postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """A term's rows and their BM25 weights (FTS5's formula, in float64)."""
        lo, hi = self.starts[term], self.starts[term + 1]
        rows, tf = self.rows[lo:hi], self.tf[lo:hi]
        return rows, tf * (K1 + 1) / (tf + self.norm[rows])

    def top(self, coef: dict[int, float], top_k: int, allowed: np.ndarray | None) -> tuple[list[int], list[float]]:
        """Row ids and scores of the ``top_k`` best chunks (ties by rowid) among ``allowed`` rows, best first."""
        if not coef or top_k <= 0 or self.size == 0:
            return [], []
        if self.alive is not None:  # deleted rows still in the postings
            allowed = self.alive if allowed is None else allowed & self.alive
        order = sorted(coef, key=lambda t: coef[t] * self.max_weight[t], reverse=True)
        bounds = [coef[t] * self.max_weight[t] for t in order]
        partial = np.zeros(self.positions)
        candidates: np.ndarray | None = None
        scored = 0
        for scored, term in enumerate(order, start=1):
            rows, weights = self._postings(term)
            partial[rows] += coef[term] * weights
            rest = sum(bounds[scored:])
            if scored == len(order) or rest == 0:
                break
            # Pruning: once the terms left cannot add more than the k-th best partial score, only chunks
            # within that margin of it can still reach the top k, and only they need the other terms.
            live = partial if allowed is None else np.where(allowed, partial, 0.0)
            hits = np.flatnonzero(live)
            if len(hits) >= top_k:
                kth = float(np.partition(live[hits], len(hits) - top_k)[len(hits) - top_k])
                if kth > rest:
                    candidates = hits[live[hits] >= kth - rest]
                    break
        if candidates is None:
            live = partial if allowed is None else np.where(allowed, partial, 0.0)
            candidates = np.flatnonzero(live)
            scores = live[candidates]
        else:
            scores = partial[candidates]
            for term in order[scored:]:
                lo, hi = self.starts[term], self.starts[term + 1]
                rows = self.rows[lo:hi]
                at = np.minimum(np.searchsorted(rows, candidates), len(rows) - 1)
                found = rows[at] == candidates
                tf = self.tf[lo:hi][at]
                weights = tf * (K1 + 1) / (tf + self.norm[candidates])
                scores = scores + np.where(found, coef[term] * weights, 0.0)
        if len(candidates) > top_k:
            kth = np.partition(scores, len(scores) - top_k)[len(scores) - top_k]
            keep = scores >= kth
            candidates, scores = candidates[keep], scores[keep]
        best = np.lexsort((self.rowids[candidates], -scores))[:top_k]
        return [int(r) for r in self.rowids[candidates[best]]], [float(s) for s in scores[best]]


def _postings(
    batch: list[tuple[int, str | None, str]], terms: dict[str, int], metas: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rowids, postings (term, row in batch, frequency; by term then row) and row lengths of a batch.

    New FTS5 terms get the next ids in ``terms``; each row's metadata is appended to ``metas``.
    """
    vocab: dict[str, int] = {}
    words: list[str] = []
    ends = array("q")
    rowids = array("q")
    total = 0
    for rowid, content, meta in batch:
        rowids.append(rowid)
        metas.append(meta)
        if content:
            split = content.split()
            words.extend(split)
            total += len(split)
        ends.append(total)
    # Words get ids in one pass over the batch's distinct words; then a C-level map of every word.
    for word in dict.fromkeys(words):
        vocab[word] = len(vocab)
    tokens = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    del words
    n = len(rowids)
    # Whitespace tokens -> FTS5 terms (none for punctuation, several for "e.g."), as a CSR table.
    per_token = TOKENIZER.terms(list(vocab))
    counts = np.fromiter((len(t) for t in per_token), dtype=np.int64, count=len(per_token))
    ptr = np.zeros(len(per_token) + 1, dtype=np.int64)
    np.cumsum(counts, out=ptr[1:])
    flat = np.fromiter(
        (terms.setdefault(term, len(terms)) for found in per_token for term in found),
        dtype=np.int64,
        count=int(ptr[-1]),
    )
    doc = np.repeat(np.arange(n, dtype=np.int64), np.diff(np.concatenate(([0], np.frombuffer(ends, dtype=np.int64)))))
    if (counts == 1).all():  # the usual case: each whitespace token is one term
        term = flat[tokens]
    else:
        repeat = counts[tokens]
        doc = np.repeat(doc, repeat)
        first = np.repeat(ptr[tokens], repeat)
        term = flat[first + np.arange(len(doc), dtype=np.int64) - np.repeat(np.cumsum(repeat) - repeat, repeat)]
        del repeat, first
    lengths = np.bincount(doc, minlength=n).astype(np.float64)  # FTS5's row size: its number of terms
    keys, tf = np.unique(term * max(n, 1) + doc, return_counts=True)
    post_term, post_row = np.divmod(keys, max(n, 1))
    return np.frombuffer(rowids, dtype=np.int64).copy(), post_term, post_row, tf.astype(np.int32), lengths


def _merge(
    rowids: np.ndarray,
    postings: tuple[np.ndarray, np.ndarray, np.ndarray],
    lengths: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    terms: int,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The postings with the batches' rows appended (they come after every row held, in rowid order)."""
    starts, rows, tf = postings
    offsets = np.cumsum([len(rowids)] + [len(p[0]) for p in parts])
    term = np.concatenate([p[1] for p in parts])
    row = np.concatenate([p[2] + offset for p, offset in zip(parts, offsets, strict=False)])
    freq = np.concatenate([p[3] for p in parts])
    order = np.argsort(term, kind="stable")  # by term; rows stay ascending within a term
    term, row, freq = term[order], row[order], freq[order]
    rowids = np.concatenate([rowids, *[p[0] for p in parts]])
    lengths = np.concatenate([lengths, *[p[4] for p in parts]])
    # Each term's bounds grow with its new postings; deleted rows leave them as (looser) bounds.
    max_tf = np.concatenate((bounds[0], np.zeros(terms - len(bounds[0]), dtype=np.int64)))
    min_length = np.concatenate((bounds[1], np.full(terms - len(bounds[1]), np.inf)))
    runs = np.flatnonzero(np.concatenate(([True], term[1:] != term[:-1])))
    present = term[runs]
    max_tf[present] = np.maximum(max_tf[present], np.maximum.reduceat(freq, runs))
    min_length[present] = np.minimum(min_length[present], np.minimum.reduceat(lengths[row], runs))
    starts = np.concatenate((starts, np.full(terms + 1 - len(starts), starts[-1])))
    # Each posting goes at the end of its term's run: np.insert keeps the order of equal positions.
    at = starts[term + 1]
    rows = np.insert(rows, at, row.astype(np.int32))
    if freq.max(initial=0) > np.iinfo(tf.dtype).max:
        tf = tf.astype(np.int32)
    tf = np.insert(tf, at, freq.astype(tf.dtype))
    starts = starts + np.concatenate(([0], np.cumsum(np.bincount(term, minlength=terms))))
    return rowids, (starts, rows, tf), lengths, (max_tf, min_length)
