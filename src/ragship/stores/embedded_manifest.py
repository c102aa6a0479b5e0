"""The embedded store's manifest: a table in the store's SQLite database, so it moves with the chunks."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from ragship.stores.base import ManifestEntry

MANIFEST_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (
    source TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    pipeline_hash TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    indexed_at TEXT NOT NULL
);
"""

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
            rows = conn.execute("SELECT source, content_hash, pipeline_hash, indexed_at FROM manifest")
            return {r[0]: ManifestEntry(r[0], r[1], r[2], indexed_at=r[3]) for r in rows}

    def write(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace entries in one transaction."""
        rows = [(e.source, e.content_hash, e.pipeline_hash, json.dumps(e.chunk_ids), e.indexed_at) for e in entries]
        with self._transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO manifest VALUES (?, ?, ?, ?, ?)", rows)

    def delete(self, sources: list[str]) -> None:
        """Drop entries in one transaction."""
        with self._transaction() as conn:
            conn.executemany("DELETE FROM manifest WHERE source = ?", [(s,) for s in sources])
