"""The embedded store's manifest: a table in the store's SQLite database, so it moves with the chunks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from ragship.stores.base import FileStamp, ManifestEntry

MANIFEST_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (
    source TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    pipeline_hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    indexed_at TEXT NOT NULL,
    size INTEGER,
    mtime_ns INTEGER
);
"""
# Columns added after the first release: stores made before get them on their first manifest write (a NULL
# means "hash the file"), and are read without them until then, so a read-only store still opens.
_STAMP_COLUMNS = ("size", "mtime_ns")

Connection = Callable[[], AbstractContextManager[sqlite3.Connection]]


class EmbeddedManifest:
    """Manifest entries in the ``manifest`` table.

    :param reading: Opens the store's connection for a read (under its lock).
    :param transaction: Opens one write transaction of the store.
    """

    def __init__(self, reading: Connection, transaction: Connection) -> None:
        self._reading = reading
        self._transaction = transaction

    def read(self) -> dict[str, ManifestEntry]:
        """Manifest entries by source, without chunk ids."""
        with self._reading() as conn:
            stamps = "size, mtime_ns" if not _missing_columns(conn) else "NULL, NULL"
            rows = conn.execute(f"SELECT source, content_hash, pipeline_hash, indexed_at, {stamps} FROM manifest")
            return {r[0]: ManifestEntry(r[0], r[1], r[2], (), r[3], r[4], r[5]) for r in rows}

    def read_sources(self, sources: list[str]) -> dict[str, ManifestEntry]:
        """The entries of these sources, without chunk ids."""
        found: dict[str, ManifestEntry] = {}
        with self._reading() as conn:
            stamps = "size, mtime_ns" if not _missing_columns(conn) else "NULL, NULL"
            for i in range(0, len(sources), 500):  # under SQLite's bound-parameter limit
                part = sources[i : i + 500]
                rows = conn.execute(
                    f"SELECT source, content_hash, pipeline_hash, indexed_at, {stamps} FROM manifest"
                    f" WHERE source IN ({','.join('?' * len(part))})",
                    part,
                )
                found.update({r[0]: ManifestEntry(r[0], r[1], r[2], (), r[3], r[4], r[5]) for r in rows})
        return found

    def write(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace entries in one transaction."""
        rows = [
            (e.source, e.content_hash, e.pipeline_hash, json.dumps(e.chunk_ids), e.indexed_at, e.size, e.mtime_ns)
            for e in entries
        ]
        with self._transaction() as conn:
            _migrate(conn)
            conn.executemany(
                "INSERT OR REPLACE INTO manifest (source, content_hash, pipeline_hash, chunk_ids, indexed_at, size,"
                " mtime_ns) VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def update_stamps(self, stamps: list[FileStamp]) -> None:
        """Record new sizes and modification times of existing entries in one transaction."""
        with self._transaction() as conn:
            _migrate(conn)
            conn.executemany(
                "UPDATE manifest SET size = ?, mtime_ns = ? WHERE source = ?",
                [(s.size, s.mtime_ns, s.source) for s in stamps],
            )

    def delete(self, sources: list[str]) -> None:
        """Drop entries in one transaction."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM manifest WHERE source = ?", [(s,) for s in sources])


def _missing_columns(conn: sqlite3.Connection) -> list[str]:
    present = {row[1] for row in conn.execute("PRAGMA table_info(manifest)")}
    return [c for c in _STAMP_COLUMNS if c not in present]


def _migrate(conn: sqlite3.Connection) -> None:
    """Add the stamp columns to a manifest made before they existed (inside the caller's transaction)."""
    for column in _missing_columns(conn):
        conn.execute(f"ALTER TABLE manifest ADD COLUMN {column} INTEGER")
