"""ragship on a real Elasticsearch node (started by the session fixture)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from elasticsearch import Elasticsearch
from haystack import Document

from ragship.assembly import open_indexer, open_query_engine
from ragship.errors import StoreError
from ragship.pipelines.query import QueryEngine
from ragship.settings import Settings, load_settings
from ragship.spec import default_spec
from ragship.stores import es_layout, es_text, open_store
from ragship.stores.elasticsearch import ElasticsearchStore
from ragship.stores.es_text import TextAnalysis
from ragship.sync import Syncer

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _settings(alias: str) -> Settings:
    return load_settings(es={"index": alias})


@pytest.fixture
def indexed(es_url: str, es_alias: str) -> tuple[Syncer, str]:
    indexer = open_indexer(default_spec(), es_url, settings=_settings(es_alias))
    report = indexer.index([REPO / "docs"])
    assert report.ok, report.failures
    return indexer, es_alias


def _engine(es_url: str, alias: str, mode: str | None = None) -> QueryEngine:
    return open_query_engine(default_spec(), es_url, mode=mode, settings=_settings(alias))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_index_and_ask_in_every_mode(es_url: str, indexed: tuple[Syncer, str], mode: str) -> None:
    engine = _engine(es_url, indexed[1], mode)
    answer = engine.ask("Which pytest markers does the test suite use?", top_k=3)
    assert answer.sources[0].source == "docs/testing.md"
    assert answer.sources[0].cited and answer.answer
    # A broad question: getting-started.md and reindexing.md also say "run" and "tests" many times, and
    # BM25 alone (Porter-stemmed, docs/stores.md) ranks them above testing.md, so the broad check is for
    # the modes that use embeddings.
    if mode != "bm25":
        broad = engine.ask("How do I run the tests?", top_k=3)
        assert "docs/testing.md" in [s.source for s in broad.sources]


def test_mapping_is_explicit_and_behind_an_alias(es_url: str, indexed: tuple[Syncer, str]) -> None:
    store = indexed[0].store
    assert isinstance(store, ElasticsearchStore)
    es = store.client
    [index] = es.indices.get_alias(name=indexed[1]).body
    mapping = es.indices.get_mapping(index=index).body[index]["mappings"]["properties"]
    assert mapping["embedding"]["dims"] == 384
    assert mapping["embedding"]["similarity"] == "cosine"
    assert mapping["embedding"]["index_options"]["type"] == "int8_hnsw"
    assert mapping["content"]["analyzer"] == "ragship_text"
    assert mapping["source"]["type"] == "keyword"
    assert store.embedding_dim == 384


def test_reindexing_writes_only_what_changed_without_duplicates(
    indexed: tuple[Syncer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    indexer = indexed[0]
    before = indexer.store.count_documents()
    again = indexer.index([REPO / "docs"])
    assert (again.chunks_written, again.files_indexed) == (0, 0) and again.unchanged > 5
    assert indexer.store.count_documents() == before
    # An edited copy of a file replaces exactly its own chunks.
    monkeypatch.chdir(tmp_path)
    page = Path("page.md")
    page.write_text("# Page\n\nThe first version of a page.\n")
    assert indexer.index([page]).chunks_written == 1
    page.write_text("# Page\n\nThe second version of the page, edited.\n")
    edited = indexer.index([page])
    assert (edited.updated, edited.chunks_written, edited.chunks_deleted) == (1, 1, 1)
    assert indexer.store.count_documents() == before + 1


def test_delete_by_source_and_filters(es_url: str, indexed: tuple[Syncer, str]) -> None:
    store = indexed[0].store
    testing_ids = store.ids_by_source("docs/testing.md")
    assert testing_ids
    total = store.count_documents()

    only_stores = {"field": "meta.source", "operator": "==", "value": "docs/stores.md"}
    for mode in ("bm25", "dense"):
        answer = _engine(es_url, indexed[1], mode).ask("How do I run the tests?", filters=only_stores)
        assert answer.sources and {s.source for s in answer.sources} == {"docs/stores.md"}

    assert store.delete_by_source(["docs/testing.md"]) == len(testing_ids)
    assert store.count_documents() == total - len(testing_ids)
    assert store.ids_by_source("docs/testing.md") == set()
    sources = {s.source for s in _engine(es_url, indexed[1], "bm25").ask("How do I run the tests?").sources}
    assert "docs/testing.md" not in sources


def test_rebuild_swaps_alias_while_queries_run(es_url: str, indexed: tuple[Syncer, str]) -> None:
    indexer, alias = indexed
    store = indexer.store
    assert isinstance(store, ElasticsearchStore)
    old_indices = set(store.client.indices.get_alias(name=alias).body)
    count = store.count_documents()
    engine = _engine(es_url, alias, "hybrid")
    engine.warm_up()
    stop = threading.Event()
    outcomes: list[str] = []

    def keep_querying() -> None:
        while not stop.is_set():
            try:
                outcomes.append("ok" if engine.ask("How do I run the tests?").sources else "empty")
            except Exception as e:  # every failure counts against the test
                outcomes.append(f"error: {e}")

    worker = threading.Thread(target=keep_querying)
    worker.start()
    try:
        for _ in range(2):
            report = indexer.rebuild([REPO / "docs"])
            assert report.rebuild == "promoted"
    finally:
        stop.set()
        worker.join(timeout=60)
    assert len(outcomes) >= 5
    assert set(outcomes) == {"ok"}, [o for o in outcomes if o != "ok"][:3]
    new_indices = set(store.client.indices.get_alias(name=alias).body)
    assert len(new_indices) == 1 and not new_indices & old_indices
    assert not any(store.client.indices.exists(index=i) for i in old_indices)
    assert store.count_documents() == count


def test_failed_rebuild_leaves_live_index_alone(indexed: tuple[Syncer, str], tmp_path: Path) -> None:
    indexer, _ = indexed
    count = indexer.store.count_documents()
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    report = indexer.rebuild([tmp_path / "broken.pdf"])
    assert report.rebuild is not None and report.rebuild.startswith("discarded")
    assert indexer.store.count_documents() == count


def test_rejected_chunk_is_reported_and_the_rest_written(es_url: str, es_alias: str, tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    records.write_text(
        json.dumps({"_id": "a", "text": "first record", "meta": {"priority": 1}})
        + "\n"
        + json.dumps({"_id": "b", "text": "second record", "meta": {"priority": "very high"}})
        + "\n"
    )
    other = tmp_path / "other.md"
    other.write_text("# Other\n\nAnother file that indexes fine.\n")
    indexer = open_indexer(default_spec(), es_url, settings=_settings(es_alias))
    report = indexer.index([records, other])
    [failure] = report.failures
    assert failure.source.endswith("records.jsonl")
    assert "rejected by the store" in failure.reason
    assert "exception" in failure.reason  # Elasticsearch's own error type, e.g. document_parsing_exception
    assert indexer.store.count_documents() == 2


def test_dimension_mismatch_fails_before_writing(es_url: str, indexed: tuple[Syncer, str]) -> None:
    alias = indexed[1]
    with pytest.raises(StoreError, match="maps 384-dimensional embeddings"):
        open_store(es_url, embedding_dim=8, settings=_settings(alias)).count_documents()
    store = open_store(es_url, settings=_settings(alias))
    before = store.count_documents()
    wrong = Document(content="x", meta={"source": "x.md"}, embedding=np.ones(8).tolist())
    with pytest.raises(StoreError, match="nothing was written"):
        store.write_chunks([wrong])
    assert store.count_documents() == before


def test_cli_index_and_ask_on_elasticsearch(es_url: str, es_alias: str, cli) -> None:
    env = {"RAGSHIP_ES__INDEX": es_alias}
    assert cli("index", "docs", "--store", es_url, env=env).returncode == 0
    result = cli("ask", "How do I run the tests?", "--store", es_url, "--json", env=env)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answer"]
    assert "docs/testing.md" in [s["source"] for s in answer["sources"]]
    assert cli("es", "size", "--docs", "1000", "--dims", "384").returncode == 0


def test_unreachable_elasticsearch_is_one_clear_line(cli) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.monotonic()
    result = cli("ask", "anything", "--store", f"http://127.0.0.1:{port}")
    assert result.returncode == 2
    assert f"Cannot reach Elasticsearch at http://127.0.0.1:{port}" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
    assert time.monotonic() - start < 120


FILTER_DOCS = [
    Document(id=f"d{i}", content=text, meta={"source": f"docs/{name}.md", "year": year, "lang": lang})
    for i, (text, name, year, lang) in enumerate(
        [
            ("run the tests with make test", "testing", 2024, "en"),
            ("serving with bentoml", "serving", 2025, "en"),
            ("index documents incrementally", "indexing", 2023, "de"),
            ("elasticsearch cluster replicas", "stores", 2025, "fr"),
        ]
    )
]
FILTERS = [
    {"field": "meta.source", "operator": "==", "value": "docs/serving.md"},
    {"field": "meta.lang", "operator": "!=", "value": "en"},
    {"field": "meta.source", "operator": "in", "value": ["docs/testing.md", "docs/stores.md"]},
    {"field": "meta.source", "operator": "not in", "value": ["docs/testing.md"]},
    {"field": "meta.year", "operator": ">=", "value": 2025},
    {"field": "meta.year", "operator": "<", "value": 2025},
    {"operator": "AND", "conditions": [
        {"field": "meta.lang", "operator": "==", "value": "en"},
        {"field": "meta.year", "operator": ">", "value": 2024},
    ]},
    {"operator": "OR", "conditions": [
        {"field": "meta.lang", "operator": "==", "value": "de"},
        {"field": "meta.year", "operator": "<=", "value": 2024},
    ]},
    {"operator": "NOT", "conditions": [{"field": "meta.lang", "operator": "==", "value": "en"}]},
]  # fmt: skip


@pytest.mark.parametrize("filters", FILTERS, ids=[json.dumps(f)[:60] for f in FILTERS])
def test_filters_select_what_the_embedded_store_selects(
    es_url: str, es_alias: str, tmp_path: Path, filters: dict[str, object]
) -> None:
    es = ElasticsearchStore(es_url, es_alias)
    embedded = open_store(str(tmp_path / "store"))
    for store in (es, embedded):
        store.write_documents([Document(id=d.id, content=d.content, meta=dict(d.meta)) for d in FILTER_DOCS])
    expected = sorted(d.id for d in embedded.filter_documents(filters))
    assert expected  # every filter here selects something, so an empty result cannot pass by accident
    assert sorted(d.id for d in es.filter_documents(filters)) == expected
    hits = es.bm25_retrieval("tests serving index elasticsearch", top_k=10, filters=filters)
    assert {d.id for d in hits} <= set(expected)


def test_a_malformed_filter_names_the_problem(es_url: str, es_alias: str) -> None:
    with pytest.raises(StoreError, match="Unknown comparison operator '~'"):
        ElasticsearchStore(es_url, es_alias).filter_documents({"field": "meta.lang", "operator": "~", "value": "en"})


def test_an_evaluation_index_lives_beside_the_store(es_url: str, es_alias: str, tmp_path: Path) -> None:
    settings = _settings(es_alias)
    sibling = open_store(es_url, settings=settings).sibling("eval-demo")
    assert isinstance(sibling, ElasticsearchStore) and sibling.alias == f"{es_alias}-eval-demo"
    try:
        sibling.write_documents([FILTER_DOCS[0]])
        assert sibling.count_documents() == 1 and open_store(es_url, settings=settings).count_documents() == 0
    finally:
        sibling.delete_index()
    local = open_store(f"file://{tmp_path / 'store'}").sibling("eval-demo")
    assert local.describe() == f"embedded store at {tmp_path / 'store-eval-demo'}"


def test_bm25_stems_client_side_where_the_cluster_has_no_english_analyzer(es_url: str, es_alias: str) -> None:
    store = ElasticsearchStore(es_url, es_alias)
    # The local distribution lacks analysis-common: the observable decision is the client-side analysis.
    assert not es_text.has_english_analyzer(store._call, store.client)
    assert store.text_analysis == TextAnalysis("ragship_text", client_side=True)
    store.write_documents(
        [
            Document(id="run", content="To run the test suite, call make."),
            Document(id="other", content="Elasticsearch keeps an alias over each index."),
        ]
    )
    hits = store.bm25_retrieval("running tests", top_k=5)
    assert [d.id for d in hits] == ["run"]
    assert hits[0].content == "To run the test suite, call make." and es_text.STEMMED_FIELD not in hits[0].meta
    assert store.bm25_retrieval("the", top_k=5) == []  # stop words alone match nothing
    # The choice lives in the index, and recording the eval fingerprint keeps it.
    store.set_index_fingerprint("abc")
    [index] = store.client.indices.get_alias(name=es_alias).body
    meta = store.client.indices.get_mapping(index=index).body[index]["mappings"]["_meta"]
    assert meta == {"ragship_analysis": "client_porter", "ragship_fingerprint": "abc"}
    # A fresh store on the index (another process) queries it the same way.
    assert [d.id for d in ElasticsearchStore(es_url, es_alias).bm25_retrieval("tested runs")] == ["run"]


def test_an_index_built_before_the_analysis_record_is_queried_on_content(es_url: str, es_alias: str) -> None:
    body = es_layout.index_body(None)
    del body["mappings"]["_meta"]  # the layout of indices made before ragship recorded the analysis
    with Elasticsearch(es_url) as client:
        client.indices.create(index=f"{es_alias}-000001", aliases={es_alias: {}}, **body)
    store = ElasticsearchStore(es_url, es_alias)
    store.write_documents([Document(id="run", content="To run the test suite, call make.")])
    assert store.text_analysis.query_field == "content"
    assert [d.id for d in store.bm25_retrieval("run the test")] == ["run"]
    assert store.bm25_retrieval("running tests") == []  # no stemmer on content, as before


def test_weighted_search_and_query_expansion_on_elasticsearch(es_url: str, es_alias: str) -> None:
    from ragship.components.retrievers import StoreBM25Retriever

    store = ElasticsearchStore(es_url, es_alias)
    store.write_documents(
        [
            Document(id="sun", content="The sunshine vitamin is vitamin D, also called calciferol."),
            Document(id="winter", content="Calciferol supplements help in winter, when daylight is short."),
            Document(id="tea", content="Green tea holds catechins."),
        ]
    )
    alone = {q: {d.id: d.score for d in store.bm25_retrieval(q)} for q in ("vitamins", "calciferol winter")}
    both = store.weighted_bm25_retrieval([("vitamins", 0.25), ("calciferol winter", 2.0), ("tea", 0.0)])
    expected = {
        doc: 0.25 * alone["vitamins"].get(doc, 0.0) + 2.0 * alone["calciferol winter"].get(doc, 0.0)
        for doc in ("sun", "winter")
    }
    assert {d.id: d.score for d in both} == pytest.approx(expected, rel=1e-5)  # stemmed, boosted, summed
    widened = StoreBM25Retriever(top_k=3, feedback_docs=1, feedback_terms=5)
    widened.document_store = store
    assert [d.id for d in store.bm25_retrieval("sunshine vitamin", top_k=3)] == ["sun"]
    assert [d.id for d in widened.run(query="sunshine vitamin")["documents"]] == ["sun", "winter"]
