from __future__ import annotations

from haystack import Document

from ragship.components.answerers import NO_ANSWER, ExtractiveAnswerer
from ragship.components.ids import StableIdAssigner
from ragship.pipelines import with_retrieval_mode
from ragship.spec import default_spec


def _chunk(source: str, split_id: int, content: str) -> Document:
    return Document(content=content, meta={"source": source, "split_id": split_id})


def test_stable_ids_depend_on_source_position_and_content() -> None:
    assign = StableIdAssigner()
    first = assign.run([_chunk("a.md", 0, "x"), _chunk("a.md", 1, "x"), _chunk("b.md", 0, "x")])["documents"]
    again = assign.run([_chunk("a.md", 0, "x")])["documents"]
    changed = assign.run([_chunk("a.md", 0, "y")])["documents"]
    assert first[0].id == again[0].id
    assert len({d.id for d in first}) == 3
    assert changed[0].id != first[0].id


def test_extractive_answer_cites_the_document_holding_the_answer() -> None:
    docs = [
        Document(content="Kettles boil water. They whistle when ready."),
        Document(content="Run the tests with make test. The suite uses pytest."),
    ]
    reply = ExtractiveAnswerer(max_sentences=1).run(query="How do I run the tests?", documents=docs)["replies"][0]
    assert reply.text == "Run the tests with make test. [2]"


def test_extractive_answer_without_overlap_says_so() -> None:
    reply = ExtractiveAnswerer().run(query="quantum chromodynamics", documents=[Document(content="Tea is hot.")])
    assert reply["replies"][0].text == NO_ANSWER


def test_mode_pruning_keeps_only_the_needed_branch() -> None:
    query = default_spec().query
    bm25 = with_retrieval_mode(query, "bm25")
    dense = with_retrieval_mode(query, "dense")
    assert set(query["components"]) - set(bm25["components"]) == {"dense_retriever", "query_embedder"}
    assert set(query["components"]) - set(dense["components"]) == {"bm25_retriever"}
    assert bm25["metadata"]["retrieval_mode"] == "bm25"
    assert all("dense_retriever" not in c["receiver"] for c in bm25["connections"])
    assert with_retrieval_mode(query, "hybrid") is query


MD_GUIDE = """## How to run the tests

Run the tests with `make test`. It needs no services.

## Elasticsearch

Start a local node as shown here:

```sh
ragship es start      # one node on 127.0.0.1:9200
ragship es status
```

| setting | meaning |
|---|---|
| `RAGSHIP_ES__REPLICAS` | replicas for high availability |
"""


def _md(content: str, source: str = "docs/guide.md") -> Document:
    return Document(content=content, meta={"source": source, "file_type": "md"})


def test_extractive_answer_has_no_heading_in_its_sentences() -> None:
    reply = ExtractiveAnswerer().run(query="How do I run the tests?", documents=[_md(MD_GUIDE)])["replies"][0]
    assert reply.text.startswith("Run the tests with `make test`. [1]"), reply.text
    assert "How to run the tests" not in reply.text and "#" not in reply.text


def test_a_how_question_gets_the_command_as_a_fenced_block_with_its_citation() -> None:
    other = _md("## Cooking\n\nStart the oven before baking.", source="docs/other.md")
    reply = ExtractiveAnswerer().run(query="How do I start Elasticsearch?", documents=[_md(MD_GUIDE), other])
    text = reply["replies"][0].text
    prose, _, command = text.partition("\n\n```sh\n")
    assert prose == "Start a local node as shown here: [1]", text  # one source: the guide, not the cooking page
    assert command.startswith("ragship es start") and command.endswith("\n```\n[1]"), text


def test_a_what_question_gets_no_command_and_may_answer_from_a_table_row() -> None:
    reply = ExtractiveAnswerer().run(query="Which setting enables replicas?", documents=[_md(MD_GUIDE)])
    text = reply["replies"][0].text
    assert "```" not in text
    assert text.startswith("`RAGSHIP_ES__REPLICAS`: replicas for high availability [1]"), text
