"""The Indexing service: the Embedder plus the indexing job routes, deployable apart from queries.

``POST /index/submit`` puts documents on the Dramatiq queue and returns a job id at once;
``GET /index/status?job_id=...`` follows it. ``ragship worker`` processes do the indexing and embed
through this deployment's Embedder (``RAGSHIP_WORKER__EMBEDDER_URL``) or in their own process.
BentoML's task queue is not used: jobs, retries and dead letters live in the shared Redis broker.
"""

from __future__ import annotations

import bentoml

from ragship.observability.tracing import bentoml_tracing
from ragship.serving.access_guard import guard
from ragship.serving.embedder import Embedder
from ragship.serving.index_jobs import IndexJobs, serve_index_jobs
from ragship.settings import get_settings

_SETTINGS = get_settings()
_SERVING = _SETTINGS.serving


@bentoml.service(
    name="ragship-indexing",
    **bentoml_tracing(get_settings().tracing),
    traffic={"timeout": _SERVING.timeout_s, "max_concurrency": _SERVING.max_concurrency},
    workers=1,
    threads=2,
)
class Indexing(IndexJobs):
    """Indexing jobs over HTTP (submitted to the queue), and the Embedder the workers call."""

    embedder = bentoml.depends(Embedder, url=_SERVING.embedder_url)

    def __is_ready__(self) -> bool:
        return self.job_queue().ping()


guard(Indexing, _SETTINGS)
serve_index_jobs(Indexing)
