"""The embedded store's pruned BM25 index ranks as FTS5 does, filters inside the search, survives kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from haystack import Document

from ragship.stores import EmbeddedDocumentStore, embedded_lexical
from ragship.stores.embedded_dense import DenseIndex
from ragship.stores.embedded_lexical import TOKENIZER, LexicalIndex

WORDS = [
    "vitamin", "vitamins", "calcium", "bone", "bones", "running", "runs", "ran", "heart", "disease", "risk",
    "cancer", "breast", "diet", "fiber", "e.g.", "soy-based", "tea", "green", "coffee", "x-ray", "café",
    "Omega-3", "fish", "oil", "study", "studies", "trial", "mice", "B12", "don't", "the", "a", "of",
]  # fmt: skip
QUERIES = [
    "vitamin D and bone health",
    "does running lower heart disease risk",
    "green tea cancer",
    "omega-3 fish oil study",
    "café x-ray e.g.",
    "what is the risk",
    "B12 deficiency in mice",
    "don't drink coffee",
    "fiber diet breast cancer trials",
    "the",
]


def _corpus(n: int, seed: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    # Zipf draws make a few words common (pruning has something to prune) and give ties on purpose.
    ranks = rng.zipf(1.4, size=(n, 30)) % len(WORDS)
    return [
        Document(
            id=f"c{i}",
            content=" ".join(WORDS[r] for r in row[: 5 + i % 25]),
            meta={"source": f"f{i % 7}.md", "n": i, **({"access": [f"g{i % 3}"]} if i % 4 else {})},
        )
        for i, row in enumerate(ranks)
    ]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    store = EmbeddedDocumentStore(tmp_path / "store")
    store.write_documents(_corpus(400))
    return store


def _ranked(docs: list[Document]) -> list[tuple[str, float]]:
    return [(d.id, round(float(d.score or 0), 9)) for d in docs]


@pytest.mark.parametrize("top_k", [1, 3, 10, 50])
def test_same_ranking_and_scores_as_fts5(store: EmbeddedDocumentStore, top_k: int) -> None:
    for query in QUERIES:
        new = store.bm25_retrieval(query, top_k=top_k)
        old = store.fts5_bm25_retrieval([(query, 1.0)], top_k=top_k)
        assert _ranked(new) == _ranked(old), query
    assert store.bm25_retrieval("vitamin", top_k=3), "the corpus must match the queries"


def test_weighted_clauses_rank_as_fts5(store: EmbeddedDocumentStore) -> None:
    clauses = [("vitamin bone", 1.0), ("running heart", 0.3), ("calcium vitamins", 2.0), ("tea", 0.0)]
    assert _ranked(store.weighted_bm25_retrieval(clauses, top_k=15)) == _ranked(
        store.fts5_bm25_retrieval(clauses, top_k=15)
    )


def test_filters_and_access_cut_before_ranking(store: EmbeddedDocumentStore) -> None:
    source = {"field": "meta.source", "operator": "==", "value": "f3.md"}
    access = {"field": "meta.access", "operator": "in", "value": ["g1"]}
    both = {"operator": "AND", "conditions": [source, access]}
    for filters in (source, access, both):
        for query in QUERIES[:5]:
            new = store.bm25_retrieval(query, top_k=5, filters=filters)
            assert _ranked(new) == _ranked(store.fts5_bm25_retrieval([(query, 1.0)], top_k=5, filters=filters))
            assert all(d.meta["source"] == "f3.md" for d in new) or filters is access


def test_index_follows_writes_and_deletes(store: EmbeddedDocumentStore) -> None:
    assert store.bm25_retrieval("zebra") == []
    store.write_documents([Document(id="z", content="zebra crossing")])
    assert [d.id for d in store.bm25_retrieval("zebra")] == ["z"]
    store.delete_documents(["z"])
    assert store.bm25_retrieval("zebra") == []


def test_phrase_words_go_to_fts5(store: EmbeddedDocumentStore) -> None:
    """``fish_oil`` is one word to the query analysis and a two-term phrase to FTS5: FTS5 answers it."""
    assert TOKENIZER.terms(["fish_oil"]) == [("fish", "oil")]
    store.write_documents([Document(id="p", content="cod fish oil capsules")])
    assert _ranked(store.bm25_retrieval("fish_oil capsules", top_k=5)) == _ranked(
        store.fts5_bm25_retrieval([("fish_oil capsules", 1.0)], top_k=5)
    )


WRITER = """
import sys
from haystack import Document
from ragship.stores import EmbeddedDocumentStore
store = EmbeddedDocumentStore(sys.argv[1])
for batch in range(10_000):
    store.write_documents([Document(id=f"b{batch}-{i}", content=f"word{i} batch{batch} common") for i in range(50)])
    print(batch, flush=True)
