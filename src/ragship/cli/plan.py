"""``ragship plan``: size a Kubernetes deployment from measured per-replica capacities."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ragship.cli.common import JsonOption, SpecOption, err, out, print_json
from ragship.planning.capacity import DEFAULT_MIN_REPLICAS, DEFAULT_UTILISATION, Load

commands = typer.Typer()


@commands.command()
def plan(
    peak_qps: Annotated[float, typer.Option("--peak-qps", min=0.001, help="Questions per second at the peak.")],
    p95_ms: Annotated[float, typer.Option("--p95-ms", min=1, help="Latency goal of /ask at the peak (p95).")],
    docs: Annotated[int, typer.Option(min=0, help="Documents in the store (sizes Elasticsearch).")] = 0,
    docs_per_day: Annotated[int, typer.Option(min=0, help="New or changed documents per day (sizes workers).")] = 0,
    ingest_hours: Annotated[float, typer.Option(min=0.01, help="Hours a day's documents may take to index.")] = 1.0,
    docs_per_job: Annotated[int, typer.Option(min=1, help="Documents per queued job.")] = 10,
    gpu: Annotated[
        bool, typer.Option("--gpu", help="Model services get a GPU each (use capacities measured on one).")
    ] = False,
    utilisation: Annotated[
        float, typer.Option(min=0.05, max=0.95, help="Planned share of a replica's capacity: lower buys latency.")
    ] = DEFAULT_UTILISATION,
    min_replicas: Annotated[int, typer.Option(min=1, help="Replicas the API keeps when idle.")] = DEFAULT_MIN_REPLICAS,
    capacity_file: Annotated[
        Path | None,
        typer.Option(
            "--capacity",
            help="Measured capacities (default: the file make bench-serving/bench-queue write under the ragship home; "
            "without one, ragship's recorded 2-core CPU reference, with a warning).",
        ),
    ] = None,
    values: Annotated[Path | None, typer.Option("--values", help="Write a values file for the Helm chart.")] = None,
    spec: SpecOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replicas, concurrency, HPA and KEDA targets, and Elasticsearch size for a peak load and latency goal."""
    import yaml

    from ragship.assembly import resolve_spec
    from ragship.models.resolve import embedding_dimension
    from ragship.planning.capacity import REFERENCE_CAPACITY_FILE, Capacity, default_capacity_file
    from ragship.planning.capacity import plan as make_plan
    from ragship.planning.capacity_values import chart_values, values_header
    from ragship.planning.sizing import estimate

    source = capacity_file or default_capacity_file()
    if capacity_file is None and not source.is_file():
        err.print(
            f"warning: no capacity measured on your hardware ({source}); planning with ragship's recorded 2-core "
            "CPU reference. Run `make bench-serving` (and `make bench-queue`) on the target hardware for a plan to "
            "trust, or pass --capacity FILE."
        )
        source = REFERENCE_CAPACITY_FILE
    capacity = Capacity.load(source)
    load = Load(peak_qps, p95_ms, docs, docs_per_day, ingest_hours, docs_per_job)
    planned = make_plan(capacity, load, utilisation=utilisation, min_replicas=min_replicas)
    size = None
    if docs:
        model = resolve_spec(spec).embedding_model
        size = estimate(docs, dims=embedding_dimension(model) if model else 384, replicas=1)
    chart = chart_values(planned, gpu=gpu, p95_ms=p95_ms)
    if values:
        command = f"ragship plan --peak-qps {peak_qps} --p95-ms {p95_ms} --docs {docs} --docs-per-day {docs_per_day}"
        values.write_text(values_header(command, str(source), size) + yaml.safe_dump(chart, sort_keys=False))
        err.print(f"values written to {values}: helm upgrade --install ragship deploy/helm/ragship -f {values}")
    if as_json:
        print_json({"capacity": capacity.to_dict(), "plan": planned.to_dict(), "values": chart})
        return
    table = Table("service", "min", "max", "CPU target", "in flight target", "max_concurrency", "predicted p95 ms")
    for name, service in (("api", planned.api), ("embedder", planned.embedder)):
        if service is None:
            continue
        table.add_row(
            name,
            str(service.min_replicas),
            str(service.max_replicas),
            f"{service.target_cpu_percent}%",
            str(service.target_inflight or "-"),
            str(service.max_concurrency or "-"),
            str(service.predicted_p95_ms or "-"),
        )
    out.print(table)
    if planned.worker:
        w = planned.worker
        out.print(f"workers: KEDA {w.min_replicas}..{w.max_replicas} replicas, one per {w.list_length} queued jobs")
    if size:
        disk_gib = size.total_disk_bytes / 1024**3
        out.print(f"Elasticsearch: {size.chunks:,} chunks, {disk_gib:.2f} GiB disk in all copies")
    for note in planned.notes:
        err.print(f"note: {note}")
