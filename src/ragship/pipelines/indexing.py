"""The spec's indexing pipeline bound to one store, run batch by batch; and finding the files to index.

What to index and what to record (the manifest, staged rebuilds) is decided by ``ragship.sync``, the one
indexing path; this module only runs the pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Pipeline
from haystack.dataclasses import ByteStream

from ragship.components.converters import SUPPORTED_TYPES, FileConverter, FileFailure, source_name
from ragship.components.remote import RemoteModels
from ragship.components.writers import StoreWriter
from ragship.pipelines import attach_models, attach_store, find_component, load_pipeline, run_pipeline
from ragship.spec import PipelineSpec
from ragship.stores.base import RetrievalStore

SourceData = str | Path | ByteStream  # a file (path) or content in memory


@dataclass
class BatchOutcome:
    """What one pipeline run over a batch of sources did."""

    chunks_by_source: dict[str, int] = field(default_factory=dict)
    failures: list[FileFailure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0


def discover_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileFailure]]:
    """Expand directories into the supported files below them (sorted, hidden ones skipped).

    Paths given explicitly are kept whatever their type, so the converter reports unsupported ones.
    """
    files: list[Path] = []
    missing: list[FileFailure] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(
                p
                for p in sorted(path.rglob("*"))
                if p.is_file()
                and p.suffix.lower() in SUPPORTED_TYPES
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.exists():
            files.append(path)
        else:
            missing.append(FileFailure(source_name(path), "path not found"))
    unique = list(dict.fromkeys(files))
    return unique, missing


class IndexingPipeline:
    """The spec's indexing pipeline, built for one store (a staged rebuild gets a pipeline of its own).

    :param spec: The pipeline spec (its indexing part is used).
    :param store: The store the writer writes to.
    :param max_file_bytes: Overrides the spec converter's file size limit when given.
    :param remote: Services that run the models instead of this process (the BentoML deployment).
    :param access_rules: Path glob -> groups for files that carry no access mark (settings ``access.rules``).
    """

    def __init__(
        self,
        spec: PipelineSpec,
        store: RetrievalStore,
        max_file_bytes: int | None = None,
        remote: RemoteModels | None = None,
        access_rules: dict[str, list[str]] | None = None,
    ) -> None:
        self.store = store
        self.pipeline: Pipeline = attach_models(attach_store(load_pipeline(spec.indexing, "indexing"), store), remote)
        self._converter = find_component(self.pipeline, FileConverter, "indexing")
        self._writer = find_component(self.pipeline, StoreWriter, "indexing")
        converter: Any = self.pipeline.get_component(self._converter)
        if max_file_bytes is not None:
            converter.max_file_bytes = max_file_bytes
        converter.access_rules = dict(access_rules or {})
        self._warm = False

    def warm_up(self) -> None:
        """Load the models once."""
        if not self._warm:
            self.pipeline.warm_up()
            self._warm = True

    def run(self, sources: list[SourceData], names: list[str]) -> BatchOutcome:
        """Convert, chunk, embed and write one batch; a bad source is a failure, never an exception.

        :param sources: Files, or contents in memory.
        :param names: The ``source`` each item is stored and cited under, in order.
        """
        self.warm_up()
        result = run_pipeline(
            self.pipeline,
            {self._converter: {"sources": sources, "source_names": names}},
            include_outputs_from={self._converter},
        )
        written = result.get(self._writer, {})
        outcome = BatchOutcome(
            failures=list(result.get(self._converter, {}).get("failures", [])),
            chunks_by_source=dict(written.get("chunks_by_source", {})),
            chunks_written=int(written.get("documents_written", 0)),
            chunks_deleted=int(written.get("documents_deleted", 0)),
        )
        for rejection in written.get("rejected", []):
            outcome.failures.append(
                FileFailure(rejection.source, f"chunk {rejection.id[:12]} rejected by the store: {rejection.reason}")
            )
        return outcome
