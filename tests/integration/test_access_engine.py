"""Access scopes through the query engine on both stores: an hr reader never gets a finance chunk.

Attacks tried on each store and retrieval mode: caller filters that OR finance back in, top_k at its
maximum, query expansion (a second search built from the first one's hits), a rerank stage, and the
finance marker word itself as the question. Then: changing a file's access (front matter or a path rule)
reaches readers after ``sync``; ``ragship ask --as`` shows what a group sees.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from access_corpus import FILES, FINANCE_MARKER, HR_MARKER, RULES, leaks, write_corpus
from haystack import Document

from ragship.access.scope import AccessScope
from ragship.assembly import open_indexer, open_query_engine
from ragship.enums import AccessDefault, RetrievalMode
from ragship.settings import Settings, load_settings
from ragship.spec import default_spec

pytestmark = [pytest.mark.integration]

SPEC = default_spec(feedback_docs=3)  # query expansion on: its second search must carry the scope too
HR = AccessScope.of_groups(["hr"], AccessDefault.PUBLIC, "hr")
ATTACKS = {
    "plain": None,
    "or_finance": {
        "operator": "OR",
        "conditions": [
            {"field": "meta.access", "operator": "in", "value": ["finance"]},
            {"field": "meta.source", "operator": "==", "value": "finance-notes.md"},
        ],
    },
    "not_hr": {"operator": "NOT", "conditions": [{"field": "meta.access", "operator": "in", "value": ["hr"]}]},
}


@pytest.fixture(scope="module", params=["embedded", "elasticsearch"])
def indexed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Path]]:
    """(settings naming the store, corpus folder): the corpus indexed with the path rules, once per store."""
    root = tmp_path_factory.mktemp(f"access-{request.param}")
    corpus = write_corpus(root)
    if request.param == "embedded":
        settings = load_settings(home=root, access={"rules": RULES})
    else:
        es_url = request.getfixturevalue("es_url")
        alias = f"test-access-{uuid.uuid4().hex[:8]}"
        settings = load_settings(home=root, store=es_url, es={"index": alias}, access={"rules": RULES})
    report = open_indexer(SPEC, settings=settings).sync([corpus])
    assert report.ok, report.failures
    assert report.added == len(FILES)
    yield settings, corpus
    if request.param == "elasticsearch":
        from ragship.stores.elasticsearch import ElasticsearchStore

        ElasticsearchStore(str(settings.store), settings.es.index).delete_index()
    shutil.rmtree(root, ignore_errors=True)


def _text(docs: list[Document]) -> str:
    return json.dumps([{"content": d.content, "meta": d.meta} for d in docs])


@pytest.mark.parametrize("mode", list(RetrievalMode))
@pytest.mark.parametrize("attack", list(ATTACKS))
def test_an_hr_reader_never_retrieves_a_finance_chunk(indexed: tuple[Settings, Path], mode: str, attack: str) -> None:
    settings, _ = indexed
    engine = open_query_engine(SPEC, mode=RetrievalMode(mode), settings=settings)
    question = f"{FINANCE_MARKER} budget margin ledger payroll"
    for top_k in (None, 1000):
        docs = engine.retrieve(question, top_k=top_k, filters=ATTACKS[attack], access=HR)
        assert not leaks(_text(docs)), (mode, attack, top_k, leaks(_text(docs)))
        answer = engine.ask(question, top_k=top_k, filters=ATTACKS[attack], access=HR)
        assert not leaks(json.dumps(answer.to_dict()))
    # the same question as an admin (the CLI's default) does reach finance's chunks
    admin = engine.retrieve(question, top_k=50)
    assert FINANCE_MARKER in _text(admin).lower()
    if attack == "plain":
        assert HR_MARKER in _text(engine.retrieve(f"{HR_MARKER} budget", top_k=50, access=HR)).lower()


def test_deny_by_default_hides_unmarked_documents(indexed: tuple[Settings, Path]) -> None:
    settings, _ = indexed
    engine = open_query_engine(SPEC, mode=RetrievalMode.BM25, settings=settings)
    public = AccessScope.of_groups(["hr"], AccessDefault.PUBLIC)
    deny = AccessScope.of_groups(["hr"], AccessDefault.DENY)
    assert "handbook" in _text(engine.retrieve("handbook expenses", top_k=50, access=public)).lower()
    assert "handbook" not in _text(engine.retrieve("handbook expenses", top_k=50, access=deny)).lower()


def test_an_access_change_reaches_readers_after_sync(indexed: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, corpus = indexed
    engine = open_query_engine(SPEC, mode=RetrievalMode.BM25, settings=settings)
    try:
        # front matter: finance-notes.md moves from finance to hr
        (corpus / "finance-notes.md").write_text(FILES["finance-notes.md"].replace("[finance]", "[hr]"))
        report = open_indexer(SPEC, settings=settings).sync([corpus])
        assert (report.updated, report.added) == (1, 0)
        hr_sees = _text(engine.retrieve("zorblax budget travel", top_k=50, access=HR)).lower()
        assert "finance-notes.md" in hr_sees and "q3.md" not in hr_sees
        # a path rule: reports/finance/* moves to hr; only the file it decides is re-indexed
        moved = settings.model_copy(
            update={"access": settings.access.model_copy(update={"rules": {"*/reports/finance/*": ["hr"]}})}
        )
        report = open_indexer(SPEC, settings=moved).sync([corpus])
        assert (report.updated, report.unchanged) == (1, len(FILES) - 1)
        assert "q3.md" in _text(engine.retrieve("zorblax margin quarter", top_k=50, access=HR)).lower()
    finally:
        (corpus / "finance-notes.md").write_text(FILES["finance-notes.md"])
        report = open_indexer(SPEC, settings=settings).sync([corpus])
        assert report.updated == 2
    assert not leaks(_text(engine.retrieve("zorblax budget", top_k=50, access=HR)))


def test_the_cli_asks_as_a_group(indexed: tuple[Settings, Path], cli: Any) -> None:
    settings, _ = indexed
    env = {"RAGSHIP_HOME": str(settings.home), "RAGSHIP_ES__INDEX": settings.es.index}
    if settings.store:
        env["RAGSHIP_STORE"] = settings.store
    as_hr = cli("ask", "zorblax budget", "--top-k", "50", "--json", "--as", "groups:hr", env=env)
    assert as_hr.returncode == 0, as_hr.stderr
    assert not leaks(as_hr.stdout) and HR_MARKER in as_hr.stdout.lower()
    as_admin = cli("ask", "zorblax budget", "--top-k", "50", "--json", env=env)
    assert as_admin.returncode == 0 and FINANCE_MARKER in as_admin.stdout.lower()
    unknown = cli("ask", "zorblax", "--as", "nobody", env=env)
    assert unknown.returncode == 2 and "--as groups:finance,hr" in " ".join(unknown.stderr.split())
