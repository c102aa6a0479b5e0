"""Incremental sync's cheap check: a file whose size and mtime match its manifest entry is not read."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from ragship.assembly import store_for
from ragship.spec import default_spec
from ragship.stores.base import RetrievalStore
from ragship.stores.elasticsearch import ElasticsearchStore
from ragship.stores.embedded_schema import DB_FILE
from ragship.sync import Syncer, file_sha256

pytestmark = pytest.mark.slow
OLD = time.time() - 3600  # an hour ago: well outside the racy window


def _write(path: Path, text: str, mtime: float | None = OLD) -> None:
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i, word in enumerate(["amber", "basalt", "cobalt", "dolomite"]):
        _write(folder / f"note-{i}.md", f"# Note {i}\n\nThis note is about {word}.\n")
    return folder


@pytest.fixture(params=["embedded", "elasticsearch"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> RetrievalStore:
    if request.param == "embedded":
        return store_for(default_spec(), str(tmp_path / "store"))
    es_url, alias = request.getfixturevalue("es_url"), request.getfixturevalue("es_alias")
    return ElasticsearchStore(es_url, alias, embedding_dim=384)


def _hits(store: RetrievalStore, word: str) -> list[str]:
    return [Path(d.meta["source"]).name for d in store.bm25_retrieval(word, top_k=5) if word in (d.content or "")]


def test_a_second_sync_reads_no_file_and_a_same_size_edit_is_still_found(corpus: Path, store: RetrievalStore) -> None:
    syncer = Syncer(default_spec(), store)
    first = syncer.sync([corpus])
    assert (first.added, first.hashed) == (4, 4)
    sizes = {Path(s).name: e.size for s, e in store.manifest.read().items()}
    assert sizes == {p.name: p.stat().st_size for p in corpus.iterdir()}

    again = syncer.sync([corpus])
    assert (again.unchanged, again.hashed, again.chunks_written) == (4, 0, 0)  # nothing was read

    # Same size, new mtime: the stamp differs, the hash decides, and the file is re-indexed.
    _write(corpus / "note-0.md", "# Note 0\n\nThis note is about ambex.\n", OLD + 10)
    edited = syncer.sync([corpus])
    assert (edited.updated, edited.unchanged, edited.hashed) == (1, 3, 1)
    assert _hits(store, "ambex") == ["note-0.md"] and _hits(store, "amber") == []


def test_a_touched_but_unchanged_file_is_not_reembedded_and_its_new_mtime_is_recorded(
    corpus: Path, store: RetrievalStore
) -> None:
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    touched = corpus / "note-1.md"
    os.utime(touched, (OLD + 60, OLD + 60))
    report = syncer.sync([corpus])
    assert (report.updated, report.unchanged, report.hashed, report.chunks_written) == (0, 4, 1, 0)
    entry = store.manifest.read()[next(s for s in store.manifest.read() if s.endswith("note-1.md"))]
    assert entry.mtime_ns == touched.stat().st_mtime_ns
    assert syncer.sync([corpus]).hashed == 0  # the recorded stamp now matches


def test_a_racy_file_is_hashed_again_until_its_mtime_is_old(corpus: Path, store: RetrievalStore) -> None:
    """Git's racy-clean rule: a file modified within RACY_WINDOW_NS before a sync gets no stamp, so a later
    edit that keeps its size and (coarse) mtime is still found by hashing."""
    racy = corpus / "note-2.md"
    now = time.time()
    _write(racy, "# Note 2\n\nThis note is about cobalt.\n", now)
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    recorded = {Path(s).name: e for s, e in store.manifest.read().items()}
    assert recorded["note-2.md"].mtime_ns is None and recorded["note-3.md"].mtime_ns is not None

    _write(racy, "# Note 2\n\nThis note is about cobalx.\n", now)  # same size, same mtime
    report = syncer.sync([corpus])
    assert (report.updated, report.hashed) == (1, 1)
    assert _hits(store, "cobalx") == ["note-2.md"]


def test_a_manifest_from_before_the_stamps_is_migrated(corpus: Path, tmp_path: Path) -> None:
    store = store_for(default_spec(), str(tmp_path / "store"))
    Syncer(default_spec(), store).sync([corpus])
    store.close()
    with sqlite3.connect(tmp_path / "store" / DB_FILE) as conn:  # the manifest as older releases made it
        conn.execute("ALTER TABLE manifest DROP COLUMN size")
        conn.execute("ALTER TABLE manifest DROP COLUMN mtime_ns")
    reopened = store_for(default_spec(), str(tmp_path / "store"))
    assert {e.size for e in reopened.manifest.read().values()} == {None}  # read before any write
    syncer = Syncer(default_spec(), reopened)
    report = syncer.sync([corpus])
    assert (report.unchanged, report.hashed, report.chunks_written) == (4, 4, 0)  # hashed, not re-embedded
    assert syncer.sync([corpus]).hashed == 0


def test_indexing_named_files_reads_only_their_manifest_entries(corpus: Path, store: RetrievalStore) -> None:
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    names = sorted(store.manifest.read())
    assert sorted(store.manifest.read_sources([names[1], "not/indexed.md"])) == [names[1]]
    assert store.manifest.read_sources([]) == {}
    # A queue job's path: index() plans against its own files' entries only, and still skips them unread.
    report = syncer.index([corpus / "note-1.md", corpus / "note-2.md"])
    assert (report.unchanged, report.hashed, report.chunks_written) == (2, 0, 0)


def test_a_no_change_sync_builds_no_pipeline_and_commits_nothing(
    corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No model load, no manifest or store write when nothing changed; a touched file only restamps."""
    store = store_for(default_spec(), str(tmp_path / "store"))
    Syncer(default_spec(), store).sync([corpus])

    def no_pipeline(self: Syncer, store: RetrievalStore) -> None:
        raise AssertionError("a sync with nothing to index built the indexing pipeline (and its models)")

    monkeypatch.setattr(Syncer, "pipeline_for", no_pipeline)
    fresh = Syncer(default_spec(), store)  # a new process's syncer: nothing built yet
    with sqlite3.connect(tmp_path / "store" / DB_FILE) as observer:
        version = observer.execute("PRAGMA data_version").fetchone()  # moves when another connection commits
        report = fresh.sync([corpus])
        assert (report.unchanged, report.hashed, report.chunks_written) == (4, 0, 0)
        assert observer.execute("PRAGMA data_version").fetchone() == version

        os.utime(corpus / "note-3.md", (OLD + 5, OLD + 5))
        touched = fresh.sync([corpus])
        assert (touched.unchanged, touched.hashed, touched.chunks_written) == (4, 1, 0)
        assert observer.execute("PRAGMA data_version").fetchone() != version  # the new stamp was recorded


def test_an_edit_that_keeps_size_and_mtime_is_found_by_a_full_sync(corpus: Path, store: RetrievalStore) -> None:
    """The cheap check's documented limit (a tool that restores times: cp -p, rsync -t, tar), and its remedy."""
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    edited = corpus / "note-1.md"
    _write(edited, "# Note 1\n\nThis note is about basaly.\n", OLD)  # same size, the old mtime put back
    assert (syncer.sync([corpus]).updated, _hits(store, "basaly")) == (0, [])

    full = syncer.sync([corpus], mode="full")
    assert (full.hashed, full.rebuild) == (4, "promoted")
    assert _hits(store, "basaly") == ["note-1.md"]
    entry = next(e for s, e in store.manifest.read().items() if s.endswith("note-1.md"))
    assert entry.content_hash == file_sha256(edited)  # what was indexed, not the stale recorded hash
    assert (syncer.sync([corpus]).hashed, syncer.sync([corpus]).updated) == (0, 0)
