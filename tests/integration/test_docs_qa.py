"""Questions about ragship's own docs are answered from the right file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragship.pipelines.query import QueryEngine
from ragship.runtime import open_indexer, open_query_engine
from ragship.spec import default_spec

QUESTIONS = [
    ("How do I run the tests?", "docs/testing.md"),
    ("Which file types can I index?", "docs/indexing.md"),
    ("What does reciprocal rank fusion combine?", "docs/querying.md"),
    ("How are secrets masked when printing the settings?", "docs/configuration.md"),
    ("Where does the embedded store keep its SQLite database?", "docs/stores.md"),
]


@pytest.mark.parametrize(("question", "expected"), QUESTIONS)
def test_expected_source_is_cited_first(engine: QueryEngine, question: str, expected: str) -> None:
    answer = engine.ask(question)
    assert answer.sources, "no sources returned"
    assert Path(answer.sources[0].source).as_posix().endswith(expected), [s.source for s in answer.sources]
    assert answer.sources[0].cited, answer.answer
    assert f"[{answer.sources[0].citation}]" in answer.answer


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
