"""A capacity plan as values of the Helm chart (``deploy/helm/ragship``): what ``ragship plan --values`` writes.

Only keys the chart's ``values.schema.json`` knows are written; Elasticsearch sizing is advice for the
external cluster the chart points at, so it goes into the file's header as comments.
"""

from __future__ import annotations

from typing import Any

from ragship.planning.capacity import Plan, ServicePlan
from ragship.planning.sizing import SizeEstimate

GPU_RESOURCE = "nvidia.com/gpu"
# The usual taint of a GPU node pool (GKE, EKS and AKS GPU pools, the NVIDIA GPU operator).
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def _scaling(service: ServicePlan) -> dict[str, Any]:
    hpa: dict[str, Any] = {
        "enabled": True,
        "minReplicas": service.min_replicas,
        "maxReplicas": service.max_replicas,
        "targetCPUUtilizationPercentage": service.target_cpu_percent,
    }
    if service.target_inflight is not None:
        # Used once hpa.inFlight.enabled is set (it needs a custom metrics adapter in the cluster).
        hpa["inFlight"] = {"averageValue": f"{max(1, round(service.target_inflight * 1000))}m"}
    return {"replicas": service.min_replicas, "hpa": hpa}


def _gpu() -> dict[str, Any]:
    return {"resources": {"limits": {GPU_RESOURCE: 1}}, "tolerations": [dict(GPU_TOLERATION)]}


def chart_values(plan: Plan, gpu: bool = False, p95_ms: float | None = None) -> dict[str, Any]:
    """Chart values for ``plan``: replicas and HPA targets per service, the API's limit, KEDA's bounds, and
    the latency goal ``p95_ms`` as the p95 alert's threshold (used once ``alerts.enabled`` is set)."""
    api = _scaling(plan.api)
    if plan.api.max_concurrency is not None:
        api["env"] = {"RAGSHIP_SERVING__MAX_CONCURRENCY": str(plan.api.max_concurrency)}
    values: dict[str, Any] = {"api": api}
    if plan.embedder is not None:
        values["embedder"] = _scaling(plan.embedder) | (_gpu() if gpu else {})
    if gpu:
        values["generator"] = _gpu()
    if plan.worker is not None:
        keda = {
            "enabled": True,
            "minReplicaCount": plan.worker.min_replicas,
            "maxReplicaCount": plan.worker.max_replicas,
            "listLength": plan.worker.list_length,
        }
        values["worker"] = {"keda": keda}
    if p95_ms is not None:
        values["alerts"] = {"latency": {"p95Seconds": round(p95_ms / 1000, 3)}}
    return values


def values_header(command: str, source: str, size: SizeEstimate | None) -> str:
    """Comment lines opening the values file: how it was made, and the Elasticsearch sizing advice."""
    lines = [f"# {command}", f"# capacities measured: {source}"]
    if size is not None:
        lines.append(
            f"# Elasticsearch (external): {size.chunks:,} chunks, {size.total_disk_bytes / 1024**3:.2f} GiB disk in "
            f"all {size.copies} copies, {size.vector_ram_bytes / 1024**3:.2f} GiB of vectors to keep in page cache"
        )
    return "\n".join(lines) + "\n"