"""


def test_kill_9_mid_write_leaves_a_consistent_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None
    committed = -1
    for line in writer.stdout:  # kill once a few batches are in, while the writer is in the next one
        committed = int(line)
        if committed >= 5:
            time.sleep(0.01)
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert sqlite3.connect(path / "store.sqlite3").execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store = EmbeddedDocumentStore(path)
    count = store.count_documents()
    assert count % 50 == 0 and count >= (committed + 1) * 50  # whole batches only, none committed is lost
    assert len(store.bm25_retrieval("common", top_k=count + 10)) == count
    assert _ranked(store.bm25_retrieval("word7 batch3", top_k=20)) == _ranked(
        store.fts5_bm25_retrieval([("word7 batch3", 1.0)], top_k=20)
    )


def _no_rebuild(conn: sqlite3.Connection) -> None:
    raise AssertionError("the index was rebuilt from scratch after a write")


def _fresh(path: Path) -> EmbeddedDocumentStore:
    return EmbeddedDocumentStore(path)  # a new store object builds its indexes from scratch


def test_incremental_update_ranks_as_a_fresh_build_and_fts5(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes, deletes and overwrites (the newest row included) update the index; nothing is rebuilt."""
    path = tmp_path / "store"
    store = EmbeddedDocumentStore(path)
    rng = np.random.default_rng(2)
    docs = [replace(d, embedding=rng.normal(size=8).tolist()) for d in _corpus(600, seed=1)]
    store.write_documents(docs[:300])
    assert store.bm25_retrieval("vitamin", top_k=3)  # both indexes built here, then only updated
    store.embedding_retrieval(docs[0].embedding or [], top_k=3)
    lexical, dense = store._lexical, store._dense
    built = {"lexical": LexicalIndex.build, "dense": DenseIndex.build}
    monkeypatch.setattr(LexicalIndex, "build", _no_rebuild)  # from here on the store may only update
    monkeypatch.setattr(DenseIndex, "build", _no_rebuild)
    store.write_documents(docs[300:450])
    store.delete_documents([f"c{i}" for i in range(0, 450, 7)] + ["c449"])  # c449: the largest rowid
    store.write_documents(docs[449:600])  # c449 comes back with new content under a new rowid
    store.write_chunks([Document(id="c10", content="zebra vitamin café", embedding=[1.0] * 8)])
    probe = rng.normal(size=8).tolist()
    store.bm25_retrieval("vitamin", top_k=1), store.embedding_retrieval(probe, top_k=1)
    monkeypatch.setattr(LexicalIndex, "build", built["lexical"])
    monkeypatch.setattr(DenseIndex, "build", built["dense"])
    fresh = _fresh(path)
    for query in [*QUERIES, "zebra"]:
        for top_k in (1, 10, 40):
            updated = _ranked(store.bm25_retrieval(query, top_k=top_k))
            assert updated == _ranked(fresh.bm25_retrieval(query, top_k=top_k)), query
            assert updated == _ranked(store.fts5_bm25_retrieval([(query, 1.0)], top_k=top_k)), query
    access = {"field": "meta.access", "operator": "in", "value": ["g2"]}
    assert _ranked(store.bm25_retrieval("vitamin bone", top_k=20, filters=access)) == _ranked(
        fresh.bm25_retrieval("vitamin bone", top_k=20, filters=access)
    )
    assert _ranked(store.embedding_retrieval(probe, top_k=25, filters=access)) == _ranked(
        fresh.embedding_retrieval(probe, top_k=25, filters=access)
    )
    assert _ranked(store.embedding_retrieval(probe, top_k=50)) == _ranked(fresh.embedding_retrieval(probe, top_k=50))
    assert store._lexical is not lexical and store._lexical.size == store.count_documents()  # type: ignore[union-attr]
    assert store._dense is not dense and len(store._dense.rowids) == store.count_documents()  # type: ignore[union-attr]
    assert store._lexical.dead is not None  # type: ignore[union-attr]  # deleted rows masked, not yet dropped
    store.delete_documents([f"c{i}" for i in range(0, 600, 2)])  # now over a fifth: their postings are dropped
    for query in QUERIES:
        assert _ranked(store.bm25_retrieval(query, top_k=25)) == _ranked(
            store.fts5_bm25_retrieval([(query, 1.0)], top_k=25)
        ), query
    assert store._lexical.dead is None and len(store._lexical.rowids) == store.count_documents()  # type: ignore[union-attr]


def test_a_deleted_rowid_is_never_given_again(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(tmp_path / "store")
    store.write_documents([Document(id="a", content="alpha"), Document(id="b", content="beta")])
    rowid = store._connect().execute("SELECT rowid FROM documents WHERE id = 'b'").fetchone()[0]
    store.delete_documents(["b"])
    store.write_documents([Document(id="b", content="gamma")])
    assert store._connect().execute("SELECT rowid FROM documents WHERE id = 'b'").fetchone()[0] > rowid


def test_index_follows_another_process_writes(tmp_path: Path) -> None:
    reader = EmbeddedDocumentStore(tmp_path / "store")
    reader.write_documents(_corpus(50))
    assert reader.bm25_retrieval("zebra") == []
    writer = EmbeddedDocumentStore(tmp_path / "store")
    writer.write_documents([Document(id="z", content="zebra vitamin")])
    writer.delete_documents(["c3", "c4"])
    assert [d.id for d in reader.bm25_retrieval("zebra")] == ["z"]
    assert _ranked(reader.bm25_retrieval("vitamin bone", top_k=30)) == _ranked(
        reader.fts5_bm25_retrieval([("vitamin bone", 1.0)], top_k=30)
    )


def test_a_build_in_many_batches_ranks_as_fts5(store: EmbeddedDocumentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Large stores are tokenised and merged a batch at a time; small batches take the same path here."""
    monkeypatch.setattr(embedded_lexical, "_FETCH", 37)
    monkeypatch.setattr(embedded_lexical, "_MERGE", 100)
    for query in QUERIES:
        assert _ranked(store.bm25_retrieval(query, top_k=30)) == _ranked(
            store.fts5_bm25_retrieval([(query, 1.0)], top_k=30)
        ), query
