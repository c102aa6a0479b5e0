"""The built-in spec: the components of ``template.yaml``, connected, with the knobs' values filled in.

convert -> split (by section) -> ids -> embed -> write, and
bm25 + dense -> fusion [-> cross-encoder rerank] -> answer (extractive, OpenAI-compatible or local model).
"""

from __future__ import annotations

import copy
from functools import cache
from importlib.resources import files
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from ragship.enums import EmbeddingBackend, GeneratorKind, RetrievalMode, SplitBy
from ragship.errors import SpecError
from ragship.settings import Settings
from ragship.spec.knobs import KNOBS
from ragship.spec.model import PipelineSpec
from ragship.spec.roles import Role


@cache
def _template() -> dict[str, Any]:
    text = files("ragship.spec").joinpath("template.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return data


def template_parameter(component: str, parameter: str) -> Any:
    """An init parameter of a component of ``template.yaml`` (a copy): the one place built-in prompts live."""
    return copy.deepcopy(_template()["components"][component]["init_parameters"][parameter])


def _prompt(index: int) -> str:
    text: str = template_parameter("prompt_builder", "template")[index]["content"][0]["text"]
    return text


DEFAULT_SYSTEM_PROMPT = _prompt(0)
DEFAULT_USER_PROMPT = _prompt(1)


def default_spec(**values: Any) -> PipelineSpec:
    """The built-in spec, with any knob of :data:`ragship.spec.knobs.KNOBS` given by name.

    ``candidates`` is each retriever branch's top_k; with ``ranker_model`` the joiner passes that many fused
    candidates to the ranker, which keeps ``top_k``. ``feedback_docs`` above 0 widens the bm25 branch's question
    with the words of its first ``feedback_docs`` hits (pseudo-relevance feedback, RM3).

    :raises SpecError: a value is unknown, out of bounds or not among the choices (naming the knob).
    """
    unknown = sorted(set(values) - set(KNOBS))
    if unknown:
        raise SpecError(f"default spec: unknown knob(s) {unknown}; known: {sorted(KNOBS)}.")
    merged = {name: knob.default_value for name, knob in KNOBS.items()} | values
    v = {name: KNOBS[name].check(value) for name, value in merged.items()}
    generator: GeneratorKind = v["generator"]
    mode: RetrievalMode = v["mode"]
    if v["split_overlap"] >= v["split_length"]:
        raise SpecError(f"split_overlap: {v['split_overlap']} must be smaller than split_length ({v['split_length']}).")
    if generator is GeneratorKind.LOCAL and not v["local_model"]:
        raise SpecError(
            "generator 'local' needs --local-model: 'smollm2' (bundled), a .gguf file, "
            "or a directory or hub id of a Hugging Face causal LM."
        )
    indexing = _indexing(v["split_by"])
    query = _query(mode, generator, ranked=bool(v["ranker_model"]))
    _set_knobs(indexing, query, {name: value for name, value in v.items() if KNOBS[name].targets})
    reranked = f", reranked by {v['ranker_model']}" if v["ranker_model"] else ""
    return PipelineSpec(
        indexing=indexing,
        query=query,
        name=f"default-{generator}",
        description=f"{mode} retrieval over {v['embedding_model']}{reranked}, {generator} answers",
    )


def _pipeline(role: str, components: dict[str, str], wires: list[tuple[str, str]], **meta: Any) -> dict[str, Any]:
    """A Haystack pipeline dict: ``components`` maps each name to its entry in the template."""
    catalogue, head = _template()["components"], _template()["pipeline"]
    return {
        "metadata": {"ragship_role": role, **meta},
        "max_runs_per_component": head["max_runs_per_component"],
        "components": {name: copy.deepcopy(catalogue[key]) for name, key in components.items()},
        "connections": [{"sender": sender, "receiver": receiver} for sender, receiver in wires],
        "connection_type_validation": head["connection_type_validation"],
    }


def _indexing(split_by: SplitBy) -> dict[str, Any]:
    """A chain: each component's documents go to the next."""
    if split_by is SplitBy.SECTION:
        chain = {"converter": "converter", "splitter": "section_splitter"}
    else:
        chain = {"converter": "converter", "cleaner": "cleaner", "splitter": "unit_splitter"}
    chain |= {"ids": "ids", "embedder": "embedder", "writer": "writer"}
    names = list(chain)
    pipeline = _pipeline("indexing", chain, [(f"{a}.documents", f"{b}.documents") for a, b in pairwise(names)])
    if split_by is not SplitBy.SECTION:
        pipeline["components"]["splitter"]["init_parameters"]["split_by"] = split_by.value
    return pipeline


def _query(mode: RetrievalMode, generator: GeneratorKind, ranked: bool) -> dict[str, Any]:
    names = ["query_embedder", "dense_retriever", "bm25_retriever", "joiner", "answer_builder"]
    wires = [
        ("query_embedder.embedding", "dense_retriever.query_embedding"),
        ("dense_retriever.documents", "joiner.documents"),
        ("bm25_retriever.documents", "joiner.documents"),
    ]
    last = "joiner"
    if ranked:  # the cross-encoder reads the section path and title with the chunk, as the embedder does
        names.append("ranker")
        wires.append(("joiner.documents", "ranker.documents"))
        last = "ranker"
    wires.append((f"{last}.documents", "answer_builder.documents"))
    if generator is GeneratorKind.EXTRACTIVE:
        names.append("answerer")
        wires += [(f"{last}.documents", "answerer.documents"), ("answerer.replies", "answer_builder.replies")]
    else:
        # A follow-up is rewritten into a standalone question (by the same LLM) before retrieval and the prompt.
        names += ["prompt_builder", "llm", "condenser"]
        wires += [("condenser.query", receiver) for receiver in ("bm25_retriever.query", "query_embedder.text")]
        wires += [
            ("condenser.query", "prompt_builder.query"),
            (f"{last}.documents", "prompt_builder.documents"),
            ("prompt_builder.prompt", "llm.messages"),
            ("llm.replies", "answer_builder.replies"),
        ]
    components = {name: f"{generator.value}_llm" if name == "llm" else name for name in names}
    return _pipeline("query", components, wires, retrieval_mode=mode.value)


def _set_knobs(indexing: dict[str, Any], query: dict[str, Any], values: dict[str, Any]) -> None:
    """Write each knob's value into the init parameters its targets name."""
    spec = PipelineSpec(indexing, query)
    ranked = bool(spec.components_of("query", Role.RANKER))
    for name, value in values.items():
        knob = KNOBS[name]
        encoded = knob.encode(value) if knob.encode and value is not None else _plain(value)
        for target in knob.targets:
            if target.ranked is not None and target.ranked != ranked:
                continue
            for pipeline in ("indexing", "query"):
                for comp in spec.components_of(pipeline, target.role).values():
                    params = comp.setdefault("init_parameters", {})
                    *path, key = target.param.split(".")
                    for part in path:
                        params = params.setdefault(part, {})
                    params[key] = encoded


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, EmbeddingBackend | SplitBy | GeneratorKind | RetrievalMode) else value


