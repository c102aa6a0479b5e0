"""The English analysis ragship applies client-side where a cluster has no ``english`` analyzer."""

from __future__ import annotations

import pytest

from ragship.stores.es_layout import index_body
from ragship.stores.es_text import STEMMED_FIELD, TextAnalysis
from ragship.text.analysis import analyze, stem_text

pytestmark = pytest.mark.unit


def test_query_and_chunk_wordings_meet_on_the_same_terms() -> None:
    assert analyze("running tests") == analyze("run the test") == ["run", "test"]


def test_possessives_are_stripped_before_stemming() -> None:
    assert analyze("the cluster's nodes") == ["cluster", "node"]
    assert analyze("Elastic\u2019s") == ["elast"]  # the typographic apostrophe too
    assert analyze("don't") == ["don't"]  # a contraction stays one word


def test_english_stop_words_are_dropped_case_blind() -> None:
    assert analyze("The index IS not in THE cluster") == ["index", "cluster"]
    assert stem_text("to be or not to be") == ""


def test_porter_not_english_snowball() -> None:
    # Porter (Lucene's EnglishAnalyzer, Anserini) and the Snowball "english" stemmer differ on these.
    assert analyze("generously fairly") == ["gener", "fairli"]
    assert stem_text("Vitamin D supplementation, statins; cancers!") == "vitamin d supplement statin cancer"


def test_the_analysis_is_recorded_in_the_mapping_and_read_back() -> None:
    client_side = TextAnalysis("ragship_text", client_side=True)
    mappings = index_body(384, analysis=client_side)["mappings"]
    assert mappings["properties"][STEMMED_FIELD] == {"type": "text", "analyzer": "whitespace"}
    assert mappings["_source"] == {"excludes": [STEMMED_FIELD]}
    assert TextAnalysis.from_meta(mappings["_meta"]) == client_side
    english = index_body(384, analysis=TextAnalysis("english"))["mappings"]
    assert STEMMED_FIELD not in english["properties"] and english["properties"]["content"]["analyzer"] == "english"
    assert TextAnalysis.from_meta(english["_meta"]).query_field == "content"
    # An index built before the record: ``content`` with its own analyzer, queried as it is.
    assert TextAnalysis.from_meta({}) == TextAnalysis("ragship_text")
    assert TextAnalysis.from_meta({}).query("running tests") == "running tests"


def test_stemming_is_safe_from_many_threads_at_once() -> None:
    """Served queries and answers stem on many request threads; a shared Snowball stemmer corrupts words."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from ragship.components.answerers import _terms
    from ragship.text.analysis import stemmer

    texts = [f"running indexes of {n} connected generators, promotions and evaluations" for n in range(400)]
    expected = ([analyze(t) for t in texts], [_terms(t) for t in texts])
    barrier = threading.Barrier(8)

    def stem_all(_: int) -> tuple[list[list[str]], list[set[str]], int]:
        barrier.wait()  # all threads stem at the same moment
        return [analyze(t) for t in texts], [_terms(t) for t in texts], id(stemmer("porter"))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(stem_all, range(8)))
    assert all((analyzed, terms) == expected for analyzed, terms, _ in results)
    assert len({own for _, _, own in results}) == 8  # one stemmer per thread
