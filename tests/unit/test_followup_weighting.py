"""Follow-up questions: which earlier turns a question leans on, the components that weigh them, the condenser,
the spec knob and the conversation set's format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from haystack import Document, component
from haystack.dataclasses import ChatMessage

from ragship.components.answerers import ExtractiveAnswerer
from ragship.components.condensers import QuestionCondenser, attach_condensers
from ragship.components.followups import history_weights, needs_history, topic_turns
from ragship.components.retrievers import StoreBM25Retriever
from ragship.errors import SpecError
from ragship.eval.conversations import is_conversation_set, load_conversations
from ragship.eval.datasets import DatasetError
from ragship.eval.tracked import load_grid
from ragship.pipelines import load_pipeline
from ragship.spec import default_spec, with_overrides
from ragship.spec.knobs import default_of
from ragship.stores import EmbeddedDocumentStore

REPO = Path(__file__).resolve().parents[2]
START = "How do I start a local Elasticsearch node?"


@pytest.mark.parametrize(
    "question",
    ["And how do I stop it?", "Which search does it use for keywords?", "What about Redis?", "And only the fast ones?"],
)
def test_a_question_that_refers_back_or_names_almost_nothing_needs_its_history(question: str) -> None:
    assert needs_history(question)


@pytest.mark.parametrize(
    "question",
    [
        "Which Python version does ragship need?",
        "How do I preview what a sync would change without writing anything?",
        "Which library extracts the main content of HTML files?",
    ],
)
def test_a_self_contained_question_stands_alone(question: str) -> None:
    assert not needs_history(question)
    assert history_weights(question, [START], 0.5) == []


def test_a_follow_up_leans_on_the_turns_back_to_the_last_self_contained_one() -> None:
    history = ["How do I run the tests?", START, "And how do I stop it?"]
    assert topic_turns("Where does it keep its data?", history) == [START, "And how do I stop it?"]
    assert history_weights("Where does it keep its data?", history, 0.3) == [
        (START, 0.3),
        ("And how do I stop it?", 0.3),
    ]
    assert history_weights("Where does it keep its data?", history, 0.0) == []
    assert topic_turns("And how do I stop it?", []) == []


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedDocumentStore:
    store = EmbeddedDocumentStore(tmp_path / "store")
    store.write_documents(
        [
            Document(id="es", content="Stop the local Elasticsearch node with ragship es stop."),
            Document(id="redis", content="Stop the local Redis broker with ragship queue stop."),
            Document(id="python", content="ragship needs Python 3.11 or newer."),
        ]
    )
    return store


def test_the_bm25_branch_adds_the_leaned_on_turns_at_their_weight(store: EmbeddedDocumentStore) -> None:
    retriever = StoreBM25Retriever(top_k=3, history_weight=0.5)
    retriever.document_store = store
    follow_up = "And how do I stop it?"
    # Alone, both 'stop' chunks tie; the earlier question about Elasticsearch decides.
    ranked = retriever.run(query=follow_up, history=[START])["documents"]
    assert ranked[0].id == "es"
    expected = store.weighted_bm25_retrieval([(follow_up, 1.0), (START, 0.5)], top_k=3)
    assert [(d.id, d.score) for d in ranked] == [(d.id, d.score) for d in expected]
    # A topic change searches exactly as it would alone.
    change = "Which Python version does ragship need?"
    alone = [(d.id, d.score) for d in store.bm25_retrieval(change, top_k=3)]
    assert [(d.id, d.score) for d in retriever.run(query=change, history=[START])["documents"]] == alone
    assert StoreBM25Retriever(history_weight=0.25).to_dict()["init_parameters"]["history_weight"] == 0.25
    with pytest.raises(ValueError, match="history_weight must be >= 0"):
        StoreBM25Retriever(history_weight=-1)


def test_the_extractive_answerer_reads_a_follow_up_with_its_history() -> None:
    docs = [
        Document(content="Run `ragship queue stop` to stop Redis.", meta={"source": "queue.md"}),
        Document(content="Run `ragship es stop` to stop the Elasticsearch node.", meta={"source": "stores.md"}),
    ]
    answerer = ExtractiveAnswerer(history_weight=0.5)
    alone = answerer.run(query="And how do I stop it?", documents=docs)["replies"][0].text
    followed = answerer.run(query="And how do I stop it?", documents=docs, history=[START])["replies"][0].text
    assert "Elasticsearch" in followed and "Redis" not in followed, followed
    assert "Redis" in alone  # without the history the first document wins
    assert (
        ExtractiveAnswerer(history_weight=0.0)
        .run(query="And how do I stop it?", documents=docs, history=[START])["replies"][0]
        .text
        == alone
    )


@component
class _RecordingChatGenerator:
    """A chat generator that answers with a fixed rewrite and records what it was asked."""

    def __init__(self, reply: str) -> None:
        self.reply = reply
        self.calls: list[list[ChatMessage]] = []

    @component.output_types(replies=list[ChatMessage])
    def run(self, messages: list[ChatMessage]) -> dict[str, Any]:
        self.calls.append(messages)
        return {"replies": [ChatMessage.from_assistant(self.reply)]}


def test_the_condenser_rewrites_only_with_history_and_falls_back_on_a_useless_reply() -> None:
    condenser = QuestionCondenser(max_chars=80)
    condenser.chat_generator = _RecordingChatGenerator("Rewritten question: How do I stop Elasticsearch?\nextra")
    assert condenser.run(question="And how do I stop it?")["query"] == "And how do I stop it?"
    assert condenser.run(question="And how do I stop it?", history=["  "])["query"] == "And how do I stop it?"
    assert condenser.chat_generator.calls == []  # no history, no model call
    assert condenser.run(question="And how do I stop it?", history=[START])["query"] == "How do I stop Elasticsearch?"
    [messages] = condenser.chat_generator.calls
    assert START in messages[-1].text and "And how do I stop it?" in messages[-1].text
    # A reply that is no question (a small model answering instead): the question with the turns it leans on.
    joined = f"{START} And how do I stop it?"
    for useless in ("x" * 80 + "?", "Run ragship es stop."):
        condenser.chat_generator = _RecordingChatGenerator(useless)
        assert condenser.run(question="And how do I stop it?", history=[START])["query"] == joined
        change = "Which Python version does ragship need?"
        assert condenser.run(question=change, history=[START])["query"] == change


def test_the_llm_spec_condenses_before_retrieval_and_the_prompt_with_its_own_llm(tmp_path: Path) -> None:
    spec = default_spec(generator="openai")
    receivers = {c["receiver"] for c in spec.query["connections"] if c["sender"] == "condenser.query"}
    assert receivers == {"bm25_retriever.query", "query_embedder.text", "prompt_builder.query"}
    assert spec.query["components"]["condenser"]["init_parameters"]["generator"] == "llm"
    pipeline = load_pipeline(spec.query, "query")
    attach_condensers(pipeline)
    assert pipeline.get_component("condenser").chat_generator is pipeline.get_component("llm")  # type: ignore[attr-defined]
    spec.query["components"]["condenser"]["init_parameters"]["generator"] = "writer"
    with pytest.raises(SpecError, match="generator: 'writer' is not a component"):
        attach_condensers(load_pipeline(spec.query, "query"))


def test_history_weight_is_a_spec_knob_and_a_grid_key() -> None:
    def weights(spec: Any) -> dict[str, float]:
        return {
            name: comp["init_parameters"]["history_weight"]
            for name, comp in spec.query["components"].items()
            if "history_weight" in comp["init_parameters"]
        }

    assert weights(default_spec()) == dict.fromkeys(
        ("query_embedder", "bm25_retriever", "answerer"), default_of("history_weight")
    )
    assert set(weights(default_spec(history_weight=0.2)).values()) == {0.2}
    assert set(weights(with_overrides(default_spec(), history_weight=0.8)).values()) == {0.8}
    assert load_grid({"dataset": "x", "grid": {"history_weight": [0.25, 0.5]}})["grid"]["history_weight"]


def test_the_golden_conversation_set_loads_and_is_told_apart_from_a_qa_set() -> None:
    path = REPO / "evaluation" / "golden_conversations.jsonl"
    conversations = load_conversations(path)
    kinds = [turn.kind for c in conversations for turn in c.turns[1:]]
    assert kinds.count("follow_up") >= 20 and kinds.count("topic_change") >= 5
    assert is_conversation_set(path) and not is_conversation_set(REPO / "evaluation" / "golden_qa.jsonl")


def test_a_bad_conversation_names_its_line_and_turn(tmp_path: Path) -> None:
    path = tmp_path / "conv.jsonl"
    first = {"question": "How do I run the tests?", "answers": ["make test"]}
    path.write_text(json.dumps({"turns": [first, {"question": "And the fast ones?", "answers": ["make unit"]}]}))
    with pytest.raises(DatasetError, match=r"conv.jsonl:1: turns\[1\]: 'kind' must be one of"):
        load_conversations(path)
    path.write_text(json.dumps({"turns": [first]}))
    with pytest.raises(DatasetError, match="at least two turns"):
        load_conversations(path)


class _FixedVectors:
    """An embedding backend that returns a fixed vector per text (unnormalised, as a remote service may)."""

    def __init__(self, vectors: dict[str, list[float]]) -> None:
        self.vectors = vectors

    def embed(self, data: list[str], **_: Any) -> list[list[float]]:
        return [self.vectors[text] for text in data]


def test_the_query_embedding_of_a_follow_up_is_the_weighted_sum_of_unit_vectors() -> None:
    from ragship.components.embedders import TextEmbedder

    embedder = TextEmbedder(model="unused", history_weight=0.5)
    follow_up = "And how do I stop it?"
    embedder.embedding_backend = _FixedVectors({follow_up: [3.0, 0.0], START: [0.0, 2.0]})  # type: ignore[assignment]
    norm = (1 + 0.25) ** 0.5
    assert embedder.run(text=follow_up, history=[START])["embedding"] == pytest.approx([1 / norm, 0.5 / norm])
    assert embedder.run(text=follow_up)["embedding"] == [3.0, 0.0]  # no history: the plain embedding
    assert TextEmbedder(model="m", history_weight=0.25).to_dict()["init_parameters"]["history_weight"] == 0.25


def test_a_history_that_is_not_a_list_of_questions_is_refused_before_anything_runs(
    store: EmbeddedDocumentStore,
) -> None:
    from ragship.errors import InvalidRequestError
    from ragship.pipelines.query import QueryEngine

    engine = QueryEngine(default_spec(), store, mode="bm25")  # type: ignore[arg-type]
    for bad in ("How do I start it?", [START, 3]):
        with pytest.raises(InvalidRequestError, match="history must be a list of the earlier user questions"):
            engine.ask("And how do I stop it?", history=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="history must be a list"):
            engine.retrieve("And how do I stop it?", history=bad)  # type: ignore[arg-type]
    assert [d.id for d in engine.retrieve("And how do I stop it?", history=[START, " "], top_k=1)] == ["es"]