def with_overrides(spec: PipelineSpec, **values: Any) -> PipelineSpec:
    """A copy of ``spec`` with the given knobs (those that set init parameters) changed; None keeps a value.

    For experiment grids: chunking, retrieval depth (``candidates`` per branch), fusion, the bm25 branch's
    pseudo-relevance feedback or the number of returned sources. Values are not checked here: the components
    refuse bad ones when the pipeline loads (:func:`ragship.eval.tracked.load_grid` checks a grid up front).
    """
    tunable = {name for name, knob in KNOBS.items() if knob.targets}
    unknown = sorted(set(values) - tunable)
    if unknown:
        raise SpecError(f"overrides: unknown knob(s) {unknown}; known: {sorted(tunable)}.")
    out = PipelineSpec(
        copy.deepcopy(spec.indexing), copy.deepcopy(spec.query), spec.name, spec.description, spec.version
    )
    _set_knobs(out.indexing, out.query, {k: v for k, v in values.items() if v is not None})
    return out


def spec_from_settings(settings: Settings, **overrides: Any) -> PipelineSpec:
    """The built-in spec with the values of the settings its knobs follow (embedding model, retrieval mode,
    top_k, the OpenAI-compatible endpoint, the file size limit); ``overrides`` that are not None win.

    This is the spec used when none is configured, so ``RAGSHIP_MODE`` and ``RAGSHIP_TOP_K`` take effect
    there; a spec file keeps its own values.
    """
    values: dict[str, Any] = {}
    for name, knob in KNOBS.items():
        if knob.setting:
            value: Any = settings
            for part in knob.setting.split("."):
                value = getattr(value, part)
            if value is not None:
                values[name] = value
    values.update({k: v for k, v in overrides.items() if v is not None})
    return default_spec(**values)


def load_spec(path: str | Path | None = None) -> PipelineSpec:
    """Load a spec file; the built-in default spec when ``path`` is None.

    :raises SpecError: the file is missing, not YAML, or malformed (message names the key).
    """
    if path is None:
        return default_spec()
    target = Path(path)
    if not target.is_file():
        raise SpecError(f"Spec file {target} not found; create one with `ragship spec init {target}`.")
    spec = PipelineSpec.from_yaml(target.read_text(encoding="utf-8"), where=str(target))
    spec.source_path = target
    return spec
