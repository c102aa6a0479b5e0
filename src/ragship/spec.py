"""Pipeline spec: one YAML file holding the indexing and the query Haystack pipelines.

Layout::

    ragship_spec: 1
    name: default
    description: ...
    indexing: {<Haystack Pipeline.to_dict()>}
    query: {<Haystack Pipeline.to_dict()>}

The retrieval mode lives in the query pipeline's Haystack ``metadata`` (``retrieval_mode``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from ragship.errors import SpecError
from ragship.settings import (
    DEFAULT_EMBEDDING_BACKEND,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_FEEDBACK_DOCS,
    DEFAULT_FEEDBACK_TERMS,
    DEFAULT_FUSION,
    DEFAULT_HISTORY_WEIGHT,
    DEFAULT_MAX_FILE_BYTES,
    DEFAULT_OPENAI_KEY_ENV,
    DEFAULT_OPENAI_MODEL,
    DEFAULT_ORIGINAL_QUERY_WEIGHT,
    DEFAULT_RRF_K,
    EmbeddingBackend,
    GeneratorKind,
    RetrievalMode,
    Settings,
    SplitBy,
)

SPEC_VERSION = 1
# Part of the indexing hash: bump it when a code change alters the chunks a spec produces (2: Markdown
# and HTML kept as Markdown by the converter), so existing stores are reindexed by an ordinary sync.
CHUNK_FORMAT_VERSION = 2
# Type names of the chunking components (SectionSplitter, Haystack's DocumentSplitter) end with this; so do
# those of the joiners (FusionJoiner, DocumentJoiner) and of the rerank stage's rankers.
SPLITTER_TYPE_SUFFIX = "Splitter"
JOINER_TYPE_SUFFIX = "Joiner"
RANKER_TYPE_SUFFIX = "Ranker"
_Choice = TypeVar("_Choice", RetrievalMode, GeneratorKind, SplitBy, EmbeddingBackend)
TOP_LEVEL_KEYS = {"ragship_spec", "name", "description", "indexing", "query"}

DEFAULT_SYSTEM_PROMPT = (
    "You answer questions using only the numbered documents given. Cite every statement with the "
    "number of its document in square brackets, like [1]. If the documents do not contain the answer, "
    "say that you do not know."
)
DEFAULT_USER_PROMPT = (
    "Documents:\n{% for doc in documents %}[{{ loop.index }}] {{ doc.meta.get('title', '') }}\n"
    "{{ doc.content }}\n\n{% endfor %}Question: {{ query }}\nAnswer:"
)


@dataclass
class PipelineSpec:
    """An indexing and a query pipeline that belong together.

    :param indexing: Haystack serialization of the indexing pipeline.
    :param query: Haystack serialization of the query pipeline.
    """

    indexing: dict[str, Any]
    query: dict[str, Any]
    name: str = "default"
    description: str = ""
    version: int = SPEC_VERSION
    source_path: Path | None = field(default=None, compare=False)

    # -- (de)serialization --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-data form, in file order."""
        return {
            "ragship_spec": self.version,
            "name": self.name,
            "description": self.description,
            "indexing": self.indexing,
            "query": self.query,
        }

    def to_yaml(self) -> str:
        """YAML text of the spec."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True, width=100)

    def save(self, path: str | Path) -> Path:
        """Write the spec to ``path`` and return it."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.to_yaml(), encoding="utf-8")
        return target

    @classmethod
    def from_dict(cls, data: Any, where: str = "spec") -> PipelineSpec:
        """Build a spec from plain data, checking its shape (not its components: see validate)."""
        if not isinstance(data, dict):
            raise SpecError(f"{where}: the top level must be a mapping with 'indexing' and 'query' keys.")
        unknown = sorted(set(data) - TOP_LEVEL_KEYS)
        if unknown:
            raise SpecError(f"{where}: unknown top-level key(s) {unknown}; allowed: {sorted(TOP_LEVEL_KEYS)}.")
        version = data.get("ragship_spec", SPEC_VERSION)
        if version != SPEC_VERSION:
            raise SpecError(f"{where}: ragship_spec {version!r} is not supported; this ragship reads {SPEC_VERSION}.")
        for key in ("indexing", "query"):
            section = data.get(key)
            if not isinstance(section, dict):
                raise SpecError(f"{where}: '{key}' is missing or not a mapping of a Haystack pipeline.")
            if not isinstance(section.get("components"), dict) or not section["components"]:
                raise SpecError(f"{where}: '{key}.components' is missing or empty.")
            if not isinstance(section.get("connections", []), list):
                raise SpecError(f"{where}: '{key}.connections' must be a list of sender/receiver pairs.")
        return cls(
            indexing=data["indexing"],
            query=data["query"],
            name=str(data.get("name", "default")),
            description=str(data.get("description", "")),
            version=version,
        )

    @classmethod
    def from_yaml(cls, text: str, where: str = "spec") -> PipelineSpec:
        """Parse YAML text."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise SpecError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', e)}") from e
        return cls.from_dict(data, where=where)

    # -- derived facts -----------------------------------------------------------------------------
    @property
    def hash(self) -> str:
        """Content hash of both pipelines (names and descriptions do not count)."""
        return _digest({"indexing": self.indexing, "query": self.query})

    @property
    def indexing_hash(self) -> str:
        """Content hash of the indexing pipeline and the chunk format: when it changes, every indexed
        chunk is stale."""
        return _digest({"indexing": self.indexing, "chunk_format": CHUNK_FORMAT_VERSION})

    @property
    def retrieval_mode(self) -> RetrievalMode:
        """The query pipeline's retrieval mode (hybrid when unset)."""
        mode = (self.query.get("metadata") or {}).get("retrieval_mode", RetrievalMode.HYBRID)
        return parse_mode(mode, "query.metadata.retrieval_mode")

    def components_of(self, pipeline: str, type_suffix: str) -> dict[str, dict[str, Any]]:
        """Components of ``pipeline`` ('indexing' or 'query') whose type ends with ``type_suffix``."""
        section = self.indexing if pipeline == "indexing" else self.query
        return {
            name: comp
            for name, comp in section.get("components", {}).items()
            if isinstance(comp, dict) and str(comp.get("type", "")).endswith(type_suffix)
        }

    def embedding_models(self) -> dict[str, str]:
        """``pipeline.components.name`` -> embedding model, for every embedder in the spec."""
        return self._embedder_parameter("model", None)

    def embedding_backends(self) -> dict[str, str]:
        """``pipeline.components.name`` -> backend (torch when unset), for every embedder with a model."""
        models = self.embedding_models()
        return {
            k: v for k, v in self._embedder_parameter("backend", EmbeddingBackend.TORCH.value).items() if k in models
        }

    def _embedder_parameter(self, parameter: str, default: str | None) -> dict[str, str]:
        found: dict[str, str] = {}
        for pipeline in ("indexing", "query"):
            for suffix in ("DocumentEmbedder", "TextEmbedder"):
                for name, comp in self.components_of(pipeline, suffix).items():
                    value = (comp.get("init_parameters") or {}).get(parameter, default)
                    if value:
                        found[f"{pipeline}.components.{name}"] = str(value)
        return found

    @property
    def embedding_model(self) -> str | None:
        """The embedding model (None for a keyword-only spec)."""
        models = set(self.embedding_models().values())
        return next(iter(models)) if len(models) == 1 else None


