"""Questions about ragship's own docs are answered from the right file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragship.assembly import open_indexer, open_query_engine
from ragship.pipelines.query import QueryEngine
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = [
    ("How do I run the tests?", "docs/testing.md"),
    ("Which file types can I index?", "docs/indexing.md"),
    ("What does reciprocal rank fusion combine?", "docs/querying.md"),
    ("How are secrets masked when printing the settings?", "docs/configuration.md"),
    ("Where does the embedded store keep its SQLite database?", "docs/stores.md"),
]


def test_evaluation_ranks_like_serving_then_searches_deeper(docs_store: str) -> None:
    from types import SimpleNamespace

    from ragship.eval.retrieval import DEPTH, rank_documents

    question = "How do I run the tests?"
    engine = open_query_engine(default_spec(candidates=3), docs_store)
    served = [d.id for d in engine.retrieve(question)]  # top 5 of at most 2 x 3 fused candidates
    head = [d.id for d in engine.retrieve(question, top_k=2 * DEPTH, deepen_branches=False)]
    assert 3 <= len(head) <= 6 and len(served) == min(5, len(head)) and head[: len(served)] == served
    deepened = [d.id for d in engine.retrieve(question, top_k=2 * DEPTH)]
    assert len(deepened) > 6

    # the grid's `candidates` key must change what evaluation measures: the head is the served order
    ranked = list(rank_documents(engine, SimpleNamespace(queries={"q": question}))["q"])  # type: ignore[arg-type]
    assert ranked[: len(head)] == head and len(ranked) == DEPTH
    assert set(ranked[len(head) :]) <= set(deepened)


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_expected_source_is_cited_first(engine: QueryEngine, question: str, expected: str) -> None:
    answer = engine.ask(question)
    assert answer.sources, "no sources returned"
    assert Path(answer.sources[0].source).as_posix().endswith(expected), [s.source for s in answer.sources]
    # The answer cites the expected file (a chunk is a section now: not necessarily the first one).
    cited = [s for s in answer.sources if s.cited and Path(s.source).as_posix().endswith(expected)]
    assert cited, answer.answer
    assert f"[{cited[0].citation}]" in answer.answer


@pytest.mark.parametrize("mode", ["bm25", "dense", "hybrid"])
def test_every_mode_answers_with_sources(docs_store: str, mode: str) -> None:
    engine = open_query_engine(default_spec(), docs_store, mode=mode)  # type: ignore[arg-type]
    answer = engine.ask("How do I run the tests?", top_k=3)
    assert 1 <= len(answer.sources) <= 3
    assert any(s.source.endswith("docs/testing.md") for s in answer.sources)
    scores = [s.score for s in answer.sources]
    assert scores == sorted(scores, reverse=True)


def test_source_filter_restricts_results(engine: QueryEngine) -> None:
    only = {"field": "meta.source", "operator": "==", "value": next(iter(_sources(engine, "docs/stores.md")))}
    answer = engine.ask("How do I run the tests?", filters=only)
    assert answer.sources and all(s.source.endswith("docs/stores.md") for s in answer.sources)


def _sources(engine: QueryEngine, suffix: str) -> set[str]:
    return {d.meta["source"] for d in engine.store.filter_documents() if d.meta["source"].endswith(suffix)}


def test_reindexing_same_files_adds_nothing(docs_store: str) -> None:
    indexer = open_indexer(default_spec(), docs_store)
    before = indexer.store.count_documents()
    report = indexer.index([Path(__file__).resolve().parents[2] / "docs"])
    # The manifest says every file is unchanged: nothing is converted, embedded or written again.
    assert report.ok and report.unchanged > 5
    assert (report.chunks_written, report.chunks_deleted, report.files_indexed) == (0, 0, 0)
    assert indexer.store.count_documents() == before


def test_edited_file_replaces_its_chunks(tmp_path: Path) -> None:
    doc = tmp_path / "note.md"
    doc.write_text("# Note\n\nThe launch code is PAPAYA.\n")
    indexer = open_indexer(default_spec(), str(tmp_path / "store"))
    indexer.index([doc])
    doc.write_text("# Note\n\nThe launch code is MANGO.\n")
    report = indexer.index([doc])
    assert report.chunks_deleted == 1
    engine = open_query_engine(default_spec(), str(tmp_path / "store"), mode="bm25")
    assert engine.ask("papaya").sources == []
    assert "MANGO" in engine.ask("launch code mango").sources[0].snippet


# The four questions of the "first answer" issue, and what each "how do I" answer must show as code.
FIRST_ANSWERS = [
    ("How do I run the tests?", "make test"),
    ("What is the default embedding model?", None),
    ("How do I start Elasticsearch locally?", "ragship es start"),
    ("How do I promote a new champion?", "ragship promote"),
]


def _doc_headings() -> set[str]:
    from ragship.text.blocks import parse_blocks

    docs = [*REPO.joinpath("docs").glob("*.md"), REPO / "README.md"]
    return {title for path in docs for b in parse_blocks(path.read_text(), markdown=True) for title in b.section}


@pytest.mark.parametrize(("question", "command"), FIRST_ANSWERS)
def test_first_answers_are_sentences_without_headings_and_show_the_command_as_code(
    engine: QueryEngine, question: str, command: str | None
) -> None:
    answer = engine.ask(question).answer
    prose, _, code = answer.partition("\n\n```")
    # Headings are section metadata now: none is glued to the front of a sentence.
    glued = [h for h in _doc_headings() if len(h.split()) >= 2 and h in prose]
    assert not glued, f"heading text {glued} inside the answer: {answer!r}"
    assert "#" not in prose.split("`")[0], answer
    assert prose.rstrip().endswith("]"), f"every sentence ends with its citation: {answer!r}"
    if command is not None:
        in_code = f"`{command}" in prose or command in code
        assert in_code, f"{command!r} is not shown as code in {answer!r}"


def test_the_page_renders_a_real_answer_with_citations_and_its_command(engine: QueryEngine, tmp_path: Path) -> None:
    """The extractive answer to a "how do I" question, rendered by the real page at desktop and phone widths."""
    from page_helpers import DESKTOP, PHONE, PNG_MAGIC, assert_on_screen, chromium_path, page_app_without_auth
    from playwright.sync_api import sync_playwright

    result = engine.ask("How do I start Elasticsearch locally?").to_dict()
    assert "\n```sh\n" in result["answer"], result["answer"]
    with page_app_without_auth() as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport=DESKTOP)
            page.goto(url)
            page.wait_for_load_state("networkidle")
            page.evaluate(
                "(r) => { renderAnswer(r.answer); renderSources(r.sources); "
                "document.getElementById('result').hidden = false; }",
                result,
            )
            for viewport in (DESKTOP, PHONE):
                page.set_viewport_size(viewport)
                shot = tmp_path / f"answer-{viewport['width']}.png"
                page.screenshot(path=shot, full_page=True)
                why = f"{viewport['width']}px, screenshot {shot}, answer {result['answer']!r}"
                assert shot.read_bytes().startswith(PNG_MAGIC), why
                for selector in ("#answer a.cite", "#answer pre code", "#sources li", "#rate-up", "#rate-down"):
                    assert_on_screen(page, selector, why)
                assert "ragship es start" in page.locator("#answer pre code").inner_text(), why
                overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                assert overflow <= 0, f"the page scrolls sideways by {overflow}px ({why})"
        finally:
            browser.close()


# The rerank stage: a cross-encoder after fusion, with a tiny model the test builds (real loading).
RERANK_QUESTION = "How do I run the tests?"


def test_the_reranker_orders_the_fused_candidates_by_the_cross_encoders_scores(
    docs_store: str, tiny_cross_encoder: Path
) -> None:
    from sentence_transformers import CrossEncoder

    spec = default_spec(ranker_model=str(tiny_cross_encoder), top_k=4, candidates=12)
    assert spec.query["components"]["joiner"]["init_parameters"]["top_k"] == 12  # the candidates go on
    engine: QueryEngine = open_query_engine(spec, docs_store)
    fused = open_query_engine(default_spec(top_k=12, candidates=12), docs_store).retrieve(RERANK_QUESTION)
    ranked = engine.retrieve(RERANK_QUESTION)
    assert len(ranked) == 4 and {d.id for d in ranked} <= {d.id for d in fused}

    # The same model, loaded directly, scores the same (title, section, chunk) texts in the same order.
    model = CrossEncoder(str(tiny_cross_encoder))
    # Haystack's ranker joins the meta fields present (title, section) and the chunk with newlines.
    texts = [
        "\n".join([*(str(d.meta[k]) for k in ("title", "section") if d.meta.get(k) is not None), d.content or ""])
        for d in fused
    ]
    scores = model.predict([(RERANK_QUESTION, t) for t in texts])
    expected = [fused[i].id for i in sorted(range(len(fused)), key=lambda i: -scores[i])[:4]]
    assert [d.id for d in ranked] == expected
    assert [d.score for d in ranked] == sorted((d.score for d in ranked), reverse=True)

    answer = engine.ask(RERANK_QUESTION, top_k=2)
    assert len(answer.sources) == 2 and answer.sources[0].id == ranked[0].id


def test_a_reranked_spec_round_trips_and_names_the_model(tmp_path: Path, tiny_cross_encoder: Path) -> None:
    from ragship.spec import load_spec

    spec = default_spec(ranker_model=str(tiny_cross_encoder))
    again = load_spec(spec.save(tmp_path / "spec.yaml"))
    assert again.hash == spec.hash
    ranker = again.query["components"]["ranker"]
    assert ranker["type"] == "ragship.components.rankers.CrossEncoderRanker"
    assert ranker["init_parameters"]["model"] == str(tiny_cross_encoder) and "reranked by" in spec.description


def test_the_first_fusion_weight_is_the_bm25_branchs(docs_store: str) -> None:
    """The joiner's weights follow the order the branches' lists arrive, which the docs promise is bm25 first."""
    question = "Which store should I use in production?"
    ranked = {
        mode: [d.id for d in open_query_engine(default_spec(), docs_store, mode=mode).retrieve(question, top_k=5)]
        for mode in ("bm25", "dense")
    }
    assert ranked["bm25"] != ranked["dense"]  # otherwise the weights could not show
    for weights, branch in (([0.99, 0.01], "bm25"), ([0.01, 0.99], "dense")):
        engine = open_query_engine(default_spec(fusion_weights=weights), docs_store)
        assert [d.id for d in engine.retrieve(question, top_k=5)] == ranked[branch], weights
