"""A local Elasticsearch cluster: several nodes of the same distribution on 127.0.0.1.

Each node is a :class:`~ragship.local.es_node.LocalElasticsearch` under ``nodes/<cluster>-<i>`` with its own
HTTP and transport port; all share one ``cluster.name`` and list every node's transport port as seed
hosts, and the first start bootstraps the cluster with every node as an initial master. The cluster's
layout (node names and ports) is kept in ``clusters/<name>.json`` under the ragship Elasticsearch home,
so a restarted node comes back on the same ports and the store's list of node URLs stays valid.
Security is off (a multi-node cluster with security needs transport TLS, which a local cluster skips).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from ragship.local.es_node import ClusterMembership, LocalElasticsearch, LocalElasticsearchError
from ragship.local.process import free_port
from ragship.settings import LocalElasticsearchSettings


@dataclass(frozen=True)
class ClusterNode:
    """One node of the layout: its name and ports."""

    name: str
    http_port: int
    transport_port: int

    @property
    def url(self) -> str:
        """The node's HTTP URL."""
        return f"http://127.0.0.1:{self.http_port}"


@dataclass
class ClusterStatus:
    """What `ragship es status` reports for a cluster."""

    running: bool  # at least one node runs
    name: str
    version: str
    health: str | None
    url: str | None  # the running nodes' URLs, comma-separated: the value for RAGSHIP_ES__URL
    nodes: list[dict[str, Any]] = field(default_factory=list)  # name, url, pid, running, master, roles
    shards: list[dict[str, Any]] = field(default_factory=list)  # index, shard, prirep, state, node

    def to_dict(self) -> dict[str, object]:
        """Plain-data form."""
        return asdict(self)


