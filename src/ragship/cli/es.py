"""``ragship es``: a local Elasticsearch node for development and tests, and cluster sizing."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragship.cli.common import JsonOption, SpecOption, err, out, print_json
from ragship.errors import RagshipError

if TYPE_CHECKING:
    from ragship.local.es_cluster import ClusterStatus, LocalCluster
    from ragship.local.es_node import LocalElasticsearch

es_app = typer.Typer(
    help="Run a local Elasticsearch node or cluster and size production clusters.", no_args_is_help=True
)

NodeOption = Annotated[
    str, typer.Option("--name", help="Node or cluster name (several can run side by side on different ports).")
]


def _local_node(name: str) -> LocalElasticsearch:
    from ragship.local.es_node import LocalElasticsearch
    from ragship.settings import get_settings

    return LocalElasticsearch(get_settings().local_es, name=name)


def _local_cluster(name: str) -> LocalCluster:
    from ragship.local.es_cluster import LocalCluster
    from ragship.settings import get_settings

    return LocalCluster(get_settings().local_es, name=name)


@es_app.command("start")
def es_start(
    port: Annotated[int | None, typer.Option(help="HTTP port on 127.0.0.1 (0 = any free port).")] = None,
    name: NodeOption = "default",
    password_env: Annotated[
        str | None,
        typer.Option(help="Turn security on; user 'elastic' gets the password held by this environment variable."),
    ] = None,
    nodes: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=9,
            help="Nodes of one cluster on 127.0.0.1 (HTTP ports from --port upwards); prints their URLs "
            "comma-separated, the value for RAGSHIP_ES__URL. Default: the cluster made before under --name, else 1.",
        ),
    ] = None,
) -> None:
    """Fetch (once, with mvn) and start Elasticsearch on 127.0.0.1: one node, or a cluster with --nodes."""
    from ragship.environment import env_secret

    cluster = _local_cluster(name)
    if nodes is None:
        nodes = len(cluster.layout()) or 1
    if nodes > 1 or cluster.exists:
        if password_env:
            raise RagshipError("--password-env is for a single node; a local cluster runs without security.")
        if _local_node(name).status().running:
            raise RagshipError(f"A single node named {name!r} runs; stop it or choose another --name for the cluster.")
        with err.status(f"starting a {nodes}-node Elasticsearch {cluster.settings.version} cluster ..."):
            urls = cluster.start(nodes=nodes, port=port)
        out.print(",".join(urls), soft_wrap=True, markup=False)  # one line: the value for RAGSHIP_ES__URL
        return
    password = None
    if password_env:
        password = env_secret(password_env)
        if not password:
            raise RagshipError(f"--password-env {password_env}: that environment variable is not set.")
    node = _local_node(name)
    with err.status(f"starting Elasticsearch {node.settings.version} ..."):
        url = node.start(port=port, password=password)
    out.print(url)


@es_app.command("stop")
def es_stop(name: NodeOption = "default") -> None:
    """Stop the local node, or every node of the local cluster."""
    cluster = _local_cluster(name)
    if cluster.exists:
        count = cluster.stop()
        err.print(f"stopped {count} node{'s' if count != 1 else ''}" if count else "not running")
        return
    stopped = _local_node(name).stop()
    err.print("stopped" if stopped else "not running")


@es_app.command("status")
def es_status(name: NodeOption = "default", as_json: JsonOption = False) -> None:
    """Show whether the local node runs, its URL and cluster health (exit 1 when it does not run).

    For a cluster: each node (URL, pid, elected master, roles), the health and which node holds each shard.
    """
    cluster = _local_cluster(name)
    if cluster.exists:
        cluster_status = cluster.status()
        if as_json:
            print_json(cluster_status.to_dict())
        else:
            _print_cluster(cluster_status)
        if not cluster_status.running:
            raise typer.Exit(1)
        return
    status = _local_node(name).status()
    if as_json:
        print_json(status.to_dict())
    else:
        state = f"running at {status.url} (health {status.health})" if status.running else "not running"
        out.print(f"Elasticsearch {status.version} (node {name}): {state}; data in {status.node_dir}", markup=False)
    if not status.running:
        raise typer.Exit(1)


@es_app.command("logs")
def es_logs(name: NodeOption = "default", lines: Annotated[int, typer.Option("-n", "--lines", min=1)] = 50) -> None:
    """Print the end of the local node's log."""
    sys.stdout.write(_local_node(name).logs(lines) + "\n")


@es_app.command("size")
def es_size(
    docs: Annotated[int, typer.Option(min=0, help="Documents to index.")],
    chunks_per_doc: Annotated[float, typer.Option(min=0.01, help="Chunks per document.")] = 5.0,
    dims: Annotated[int | None, typer.Option(min=1, help="Vector size (default: the spec's model).")] = None,
    chunk_chars: Annotated[int, typer.Option(min=1, help="Average characters per chunk.")] = 1200,
    replicas: Annotated[int, typer.Option(min=0, help="Replica copies.")] = 1,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Estimate index size (float vs int8-quantized vectors) before sizing a cluster."""
    from ragship.assembly import resolve_spec
    from ragship.models.resolve import embedding_dimension
    from ragship.planning.sizing import estimate

    if dims is None:
        model = resolve_spec(spec).embedding_model
        dims = embedding_dimension(model) if model else 384
    rows = [estimate(docs, chunks_per_doc, dims, chunk_chars, quantized=q, replicas=replicas) for q in (True, False)]
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    table = Table(
        title=f"{rows[0].chunks:,} chunks x {dims} dims, {rows[0].copies} cop{'y' if rows[0].copies == 1 else 'ies'}"
    )
    for column in ("vectors", "vector RAM", "vector disk", "text disk", "total disk"):
        table.add_column(column)
    for r in rows:
        table.add_row(
            r.element_type,
            _gib(r.vector_ram_bytes),
            _gib(r.vector_disk_bytes),
            _gib(r.text_disk_bytes),
            _gib(r.total_disk_bytes),
        )
    out.print(table)


def _print_cluster(status: ClusterStatus) -> None:
    running = sum(n["running"] for n in status.nodes)
    out.print(
        f"Elasticsearch {status.version} cluster {status.name}: {running}/{len(status.nodes)} nodes running, "
        f"health {status.health or 'unknown'}; RAGSHIP_ES__URL={status.url or ''}",
        markup=False,
        soft_wrap=True,
    )
    nodes = Table("node", "url", "pid", "state", "master", "roles")
    for n in status.nodes:
        state = "running" if n["running"] else "stopped"
        nodes.add_row(n["name"], n["url"], str(n["pid"] or ""), state, "*" if n["master"] else "", n["roles"] or "")
    out.print(nodes)
    if status.shards:
        shards = Table("index", "shard", "copy", "state", "node")
        for sh in status.shards:
            copy = "primary" if sh.get("prirep") == "p" else "replica"
            shards.add_row(sh.get("index"), sh.get("shard"), copy, sh.get("state"), sh.get("node") or "")
        out.print(shards)


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"
