"""Check a spec before it is used: components load, inputs are connected, dimensions agree."""

from __future__ import annotations

from typing import Any

from haystack import Pipeline

from ragship.errors import ModelError, RagshipError, SpecError
from ragship.models.resolve import embedding_dimension
from ragship.pipelines import load_pipeline
from ragship.spec import PipelineSpec
from ragship.stores.base import Described

# Inputs the runners feed themselves; any other mandatory input must come from a connection.
RUN_INPUTS = {"indexing": {"sources"}, "query": {"query", "text", "question"}}


def validate_spec(spec: PipelineSpec, store: Described | None = None) -> list[str]:
    """Every problem found in ``spec``, each naming the offending key; empty when it is valid.

    :param store: When given, its embedding dimension is checked against the spec's model.
    """
    problems: list[str] = []
    for where in ("indexing", "query"):
        section: dict[str, Any] = getattr(spec, where)
        broken = _component_problems(where, section)
        problems.extend(broken)
        if broken:
            continue
        try:
            pipeline = load_pipeline(section, where)
        except SpecError as e:
            problems.append(str(e))
            continue
        problems.extend(_unconnected_inputs(where, pipeline))
    try:
        spec.retrieval_mode  # noqa: B018 - property validates the value
    except SpecError as e:
        problems.append(str(e))
    problems.extend(_embedding_problems(spec, store))
    return problems


def _component_problems(where: str, section: dict[str, Any]) -> list[str]:
    problems = []
    for name, comp in section["components"].items():
        key = f"{where}.components.{name}"
        if not isinstance(comp, dict) or "type" not in comp:
            problems.append(f"{key}: needs a 'type' (the component's class path) and 'init_parameters'.")
            continue
        try:
            load_pipeline({"components": {name: comp}, "connections": []}, key)
        except SpecError as e:
            own = _own_cause(e)
            if own is not None:  # a ragship component refused a parameter: its message names the field
                problems.append(f"{key}: {own}")
                continue
            detail = str(e).split(": ", 1)[-1].splitlines()[0]
            problems.append(f"{key}.type: cannot load component type {comp['type']!r}: {detail}")
    names = set(section["components"])
    for i, conn in enumerate(section.get("connections", [])):
        for end in ("sender", "receiver"):
            target = str(conn.get(end, "")) if isinstance(conn, dict) else ""
            if target.split(".")[0] not in names:
                problems.append(
                    f"{where}.connections[{i}].{end}: {target!r} names no component; known: {sorted(names)}."
                )
    return problems


def _own_cause(error: BaseException) -> RagshipError | None:
    """The ragship error a component raised while Haystack deserialized it, if that is what failed."""
    cause = error.__cause__ or error.__context__
    while cause is not None:
        if isinstance(cause, RagshipError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def _unconnected_inputs(where: str, pipeline: Pipeline) -> list[str]:
    problems = []
    for component, sockets in pipeline.inputs().items():
        for socket, info in sockets.items():
            if info.get("is_mandatory") and socket not in RUN_INPUTS[where]:
                problems.append(
                    f"{where}.components.{component}: mandatory input '{socket}' has no connection; "
                    f"add one to {where}.connections with receiver '{component}.{socket}'."
                )
    return problems


def _embedding_problems(spec: PipelineSpec, store: Described | None) -> list[str]:
    models = spec.embedding_models()
    if len(set(models.values())) > 1:
        listing = ", ".join(f"{k}.init_parameters.model={v!r}" for k, v in models.items())
        return [f"embedders disagree ({listing}); documents and queries must use the same model."]
    backends = spec.embedding_backends()
    if len(set(backends.values())) > 1:
        listing = ", ".join(f"{k}.init_parameters.backend={v!r}" for k, v in backends.items())
        return [
            f"embedders disagree ({listing}); documents and queries must use the same backend "
            "(onnx-int8 embeddings differ from float ones): set the same value in both."
        ]
    if not models or store is None:
        return []
    key, model = next(iter(models.items()))
    try:
        dim = embedding_dimension(model)
        stored = store.embedding_dim
    except (ModelError, RagshipError) as e:
        return [f"{key}.init_parameters.model: {e}"]
    if stored is not None and stored != dim:
        return [
            f"{key}.init_parameters.model: {model!r} makes {dim}-dimensional embeddings but the "
            f"{store.describe()} holds {stored}; use the store's model or reindex with --rebuild."
        ]
    return []
