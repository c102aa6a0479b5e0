"""The Indexing service: the embedder plus the queued indexing task, deployable apart from queries."""

from __future__ import annotations

from typing import Any

import bentoml

from ragship.components.remote import RemoteModels
from ragship.runtime import open_indexer
from ragship.serving.common import spec_and_origin, store_ready
from ragship.serving.embedder import Embedder
from ragship.serving.http import guard, http_errors
from ragship.serving.indexing import Documents, index_documents
from ragship.settings import get_settings

_SETTINGS = get_settings()
_SERVING = _SETTINGS.serving


@bentoml.service(
    name="ragship-indexing",
    traffic={"timeout": _SERVING.index_timeout_s, "max_concurrency": _SERVING.max_concurrency},
    workers=1,
    threads=2,
)
class Indexing:
    """``POST /index/submit`` queues documents and returns a task id; ``/index/status`` and ``/index/get`` follow it."""

    embedder = bentoml.depends(Embedder)

    def __init__(self) -> None:
        spec, _ = spec_and_origin()
        self.indexer = open_indexer(
            spec,
            settings=_SETTINGS,
            remote=RemoteModels(embed_documents=lambda texts: self.embedder.embed_documents(texts)),
        )

    @bentoml.task
    @http_errors
    def index(self, documents: Documents) -> dict[str, Any]:
        """Index the documents; each one replaces the older chunks of its ``source``."""
        return index_documents(self.indexer, documents)

    def __is_ready__(self) -> bool:
        return store_ready(self.indexer.store)


guard(Indexing, _SERVING)
