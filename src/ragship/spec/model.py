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
from typing import Any

import yaml

from ragship.enums import EmbeddingBackend, RetrievalMode
from ragship.errors import SpecError
from ragship.spec.roles import Role, plays

SPEC_VERSION = 1
# Part of the indexing hash: bump it when a code change alters the chunks a spec produces (2: Markdown
# and HTML kept as Markdown by the converter), so existing stores are reindexed by an ordinary sync.
CHUNK_FORMAT_VERSION = 2
TOP_LEVEL_KEYS = {"ragship_spec", "name", "description", "indexing", "query"}


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

    def components_of(self, pipeline: str, role: Role) -> dict[str, dict[str, Any]]:
        """Components of ``pipeline`` ('indexing' or 'query') that play ``role`` (by class, see roles)."""
        section = self.indexing if pipeline == "indexing" else self.query
        return {name: comp for name, comp in section.get("components", {}).items() if plays(comp, role)}

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
            for role in (Role.DOCUMENT_EMBEDDER, Role.TEXT_EMBEDDER):
                for name, comp in self.components_of(pipeline, role).items():
                    value = (comp.get("init_parameters") or {}).get(parameter, default)
                    if value:
                        found[f"{pipeline}.components.{name}"] = str(value)
        return found

    @property
    def embedding_model(self) -> str | None:
        """The embedding model (None for a keyword-only spec)."""
        models = set(self.embedding_models().values())
        return next(iter(models)) if len(models) == 1 else None


def _digest(data: object) -> str:
    """A short content hash of plain data (canonical JSON: key order does not count)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse_mode(value: object, where: str = "retrieval mode") -> RetrievalMode:
    """``value`` as a :class:`RetrievalMode`, or a :class:`SpecError` naming ``where`` and the choices."""
    try:
        return RetrievalMode(str(value))
    except ValueError:
        raise SpecError(f"{where}: {value!r} is not one of {[m.value for m in RetrievalMode]}.") from None
