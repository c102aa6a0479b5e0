"""Pseudo-relevance feedback (RM3) on the bm25 branch: the expansion, weighted search, the retriever, the spec."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document

from ragship.components.query_expansion import expanded_query
from ragship.components.retrievers import StoreBM25Retriever
from ragship.errors import SpecError
from ragship.eval.tracked import load_grid
from ragship.pipelines import load_pipeline, with_retrieval_mode
from ragship.spec import default_spec, with_overrides
from ragship.stores import EmbeddedDocumentStore


def test_the_question_keeps_its_share_and_the_best_hit_gives_the_heaviest_words() -> None:
    hits = [("Calciferol is vitamin D; calciferol deficiency", 12.0), ("Sunlight makes skin produce vitamin", 2.0)]
    clauses = expanded_query("sunshine vitamins", hits, terms=3, original_query_weight=0.6)
    assert clauses[0] == ("sunshine vitamins", pytest.approx(0.6 / 2))  # two query terms, 0.3 each
    assert sum(w for _, w in clauses[1:]) == pytest.approx(0.4)
    # 'calciferol' makes up 2 of the 5 terms of the far better hit: the heaviest addition, as the word seen.
    assert clauses[1][0] == "calciferol"
    assert clauses[1][1] > clauses[2][1] >= clauses[3][1]
    assert len(clauses) == 4


def test_without_hits_or_terms_the_question_goes_alone() -> None:
    assert expanded_query("vitamin", [], terms=5, original_query_weight=0.5) == [("vitamin", 1.0)]
    assert expanded_query("the of", [("vitamin D", 3.0)], terms=5, original_query_weight=0.5) == [("the of", 1.0)]
    assert expanded_query("vitamin", [("vitamin D", 3.0)], terms=5, original_query_weight=1.0) == [("vitamin", 1.0)]


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    store = EmbeddedDocumentStore(tmp_path / "store")
    store.write_documents(
        [
            Document(id="sun", content="The sunshine vitamin is vitamin D, also called calciferol.", meta={"n": 1}),
            Document(
                id="winter", content="Calciferol supplements help in winter, when daylight is short.", meta={"n": 2}
            ),
            Document(id="tea", content="Green tea holds catechins.", meta={"n": 3}),
        ]
    )
    return store


def test_a_weighted_search_sums_each_clause_score_times_its_weight(store: EmbeddedDocumentStore) -> None:
    alone = {q: {d.id: d.score for d in store.bm25_retrieval(q)} for q in ("vitamin", "calciferol winter")}
    both = store.weighted_bm25_retrieval([("vitamin", 0.25), ("calciferol winter", 2.0), ("tea", 0.0)])
    expected = {
        doc: 0.25 * alone["vitamin"].get(doc, 0.0) + 2.0 * alone["calciferol winter"].get(doc, 0.0)
        for doc in ("sun", "winter")
    }
    assert {d.id: d.score for d in both} == pytest.approx(expected)  # a zero weight adds nothing, not even 'tea'
    assert [d.id for d in both] == sorted(expected, key=lambda d: -expected[d])
    only_n2 = {"field": "meta.n", "operator": "==", "value": 2}
    assert [d.id for d in store.weighted_bm25_retrieval([("vitamin", 1.0), ("winter", 1.0)], filters=only_n2)] == [
        "winter"
    ]
    assert store.weighted_bm25_retrieval([("the", 1.0)]) == []


def test_feedback_finds_the_chunk_that_says_it_in_other_words(store: EmbeddedDocumentStore) -> None:
    plain = StoreBM25Retriever(top_k=3)
    widened = StoreBM25Retriever(top_k=3, feedback_docs=1, feedback_terms=5)
    plain.document_store = widened.document_store = store
    assert [d.id for d in plain.run(query="sunshine vitamin")["documents"]] == ["sun"]
    # 'winter' shares no word with the question, only 'calciferol' with its best hit.
    assert [d.id for d in widened.run(query="sunshine vitamin")["documents"]] == ["sun", "winter"]
    assert widened.run(query="quantum chromodynamics")["documents"] == []


def test_the_feedback_settings_are_checked_and_kept_in_the_spec() -> None:
    for bad in ({"feedback_docs": -1}, {"feedback_terms": 0}, {"original_query_weight": 1.5}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            StoreBM25Retriever(**bad)  # type: ignore[arg-type]
    spec = default_spec(feedback_docs=10)
    params = spec.query["components"]["bm25_retriever"]["init_parameters"]
    assert (params["feedback_docs"], params["feedback_terms"], params["original_query_weight"]) == (10, 20, 0.5)
    assert default_spec().query["components"]["bm25_retriever"]["init_parameters"]["feedback_docs"] == 0
    tuned = with_overrides(spec, feedback_docs=5, original_query_weight=0.7).query["components"]["bm25_retriever"]
    assert (tuned["init_parameters"]["feedback_docs"], tuned["init_parameters"]["original_query_weight"]) == (5, 0.7)
    retriever = load_pipeline(spec.query, "query").get_component("bm25_retriever")
    assert isinstance(retriever, StoreBM25Retriever) and retriever.feedback_docs == 10
    bad = with_overrides(spec, feedback_terms=0)
    with pytest.raises(SpecError, match=r"(?s)query: .*feedback_terms must be >= 1"):
        load_pipeline(bad.query, "query")


def test_a_grid_may_tune_the_feedback(tmp_path: Path) -> None:
    grid = load_grid({"dataset": str(tmp_path), "grid": {"feedback_docs": [0, 10], "original_query_weight": [0.5]}})
    assert grid["grid"]["feedback_docs"] == [0, 10]


def test_pruning_a_branch_drops_the_weights_that_no_longer_fit() -> None:
    query = default_spec(fusion_weights=[0.6, 0.4]).query
    for mode in ("bm25", "dense"):
        assert with_retrieval_mode(query, mode)["components"]["joiner"]["init_parameters"]["weights"] is None
    assert with_retrieval_mode(query, "hybrid")["components"]["joiner"]["init_parameters"]["weights"] == [0.6, 0.4]
