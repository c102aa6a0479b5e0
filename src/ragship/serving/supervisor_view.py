"""The query services as BentoML's supervisor needs them: names, workers, resources and dependencies, no code.

`bentoml serve bentos.query:RAG` imports ``bentos.query`` in its supervisor only to read these and start one
watcher per service; every worker imports the full services (``bentos/query.py`` chooses). Defined here, the
supervisor loads neither Haystack nor torch nor the app's routes: it held 947 MB when it imported the full
app (benchmarks/README.md, "Memory of `make run`"). The arguments and the dependency rule are the full
services' own (:mod:`ragship.serving.topology`); ``tests/unit/test_topology.py`` compares the two.
"""

from __future__ import annotations

import bentoml

from ragship.serving.topology import (
    api_service,
    embedder_needed,
    embedder_service,
    generator_needed,
    generator_service,
)
from ragship.settings import get_settings

_SERVING = get_settings().serving


@bentoml.service(**embedder_service())
class Embedder:
    """The supervisor's view of :class:`ragship.serving.embedder.Embedder`."""


@bentoml.service(**generator_service())
class Generator:
    """The supervisor's view of :class:`ragship.serving.generator.Generator`."""


@bentoml.service(**api_service())
class RAG:
    """The supervisor's view of :class:`ragship.serving.rag.RAG`."""

    if embedder_needed():
        embedder = bentoml.depends(Embedder, url=_SERVING.embedder_url)
    if generator_needed():
        generator = bentoml.depends(Generator, url=_SERVING.generator_url)
