"""Build runnable Haystack pipelines from a spec and a store."""

from __future__ import annotations

from typing import Any

from haystack import Pipeline
from haystack.core.errors import DeserializationError, PipelineError, PipelineRuntimeError

import ragship.components  # registers our components on Haystack's deserialization allowlist
from ragship.components.embedders import DocumentEmbedder, TextEmbedder
from ragship.components.rankers import CrossEncoderRanker
from ragship.components.remote import RemoteChatGenerator, RemoteCrossEncoder, RemoteEmbeddingBackend, RemoteModels
from ragship.components.retrievers import StoreBound
from ragship.enums import RetrievalMode
from ragship.environment import env_secret
from ragship.errors import ConfigError, RagshipError, SpecError
from ragship.pipelines import copying
from ragship.spec.roles import Role, plays
from ragship.stores.base import RetrievalStore

__all__ = [
    "BRANCHES_OF_MODE",
    "attach_models",
    "attach_store",
    "check_secrets",
    "find_component",
    "load_pipeline",
    "retrieval_only",
    "run_pipeline",
    "with_retrieval_mode",
]

_ = ragship.components
copying.install()  # every pipeline this package builds copies its inputs fast (see copying)
# The retriever branches each retrieval mode keeps; the spec holds all of them and a mode prunes the rest.
BRANCHES_OF_MODE: dict[RetrievalMode, frozenset[Role]] = {
    RetrievalMode.BM25: frozenset({Role.BM25_RETRIEVER}),
    RetrievalMode.DENSE: frozenset({Role.EMBEDDING_RETRIEVER}),
    RetrievalMode.HYBRID: frozenset({Role.BM25_RETRIEVER, Role.EMBEDDING_RETRIEVER}),
}
_RETRIEVERS = frozenset().union(*BRANCHES_OF_MODE.values())


def load_pipeline(data: dict[str, Any], where: str) -> Pipeline:
    """Deserialize one Haystack pipeline, reporting failures against ``where`` (e.g. 'query')."""
    try:
        return Pipeline.from_dict(data)
    except (DeserializationError, PipelineError, ImportError, TypeError, ValueError, KeyError) as e:
        raise SpecError(f"{where}: {e}") from e


def find_component(pipeline: Pipeline, kind: type, where: str) -> str:
    """Name of the one component of type ``kind`` in ``pipeline``.

    :raises SpecError: when there is none or more than one, naming the pipeline (``where``).
    """
    names = [name for name, instance in pipeline.walk() if isinstance(instance, kind)]
    if len(names) != 1:
        raise SpecError(f"{where}: needs exactly one {kind.__name__} component, found {len(names)} ({names}).")
    return names[0]


def attach_store(pipeline: Pipeline, store: RetrievalStore) -> Pipeline:
    """Give every store-bound component (retrievers, writer) of ``pipeline`` the store."""
    for _, instance in pipeline.walk():
        if isinstance(instance, StoreBound):
            instance.document_store = store
    return pipeline


def attach_models(pipeline: Pipeline, remote: RemoteModels | None) -> Pipeline:
    """Route ``pipeline``'s model calls to services: embedders get a remote backend, stand-ins a client."""
    if remote is None:
        return pipeline
    for _, instance in pipeline.walk():
        if isinstance(instance, TextEmbedder) and remote.embed_queries:
            instance.embedding_backend = RemoteEmbeddingBackend(remote.embed_queries)  # type: ignore[assignment]
        elif isinstance(instance, DocumentEmbedder) and remote.embed_documents:
            instance.embedding_backend = RemoteEmbeddingBackend(remote.embed_documents)  # type: ignore[assignment]
        elif isinstance(instance, CrossEncoderRanker) and remote.rank:
            instance._cross_encoder = RemoteCrossEncoder(remote.rank)  # type: ignore[assignment]
        elif isinstance(instance, RemoteChatGenerator):
            instance.generate, instance.stream = remote.generate, remote.stream
    return pipeline


