"""Bulk writes of an ingest on a real Elasticsearch node: stale chunks of a batch found with one search."""

from __future__ import annotations

import pytest
from haystack import Document

from ragship.components.writers import StoreWriter
from ragship.stores import es_bulk
from ragship.stores.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.slow


def _chunks(source: str, texts: list[str]) -> list[Document]:
    return [
        Document(id=f"{source}#{text}", content=text, meta={"source": source}, embedding=[0.1 * (i + 1), 0.2, 0.3])
        for i, text in enumerate(texts)
    ]


def test_a_batch_replaces_the_chunks_of_each_of_its_sources(es_url: str, es_alias: str) -> None:
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=3)
    store.write_chunks(_chunks("a.md", ["one", "two", "three"]) + _chunks("b.md", ["four", "five"]))
    store.write_chunks(_chunks("c.md", ["six"]))
    writer = StoreWriter(replace_sources=True)
    writer.document_store = store

    out = writer.run(documents=_chunks("a.md", ["one", "new"]) + _chunks("b.md", ["five"]))

    assert out["documents_deleted"] == 3  # a.md's two, three; b.md's four
    assert store.ids_by_source("a.md") == {"a.md#one", "a.md#new"}
    assert store.ids_by_source("b.md") == {"b.md#five"}
    assert store.ids_by_source("c.md") == {"c.md#six"}  # not in the batch: untouched
    stored = {d.id: d for d in store.filter_documents()}
    assert stored["a.md#new"].embedding == pytest.approx([0.2, 0.2, 0.3])  # the vector went with the chunk


def test_ids_past_one_search_page_are_scrolled(es_url: str, es_alias: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=3)
    store.write_chunks(_chunks("a.md", [f"t{i}" for i in range(7)]) + _chunks("b.md", ["x", "y"]))
    monkeypatch.setattr(es_bulk, "ID_PAGE", 4)  # a page smaller than the matches: the scroll fallback runs

    assert store.delete_by_source(["a.md", "b.md"], keep_ids={"a.md#t0", "b.md#y"}) == 7
    assert store.ids_by_source("a.md") == {"a.md#t0"}
    assert store.ids_by_source("b.md") == {"b.md#y"}


def test_ids_by_sources_groups_one_search_by_source(es_url: str, es_alias: str) -> None:
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=3)
    store.write_chunks(_chunks("a.md", ["one", "two"]) + _chunks("b.md", ["three"]))

    assert store.ids_by_sources(["a.md", "b.md", "none.md"]) == {
        "a.md": {"a.md#one", "a.md#two"},
        "b.md": {"b.md#three"},
        "none.md": set(),
    }
