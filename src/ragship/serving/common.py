"""What every ragship service shares: the served spec, GPU resources, readiness."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ragship.enums import QueryModels
from ragship.environment import disable_phone_home, quiet_third_party_progress
from ragship.settings import get_settings
from ragship.spec import PipelineSpec

if TYPE_CHECKING:
    from haystack.document_stores.types import DocumentStore

logger = logging.getLogger("ragship.serving")
# BentoML's server logging keeps the root logger at WARNING: without a level of its own, what the services say
# at start (the spec served, where the query models run) and the requests they refuse would never reach ops.
logger.setLevel(logging.INFO)

disable_phone_home()
quiet_third_party_progress()


@lru_cache(maxsize=1)
def spec_and_origin() -> tuple[PipelineSpec, str]:
    """The spec this process serves, resolved once so every request uses the same one."""
    from ragship.spec_source import served_spec

    spec, origin = served_spec(get_settings())
    logger.info("serving spec %s (%s) from %s", spec.name, spec.hash, origin)
    return spec, origin


def model_resources() -> dict[str, Any]:
    """``{"gpu": 1}`` where a CUDA GPU is visible (unless the device setting says cpu), else no request."""
    if (get_settings().device or "").startswith("cpu"):
        return {}
    return {"gpu": 1} if _nvidia_gpus() else {}


def _nvidia_gpus() -> int:
    """GPUs visible to this process, as BentoML's resource allocator counts them (NVML and
    ``CUDA_VISIBLE_DEVICES``): the same answer the allocator acts on, without importing torch (~500 MB),
    which BentoML's supervisor would otherwise load only to decide this."""
    try:
        from bentoml._internal.resource import system_resources

        return len(system_resources().get("nvidia.com/gpu") or [])
    except Exception:  # a broken driver means CPU, not a crash
        return 0


def query_models_in_api() -> bool:
    """Whether the query API runs its query-time models itself (``serving.query_models``).

    ``auto`` decides by measurement on CPU hosts (benchmarks/README.md, "Side by side"): in process, a
    question skips the HTTP hop and a second process competing for the same cores (2.6x lower p50 on a
    busy host, 0.95x on a quiet one). With a GPU, or an Embedder deployed on its own, the Embedder runs them.
    """
    serving = get_settings().serving
    if serving.query_models is not QueryModels.AUTO:
        return serving.query_models is QueryModels.API
    return serving.embedder_url is None and not model_resources()


def limit_compute_threads(threads: int | None) -> None:
    """Cap the intra-op threads of torch and of the BLAS under numpy in this process (``serving.query_threads``).

    A query encodes one short text and scores one vector against the store's matrix: concurrency comes from
    requests, not from splitting one small product over cores. With one thread per core, every forward pass
    and every matrix-vector product waits at a barrier for a thread the OS has given to another process or
    request: on a busy 2-core host the query encode took 5x longer, and under 16 clients OpenBLAS's threads
    took most of the API's CPU on a 7,464-chunk store (benchmarks/README.md).
    """
    if threads is None:
        return
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)  # applies until the process ends (no context manager)


def store_ready(store: DocumentStore) -> bool:
    """Whether the document store answers; the reason is logged, since /readyz only says 503."""
    try:
        store.count_documents()
    except Exception as e:
        logger.warning("not ready: the document store does not answer: %s", e)
        return False
    return True