def with_retrieval_mode(data: dict[str, Any], mode: RetrievalMode) -> dict[str, Any]:
    """A copy of a query pipeline's dict keeping only the retrieval branch(es) of ``mode``.

    The spec holds every branch (hybrid); a mode drops the retrievers that :data:`BRANCHES_OF_MODE` does
    not keep for it, and whatever only fed them (bm25 drops the query embedder too). The joiner stays.
    """
    doomed = _RETRIEVERS - BRANCHES_OF_MODE[mode]
    components = dict(data["components"])
    connections = list(data.get("connections", []))
    removed = {name for name, comp in components.items() if any(plays(comp, role) for role in doomed)}
    if not removed:
        return data
    while True:
        # A component whose every outgoing connection led to removed components has no purpose left.
        senders: dict[str, set[str]] = {}
        for conn in connections:
            senders.setdefault(conn["sender"].split(".")[0], set()).add(conn["receiver"].split(".")[0])
        orphaned = {s for s, receivers in senders.items() if s not in removed and receivers <= removed}
        if not orphaned:
            break
        removed |= orphaned
    kept = {n: _without_removed_weights(n, c, connections, removed) for n, c in components.items() if n not in removed}
    return {
        **data,
        "metadata": {**(data.get("metadata") or {}), "retrieval_mode": str(mode)},
        "components": kept,
        "connections": [
            c
            for c in connections
            if c["sender"].split(".")[0] not in removed and c["receiver"].split(".")[0] not in removed
        ],
    }


def _without_removed_weights(
    name: str, comp: dict[str, Any], connections: list[dict[str, str]], removed: set[str]
) -> dict[str, Any]:
    """A joiner's dict without its weights when a branch feeding it is pruned.

    Its weights are one per incoming list, so they no longer fit; in the built-in spec one branch is left,
    and one list fuses to itself whatever its weight.
    """
    params = comp.get("init_parameters") or {}
    pruned = any(c["receiver"].split(".")[0] == name and c["sender"].split(".")[0] in removed for c in connections)
    if not params.get("weights") or not pruned:
        return comp
    return {**comp, "init_parameters": {**params, "weights": None}}


def check_secrets(data: dict[str, Any], where: str) -> None:
    """Fail early when a component needs a secret from an environment variable that is not set.

    :raises ConfigError: naming the spec key and the variables to export.
    """
    for name, comp in data.get("components", {}).items():
        for param, value in (comp.get("init_parameters") or {}).items():
            if isinstance(value, dict) and value.get("type") == "env_var" and value.get("strict", True):
                names = list(value.get("env_vars") or [])
                if names and not any(env_secret(n) for n in names):
                    raise ConfigError(
                        f"{where}.components.{name}.init_parameters.{param} reads a secret from "
                        f"{' or '.join(names)}, which is not set; export it before running."
                    )


def run_pipeline(pipeline: Pipeline, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Run ``pipeline``; a ragship error raised inside a component surfaces as itself, not wrapped."""
    try:
        return pipeline.run(data, **kwargs)
    except PipelineRuntimeError as e:
        cause = e.__cause__
        if isinstance(cause, RagshipError):
            raise cause from None
        raise


def retrieval_only(data: dict[str, Any], last: str) -> dict[str, Any]:
    """A copy of a query pipeline's dict keeping ``last`` and everything upstream of it.

    Used to retrieve without generating (evaluation, the /retrieve endpoint): an LLM never runs.
    """
    connections = data.get("connections", [])
    keep = {last}
    changed = True
    while changed:
        changed = False
        for conn in connections:
            sender, receiver = conn["sender"].split(".")[0], conn["receiver"].split(".")[0]
            if receiver in keep and sender not in keep:
                keep.add(sender)
                changed = True
    return {
        **data,
        "components": {n: c for n, c in data["components"].items() if n in keep},
        "connections": [
            c for c in connections if c["sender"].split(".")[0] in keep and c["receiver"].split(".")[0] in keep
        ],
    }
