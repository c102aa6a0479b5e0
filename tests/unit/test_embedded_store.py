from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from haystack import Document
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from ragship.errors import StoreError
from ragship.stores import EmbeddedDocumentStore, open_store
from ragship.stores.embedded import fts_query

DIM = 8


def _doc(i: int, content: str, source: str = "a.md", vec: np.ndarray | None = None) -> Document:
    rng = np.random.default_rng(i)
    embedding = (vec if vec is not None else rng.normal(size=DIM)).astype(np.float32).tolist()
    return Document(id=f"d{i}", content=content, meta={"source": source, "n": i}, embedding=embedding)


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    return EmbeddedDocumentStore(tmp_path / "store")


def test_write_and_count_and_persistence(store: EmbeddedDocumentStore, tmp_path: Path) -> None:
    assert store.write_documents([_doc(1, "alpha"), _doc(2, "beta")]) == 2
    assert store.count_documents() == 2
    store.close()
    reopened = EmbeddedDocumentStore(tmp_path / "store")
    assert reopened.count_documents() == 2
    assert {d.id for d in reopened.filter_documents()} == {"d1", "d2"}
    assert reopened.embedding_dim == DIM


def test_duplicate_policies(store: EmbeddedDocumentStore) -> None:
    store.write_documents([_doc(1, "old text")])
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([_doc(1, "new text")], policy=DuplicatePolicy.FAIL)
    assert store.write_documents([_doc(1, "new text")], policy=DuplicatePolicy.SKIP) == 0
    assert store.filter_documents()[0].content == "old text"
    assert store.write_documents([_doc(1, "new text")], policy=DuplicatePolicy.OVERWRITE) == 1
    assert store.count_documents() == 1
    # the keyword index follows the overwrite: the old text is gone from it
    assert store.bm25_retrieval("old") == []
    assert [d.id for d in store.bm25_retrieval("new")] == ["d1"]


def test_bm25_ranks_by_term_relevance(store: EmbeddedDocumentStore) -> None:
    store.write_documents(
        [
            _doc(1, "Elasticsearch stores vectors and text"),
            _doc(2, "Testing with pytest: run make test to run the tests"),
            _doc(3, "Nothing relevant here at all"),
        ]
    )
    hits = store.bm25_retrieval("how do I run tests", top_k=3)
    assert hits[0].id == "d2"
    assert "d3" not in [h.id for h in hits]
    assert all(h.score is not None and h.score > 0 for h in hits)


def test_fts_query_neutralises_syntax() -> None:
    assert fts_query('NEAR(a b) "quoted" OR col:x*') == '"near" OR "b" OR "quoted" OR "col" OR "x"'
    assert fts_query("the and of") == ""


def test_bm25_survives_fts_syntax_in_question(store: EmbeddedDocumentStore) -> None:
    store.write_documents([_doc(1, 'colon: star* quote" paren(')])
    assert [d.id for d in store.bm25_retrieval('colon: "star* AND paren(')] == ["d1"]


def test_dense_retrieval_matches_brute_force(store: EmbeddedDocumentStore) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, DIM)).astype(np.float32)
    store.write_documents([_doc(i, f"doc {i}", vec=vectors[i]) for i in range(200)])
    query = rng.normal(size=DIM).astype(np.float32)
    hits = store.embedding_retrieval(query.tolist(), top_k=5)
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    expected = np.argsort(-(normed @ (query / np.linalg.norm(query))))[:5]
    assert [h.id for h in hits] == [f"d{i}" for i in expected]
    assert hits[0].score == pytest.approx(float((normed @ (query / np.linalg.norm(query)))[expected[0]]), rel=1e-5)
    # retrieval leaves the vectors in the store, as Elasticsearch does; filter_documents still returns them
    assert all(h.embedding is None for h in hits)
    assert all(d.embedding is None for d in store.bm25_retrieval("doc", top_k=3))
    assert store.filter_documents()[0].embedding is not None


def test_filters_apply_to_both_retrievals(store: EmbeddedDocumentStore) -> None:
    store.write_documents([_doc(i, f"shared words {i}", source="a.md" if i % 2 else "b.md") for i in range(1, 41)])
    only_b = {"field": "meta.source", "operator": "==", "value": "b.md"}
    bm25 = store.bm25_retrieval("shared words", top_k=15, filters=only_b)
    dense = store.embedding_retrieval(np.ones(DIM).tolist(), top_k=15, filters=only_b)
    assert len(bm25) == 15 and all(d.meta["source"] == "b.md" for d in bm25)
    assert len(dense) == 15 and all(d.meta["source"] == "b.md" for d in dense)
    assert len(store.filter_documents(only_b)) == 20
    with pytest.raises(StoreError, match="filter syntax"):
        store.bm25_retrieval("shared", filters={"source": "b.md"})


def test_delete_by_source_keeps_listed_ids(store: EmbeddedDocumentStore) -> None:
    store.write_documents([_doc(1, "one", "x.md"), _doc(2, "two", "x.md"), _doc(3, "three", "y.md")])
    assert store.delete_by_source(["x.md"], keep_ids={"d2"}) == 1
    assert {d.id for d in store.filter_documents()} == {"d2", "d3"}
    assert store.ids_by_source("x.md") == {"d2"}
    assert store.bm25_retrieval("one") == []


