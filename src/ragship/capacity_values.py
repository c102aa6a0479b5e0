"""A capacity plan as values of the Helm chart (``deploy/helm/ragship``): what ``ragship plan --values`` writes."""

from __future__ import annotations

from typing import Any

from ragship.capacity import Plan, ServicePlan
from ragship.sizing import SizeEstimate

GPU_RESOURCE = "nvidia.com/gpu"


def _autoscaling(service: ServicePlan) -> dict[str, Any]:
    scaling: dict[str, Any] = {
        "enabled": True,
        "minReplicas": service.min_replicas,
        "maxReplicas": service.max_replicas,
        "targetCPUUtilizationPercentage": service.target_cpu_percent,
    }
    if service.target_inflight is not None:
        scaling["targetInflightRequests"] = service.target_inflight
    return scaling


def chart_values(plan: Plan, size: SizeEstimate | None = None, gpu: bool = False) -> dict[str, Any]:
    """Chart values for ``plan``: replicas and HPA targets per service, KEDA's bounds, the API's limit."""
    api: dict[str, Any] = {"replicaCount": plan.api.min_replicas, "autoscaling": _autoscaling(plan.api)}
    values: dict[str, Any] = {"api": api}
    if plan.api.max_concurrency is not None:
        values["config"] = {"RAGSHIP_SERVING__MAX_CONCURRENCY": str(plan.api.max_concurrency)}
    if plan.embedder is not None:
        embedder: dict[str, Any] = {
            "replicaCount": plan.embedder.min_replicas,
            "autoscaling": _autoscaling(plan.embedder),
        }
        if gpu:
            embedder["resources"] = {"limits": {GPU_RESOURCE: 1}}
        values["embedder"] = embedder
    if plan.worker is not None:
        values["worker"] = {
            "keda": {
                "enabled": True,
                "minReplicaCount": plan.worker.min_replicas,
                "maxReplicaCount": plan.worker.max_replicas,
                "listLength": plan.worker.list_length,
            }
        }
    if size is not None:
        # Sizing advice for the external cluster the chart points at (the chart does not run Elasticsearch).
        values["elasticsearch"] = {
            "sizing": {
                "chunks": size.chunks,
                "diskGiB": round(size.total_disk_bytes / 1024**3, 2),
                "vectorRamGiB": round(size.vector_ram_bytes / 1024**3, 2),
                "copies": size.copies,
            }
        }
    return values
