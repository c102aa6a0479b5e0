"""What lets ragship use an Elasticsearch cluster, checked without one: node lists, write retries, node config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ConnectionError as ESConnectionError
from haystack import Document

from ragship.errors import ConfigError, StoreUnavailableError
from ragship.local.es_node import ClusterMembership, LocalElasticsearch
from ragship.settings import load_settings, redacted_url
from ragship.stores.base import Rejection, WriteResult
from ragship.stores.es_bulk import _passing, write_with_retries
from ragship.stores.es_client import node_urls

NODES = "http://elastic:pw@127.0.0.1:9200/?x=1,http://127.0.0.1:9201"


def test_settings_take_several_node_urls_and_leave_replicas_to_the_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGSHIP_ES__URL", "http://127.0.0.1:9200,http://127.0.0.1:9201")
    settings = load_settings()
    assert node_urls(settings.es.url) == ["http://127.0.0.1:9200", "http://127.0.0.1:9201"]
    assert settings.es.replicas is None
    with pytest.raises(ConfigError, match=r"es\.url"):
        load_settings(es={"url": "http://127.0.0.1:9200,127.0.0.1:9201"})


def test_a_node_list_is_redacted_url_by_url() -> None:
    assert redacted_url(NODES) == "http://127.0.0.1:9200/,http://127.0.0.1:9201"


def test_only_failures_of_a_cluster_in_motion_are_retried() -> None:
    assert _passing(503, {"type": "unavailable_shards_exception"})
    assert _passing(500, {"type": "node_closed_exception"})
    assert _passing(429, {"type": "es_rejected_execution_exception"})
    assert not _passing(400, {"type": "document_parsing_exception"})
    assert not _passing(409, {"type": "version_conflict_engine_exception"})


def _scripted(outcomes: list[Any]) -> Any:
    """A stand-in for the store's guarded call: each bulk pass takes the next outcome (or raises it)."""

    def call(fn: Any, client: Any, documents: list[Document], index: str, op_type: str, fields: Any = None) -> Any:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome(documents)

    return call


def _write(outcomes: list[Any], documents: list[Document], attempts: int = 4) -> WriteResult:
    return write_with_retries(
        _scripted(outcomes), lambda: None, documents, "idx", "index", attempts=attempts, backoff_max_s=0.01
    )


def _refuse_first(documents: list[Document]) -> tuple[WriteResult, list[tuple[Document, Rejection]]]:
    first = documents[0]
    return WriteResult(written=len(documents) - 1), [(first, Rejection(first.id, "", "unavailable_shards_exception"))]


def _land_all(documents: list[Document]) -> tuple[WriteResult, list[tuple[Document, Rejection]]]:
    return WriteResult(written=len(documents)), []


def test_a_write_meeting_a_node_going_down_is_written_again_not_lost() -> None:
    docs = [Document(id=f"c{i}", content="x") for i in range(3)]
    unreachable = StoreUnavailableError("Cannot reach Elasticsearch")
    unreachable.__cause__ = ESConnectionError("refused")
    result = _write([unreachable, _refuse_first, _land_all], docs)
    assert result.written == 3 and not result.rejected


def test_chunks_still_refused_after_the_last_attempt_are_reported() -> None:
    docs = [Document(id="a", content="x"), Document(id="b", content="y")]
    result = _write([_refuse_first] * 2, docs, attempts=2)
    assert result.written == 1
    assert [(r.id, r.reason) for r in result.rejected] == [("a", "unavailable_shards_exception")]


def test_bad_credentials_are_not_retried() -> None:
    denied = StoreUnavailableError("rejected the credentials (HTTP 401)")
    with pytest.raises(StoreUnavailableError, match="401"):
        _write([denied, _land_all], [Document(id="a", content="x")])


def test_cluster_nodes_bootstrap_only_on_their_first_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("ragship.local.es_node.free_port", lambda: 9400)
    settings = load_settings(local_es={"home": tmp_path}).local_es
    membership = ClusterMembership("ragship-c", 9301, ("127.0.0.1:9300", "127.0.0.1:9301"), ("c-1", "c-2"))
    node = LocalElasticsearch(settings, name="c-2", cluster=membership)
    (node.node_dir / "data").mkdir(parents=True)
    first = node._discovery()
    assert "transport.port: 9301" in first and "discovery.type: single-node" not in first
    assert "discovery.seed_hosts: [127.0.0.1:9300, 127.0.0.1:9301]" in first
    assert "cluster.initial_master_nodes: [c-1, c-2]" in first
    (node.node_dir / "data" / "nodes").mkdir()
    assert not any(line.startswith("cluster.initial_master_nodes") for line in node._discovery())
    assert node.heap == settings.cluster_heap
    assert LocalElasticsearch(settings, name="solo")._discovery() == [
        "transport.port: 9400",
        "discovery.type: single-node",
    ]
