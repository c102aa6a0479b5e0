"""The knobs of the built-in spec, declared once.

Each row says what a knob sets (an init parameter of the components of a :class:`Role`), its default, its
bounds and its help. :func:`ragship.spec.default_spec`'s keywords, :func:`ragship.spec.with_overrides`, the
options of ``ragship spec init`` and the keys of an evaluation grid are all derived from this table.

Adding a knob: a row here, and the init parameter on the component that takes it (its default read back with
:func:`default_of`). A knob with no targets shapes the pipelines instead (:mod:`ragship.spec.defaults`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ragship.enums import EmbeddingBackend, GeneratorKind, RetrievalMode, SplitBy
from ragship.errors import SpecError
from ragship.settings import Settings
from ragship.spec.roles import Role

FUSION_METHODS = ("reciprocal_rank_fusion", "distribution_based_rank_fusion", "merge")
_FROM_SETTING: Any = object()  # the default is the setting's (declared in ragship.settings)


@dataclass(frozen=True)
class Target:
    """An init parameter a knob sets on every component of ``role``.

    :param param: The init parameter; dotted for a nested key (``huggingface_pipeline_kwargs.model``).
    :param ranked: Set only in a query pipeline with (True) or without (False) a ranker; None: always.
    """

    role: Role
    param: str
    ranked: bool | None = None


@dataclass(frozen=True)
class Knob:
    """One tunable of the built-in spec.

    :param kind: ``int``, ``float``, ``str``, an enum, or ``list`` (floats; comma-separated on the CLI).
    :param targets: Where the value goes; empty for knobs that shape the pipelines.
    :param setting: The ragship setting whose value the built-in spec takes (dotted for a nested one).
    :param grid: May vary in an evaluation grid.
    :param cli: An option of ``ragship spec init``.
    :param encode: Turns the value into the init parameter's form.
    :param label: How errors name the knob, when not by its name.
    """

    name: str
    help: str
    kind: type
    default: Any = _FROM_SETTING
    targets: tuple[Target, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    setting: str | None = None
    grid: bool = False
    cli: bool = True
    encode: Callable[[Any], Any] | None = None
    label: str | None = None

    @property
    def default_value(self) -> Any:
        """The default, the setting's when the row declares none."""
        if self.default is not _FROM_SETTING:
            return self.default
        model: Any = Settings
        *parents, field = str(self.setting).split(".")
        for parent in parents:
            model = model.model_fields[parent].annotation
        return model.model_fields[field].default

    def check(self, value: Any, where: str | None = None) -> Any:
        """``value`` as this knob's kind, or a :class:`SpecError` naming the knob and the bound it breaks."""
        where = where or self.label or self.name
        if value is None:
            return None
        if isinstance(self.kind, type) and issubclass(self.kind, Enum):
            try:
                return self.kind(str(value))
            except ValueError:
                choices = [m.value for m in self.kind]
                raise SpecError(f"{where}: {value!r} is not one of {choices}.") from None
        if self.choices and value not in self.choices:
            raise SpecError(f"{where}: {value!r} is not one of {list(self.choices)}.")
        numbers = value if isinstance(value, list) else [value]
        for number in numbers if self.kind in (int, float, list) else []:
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise SpecError(f"{where}: {value!r} is not a number.")
            if self.kind is int and not isinstance(number, int):
                raise SpecError(f"{where}: {value!r} is not a whole number.")
            if self.minimum is not None and number < self.minimum:
                raise SpecError(f"{where}: {value!r} is below the minimum {self.minimum:g}.")
            if self.maximum is not None and number > self.maximum:
                raise SpecError(f"{where}: {value!r} is above the maximum {self.maximum:g}.")
        return value


def _env_secret(name: str) -> dict[str, Any]:
    """An API key read from the environment variable ``name`` (Haystack's serialized ``Secret``)."""
    return {"type": "env_var", "env_vars": [name], "strict": True}


_EMBEDDERS = (Role.DOCUMENT_EMBEDDER, Role.TEXT_EMBEDDER)
_FEEDBACK = "Query expansion (RM3): the bm25 branch searches again with the words of its first N hits added"

