"""``ragship es``: a local Elasticsearch node for development and tests, and cluster sizing."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ragship.cli.common import JsonOption, SpecOption, err, out, print_json
from ragship.errors import RagshipError

if TYPE_CHECKING:
    from ragship.local_es import LocalElasticsearch

es_app = typer.Typer(help="Run a local Elasticsearch node and size production clusters.", no_args_is_help=True)

NodeOption = Annotated[str, typer.Option("--name", help="Node name (several can run side by side).")]


def _local_node(name: str) -> LocalElasticsearch:
    from ragship.local_es import LocalElasticsearch
    from ragship.settings import get_settings

    return LocalElasticsearch(get_settings().local_es, name=name)


@es_app.command("start")
def es_start(
    port: Annotated[int | None, typer.Option(help="HTTP port on 127.0.0.1 (0 = any free port).")] = None,
    name: NodeOption = "default",
    password_env: Annotated[
        str | None,
        typer.Option(help="Turn security on; user 'elastic' gets the password held by this environment variable."),
    ] = None,
) -> None:
    """Fetch (once, with mvn) and start a single-node Elasticsearch on 127.0.0.1."""
    from ragship.settings import env_secret

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
    """Stop the local node."""
    stopped = _local_node(name).stop()
    err.print("stopped" if stopped else "not running")


@es_app.command("status")
def es_status(name: NodeOption = "default", as_json: JsonOption = False) -> None:
    """Show whether the local node runs, its URL and cluster health (exit 1 when it does not run)."""
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
    from ragship.models import embedding_dimension
    from ragship.runtime import resolve_spec
    from ragship.sizing import estimate

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


def _gib(n: int) -> str:
    return f"{n / 1024**3:.2f} GiB" if n >= 1024**3 else f"{n / 1024**2:.1f} MiB"
