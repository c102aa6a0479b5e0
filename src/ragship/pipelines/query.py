"""Run the spec's query pipeline: a question in, an answer with cited sources out."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from haystack import Document, Pipeline
from haystack.components.builders import AnswerBuilder
from haystack.components.joiners import DocumentJoiner
from haystack.dataclasses import StreamingChunk
from pydantic import BaseModel

from ragship.access.scope import AccessScope, current_scope
from ragship.components.condensers import QuestionCondenser, attach_condensers
from ragship.components.remote import RemoteModels, with_remote_generators
from ragship.components.retrievers import StoreBM25Retriever, StoreEmbeddingRetriever
from ragship.enums import RetrievalMode
from ragship.errors import InvalidRequestError, SpecError
from ragship.observability.tracing import note_question
from ragship.pipelines import (
    attach_models,
    attach_store,
    check_secrets,
    find_component,
    load_pipeline,
    retrieval_only,
    run_pipeline,
    with_retrieval_mode,
)
from ragship.spec import PipelineSpec, parse_mode
from ragship.stores.base import RetrievalStore
from ragship.text.blocks import parse_blocks

SNIPPET_CHARS = 300
_QUESTION_SOCKETS = ("query", "text", "question")
# The earlier user turns of a conversation, oldest first: retrievers and the query embedder weigh them in, a
# condensing stage rewrites a follow-up with them.
_HISTORY_SOCKET = "history"


class Source(BaseModel):
    """A retrieved chunk as shown to users (and the API's schema of one); ``citation`` is the [n] the answer uses."""

    citation: int
    source: str
    title: str | None = None
    snippet: str
    score: float | None = None
    cited: bool
    id: str

    @classmethod
    def from_document(cls, doc: Document, citation: int) -> Source:
        """Build from a Haystack document ranked ``citation``-th."""
        text = snippet_text(doc.content or "")
        snippet = text if len(text) <= SNIPPET_CHARS else text[:SNIPPET_CHARS].rsplit(" ", 1)[0] + " ..."
        return cls(
            id=doc.id,
            source=str(doc.meta.get("source", "")),
            score=doc.score,
            snippet=snippet,
            citation=int(doc.meta.get("source_index", citation)),
            cited=bool(doc.meta.get("referenced", False)),
            title=doc.meta.get("title"),
        )


# Chunks repeat across requests (popular questions, follow-ups), and parsing one's Markdown was the largest
# single cost of a /retrieve in the API worker (py-spy: ~9% of its CPU). A chunk's text decides its snippet.
@lru_cache(maxsize=4096)
def snippet_text(markdown: str) -> str:
    """A chunk's Markdown as one line a person reads: headings as words, fences and marks dropped.

    Every client shows snippets as text, so none has to render (or strip) Markdown itself. Each heading
    the chunk holds leads the text under it, so the reader still sees which section was cited.
    """
    parts: list[str] = []
    shown: tuple[str, ...] = ()
    for block in parse_blocks(markdown, markdown=True):
        new = [h for i, h in enumerate(block.section) if i >= len(shown) or shown[i] != h]
        parts += [f"{h}:" for h in new]
        parts += block.units
        shown = block.section
    # A chunk of nothing but headings still shows them rather than an empty snippet.
    if not parts:
        parts = [line.lstrip("#") for line in markdown.splitlines()]
    return " ".join(" ".join(parts).split())


@dataclass
class Answer:
    """An answer and the sources it was built from (in retrieval order)."""

    answer: str
    sources: list[Source]
    # The LLM server's token counts for the answer (see reported_usage); None when it reported none.
    usage: dict[str, int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"answer": str, "sources": [{"id", "source", "score", "snippet", ...}]}``."""
        return {"answer": self.answer, "sources": [s.model_dump() for s in self.sources]}


class QueryEngine:
    """Answers questions with the spec's query pipeline over a store.

    Usage::

        engine = QueryEngine(load_spec(), open_store(".ragship/store"), mode="hybrid")
        print(engine.ask("How do I run the tests?").answer)

    :param spec: The pipeline spec.
    :param store: Where to retrieve from.
    :param mode: bm25, dense or hybrid; the spec's mode when None.
    :param remote: Services that run the models instead of this process (the BentoML deployment).
    """

    def __init__(
        self,
        spec: PipelineSpec,
        store: RetrievalStore,
        mode: RetrievalMode | None = None,
        remote: RemoteModels | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.remote = remote
        self.mode: RetrievalMode = parse_mode(mode) if mode else spec.retrieval_mode
        data = with_retrieval_mode(spec.query, self.mode)
        if remote and remote.generate:
            # The generator service holds the LLM (and its secrets); this side only sends messages.
            data = with_remote_generators(data)
        check_secrets(data, "query")
        self.pipeline: Pipeline = attach_condensers(
            attach_models(attach_store(load_pipeline(data, "query"), store), remote)
        )
        self._answer_builder = find_component(self.pipeline, AnswerBuilder, "query")
        self._joiners = [n for n, c in self.pipeline.walk() if isinstance(c, DocumentJoiner)]
        # The last ranking stage: what feeds the answer's documents (the joiner, or a reranker after it).
        self._ranked = _sender_of(data, f"{self._answer_builder}.documents")
        self._retrievers = {
            n: c.top_k for n, c in self.pipeline.walk() if isinstance(c, StoreBM25Retriever | StoreEmbeddingRetriever)
        }
        self._streamers = [
            name
            for name, sockets in self.pipeline.inputs(include_components_with_connected_inputs=True).items()
            if "streaming_callback" in sockets
        ]
        self._generators = [
            name
            for name, sockets in self.pipeline.inputs(include_components_with_connected_inputs=True).items()
            if "generation_kwargs" in sockets and name in self._streamers
        ]
        self._question_inputs = {
            (component, socket)
            for component, sockets in self.pipeline.inputs().items()
            for socket in sockets
            if socket in _QUESTION_SOCKETS
        }
        self._history_inputs = _history_inputs(self.pipeline)
        self._retrieval_data = data
        self._retrieval: Pipeline | None = None
        self._warm = False

    def warm_up(self) -> None:
        """Load models once."""
        if not self._warm:
            self.pipeline.warm_up()
            self._warm = True

    @property
    def retrieval_pipeline(self) -> Pipeline:
        """The query pipeline cut after its joiner: retrieval only, nothing generates."""
        if self._retrieval is None:
            if self._ranked is None:
                raise SpecError(f"query: nothing is connected to {self._answer_builder}.documents.")
            data = retrieval_only(self._retrieval_data, self._ranked)
            retrieval = attach_models(attach_store(load_pipeline(data, "query"), self.store), self.remote)
            # A condensing stage borrows the full pipeline's LLM, which the cut leaves out.
            self._retrieval = attach_condensers(retrieval, self.pipeline)
            self._retrieval.warm_up()
        return self._retrieval

    def retrieve(
        self,
        question: str,
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        deepen_branches: bool = True,
        history: Sequence[str] = (),
        access: AccessScope | None = None,
    ) -> list[Document]:
        """The ranked chunks for ``question``, without generating an answer.

        :param history: The conversation's earlier user turns, oldest first (``question`` is the last user turn).
        :param access: Whose documents may be read; the request's scope (or a local admin's outside a
            server) when None. It is ANDed into every retriever's filter: ``filters`` cannot widen it.
        :param deepen_branches: Let each retriever return at least ``top_k`` chunks. False keeps the spec's
            per-branch depth (``candidates``), so the fused order is the one serving gives; fewer than
            ``top_k`` chunks may come back.
        :raises InvalidRequestError: when the question is empty.
        """
        if not question or not question.strip():
            raise InvalidRequestError("The question is empty; give a question in words.")
        note_question(question)  # on the request's span only when the tracing settings allow it
        turns = _checked_history(history)
        pipeline = self.retrieval_pipeline
        inputs = {
            name: value
            for name, value in self._inputs(
                question, top_k, filters, current_scope(access), deepen_branches, turns
            ).items()
            if name in dict(pipeline.walk())
        }
        result = run_pipeline(pipeline, inputs)
        return list(result[str(self._ranked)]["documents"])

    def _inputs(
        self,
        question: str,
        top_k: int | None,
        filters: dict[str, Any] | None,
        access: AccessScope,
        deepen_branches: bool = True,
        history: Sequence[str] = (),
    ) -> dict[str, Any]:
        data: dict[str, dict[str, Any]] = {}
        for component, socket in self._question_inputs:
            data.setdefault(component, {})[socket] = question
        turns = [turn for turn in history if turn.strip()]
        if turns:
            for component in self._history_inputs:
                data.setdefault(component, {})[_HISTORY_SOCKET] = turns
        for name, default_k in self._retrievers.items():
            data.setdefault(name, {})
            if top_k and deepen_branches:
                data[name]["top_k"] = max(top_k, default_k)
            # Every search carries the scope, ANDed with the caller's filters (else the spec's own).
            own = filters or getattr(self.pipeline.get_component(name), "filters", None)
            scoped = access.restrict(own)
            if scoped:
                data[name]["filters"] = scoped
        if top_k:
            # The last stage returns top_k; a joiner before a reranker passes at least that many on
            # (or, with the spec's depths kept, exactly what it passes when serving).
            for name in self._joiners:
                default = getattr(self.pipeline.get_component(name), "top_k", None)
                if name == self._ranked:
                    data.setdefault(name, {})["top_k"] = top_k
                elif deepen_branches or default is None:
                    data.setdefault(name, {})["top_k"] = max(top_k, default or 0)
            if self._ranked and self._ranked not in self._joiners:
                data.setdefault(self._ranked, {})["top_k"] = top_k
        return data

    def generation_kwargs(self, max_tokens: int | None = None, temperature: float | None = None) -> dict[str, Any]:
        """``max_tokens`` and ``temperature`` in the words of the spec's LLM, for :meth:`ask` (see
        :func:`llm_generation_kwargs`); empty for an extractive spec."""
        components = self.spec.query.get("components", {})
        generators = [
            (
                str(components[n].get("type", "")),
                dict(components[n].get("init_parameters", {}).get("generation_kwargs") or {}),
            )
            for n in self._generators
            if n in components
        ]
        return llm_generation_kwargs(generators, max_tokens, temperature)

    @property
    def streams(self) -> bool:
        """Whether the answer can arrive in pieces (the spec generates with an LLM)."""
        return bool(self._streamers)

    def ask(
        self,
        question: str,
        top_k: int | None = None,
        filters: dict[str, Any] | None = None,
        on_token: Callable[[str], None] | None = None,
        history: Sequence[str] = (),
        generation_kwargs: dict[str, Any] | None = None,
        access: AccessScope | None = None,
    ) -> Answer:
        """Answer ``question``.

        :param top_k: Sources returned (the spec's joiner top_k when None).
        :param filters: Haystack metadata filters, e.g. ``{"field": "meta.source", "operator": "==", ...}``.
        :param on_token: Called with each piece of the answer as the LLM produces it (LLM specs only;
            an extractive answer arrives whole in the return value).
        :param history: The conversation's earlier user turns, oldest first (``question`` is the last user turn);
            a follow-up is retrieved and answered as the conversation means it.
        :param generation_kwargs: Passed to the spec's LLM for this answer (e.g. ``max_new_tokens``,
            ``temperature``); an extractive spec ignores them.
        :param access: Whose documents may be read (see :meth:`retrieve`).
        :raises InvalidRequestError: when the question is empty or a history turn is not text.
        """
        if not question or not question.strip():
            raise InvalidRequestError("The question is empty; give a question in words.")
        note_question(question)  # on the request's span only when the tracing settings allow it
        turns = _checked_history(history)
        scope = current_scope(access)
        self.warm_up()
        inputs = self._inputs(question, top_k, filters, scope, history=turns)
        if on_token is not None:
            for name in self._streamers:
                inputs.setdefault(name, {})["streaming_callback"] = _token_callback(on_token)
        if generation_kwargs:
            for name in self._generators:
                inputs.setdefault(name, {})["generation_kwargs"] = dict(generation_kwargs)
        result = run_pipeline(self.pipeline, inputs)
        answers = result.get(self._answer_builder, {}).get("answers", [])
        if not answers:
            return Answer(answer="", sources=[])
        answer = answers[0]
        docs = list(answer.documents or [])
        if top_k:
            docs = docs[:top_k]
        return Answer(
            answer=answer.data or "",
            sources=[Source.from_document(d, i) for i, d in enumerate(docs, start=1)],
            usage=reported_usage(answer.meta),
        )


def reported_usage(meta: Mapping[str, Any] | None) -> dict[str, int] | None:
    """The token counts an LLM reply's meta carries (``usage``, as OpenAI-compatible servers report it):
    ``{"prompt_tokens", "completion_tokens", "total_tokens"}``, or None when there are none."""
    usage = (meta or {}).get("usage") or {}
    try:
        prompt, completion = int(usage["prompt_tokens"]), int(usage["completion_tokens"])
    except (KeyError, TypeError, ValueError):
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _checked_history(history: Sequence[str]) -> list[str]:
    """The non-blank earlier turns, oldest first.

    :raises InvalidRequestError: when ``history`` is a string or holds something other than strings.
    """
    if isinstance(history, str) or not all(isinstance(turn, str) for turn in history):
        raise InvalidRequestError("history must be a list of the earlier user questions (strings), oldest first.")
    return [turn for turn in history if turn.strip()]


def _history_inputs(pipeline: Pipeline) -> list[str]:
    """Components that take the conversation's history: the condensing stages when the spec has any (their
    standalone question is all the rest needs), else every component with an open ``history`` socket."""
    takers = [
        name
        for name, sockets in pipeline.inputs().items()
        if _HISTORY_SOCKET in sockets and name in dict(pipeline.walk())
    ]
    condensers = [name for name in takers if isinstance(pipeline.get_component(name), QuestionCondenser)]
    return condensers or takers


LENGTH_KEYS = ("max_new_tokens", "max_completion_tokens", "max_tokens")  # transformers, OpenAI, older OpenAI
# OpenAI's name (its reasoning models require it) and the older one that llama.cpp, TGI and Ollama read
# (llama-cpp-python ignores max_completion_tokens): an OpenAI generator gets the same limit under both.
OPENAI_LENGTH_KEYS = ("max_completion_tokens", "max_tokens")


def llm_generation_kwargs(
    generators: Sequence[tuple[str, Mapping[str, Any]]], max_tokens: int | None = None, temperature: float | None = None
) -> dict[str, Any]:
    """A reply's length and temperature as run-time ``generation_kwargs`` of the spec's chat generators.

    :param generators: Each generator's type and its own ``generation_kwargs`` from the spec. The length goes
        under both of :data:`OPENAI_LENGTH_KEYS` for an OpenAI generator; else under the key the generators
        already use, or transformers' ``max_new_tokens`` (the local generators) when they use none.
    :returns: ``{}`` without a generator. Transformers models sample only when told to and reject
        temperature 0, which means greedy decoding there.
    """
    if not generators:
        return {}
    own = {key for _, kwargs in generators for key in kwargs}
    if any("OpenAI" in kind for kind, _ in generators):
        lengths: tuple[str, ...] = OPENAI_LENGTH_KEYS
    else:
        lengths = (next((key for key in LENGTH_KEYS if key in own), "max_new_tokens"),)
    out: dict[str, Any] = {} if max_tokens is None else dict.fromkeys(lengths, max_tokens)
    if temperature is None:
        return out
    if lengths == ("max_new_tokens",):
        out.update({"do_sample": False} if temperature == 0 else {"do_sample": True, "temperature": temperature})
    else:
        out["temperature"] = temperature
    return out


def _token_callback(on_token: Callable[[str], None]) -> Callable[[StreamingChunk], None]:
    def forward(chunk: StreamingChunk) -> None:
        if chunk.content:
            on_token(chunk.content)

    return forward


def _sender_of(data: dict[str, Any], receiver: str) -> str | None:
    """The component whose output is connected to ``receiver`` (``component.socket``)."""
    senders = [c["sender"].split(".")[0] for c in data.get("connections", []) if c["receiver"] == receiver]
    return senders[0] if senders else None