class LocalCluster:
    """Several local nodes forming one cluster.

    Usage::

        cluster = LocalCluster(get_settings().local_es, name="default")
        urls = cluster.start(nodes=3)          # RAGSHIP_ES__URL=",".join(urls)
        cluster.status().shards
        cluster.stop()

    :param settings: Version, home, base port, heap per node (``cluster_heap``), JDK.
    :param name: Cluster name; nodes are ``<name>-1`` ... ``<name>-N``.
    """

    def __init__(self, settings: LocalElasticsearchSettings, name: str = "default") -> None:
        self.settings = settings
        self.name = name
        self.layout_file = settings.home / "clusters" / f"{name}.json"

    @property
    def exists(self) -> bool:
        """Whether this cluster was created (its layout is on disk)."""
        return self.layout_file.exists()

    def layout(self) -> list[ClusterNode]:
        """The nodes of the cluster (empty before the first start)."""
        if not self.exists:
            return []
        return [ClusterNode(**n) for n in json.loads(self.layout_file.read_text())["nodes"]]

    def node(self, member: ClusterNode) -> LocalElasticsearch:
        """The local node behind one member of the layout."""
        nodes = self.layout()
        membership = ClusterMembership(
            cluster_name=f"ragship-{self.name}",
            transport_port=member.transport_port,
            seed_hosts=tuple(f"127.0.0.1:{n.transport_port}" for n in nodes),
            initial_masters=tuple(n.name for n in nodes),
        )
        return LocalElasticsearch(self.settings, name=member.name, cluster=membership)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, nodes: int, port: int | None = None, wait: bool = True) -> list[str]:
        """Start every node that is not running (creating the layout on the first start).

        :param nodes: How many nodes; must match the layout of an existing cluster.
        :param port: HTTP port of the first node (the others follow it); settings' port when None,
            free ports when 0. Ignored once the layout exists.
        :param wait: Block until all nodes have joined and the cluster is yellow or green.
        :returns: Every node's URL.
        """
        layout = self.layout() or self._create_layout(nodes, self.settings.port if port is None else port)
        if len(layout) != nodes:
            raise LocalElasticsearchError(
                f"Cluster {self.name!r} was created with {len(layout)} nodes; start it with --nodes {len(layout)} "
                f"or choose another --name."
            )
        for member in layout:
            self.node(member).start(port=member.http_port, wait=False)
        urls = [m.url for m in layout]
        if wait:
            self.wait_for(nodes=nodes)
        return urls

    def start_node(self, name: str) -> str:
        """(Re)start one node of the cluster without waiting; returns its URL."""
        member = next((m for m in self.layout() if m.name == name), None)
        if member is None:
            raise LocalElasticsearchError(f"Cluster {self.name!r} has no node {name!r}.")
        return self.node(member).start(port=member.http_port, wait=False)

    def wait_for(self, nodes: int, statuses: frozenset[str] = frozenset({"green", "yellow"})) -> float:
        """Block until ``nodes`` nodes have joined and the health is one of ``statuses``; returns seconds waited.

        :raises LocalElasticsearchError: after the start timeout, with the end of each node's log.
        """
        began = time.monotonic()
        deadline = began + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            health = self._get("/_cluster/health")
            joined = isinstance(health, dict) and health.get("number_of_nodes", 0) >= nodes
            if joined and health.get("status") in statuses:
                return time.monotonic() - began
            time.sleep(0.5)
        tails = "\n".join(f"--- {m.name}:\n{self.node(m).logs(15)}" for m in self.layout())
        raise LocalElasticsearchError(
            f"Cluster {self.name!r} did not reach {nodes} nodes and health {'/'.join(sorted(statuses))} within "
            f"{self.settings.start_timeout_s:.0f}s. Log tails:\n{tails}"
        )

    def stop(self, timeout_s: float = 60) -> int:
        """Stop every node; returns how many were running."""
        return sum(self.node(m).stop(timeout_s) for m in self.layout())

    def remove(self) -> None:
        """Stop every node and delete the nodes' directories and the layout (the download cache stays)."""
        for member in self.layout():
            self.node(member).remove()
        self.layout_file.unlink(missing_ok=True)

    # -- status ----------------------------------------------------------------------------------
    def status(self) -> ClusterStatus:
        """Each node (running, pid, elected master, roles), the cluster health and where every shard lives."""
        layout = self.layout()
        running = {m.name: self.node(m).status() for m in layout}
        live = [m.url for m in layout if running[m.name].running]
        health = self._get("/_cluster/health", live)
        cat = self._get("/_cat/nodes?format=json&h=name,master,node.role", live)
        by_name = {n["name"]: n for n in cat} if isinstance(cat, list) else {}
        shards = self._get("/_cat/shards?format=json&h=index,shard,prirep,state,node&s=index,shard,prirep", live)
        nodes = [
            {
                "name": m.name,
                "url": m.url,
                "pid": running[m.name].pid,
                "running": running[m.name].running,
                "master": by_name.get(m.name, {}).get("master") == "*",
                "roles": by_name.get(m.name, {}).get("node.role"),
            }
            for m in layout
        ]
        return ClusterStatus(
            running=bool(live),
            name=self.name,
            version=self.settings.version,
            health=health.get("status") if isinstance(health, dict) else None,
            url=",".join(live) or None,
            nodes=nodes,
            shards=shards if isinstance(shards, list) else [],
        )

    # -- internals -------------------------------------------------------------------------------
    def _create_layout(self, nodes: int, port: int) -> list[ClusterNode]:
        if nodes < 2:
            raise LocalElasticsearchError("A cluster needs at least 2 nodes; start a single node without --nodes.")
        layout = [
            ClusterNode(f"{self.name}-{i + 1}", port + i if port else free_port(), free_port()) for i in range(nodes)
        ]
        self.layout_file.parent.mkdir(parents=True, exist_ok=True)
        self.layout_file.write_text(json.dumps({"nodes": [asdict(m) for m in layout]}, indent=2))
        return layout

    def _get(self, path: str, urls: list[str] | None = None) -> Any:
        """GET ``path`` as JSON from the first node that answers (None when none does)."""
        for url in urls if urls is not None else [m.url for m in self.layout()]:
            try:
                with urllib.request.urlopen(f"{url}{path}", timeout=2) as response:
                    return json.load(response)
            except (urllib.error.URLError, OSError, ValueError):
                continue
        return None