def test_ids_by_sources_gives_each_source_its_ids(store: EmbeddedDocumentStore) -> None:
    store.write_documents([_doc(1, "one", "x.md"), _doc(2, "two", "x.md"), _doc(3, "three", "y.md")])
    assert store.ids_by_sources(["x.md", "y.md", "z.md"]) == {"x.md": {"d1", "d2"}, "y.md": {"d3"}, "z.md": set()}


def test_dimension_mismatch_fails_before_writing(store: EmbeddedDocumentStore, tmp_path: Path) -> None:
    store.write_documents([_doc(1, "eight dims")])
    wrong = Document(id="w", content="three dims", meta={}, embedding=[0.1, 0.2, 0.3])
    with pytest.raises(StoreError, match="8-dimensional"):
        store.write_documents([wrong])
    assert store.count_documents() == 1
    with pytest.raises(StoreError, match="384"):
        EmbeddedDocumentStore(tmp_path / "store", embedding_dim=384).count_documents()


def test_other_connection_writes_are_seen(store: EmbeddedDocumentStore, tmp_path: Path) -> None:
    store.write_documents([_doc(1, "first")])
    assert len(store.embedding_retrieval(np.ones(DIM).tolist(), top_k=10)) == 1
    other = EmbeddedDocumentStore(tmp_path / "store")
    other.write_documents([_doc(2, "second")])
    assert len(store.embedding_retrieval(np.ones(DIM).tolist(), top_k=10)) == 2


def test_store_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StoreError, match="is a file"):
        EmbeddedDocumentStore(target).count_documents()


def test_open_store_picks_embedded_for_directories(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "s")), EmbeddedDocumentStore)


def test_serialization_round_trip(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(tmp_path / "s", embedding_dim=4)
    clone = EmbeddedDocumentStore.from_dict(store.to_dict())
    assert clone.path == store.path and clone.embedding_dim == 4


def test_the_registry_picks_the_backend_by_scheme_and_names_unknown_ones(tmp_path: Path) -> None:
    from ragship.errors import ConfigError

    assert isinstance(open_store(f"file://{tmp_path / 'f'}"), EmbeddedDocumentStore)
    with pytest.raises(ConfigError, match=r"no backend for 's3://'.*http://, https://"):
        open_store("s3://user:secret@bucket/store")
    with pytest.raises(ConfigError) as refused:
        open_store("s3://user:secret@bucket/store")
    assert "secret" not in str(refused.value)  # credentials never reach messages


def test_searches_from_many_threads_at_once_see_every_write(store: EmbeddedDocumentStore, tmp_path: Path) -> None:
    # BM25 reads through one connection per thread, outside the store's lock: concurrent searches must give
    # what one search alone gives, and see writes made by this store and by another connection.
    import concurrent.futures

    store.write_documents([_doc(i, f"apple banana {'cherry ' * i}") for i in range(1, 9)])
    questions = ["cherry", "banana", "apple cherry"] * 8
    alone = [[d.id for d in store.bm25_retrieval(q, top_k=3)] for q in questions]
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda q: [d.id for d in store.bm25_retrieval(q, top_k=3)], questions))
    assert together == alone and alone[0][0] == "d8"

    store.write_documents([_doc(20, "durian")])
    EmbeddedDocumentStore(tmp_path / "store").write_documents([_doc(21, "durian durian")])
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(lambda _: [d.id for d in store.bm25_retrieval("durian", top_k=5)], range(8)))
    assert all(ids == ["d21", "d20"] for ids in seen), seen
    store.close()
    assert [d.id for d in store.bm25_retrieval("durian", top_k=1)] == ["d21"]  # reopens after close


def test_searches_do_not_wait_for_the_store_lock_when_nothing_changed(store: EmbeddedDocumentStore) -> None:
    # Request threads used to queue on the store lock twice per question; a search of an unchanged store now
    # answers while another thread holds it (a long write), and sees the write once it is committed.
    import threading

    store.write_documents([_doc(i, f"apple {'cherry ' * i}") for i in range(1, 5)])
    built, held, searched, release = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    found: list[list[str]] = []

    def search() -> None:
        found.append([d.id for d in store.bm25_retrieval("cherry", top_k=2)])  # builds the indexes
        found.append([d.id for d in store.embedding_retrieval(np.ones(DIM).tolist(), top_k=2)])
        built.set()
        held.wait()
        found.append([d.id for d in store.bm25_retrieval("cherry", top_k=2)])
        found.append([d.id for d in store.embedding_retrieval(np.ones(DIM).tolist(), top_k=2)])
        searched.set()

    def hold() -> None:
        built.wait(timeout=30)
        with store._lock:
            held.set()
            release.wait(timeout=30)

    threads = [threading.Thread(target=search), threading.Thread(target=hold)]
    for thread in threads:
        thread.start()
    try:
        assert searched.wait(timeout=10), "a search waited for the store lock"
    finally:
        release.set()
        for thread in threads:
            thread.join()
    assert found[2] == found[0] == ["d4", "d3"] and found[3] == found[1]
    store.write_documents([_doc(9, "cherry " * 20)])
    assert [d.id for d in store.bm25_retrieval("cherry", top_k=1)] == ["d9"]