def spec_from_settings(settings: Settings, **overrides: Any) -> PipelineSpec:
    """The built-in spec with the defaults the settings hold (embedding model, retrieval mode, top_k, the
    OpenAI-compatible endpoint, the file size limit); ``overrides`` that are not None win over them.

    This is the spec used when none is configured, so ``RAGSHIP_MODE`` and ``RAGSHIP_TOP_K`` take effect
    there; a spec file keeps its own values.
    """
    values: dict[str, Any] = {
        "embedding_model": settings.embedding_model,
        "mode": settings.mode,
        "top_k": settings.top_k,
        "openai_model": settings.openai.model,
        "openai_base_url": settings.openai.base_url,
        "openai_api_key_env": settings.openai.api_key_env,
        **({"max_file_bytes": settings.max_file_bytes} if settings.max_file_bytes else {}),
    }
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


def _digest(data: object) -> str:
    """A short content hash of plain data (canonical JSON: key order does not count)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _member(kind: type[_Choice], value: object, where: str) -> _Choice:
    try:
        return kind(str(value))
    except ValueError:
        raise SpecError(f"{where}: {value!r} is not one of {[m.value for m in kind]}.") from None


def parse_mode(value: object, where: str = "retrieval mode") -> RetrievalMode:
    """``value`` as a :class:`RetrievalMode`, or a :class:`SpecError` naming ``where`` and the choices."""
    return _member(RetrievalMode, value, where)


def default_spec(
    *,
    generator: GeneratorKind | str = GeneratorKind.EXTRACTIVE,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    embedding_backend: EmbeddingBackend | str = DEFAULT_EMBEDDING_BACKEND,
    split_by: SplitBy | str = SplitBy.SECTION,
    split_length: int = 200,
    split_overlap: int = 40,
    top_k: int = 5,
    candidates: int = 20,
    mode: RetrievalMode | str = RetrievalMode.HYBRID,
    openai_model: str = DEFAULT_OPENAI_MODEL,
    openai_base_url: str | None = None,
    openai_api_key_env: str = DEFAULT_OPENAI_KEY_ENV,
    local_model: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    fusion: str = DEFAULT_FUSION,
    fusion_weights: list[float] | None = None,
    rrf_k: int = DEFAULT_RRF_K,
    ranker_model: str | None = None,
    feedback_docs: int = DEFAULT_FEEDBACK_DOCS,
    feedback_terms: int = DEFAULT_FEEDBACK_TERMS,
    original_query_weight: float = DEFAULT_ORIGINAL_QUERY_WEIGHT,
    history_weight: float = DEFAULT_HISTORY_WEIGHT,
) -> PipelineSpec:
    """The default spec: convert -> split (by section) -> ids -> embed -> write, and
    bm25 + dense -> fusion [-> cross-encoder rerank] -> answer (extractive, OpenAI-compatible or local model).

    ``candidates`` is each retriever branch's top_k; with ``ranker_model`` the joiner passes that many fused
    candidates to the ranker, which keeps ``top_k``. ``feedback_docs`` above 0 widens the bm25 branch's question
    with the words of its first ``feedback_docs`` hits (pseudo-relevance feedback, RM3). A follow-up question is
    retrieved with the earlier turns it leans on, each at ``history_weight`` (bm25 clauses and query embedding);
    an LLM spec first rewrites it into a standalone question (its ``condenser`` stage) instead.
    """
    from haystack import Pipeline
    from haystack.components.builders import AnswerBuilder, ChatPromptBuilder
    from haystack.components.preprocessors import DocumentCleaner, DocumentSplitter
    from haystack.dataclasses import ChatMessage

    from ragship.components.answerers import ExtractiveAnswerer
    from ragship.components.condensers import QuestionCondenser
    from ragship.components.converters import FileConverter
    from ragship.components.embedders import DocumentEmbedder, TextEmbedder
    from ragship.components.ids import StableIdAssigner
    from ragship.components.joiners import FusionJoiner
    from ragship.components.rankers import CrossEncoderRanker
    from ragship.components.retrievers import StoreBM25Retriever, StoreEmbeddingRetriever
    from ragship.components.splitters import SectionSplitter
    from ragship.components.writers import StoreWriter

    generator = _member(GeneratorKind, generator, "generator")
    mode = parse_mode(mode)
    split_by = _member(SplitBy, split_by, "split_by")
    backend = _member(EmbeddingBackend, embedding_backend, "embedding_backend")

    indexing = Pipeline(metadata={"ragship_role": "indexing"})
    indexing.add_component("converter", FileConverter(max_file_bytes=max_file_bytes))
    if split_by is SplitBy.SECTION:
        indexing.add_component("splitter", SectionSplitter(split_length=split_length, split_overlap=split_overlap))
        indexing.connect("converter.documents", "splitter.documents")
    else:
        indexing.add_component("cleaner", DocumentCleaner(remove_empty_lines=False, remove_repeated_substrings=False))
        indexing.add_component(
            "splitter",
            DocumentSplitter(
                split_by=split_by.value,  # type: ignore[arg-type]  # SplitBy's unit members are its Literal values
                split_length=split_length,
                split_overlap=split_overlap,
            ),
        )
        indexing.connect("converter.documents", "cleaner.documents")
        indexing.connect("cleaner.documents", "splitter.documents")
    indexing.add_component("ids", StableIdAssigner())
    # The title and heading path give a mid-document chunk the context its own words lack.
    indexing.add_component(
        "embedder",
        DocumentEmbedder(
            model=embedding_model, backend=backend, progress_bar=False, meta_fields_to_embed=["title", "section"]
        ),
    )
    indexing.add_component("writer", StoreWriter())
    indexing.connect("splitter.documents", "ids.documents")
    indexing.connect("ids.documents", "embedder.documents")
    indexing.connect("embedder.documents", "writer.documents")

    query = Pipeline(metadata={"ragship_role": "query", "retrieval_mode": mode.value})
    query.add_component(
        "query_embedder",
        TextEmbedder(model=embedding_model, backend=backend, progress_bar=False, history_weight=history_weight),
    )
    query.add_component("dense_retriever", StoreEmbeddingRetriever(top_k=candidates))
    query.add_component(
        "bm25_retriever",
        StoreBM25Retriever(
            top_k=candidates,
            feedback_docs=feedback_docs,
            feedback_terms=feedback_terms,
            original_query_weight=original_query_weight,
            history_weight=history_weight,
        ),
    )
    joiner = FusionJoiner(
        join_mode=fusion, weights=fusion_weights, rrf_k=rrf_k, top_k=candidates if ranker_model else top_k
    )
    query.add_component("joiner", joiner)
    query.add_component(
        "answer_builder",
        AnswerBuilder(reference_pattern=r"\[(\d+)\]", return_only_referenced_documents=False),
    )
    query.connect("query_embedder.embedding", "dense_retriever.query_embedding")
    query.connect("dense_retriever.documents", "joiner.documents")
    query.connect("bm25_retriever.documents", "joiner.documents")
    ranked = "joiner"
    if ranker_model:
        # The cross-encoder reads the section path and title with the chunk, as the embedder does.
        ranker = CrossEncoderRanker(model=ranker_model, top_k=top_k, meta_fields_to_embed=["title", "section"])
        query.add_component("ranker", ranker)
        query.connect("joiner.documents", "ranker.documents")
        ranked = "ranker"
    query.connect(f"{ranked}.documents", "answer_builder.documents")
    if generator == "extractive":
        query.add_component("answerer", ExtractiveAnswerer(history_weight=history_weight))
        query.connect(f"{ranked}.documents", "answerer.documents")
        query.connect("answerer.replies", "answer_builder.replies")
    else:
        template = [
            ChatMessage.from_system(DEFAULT_SYSTEM_PROMPT),
            ChatMessage.from_user(DEFAULT_USER_PROMPT),
        ]
        query.add_component("prompt_builder", ChatPromptBuilder(template=template, required_variables=["query"]))
        query.add_component("llm", _llm(generator, openai_model, openai_base_url, openai_api_key_env, local_model))
        # A follow-up is rewritten into a standalone question (by the same LLM) before retrieval and the prompt.
        query.add_component("condenser", QuestionCondenser(generator="llm"))
        for receiver in ("bm25_retriever.query", "query_embedder.text", "prompt_builder.query"):
            query.connect("condenser.query", receiver)
        query.connect(f"{ranked}.documents", "prompt_builder.documents")
        query.connect("prompt_builder.prompt", "llm.messages")
        query.connect("llm.replies", "answer_builder.replies")

    reranked = f", reranked by {ranker_model}" if ranker_model else ""
    return PipelineSpec(
        indexing=indexing.to_dict(),
        query=query.to_dict(),
        name=f"default-{generator}",
        description=f"{mode} retrieval over {embedding_model}{reranked}, {generator} answers",
    )


def _llm(
    generator: GeneratorKind,
    openai_model: str,
    openai_base_url: str | None,
    openai_api_key_env: str,
    local_model: str | None,
) -> Any:
    from haystack.utils import Secret

    if generator == "openai":
        from haystack.components.generators.chat import OpenAIChatGenerator

        return OpenAIChatGenerator(
            api_key=Secret.from_env_var(openai_api_key_env),
            model=openai_model,
            api_base_url=openai_base_url,
            generation_kwargs={"temperature": 0.0, "max_completion_tokens": 512},
            timeout=60.0,
            max_retries=2,
        )
    if not local_model:
        raise SpecError(
            "generator 'local' needs --local-model: 'smollm2' (bundled), a .gguf file, "
            "or a directory or hub id of a Hugging Face causal LM."
        )
    from ragship.components.generators import LocalChatGenerator

    return LocalChatGenerator(
        model=local_model,
        task="text-generation",
        generation_kwargs={"max_new_tokens": 256, "do_sample": False},
    )


def with_overrides(
    spec: PipelineSpec,
    *,
    split_length: int | None = None,
    split_overlap: int | None = None,
    top_k: int | None = None,
    candidates: int | None = None,
    fusion: str | None = None,
    fusion_weights: list[float] | None = None,
    rrf_k: int | None = None,
    feedback_docs: int | None = None,
    feedback_terms: int | None = None,
    original_query_weight: float | None = None,
    history_weight: float | None = None,
) -> PipelineSpec:
    """A copy of ``spec`` with chunking, retrieval depth (``candidates`` per branch), fusion, the bm25 branch's
    pseudo-relevance feedback, the weight of a follow-up's earlier turns or the number of returned sources changed
    (for experiment grids)."""
    import copy

    indexing, query = copy.deepcopy(spec.indexing), copy.deepcopy(spec.query)
    out = PipelineSpec(indexing, query, spec.name, spec.description, spec.version)
    for comp in out.components_of("indexing", SPLITTER_TYPE_SUFFIX).values():
        params = comp.setdefault("init_parameters", {})
        if split_length is not None:
            params["split_length"] = split_length
        if split_overlap is not None:
            params["split_overlap"] = split_overlap
    rankers = out.components_of("query", RANKER_TYPE_SUFFIX)
    for comp in out.components_of("query", JOINER_TYPE_SUFFIX).values():
        params = comp.setdefault("init_parameters", {})
        if top_k is not None and not rankers:
            params["top_k"] = top_k
        if candidates is not None and rankers:
            params["top_k"] = candidates
        for key, value in (("join_mode", fusion), ("weights", fusion_weights), ("rrf_k", rrf_k)):
            if value is not None:
                params[key] = value
    for comp in rankers.values():
        if top_k is not None:
            comp.setdefault("init_parameters", {})["top_k"] = top_k
    if candidates is not None:
        for suffix in ("StoreBM25Retriever", "StoreEmbeddingRetriever"):
            for comp in out.components_of("query", suffix).values():
                comp.setdefault("init_parameters", {})["top_k"] = candidates
    feedback = {
        "feedback_docs": feedback_docs,
        "feedback_terms": feedback_terms,
        "original_query_weight": original_query_weight,
    }
    for comp in out.components_of("query", "StoreBM25Retriever").values():
        comp.setdefault("init_parameters", {}).update({k: v for k, v in feedback.items() if v is not None})
    if history_weight is not None:  # follow-up questions: both branches and the answerer weigh earlier turns alike
        for suffix in ("StoreBM25Retriever", "TextEmbedder", "ExtractiveAnswerer"):
            for comp in out.components_of("query", suffix).values():
                comp.setdefault("init_parameters", {})["history_weight"] = history_weight
    return out
