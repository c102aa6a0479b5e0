"""What changed in the embedded store's table since an in-memory index last read it.

The store never reuses a rowid (:func:`next_rowid`), so rows added since a read are exactly those above
the largest rowid it saw, and rows deleted show as a drop in the row count. An index then reads only the
new rows and drops the deleted ones instead of reading the whole table again; SQLite stays the truth.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

HIGH_KEY = "rowid_high"  # store_meta: the largest rowid ever given, so a deleted row's rowid is never reused


@dataclass(frozen=True)
class Seen:
    """The table as an index last read it: its largest rowid and its number of rows."""

    high: int
    count: int


@dataclass(frozen=True)
class Delta:
    """Rows added (rowid in ``(since.high, now.high]``) and, if rows were deleted, the old rowids still present."""

    since: Seen
    now: Seen
    alive: np.ndarray | None  # sorted rowids <= since.high still in the table; None when none was deleted

    def keep(self, rowids: np.ndarray) -> np.ndarray | None:
        """Which of an index's ``rowids`` are still in the table (None: all)."""
        return None if self.alive is None else np.isin(rowids, self.alive, assume_unique=True)


EMPTY = Seen(high=0, count=0)


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A read transaction, so the delta and the rows read after it see one version of the table."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def delta(conn: sqlite3.Connection, since: Seen) -> Delta:
    """The change from ``since`` to now (call inside :func:`snapshot`)."""
    high = int(conn.execute("SELECT coalesce(max(rowid), 0) FROM documents").fetchone()[0])
    count = int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    added = int(conn.execute("SELECT count(*) FROM documents WHERE rowid > ?", (since.high,)).fetchone()[0])
    alive = None
    if since.count + added != count:
        # Read through the source index: it holds every rowid and is far smaller than the table's pages,
        # which carry the embeddings; one comma-separated text parses in C (500,000 rowids: ~30 ms).
        text = conn.execute(
            "SELECT group_concat(rowid) FROM documents INDEXED BY documents_source WHERE rowid <= ?", (since.high,)
        ).fetchone()[0]
        alive = np.sort(np.fromstring(text or "", dtype=np.int64, sep=","))
    return Delta(since=since, now=Seen(high=max(high, since.high), count=count), alive=alive)


def next_rowid(conn: sqlite3.Connection) -> int:
    """The rowid for the next insert: above every rowid the table holds or ever held (call in a write)."""
    row = conn.execute(
        "SELECT max(coalesce((SELECT max(rowid) FROM documents), 0), "
        f"coalesce((SELECT CAST(value AS INTEGER) FROM store_meta WHERE key = '{HIGH_KEY}'), 0))"
    ).fetchone()
    return int(row[0]) + 1


def record_high(conn: sqlite3.Connection, high: int) -> None:
    """Remember ``high`` as given, in the writing transaction, so that a rowid is never given twice."""
    conn.execute("INSERT OR REPLACE INTO store_meta(key, value) VALUES (?, ?)", (HIGH_KEY, str(high)))
