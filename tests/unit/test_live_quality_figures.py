"""The figures of the quality metrics and the shadow: overlap, similarity, "found nothing", route labels."""

from __future__ import annotations

import asyncio
from typing import Any

from ragship.components.answerers import NO_ANSWER
from ragship.observability.quality import OTHER_ROUTE, QualityRoutes, cites, current_route, found_nothing, top_score
from ragship.observability.shadow import answer_similarity, source_overlap
from ragship.pipelines.query import Answer, Source


def _source(i: int, score: float | None = 0.5, cited: bool = False) -> Source:
    return Source(citation=i, source=f"doc{i}.md", snippet="text", score=score, cited=cited, id=f"id{i}")


def test_source_overlap_is_the_jaccard_of_the_ids_in_any_order() -> None:
    a = Answer("x", [_source(1), _source(2), _source(3)])
    assert source_overlap(a, Answer("x", [_source(3), _source(2), _source(1)])) == 1.0
    assert source_overlap(a, Answer("x", [_source(3), _source(4)])) == 0.25
    assert source_overlap(a, Answer("x", [])) == 0.0
    assert source_overlap(Answer("", []), Answer("", [])) == 1.0


def test_answer_similarity_is_token_f1_and_two_empty_answers_agree() -> None:
    assert answer_similarity(Answer("run make test", []), Answer("Run `make test`.", [])) == 1.0
    assert 0 < answer_similarity(Answer("run make test", []), Answer("run pytest", [])) < 1
    assert answer_similarity(Answer("", []), Answer(" ", [])) == 1.0


def test_found_nothing_citing_and_the_top_score() -> None:
    assert found_nothing(Answer(NO_ANSWER, [])) and found_nothing(Answer("  ", [_source(1)]))
    assert not found_nothing(Answer("Run make test [1].", [_source(1)]))
    assert cites(Answer("Run make test [2].", [_source(1), _source(2)]))
    assert cites(Answer("Run make test.", [_source(1, cited=True)]))
    assert not cites(Answer("Run make test.", [_source(1)]))
    assert top_score([_source(1, 0.2), _source(2, None), _source(3, 0.7)]) == 0.7
    assert top_score([_source(1, None)]) is None


def test_the_route_label_is_the_read_path_or_other_never_free_text() -> None:
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(current_route())

    middleware = QualityRoutes(app)
    for path in ("/ask", "/v1/chat/completions", "/mcp/", "/ask/How do I run the tests?", "/feedback"):
        asyncio.run(middleware({"type": "http", "path": path}, None, None))
    assert seen == ["/ask", "/v1/chat/completions", "/mcp", OTHER_ROUTE, OTHER_ROUTE]
