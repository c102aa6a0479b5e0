"""The domain enumerations: retrieval modes, generator kinds, chunking units, model placement, embedding
backends, sync modes and ratings. Each is declared here once; settings, specs, the CLI and the API use them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class RetrievalMode(StrEnum):
    """How the query pipeline finds sources. Each mode maps to the retriever branches it keeps
    (``ragship.pipelines.BRANCHES_OF_MODE``): adding a mode means a member here and a row there."""

    BM25 = "bm25"
    DENSE = "dense"
    HYBRID = "hybrid"


class GeneratorKind(StrEnum):
    """How answers are written: extractive (no LLM), an OpenAI-compatible endpoint, a local HF model."""

    EXTRACTIVE = "extractive"
    OPENAI = "openai"
    LOCAL = "local"


class SplitBy(StrEnum):
    """How chunks are cut: along sections and blocks (``SectionSplitter``), or by Haystack's
    ``DocumentSplitter`` unit counts, which ignore structure."""

    SECTION = "section"
    WORD = "word"
    SENTENCE = "sentence"
    PASSAGE = "passage"
    LINE = "line"
    PAGE = "page"


class QueryModels(StrEnum):
    """Where the served query API runs its query-time models (the query embedder and the rerank stage's
    cross-encoder): in the API process, or one HTTP hop away in the Embedder service (adaptive batching,
    GPU). ``auto``: in the API process on a host without a GPU, unless the Embedder has its own URL."""

    AUTO = "auto"
    API = "api"
    SERVICE = "service"


class EmbeddingBackend(StrEnum):
    """How the embedders run their model: torch, or ONNX Runtime from an export made on this machine
    (``onnx``: the same float32 weights; ``onnx-int8``: weights quantized to int8 for this CPU's kernels).
    The export is cached under the ``onnx_cache`` setting (``ragship.models.onnx``)."""

    TORCH = "torch"
    ONNX = "onnx"
    ONNX_INT8 = "onnx-int8"


class SyncMode(StrEnum):
    """How a sync treats the index: touch only what changed, or rebuild it in a staged copy and swap."""

    INCREMENTAL = "incremental"
    FULL = "full"


class Scope(StrEnum):
    """What a principal may do: ``query`` (ask, retrieve, chat, MCP, the page), ``index`` (submit jobs and read
    their status), ``feedback`` (rate answers), ``admin`` (everything, all documents, job listings)."""

    QUERY = "query"
    INDEX = "index"
    FEEDBACK = "feedback"
    ADMIN = "admin"


class AccessDefault(StrEnum):
    """Who reads a document that carries no access groups: everyone (``public``) or only admins (``deny``)."""

    PUBLIC = "public"
    DENY = "deny"


#: How a user rates a served answer (``POST /feedback``'s ``rating``); a Literal, so the API schema lists the values.
RatingName = Literal["up", "down"]
RATINGS: tuple[RatingName, ...] = get_args(RatingName)
