"""RAG-quality metrics of live traffic on ``/metrics``, per served spec and route (never per question).

Every read route answers through the one query engine (``/ask``, ``/ask_stream``, ``/retrieve``,
``/v1/chat/completions``, the MCP tools), so :func:`instrument` wraps the engine's ``ask`` and ``retrieve``
once, and :class:`QualityRoutes`, an ASGI middleware, names the route the call came from.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

from ragship.components.answerers import NO_ANSWER
from ragship.observability.lazy_metrics import LazyMetrics

if TYPE_CHECKING:
    from ragship.observability.shadow import ShadowRunner
    from ragship.pipelines.query import Answer, QueryEngine

# The label values of ``route``: the paths of the read routes; anything else is "other".
ROUTES = ("/ask", "/ask_stream", "/retrieve", "/v1/chat/completions", "/mcp")
OTHER_ROUTE = "other"
_route: ContextVar[str] = ContextVar("ragship_route", default=OTHER_ROUTE)

# Scores differ by retrieval mode (cosine 0-1, BM25 unbounded, fused ranks small): one wide set of buckets.
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
CHARS_BUCKETS = (0, 50, 100, 200, 400, 800, 1600, 3200, 6400)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
RATE_BUCKETS = (1, 2, 5, 10, 20, 40, 80, 160, 320)


def _make() -> dict[str, Any]:
    from prometheus_client import Counter, Histogram

    labels = ["spec", "route"]
    return {
        "questions": Counter("ragship_questions", "Questions answered or searched.", labels),
        "without_sources": Counter(
            "ragship_questions_without_sources", "Questions for which retrieval returned no source.", labels
        ),
        "citing": Counter("ragship_answers_citing", "Answers citing at least one source ([n]).", labels),
        "found_nothing": Counter(
            "ragship_answers_found_nothing", "Answers saying the documents hold nothing (or empty).", labels
        ),
        "top_score": Histogram(
            "ragship_retrieval_top_score", "The best source's retrieval score.", labels, buckets=SCORE_BUCKETS
        ),
        "answer_chars": Histogram(
            "ragship_answer_chars", "Answer length in characters.", labels, buckets=CHARS_BUCKETS
        ),
        "ttft": Histogram(
            "ragship_time_to_first_token_seconds",
            "From the question to the LLM's first streamed piece.",
            labels,
            buckets=TTFT_BUCKETS,
        ),
        "tokens_per_s": Histogram(
            "ragship_tokens_per_second",
            "Streamed pieces per second after the first (LLM generators).",
            labels,
            buckets=RATE_BUCKETS,
        ),
        "feedback": Counter("ragship_feedback", "Users' ratings of answers (POST /feedback).", ["spec", "rating"]),
    }


METRICS = LazyMetrics(_make)


def current_route() -> str:
    """The read route of the request being served ("other" outside one)."""
    return _route.get()


class QualityRoutes:
    """ASGI middleware: names the route (a bounded label) for the quality metrics of the request's questions."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            path = str(scope.get("path", "")).rstrip("/")
            _route.set(path if path in ROUTES else OTHER_ROUTE)
        await self.app(scope, receive, send)


def serve_quality_metrics(service: Any) -> None:
    """Label ``service``'s questions with their route on ``/metrics``."""
    service.add_asgi_middleware(QualityRoutes)


class Scored(Protocol):
    """A retrieved chunk as the metrics see it: a Haystack ``Document`` or a served ``Source``."""

    score: float | None


def top_score(sources: Sequence[Scored]) -> float | None:
    """The best score among ``sources`` (None when none has one)."""
    scores = [s.score for s in sources if s.score is not None]
    return max(scores) if scores else None


def cites(answer: Answer) -> bool:
    """Whether the answer cites one of its sources."""
    return any(s.cited or f"[{s.citation}]" in answer.answer for s in answer.sources)


def found_nothing(answer: Answer) -> bool:
    """Whether the answer says the documents hold nothing about the question (or is empty)."""
    text = answer.answer.strip()
    return not text or text == NO_ANSWER


def record_retrieval(spec: str, route: str, sources: Sequence[Scored]) -> None:
    """Count one question and what retrieval found for it (only counts and scores: no text is read)."""
    METRICS.questions.labels(spec, route).inc()
    if not sources:
        METRICS.without_sources.labels(spec, route).inc()
    best = top_score(sources)
    if best is not None:
        METRICS.top_score.labels(spec, route).observe(best)


def record_answer(spec: str, route: str, answer: Answer) -> None:
    """Count one answered question: its sources, citations, "found nothing" and length."""
    record_retrieval(spec, route, answer.sources)
    if cites(answer):
        METRICS.citing.labels(spec, route).inc()
    if found_nothing(answer):
        METRICS.found_nothing.labels(spec, route).inc()
    METRICS.answer_chars.labels(spec, route).observe(len(answer.answer))


def record_feedback(spec: str, rating: str) -> None:
    """Count one rating (``up`` or ``down``)."""
    METRICS.feedback.labels(spec, rating).inc()


class _TokenClock:
    """Times a streamed answer: the first piece and the pieces after it."""

    def __init__(self, started: float, forward: Callable[[str], None]) -> None:
        self.started = started
        self.forward = forward
        self.first: float | None = None
        self.pieces = 0

    def __call__(self, token: str) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.pieces += 1
        self.forward(token)

    def record(self, spec: str, route: str) -> None:
        if self.first is None:
            return  # an extractive answer arrives whole
        METRICS.ttft.labels(spec, route).observe(self.first - self.started)
        elapsed = time.perf_counter() - self.first
        if self.pieces > 1 and elapsed > 0:
            METRICS.tokens_per_s.labels(spec, route).observe((self.pieces - 1) / elapsed)


class InFlight:
    """User questions in flight in this process: the shadow stays off while the API is busy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def __enter__(self) -> InFlight:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


def instrument(engine: QueryEngine, spec: str, shadow: ShadowRunner | None = None) -> None:
    """Record the quality metrics of every ``engine.ask`` / ``engine.retrieve`` call (labelled ``spec`` and
    the route), and offer each answered question to ``shadow``. The engine's answers are left unchanged.
    """
    ask, retrieve = engine.ask, engine.retrieve
    in_flight = InFlight()

    def observed_ask(question: str, *args: Any, **kwargs: Any) -> Answer:
        route, started = current_route(), time.perf_counter()
        clock = None
        if kwargs.get("on_token") is not None:
            clock = kwargs["on_token"] = _TokenClock(started, kwargs["on_token"])
        with in_flight:
            answer = ask(question, *args, **kwargs)
            latency = time.perf_counter() - started
            busy = in_flight.count - 1  # the others
        record_answer(spec, route, answer)
        if clock is not None:
            clock.record(spec, route)
        if shadow is not None:
            kwargs.pop("on_token", None)
            shadow.offer(question, args, kwargs, answer, latency, busy)
        return answer

    def observed_retrieve(question: str, *args: Any, **kwargs: Any) -> list[Any]:
        route = current_route()
        with in_flight:
            docs = retrieve(question, *args, **kwargs)
        # The documents themselves: building served Sources would parse each chunk's Markdown a second time
        # (9% of a /retrieve's CPU in the API worker, py-spy).
        record_retrieval(spec, route, docs)
        return docs

    # Instance attributes shadow the methods, so every caller of this engine object is observed.
    setattr(engine, "ask", observed_ask)  # noqa: B010 (mypy refuses assigning to a method)
    setattr(engine, "retrieve", observed_retrieve)  # noqa: B010
