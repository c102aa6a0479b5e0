"""Integration fixtures: a store holding the project's own docs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragship.assembly import open_indexer, open_query_engine
from ragship.pipelines.query import QueryEngine
from ragship.spec import default_spec

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def docs_store(
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """An embedded store with docs/ and README.md indexed once; tests only read it (reindexing adds nothing)."""
    store = tmp_path_factory.mktemp("docs") / "store"
    indexer = open_indexer(default_spec(), str(store))
    report = indexer.index([REPO / "docs", REPO / "README.md"])
    assert report.ok, report.failures
    return str(store)


@pytest.fixture(scope="module")
def engine(docs_store: str) -> QueryEngine:
    return open_query_engine(default_spec(), docs_store)
