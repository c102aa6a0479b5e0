"""The RAG service: the query API, indexing jobs (on the Dramatiq queue), feedback and the browser page.

Every route is a typed ``@bentoml.api`` method whose errors answer through serving.http. The pipeline is the
served spec's own query pipeline. Its LLM runs in the Generator service; its query embedder and cross-encoder
run in this process on a CPU host (``serving.query_models``), else in the Embedder service (``bentoml.depends``;
at ``RAGSHIP_SERVING__EMBEDDER_URL`` / ``__GENERATOR_URL`` when deployed on their own).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator
from typing import Annotated

import bentoml
from pydantic import BaseModel, Field, StringConstraints
from starlette.responses import Response, StreamingResponse

from ragship.access.principal import current_principal
from ragship.assembly import open_query_engine, store_for
from ragship.components.remote import RemoteModels, chat_generator_names
from ragship.enums import RatingName
from ragship.errors import SpecError
from ragship.observability.tracing import bentoml_tracing, start_bentoml_tracing
from ragship.pipelines.query import Answer, Source
from ragship.serving.access_guard import guard
from ragship.serving.batching import coalesce_query_embedders
from ragship.serving.common import (
    limit_compute_threads,
    logger,
    query_models_in_api,
    spec_and_origin,
    store_ready,
)
from ragship.serving.embedder import Embedder
from ragship.serving.generator import Generator
from ragship.serving.http import http_errors, public_error, response_for
from ragship.serving.index_jobs import IndexJobs, serve_index_jobs
from ragship.serving.mcp_tools import mcp_app
from ragship.serving.openai_routes import openai_app
from ragship.serving.openai_schema import STABLE_MODEL_ID
from ragship.serving.served import ServedEngine
from ragship.serving.streams import AnswerStream
from ragship.serving.ui import ui_app
from ragship.settings import get_settings
from ragship.tracking.feedback import Feedback, FeedbackRecorder, rating_value

_SETTINGS = get_settings()
_SERVING = _SETTINGS.serving
# The engine, for the OpenAI-compatible /v1 routes and the MCP server (set in RAG.__init__).
_SERVED = ServedEngine()

Question = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=_SERVING.max_question_chars),
    Field(description="The question, in words."),
]
TopK = Annotated[int | None, Field(ge=1, le=_SERVING.max_top_k, description="Sources to return.")]
History = Annotated[
    list[Annotated[str, StringConstraints(max_length=_SERVING.max_question_chars)]],
    Field(
        max_length=_SERVING.max_history_turns,
        description="The conversation's earlier user questions, oldest first: a follow-up is answered as they mean it.",
    ),
]
ShortText = Annotated[str, Field(max_length=20_000)]


class AskResponse(BaseModel):
    """An answer and the sources it cites by number."""

    answer: str
    sources: list[Source]


class RetrieveResponse(BaseModel):
    """Ranked chunks for a question, best first."""

    documents: list[Source]


class FeedbackResponse(BaseModel):
    """Where the rating went."""

    recorded: bool
    run_id: str


def _ask_response(answer: Answer) -> AskResponse:
    return AskResponse(answer=answer.answer, sources=answer.sources)


@bentoml.service(
    name="ragship",
    traffic={"timeout": _SERVING.timeout_s, "max_concurrency": _SERVING.max_concurrency},
    workers=_SERVING.workers,
    threads=_SERVING.threads,
    **bentoml_tracing(_SETTINGS.tracing),
)
@bentoml.asgi_app(openai_app(_SERVED, _SERVING), path="/v1")
@bentoml.asgi_app(mcp_app(_SERVED, _SERVING), path="/")
@bentoml.asgi_app(ui_app, path="/")
class RAG(IndexJobs):
    """Answers questions over the store with the served spec; see ``/docs.json`` for the schema."""

    # Unset URLs: `bentoml serve` starts both beside the API. Set (Kubernetes): each is its own Deployment
    # behind a Service, scaled on its own hardware, and only the API runs here.
    embedder = bentoml.depends(Embedder, url=_SERVING.embedder_url)
    generator = bentoml.depends(Generator, url=_SERVING.generator_url)

    def __init__(self) -> None:
        start_bentoml_tracing(_SETTINGS.tracing)  # pipeline components' spans join the route's
        spec, origin = spec_and_origin()
        llm = bool(chat_generator_names(spec.query))
        in_api = query_models_in_api()
        limit_compute_threads(_SERVING.query_threads)  # dense search runs here in every placement
        logger.info("query embedder and cross-encoder run in %s", "this process" if in_api else "the Embedder")
        # Dependency clients get their endpoints after __init__, so bind the calls late. In this process the
        # pipeline's own embedder and ranker run their models; from the Embedder, only the model call travels.
        remote = RemoteModels(
            generate=(lambda messages, kwargs: self.generator.generate(messages, generation_kwargs=kwargs))
            if llm
            else None,
            stream=(lambda messages, kwargs: self.generator.stream(messages, generation_kwargs=kwargs))
            if llm
            else None,
        )
        if not in_api:
            remote.embed_queries = lambda texts: self.embedder.embed_queries(texts)
            remote.rank = lambda q, texts, scale: self.embedder.rank(query=q, texts=texts, scale=scale)
        store = store_for(spec, settings=_SETTINGS)
        self.engine = open_query_engine(spec, store, settings=_SETTINGS, remote=remote)
        self.engine.warm_up()
        if in_api and _SERVING.embedder_batching:
            # Concurrent questions share one encode, as the Embedder's adaptive batching would do them.
            pipelines = [self.engine.pipeline]
            with contextlib.suppress(SpecError):  # a spec that cannot cut retrieval out says so at /retrieve
                pipelines.append(self.engine.retrieval_pipeline)
            coalesce_query_embedders(pipelines, _SERVING.embedder_max_batch_size)
        _SERVED.set(self.engine, STABLE_MODEL_ID, spec.name)
        self.feedback_recorder = FeedbackRecorder(spec, origin, _SETTINGS)
        ui_app.state.config = {
            "auth": bool(_SERVING.api_key or _SERVING.keys_file or _SETTINGS.auth.enabled),
            "header": _SERVING.api_key_header,
            "spec": f"{spec.name} ({spec.hash}) from {origin}",
            "streams": self.engine.streams,
            "max_history_turns": _SERVING.max_history_turns,
        }

    @bentoml.api
    @http_errors
    def ask(
        self,
        question: Question,
        top_k: TopK = None,
        history: History = [],  # noqa: B006 (pydantic copies defaults)
    ) -> AskResponse:
        """Answer ``question`` with numbered citations ([n]) into ``sources``; ``history`` makes it a follow-up."""
        return _ask_response(self.engine.ask(question, top_k=top_k, history=history))

    @bentoml.api
    async def ask_stream(
        self,
        question: Question,
        top_k: TopK = None,
        history: History = [],  # noqa: B006 (pydantic copies defaults)
    ) -> AsyncGenerator[str, None]:
        """Like /ask, as newline-delimited JSON: ``{"token"}`` pieces, then ``{"answer", "sources"}``.

        Errors found before the first piece (store down, bad input) are real 4xx/503 responses.
        """
        return await self._stream(question, top_k, history)  # type: ignore[return-value]

    async def _stream(self, question: str, top_k: int | None, history: list[str]) -> Response:
        stream = AnswerStream(
            lambda on_token: self.engine.ask(question, top_k=top_k, on_token=on_token, history=history)
        )
        first = await stream.start()
        if first[0] == "error":
            await stream.finish()
            return response_for(first[1])

        async def lines() -> AsyncGenerator[str, None]:
            kind, value = first
            while True:
                if kind == "token":
                    yield json.dumps({"token": value}) + "\n"
                elif kind == "answer":
                    yield _ask_response(value).model_dump_json() + "\n"
                    break
                else:  # the status line is gone; the error travels as the last line
                    yield json.dumps({"error": public_error(value)[1]}) + "\n"
                    break
                kind, value = await stream.next()
            await stream.finish()

        return StreamingResponse(lines(), media_type="application/x-ndjson")

    @bentoml.api
    @http_errors
    def retrieve(
        self,
        question: Question,
        top_k: TopK = None,
        history: History = [],  # noqa: B006 (pydantic copies defaults)
    ) -> RetrieveResponse:
        """The ranked chunks for ``question`` (a follow-up of ``history``); nothing is generated."""
        docs = self.engine.retrieve(question, top_k=top_k, history=history)
        return RetrieveResponse(documents=[Source.from_document(d, i) for i, d in enumerate(docs, 1)])

    @bentoml.api
    @http_errors
    def feedback(
        self,
        rating: RatingName,
        question: Question,
        answer: ShortText = "",
        comment: Annotated[str, Field(max_length=5000)] = "",
        sources: Annotated[list[str], Field(max_length=100)] = [],  # noqa: B006 (pydantic copies defaults)
    ) -> FeedbackResponse:
        """Record a rating of an answer in MLflow, against the champion when it is what is served."""
        principal = current_principal()
        feedback = Feedback(
            rating=rating_value(rating),
            question=question,
            answer=answer,
            comment=comment,
            sources=sources,
            principal=principal.name if principal else "",
        )
        return FeedbackResponse(recorded=True, run_id=self.feedback_recorder.record(feedback))

    def __is_ready__(self) -> bool:
        return store_ready(self.engine.store)


guard(RAG, _SETTINGS)
# Indexing jobs: POST /index/submit -> job id at once, GET /index/status?job_id=... (serving.index_jobs);
# ``ragship worker`` processes index them. /metrics also reports the shared queue.
serve_index_jobs(RAG)

__all__ = ["RAG"]