KNOBS: dict[str, Knob] = {
    knob.name: knob
    for knob in (
        Knob("generator", "How answers are written.", GeneratorKind, GeneratorKind.EXTRACTIVE),
        Knob("mode", "Retrieval mode.", RetrievalMode, setting="mode", grid=True, label="retrieval mode"),
        Knob(
            "embedding_model",
            "Sentence-transformers path or hub id.",
            str,
            targets=tuple(Target(role, "model") for role in _EMBEDDERS),
            setting="embedding_model",
        ),
        # int8 ONNX Runtime: 2.19x torch's chunks/s and 4.7x lower query latency on the 2-core CPU at the same
        # NFCorpus nDCG@10 (docs/indexing.md). A spec that omits the backend still means torch (the components'
        # default), so older specs keep their indexes.
        Knob(
            "embedding_backend",
            "onnx-int8 or onnx (float32): ONNX Runtime on the CPU, from a cached export; torch: uses a GPU.",
            EmbeddingBackend,
            EmbeddingBackend.ONNX_INT8,
            targets=tuple(Target(role, "backend") for role in _EMBEDDERS),
        ),
        Knob(
            "split_by",
            "section: along headings and blocks; or a unit count that ignores structure.",
            SplitBy,
            SplitBy.SECTION,
        ),
        Knob(
            "split_length",
            "Units per chunk (words for section).",
            int,
            200,
            (Target(Role.SPLITTER, "split_length"),),
            minimum=1,
            grid=True,
        ),
        Knob(
            "split_overlap",
            "Units shared by neighbouring chunks.",
            int,
            40,
            (Target(Role.SPLITTER, "split_overlap"),),
            minimum=0,
            grid=True,
        ),
        Knob(
            "top_k",
            "Sources per answer.",
            int,
            targets=(Target(Role.JOINER, "top_k", ranked=False), Target(Role.RANKER, "top_k")),
            minimum=1,
            setting="top_k",
            grid=True,
        ),
        Knob(
            "openai_model",
            "Model name at the endpoint.",
            str,
            targets=(Target(Role.OPENAI_GENERATOR, "model"),),
            setting="openai.model",
        ),
        Knob(
            "openai_base_url",
            "OpenAI-compatible base URL.",
            str,
            targets=(Target(Role.OPENAI_GENERATOR, "api_base_url"),),
            setting="openai.base_url",
        ),
        Knob(
            "local_model",
            "For --generator local: 'smollm2' (the bundled SmolLM2-135M-Instruct), a .gguf file, "
            "or a Hugging Face causal LM directory or hub id.",
            str,
            None,
            (Target(Role.LOCAL_GENERATOR, "huggingface_pipeline_kwargs.model"),),
        ),
        Knob(
            "candidates",
            "Chunks each retriever branch returns (and the ranker reads).",
            int,
            20,
            (
                Target(Role.BM25_RETRIEVER, "top_k"),
                Target(Role.EMBEDDING_RETRIEVER, "top_k"),
                Target(Role.JOINER, "top_k", ranked=True),
            ),
            minimum=1,
            grid=True,
        ),
        Knob(
            "fusion",
            "How the branches are fused; merge: the weighted sum of their scores.",
            str,
            FUSION_METHODS[0],
            (Target(Role.JOINER, "join_mode"),),
            choices=FUSION_METHODS,
            grid=True,
        ),
        Knob(
            "fusion_weights",
            "Branch weights, bm25 first, comma-separated (e.g. 0.6,0.4).",
            list,
            None,
            (Target(Role.JOINER, "weights"),),
            minimum=0,
            grid=True,
        ),
        Knob("rrf_k", "Reciprocal rank fusion's k.", int, 60, (Target(Role.JOINER, "rrf_k"),), minimum=1, grid=True),
        Knob(
            "ranker_model",
            "Cross-encoder (path or hub id) that reranks the fused candidates.",
            str,
            None,
            (Target(Role.RANKER, "model"),),
        ),
        Knob(
            "feedback_docs",
            f"{_FEEDBACK} (0: off).",
            int,
            0,
            (Target(Role.BM25_RETRIEVER, "feedback_docs"),),
            minimum=0,
            grid=True,
        ),
        Knob(
            "feedback_terms",
            "Words query expansion adds.",
            int,
            20,
            (Target(Role.BM25_RETRIEVER, "feedback_terms"),),
            minimum=1,
            grid=True,
        ),
        Knob(
            "original_query_weight",
            "The question's share of the expanded search.",
            float,
            0.5,
            (Target(Role.BM25_RETRIEVER, "original_query_weight"),),
            minimum=0,
            maximum=1,
            grid=True,
        ),
        Knob(
            "answer_sentences",
            "Most sentences in an extractive answer (longer answers hold more context, and more noise).",
            int,
            3,
            (Target(Role.ANSWERER, "max_sentences"),),
            minimum=1,
            maximum=20,
            grid=True,
        ),
        Knob(
            "history_weight",
            "Weight of each earlier question a follow-up leans on, against the question's 1 (0 ignores the history).",
            float,
            0.5,
            (
                Target(Role.BM25_RETRIEVER, "history_weight"),
                Target(Role.TEXT_EMBEDDER, "history_weight"),
                Target(Role.ANSWERER, "history_weight"),
            ),
            minimum=0,
            grid=True,
        ),
        Knob(
            "openai_api_key_env",
            "Environment variable holding the endpoint's API key (never the key).",
            str,
            targets=(Target(Role.OPENAI_GENERATOR, "api_key"),),
            setting="openai.api_key_env",
            cli=False,
            encode=_env_secret,
        ),
        Knob(
            "max_file_bytes",
            "Larger files are refused at indexing.",
            int,
            50 * 1024 * 1024,
            (Target(Role.CONVERTER, "max_file_bytes"),),
            minimum=1,
            setting="max_file_bytes",
            cli=False,
        ),
    )
}
GRID_KEYS = frozenset(name for name, knob in KNOBS.items() if knob.grid)


def default_of(name: str) -> Any:
    """The default of knob ``name`` (for a component's init parameter that takes it)."""
    return KNOBS[name].default_value
