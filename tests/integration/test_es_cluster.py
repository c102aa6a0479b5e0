"""A real three-node Elasticsearch cluster loses its elected master while it is queried and written to.

Issue 13, point 5: with replicas 1, ``kill -9`` of the node that is the elected master and holds a
primary must cost no query beyond a short retry window and no write; every chunk written before,
during and after the outage is searchable once the node is back, and the health returns to green.
The figures (queries, retries, longest retry, seconds to green) are printed for benchmarks/README.md.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from haystack import Document

from ragship.local.es_cluster import LocalCluster
from ragship.settings import load_settings
from ragship.stores.elasticsearch import ElasticsearchStore

pytestmark = pytest.mark.slow

NODES = 3
SHARDS = 3  # a primary on every node
RETRY_WINDOW_S = 15.0  # a query that has not succeeded this long after its first try counts as failed
OUTAGE_S = 15.0  # how long the cluster serves without the killed node
QUERY = "pelican"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    """Its own three-node cluster (the distribution comes from the shared download cache); removed after."""
    settings = load_settings().local_es.model_copy(update={"start_timeout_s": 300.0})
    local = LocalCluster(settings, name=f"pytest-cluster-{os.getpid()}")
    try:
        local.start(nodes=NODES, port=0)
        yield local
    finally:
        local.remove()


def _chunks(prefix: str, start: int, count: int) -> list[Document]:
    return [
        Document(id=f"{prefix}-{i}", content=f"{QUERY} field note {prefix} {i}", meta={"source": f"{prefix}.md"})
        for i in range(start, start + count)
    ]


@dataclass
class QueryLoad:
    """Queries the store without pause; a query is retried until it answers or the retry window ends."""

    store: ElasticsearchStore
    stop: threading.Event = field(default_factory=threading.Event)
    queries: int = 0
    retried: int = 0  # queries whose first try failed but that answered within the window
    failed: int = 0  # queries with no answer within the window
    longest_retry_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    def run(self) -> None:
        while not self.stop.is_set():
            began, tries = time.monotonic(), 0
            while True:
                tries += 1
                try:
                    if self.store.bm25_retrieval(QUERY, top_k=5):
                        break
                    self.errors.append("no hits")
                except Exception as e:  # every failure counts, whatever its kind
                    self.errors.append(f"{type(e).__name__}: {e}"[:200])
                if time.monotonic() - began > RETRY_WINDOW_S:
                    self.failed += 1
                    break
                time.sleep(0.2)
            self.queries += 1
            if tries > 1:
                self.retried += 1
                self.longest_retry_s = max(self.longest_retry_s, time.monotonic() - began)


@dataclass
class WriteLoad:
    """Writes small batches without pause; records which chunks the store says landed."""

    store: ElasticsearchStore
    stop: threading.Event = field(default_factory=threading.Event)
    written: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    longest_batch_s: float = 0.0

    def run(self) -> None:
        batch = 0
        while not self.stop.is_set():
            docs = _chunks("during", batch * 10, 10)
            began = time.monotonic()
            try:
                result = self.store.write_chunks(docs)
            except Exception as e:  # a lost write is what this test looks for
                self.errors.append(f"{type(e).__name__}: {e}"[:300])
            else:
                rejected = {r.id for r in result.rejected}
                self.rejected.extend(f"{r.id}: {r.reason}" for r in result.rejected)
                self.written.extend(d.id for d in docs if d.id not in rejected)
            self.longest_batch_s = max(self.longest_batch_s, time.monotonic() - began)
            batch += 1
            time.sleep(0.1)


def _shards(cluster: LocalCluster, index: str) -> list[dict[str, str]]:
    return [s for s in cluster.status().shards if s.get("index") == index]


def _master(cluster: LocalCluster) -> str:
    return next(n["name"] for n in cluster.status().nodes if n["master"])


def _give_master_a_primary(cluster: LocalCluster, store: ElasticsearchStore, index: str) -> None:
    """If the elected master holds no primary of ``index``, fail one primary whose replica it holds: the
    replica is promoted there (a shard copy is cancelled; the cluster re-replicates and turns green)."""
    master, shards = _master(cluster), _shards(cluster, index)
    if any(s["prirep"] == "p" and s["node"] == master for s in shards):
        return
    shard = next(s["shard"] for s in shards if s["prirep"] == "r" and s["node"] == master)
    primary = next(s["node"] for s in shards if s["prirep"] == "p" and s["shard"] == shard)
    store.client.cluster.reroute(
        commands=[{"cancel": {"index": index, "shard": int(shard), "node": primary, "allow_primary": True}}]
    )
    cluster.wait_for(nodes=NODES, statuses=frozenset({"green"}))


def test_killing_the_master_loses_no_query_and_no_write(cluster: LocalCluster, capsys: pytest.CaptureFixture) -> None:
    urls = ",".join(m.url for m in cluster.layout())
    alias = f"cluster-{uuid.uuid4().hex[:8]}"
    store = ElasticsearchStore(urls, alias, shards=SHARDS)  # replicas unset: 1 on a multi-node cluster
    before = _chunks("before", 0, 300)
    assert store.write_chunks(before).written == len(before)
    index = store.client.indices.get_alias(name=alias).body.popitem()[0]
    assert store.client.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_replicas"] == "1"
    _give_master_a_primary(cluster, store, index)
    victim = _master(cluster)
    assert any(s["prirep"] == "p" and s["node"] == victim for s in _shards(cluster, index))
    victim_pid = next(n["pid"] for n in cluster.status().nodes if n["name"] == victim)

    queries = QueryLoad(ElasticsearchStore(urls, alias, shards=SHARDS))
    writes = WriteLoad(ElasticsearchStore(urls, alias, shards=SHARDS))
    threads = [threading.Thread(target=load.run, daemon=True) for load in (queries, writes)]
    for thread in threads:
        thread.start()
    time.sleep(3)
    os.kill(victim_pid, signal.SIGKILL)
    killed_at = time.monotonic()
    time.sleep(OUTAGE_S)
    new_master = _master(cluster)
    cluster.start_node(victim)
    restarted_at = time.monotonic()
    cluster.wait_for(nodes=NODES, statuses=frozenset({"green"}))
    green_at = time.monotonic()
    time.sleep(3)
    for load in (queries, writes):
        load.stop.set()
    for thread in threads:
        thread.join(timeout=120)
    after = _chunks("after", 0, 100)
    assert store.write_chunks(after).written == len(after)

    expected = [d.id for d in before] + writes.written + [d.id for d in after]
    store.client.indices.refresh(index=alias)
    found = store.client.count(index=alias, query={"ids": {"values": expected}})["count"]
    health = store.client.cluster.health()
    with capsys.disabled():
        print(
            f"\nES cluster failover ({NODES} nodes, {SHARDS} shards, replicas 1; killed master {victim}, "
            f"new master {new_master}): {queries.queries} queries, {queries.retried} retried, "
            f"{queries.failed} failed beyond the {RETRY_WINDOW_S:.0f}s retry window, longest retry "
            f"{queries.longest_retry_s:.1f}s, {len(queries.errors)} failed tries; {len(writes.written)} chunks "
            f"written during the outage, {len(writes.rejected)} rejected, {len(writes.errors)} lost batches, "
            f"longest batch {writes.longest_batch_s:.1f}s; {green_at - restarted_at:.1f}s from restart to "
            f"green ({green_at - killed_at:.1f}s from the kill); {found}/{len(expected)} chunks searchable"
        )
    assert not [t for t in threads if t.is_alive()]
    assert queries.queries > 0 and queries.failed == 0, queries.errors[-5:]
    assert writes.written and not writes.errors and not writes.rejected, (writes.errors + writes.rejected)[:5]
    assert found == len(expected) == store.count_documents()
    assert health["status"] == "green" and health["number_of_nodes"] == NODES
    assert all(n["running"] for n in cluster.status().nodes)


def test_status_shows_nodes_master_health_and_shards(cluster: LocalCluster, cli) -> None:
    store = ElasticsearchStore(",".join(m.url for m in cluster.layout()), f"status-{uuid.uuid4().hex[:8]}")
    store.write_chunks(_chunks("status", 0, 5))
    shown = cli("es", "status", "--name", cluster.name, "--json")
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    names = {m.name for m in cluster.layout()}
    assert {n["name"] for n in status["nodes"]} == names and sum(n["master"] for n in status["nodes"]) == 1
    assert status["url"] == ",".join(m.url for m in cluster.layout()) and status["health"] in {"green", "yellow"}
    copies = [s for s in status["shards"] if s["index"].startswith(store.alias)]
    assert {s["prirep"] for s in copies} == {"p", "r"} and {s["node"] for s in copies} <= names
    table = cli("es", "status", "--name", cluster.name)
    assert "primary" in table.stdout and "replica" in table.stdout
    store.delete_index()
