"""Which processes `bentoml serve bentos.query:RAG` starts, decided without loading Haystack or a model.

BentoML's supervisor imports the service module to learn the services (names, workers, resources and the
services each depends on), starts one watcher per service, and serves no request itself. The Embedder and
the Generator are dependencies of the API only where a request can reach them: the Embedder where the query
models run there (``serving.query_models``: a GPU, or an Embedder deployed apart), the Generator where the
served spec has an LLM. On a CPU host with an extractive spec, `make run` is the supervisor and one API
worker (benchmarks/README.md, "Memory of `make run`").

Every process that imports ``bentos.query`` decides the same way from the same settings and spec, so the
supervisor's view (:mod:`ragship.serving.supervisor_view`) and the workers' services agree.
"""

from __future__ import annotations

import sys
from functools import cache
from pathlib import Path
from typing import Any

from ragship.observability.tracing import bentoml_tracing
from ragship.serving.common import model_resources, query_models_in_api, spec_and_origin
from ragship.settings import get_settings
from ragship.spec.roles import NO_ROLE, ROLE_CLASSES, Role

_LLM_ROLES = (Role.OPENAI_GENERATOR, Role.LOCAL_GENERATOR)
_LISTED = frozenset(path for paths in ROLE_CLASSES.values() for path in paths)
# ragship's own chat generators: the local model, and the stand-in that calls the Generator service.
_OWN_LLMS = frozenset(
    {"ragship.components.generators.LocalChatGenerator", "ragship.components.remote.RemoteChatGenerator"}
)


def api_service() -> dict[str, Any]:
    """``@bentoml.service`` arguments of the query API (``RAG``)."""
    serving = get_settings().serving
    return {
        "name": "ragship",
        "traffic": {"timeout": serving.timeout_s, "max_concurrency": serving.max_concurrency},
        "workers": serving.workers,
        "threads": serving.threads,
        **bentoml_tracing(get_settings().tracing),  # nothing when off: BentoML drops a config with tracing={}
    }


def embedder_service() -> dict[str, Any]:
    """``@bentoml.service`` arguments of the Embedder."""
    return {
        "name": "ragship-embedder",
        "resources": model_resources(),
        "traffic": {"timeout": get_settings().serving.timeout_s},
        "workers": 1,
        "threads": 4,
        **bentoml_tracing(get_settings().tracing),  # nothing when off: BentoML drops a config with tracing={}
    }


def generator_service() -> dict[str, Any]:
    """``@bentoml.service`` arguments of the Generator."""
    return {
        "name": "ragship-generator",
        "resources": model_resources(),
        "traffic": {"timeout": get_settings().serving.timeout_s},
        "workers": 1,
        "threads": 8,
        **bentoml_tracing(get_settings().tracing),  # nothing when off: BentoML drops a config with tracing={}
    }


def embedder_needed() -> bool:
    """Whether the API calls the Embedder: the query models do not run in the API process."""
    return not query_models_in_api()


def generator_needed() -> bool:
    """Whether the API calls the Generator: the served spec's query pipeline has an LLM."""
    spec, _ = spec_and_origin()
    return any(is_llm(str(c.get("type", ""))) for c in spec.query.get("components", {}).values())


@cache
def is_llm(type_path: str) -> bool:
    """Whether a component class is a chat generator (what the Generator runs), importing as little as possible.

    Classes listed in :data:`ragship.spec.roles.ROLE_CLASSES` or ``NO_ROLE`` are answered from the lists,
    and ragship's own components are LLMs only when in ``_OWN_LLMS`` (``tests/unit/test_topology.py`` checks both
    against the import);
    any other class is imported and checked as the API checks it
    (:func:`ragship.components.remote.is_chat_generator`).
    """
    if type_path in _LISTED or type_path in NO_ROLE:
        return any(type_path in ROLE_CLASSES[role] for role in _LLM_ROLES)
    if type_path.startswith("ragship.components."):
        return type_path in _OWN_LLMS
    from ragship.components.remote import is_chat_generator

    return is_chat_generator(type_path)


def in_bentoml_supervisor() -> bool:
    """Whether this process is `bentoml serve`'s supervisor, not one of the service workers it starts.

    BentoML sets the worker index before a worker imports the service; `bentoml build` and tests import
    the full services.
    """
    from bentoml._internal.context import server_context

    if server_context.worker_index is not None:
        return False
    program = Path(sys.argv[0])
    is_bentoml = program.name == "bentoml" or (program.name == "__main__.py" and program.parent.name == "bentoml")
    return is_bentoml and sys.argv[1:2] == ["serve"]
