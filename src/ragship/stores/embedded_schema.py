"""The embedded store's SQLite database: its file name and the tables of chunks and their full-text index."""

from __future__ import annotations

from urllib.parse import urlsplit

DB_FILE = "store.sqlite3"
SCHEMA_VERSION = 1

# Chunks, their FTS5 index (kept in step by triggers) and the store's own settings; the manifest table
# is :mod:`~ragship.stores.embedded_manifest`'s.
SCHEMA = """
CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    rowid INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    content TEXT,
    meta TEXT NOT NULL,
    source TEXT,
    embedding BLOB
);
CREATE INDEX IF NOT EXISTS documents_source ON documents(source);
CREATE VIRTUAL TABLE IF NOT EXISTS documents_fts USING fts5(
    content, content='documents', content_rowid='rowid', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS documents_ai AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, content) VALUES (new.rowid, coalesce(new.content, ''));
END;
CREATE TRIGGER IF NOT EXISTS documents_ad AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, content)
    VALUES ('delete', old.rowid, coalesce(old.content, ''));
END;
"""


def location_path(location: str) -> str:
    """The directory an embedded-store location names: a directory path or a ``file://`` URL."""
    return urlsplit(location).path if location.startswith("file:") else location
