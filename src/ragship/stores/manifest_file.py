"""The embedded store's manifest read straight from its SQLite file, read-only, without opening the store.

Opening :class:`~ragship.stores.embedded.EmbeddedDocumentStore` imports Haystack (and Haystack imports torch
when it is installed: ~3.6 s of a 4.8 s no-change ``ragship sync`` of 100,000 files). Planning a sync needs
only the manifest table, so :mod:`ragship.quick_sync` reads it here. The queries are those of
:class:`~ragship.stores.embedded_manifest.EmbeddedManifest`'s reads; this module never writes, creates or
migrates anything: a store it cannot read this way is left to the store itself (:func:`open_manifest` says None).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ragship.stores.embedded_schema import DB_FILE
from ragship.stores.manifest_entry import ManifestEntry

_COLUMNS = "source, content_hash, pipeline_hash, indexed_at"


class ManifestFile:
    """Manifest entries of an embedded store, read through a read-only connection (a :class:`ManifestReader`)."""

    def __init__(self, conn: sqlite3.Connection, stamps: bool) -> None:
        self._conn = conn
        # Stores made before the stamp columns read NULL stamps until their first write (as the store does).
        self._stamps = "size, mtime_ns" if stamps else "NULL, NULL"

    def read(self) -> dict[str, ManifestEntry]:
        """Manifest entries by source, without chunk ids."""
        rows = self._conn.execute(f"SELECT {_COLUMNS}, {self._stamps} FROM manifest")
        return {r[0]: ManifestEntry(r[0], r[1], r[2], (), r[3], r[4], r[5]) for r in rows}

    def read_sources(self, sources: list[str]) -> dict[str, ManifestEntry]:
        """The entries of these sources, without chunk ids."""
        found: dict[str, ManifestEntry] = {}
        for i in range(0, len(sources), 500):  # under SQLite's bound-parameter limit
            part = sources[i : i + 500]
            rows = self._conn.execute(
                f"SELECT {_COLUMNS}, {self._stamps} FROM manifest WHERE source IN ({','.join('?' * len(part))})",
                part,
            )
            found.update({r[0]: ManifestEntry(r[0], r[1], r[2], (), r[3], r[4], r[5]) for r in rows})
        return found

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()


def open_manifest(store_dir: str | Path, embedding_dim: int | None) -> ManifestFile | None:
    """The manifest of the embedded store in ``store_dir``, opened read-only.

    None when the store does not exist yet, cannot be read this way (no manifest table, not a database, no
    access) or holds embeddings of another size than ``embedding_dim``: opening the store itself then
    creates it or raises the error a user should see, exactly as before this shortcut existed.
    """
    db = Path(store_dir) / DB_FILE
    if not db.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return None
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(manifest)")}
        stored = conn.execute("SELECT value FROM store_meta WHERE key = 'embedding_dim'").fetchone()
    except sqlite3.Error:
        conn.close()
        return None
    if not columns or (stored is not None and embedding_dim is not None and int(stored[0]) != embedding_dim):
        conn.close()
        return None
    return ManifestFile(conn, {"size", "mtime_ns"} <= columns)
