"""The embedded store's dense search (int8 scan, exact rescoring) returns exact search's ranking and scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from haystack import Document

from ragship.stores import EmbeddedDocumentStore
from ragship.stores.embedded_dense import RESCORED

DIM = 48


def _docs(vectors: np.ndarray, first: int) -> list[Document]:
    return [
        Document(id=f"d{first + i}", content="x", meta={"even": (first + i) % 2 == 0}, embedding=v.tolist())
        for i, v in enumerate(vectors)
    ]


def _exact(vectors: np.ndarray, ids: list[str], query: np.ndarray, k: int) -> tuple[list[str], np.ndarray]:
    normed = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = normed @ (query / np.linalg.norm(query))
    order = np.argsort(-scores, kind="stable")[:k]
    return [ids[i] for i in order], scores[order]


def test_dense_search_equals_exact_search_after_writes_and_deletes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    store = EmbeddedDocumentStore(tmp_path / "store")
    first = rng.normal(size=(3000, DIM)).astype(np.float32)
    store.write_documents(_docs(first, 0))
    assert store.embedding_retrieval(first[0].tolist(), top_k=1)[0].id == "d0"  # the codes are built here
    # Later rows are larger in a few dimensions than any first row: their codes clip, the rescoring does not.
    later = rng.normal(size=(1500, DIM)).astype(np.float32)
    later[:, :4] *= 4
    store.write_documents(_docs(later, 3000))
    store.delete_documents([f"d{i}" for i in range(0, 4500, 9)])
    ids = [f"d{i}" for i in range(4500) if i % 9]
    vectors = np.concatenate((first, later))[[i for i in range(4500) if i % 9]]
    assert len(ids) > 10 * RESCORED
    even = {"field": "meta.even", "operator": "==", "value": True}
    for _ in range(25):
        query = rng.normal(size=DIM).astype(np.float32)
        hits = store.embedding_retrieval(query.tolist(), top_k=10)
        expected, scores = _exact(vectors, ids, query, 10)
        assert [h.id for h in hits] == expected
        assert np.allclose([h.score for h in hits], scores, rtol=1e-5)
        evens = [i for i, name in enumerate(ids) if int(name[1:]) % 2 == 0]
        hits = store.embedding_retrieval(query.tolist(), top_k=10, filters=even)
        assert [h.id for h in hits] == _exact(vectors[evens], [ids[i] for i in evens], query, 10)[0]


def test_rescoring_rows_in_memory_rank_and_score_as_rows_read_from_sqlite(tmp_path: Path) -> None:
    # embedded.exact_vectors_mib keeps the float32 rows in memory while they fit; past it they are dropped
    # and read from SQLite per query. Either way a search returns the same hits and the same scores.
    from ragship.settings import EmbeddedStoreSettings

    rng = np.random.default_rng(1)
    path = tmp_path / "store"
    memory = EmbeddedDocumentStore(path, settings=EmbeddedStoreSettings(exact_vectors_mib=1))
    sqlite = EmbeddedDocumentStore(path, settings=EmbeddedStoreSettings(exact_vectors_mib=0))
    first = rng.normal(size=(4000, DIM)).astype(np.float32)  # 4,000 x 192 bytes: under 1 MiB
    memory.write_documents(_docs(first, 0))
    memory.delete_documents([f"d{i}" for i in range(0, 4000, 7)])
    even = {"field": "meta.even", "operator": "==", "value": True}

    def same_hits() -> None:
        for _ in range(10):
            query = rng.normal(size=DIM).astype(np.float32).tolist()
            for filters in (None, even):
                kept = memory.embedding_retrieval(query, top_k=10, filters=filters)
                read = sqlite.embedding_retrieval(query, top_k=10, filters=filters)
                assert [(d.id, d.score) for d in kept] == [(d.id, d.score) for d in read]

    same_hits()
    kept_index, read_index = memory._dense_index(), sqlite._dense_index()
    assert kept_index is not None and kept_index.exact is not None and kept_index.nbytes[1] > 0
    assert read_index is not None and read_index.exact is None and read_index.nbytes[1] == 0
    memory.write_documents(_docs(rng.normal(size=(3000, DIM)).astype(np.float32), 4000))  # now over 1 MiB
    same_hits()
    grown = memory._dense_index()
    assert grown is not None and grown.exact is None and len(grown.rowids) == 7000 - 572
