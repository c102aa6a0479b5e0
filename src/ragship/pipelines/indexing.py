"""Run the spec's indexing pipeline over files, batch by batch, with a per-file report."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from haystack import Pipeline

from ragship.components.converters import SUPPORTED_TYPES, FileConverter, FileFailure, source_name
from ragship.components.remote import RemoteModels
from ragship.components.writers import StoreWriter
from ragship.pipelines import attach_models, attach_store, find_component, load_pipeline, run_pipeline
from ragship.spec import PipelineSpec
from ragship.stores.base import RetrievalStore, rebuilding, settle_rebuild

ProgressCallback = Callable[[int, int], None]


@dataclass
class IndexReport:
    """What an indexing run did, per file."""

    chunks_by_source: dict[str, int] = field(default_factory=dict)
    failures: list[FileFailure] = field(default_factory=list)
    chunks_written: int = 0
    chunks_deleted: int = 0
    rebuild: str | None = None

    @property
    def files_indexed(self) -> int:
        """Files that produced at least one chunk."""
        return len(self.chunks_by_source)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for JSON output."""
        return {
            "files_indexed": self.files_indexed,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "files": self.chunks_by_source,
            "failures": [f.to_dict() for f in self.failures],
            **({"rebuild": self.rebuild} if self.rebuild else {}),
        }


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


class Indexer:
    """Indexes files into a store with the spec's indexing pipeline.

    Usage::

        indexer = Indexer(load_spec("spec.yaml"), open_store(".ragship/store"))
        report = indexer.index(["docs"])

    :param spec: The pipeline spec.
    :param store: The store the writer writes to.
    :param batch_files: Files per pipeline run; bounds memory and keeps embedding batched.
    :param max_file_bytes: Overrides the spec converter's file size limit when given.
    :param remote: Services that run the models instead of this process (the BentoML deployment).
    """

    def __init__(
        self,
        spec: PipelineSpec,
        store: RetrievalStore,
        batch_files: int = 32,
        max_file_bytes: int | None = None,
        remote: RemoteModels | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.batch_files = batch_files
        self.pipeline: Pipeline = attach_models(attach_store(load_pipeline(spec.indexing, "indexing"), store), remote)
        self._converter_name = find_component(self.pipeline, FileConverter, "indexing")
        self._writer_name = find_component(self.pipeline, StoreWriter, "indexing")
        if max_file_bytes is not None:
            converter: Any = self.pipeline.get_component(self._converter_name)
            converter.max_file_bytes = max_file_bytes
        self._warm = False

    def warm_up(self) -> None:
        """Load models once."""
        if not self._warm:
            self.pipeline.warm_up()
            self._warm = True

    def index(self, paths: Iterable[str | Path], progress: ProgressCallback | None = None) -> IndexReport:
        """Index files and directories.

        :param paths: Files and/or directories (searched recursively for supported types).
        :param progress: Called with (files done, files total) after each batch.
        :returns: The per-file report; failures never stop the run.
        """
        files, missing = discover_files(paths)
        report = IndexReport(failures=list(missing))
        if progress:
            progress(0, len(files))
        if files:
            self.warm_up()
        for start in range(0, len(files), self.batch_files):
            batch = files[start : start + self.batch_files]
            self.index_batch(batch, report)
            if progress:
                progress(min(start + len(batch), len(files)), len(files))
        return report

    def index_named(self, files: dict[str, Path]) -> IndexReport:
        """Index files kept somewhere temporary under the source names their senders gave them.

        :param files: Source name -> file holding its content (e.g. an upload).
        """
        report = IndexReport()
        items = list(files.items())
        for start in range(0, len(items), self.batch_files):
            batch = items[start : start + self.batch_files]
            self.index_batch([path for _, path in batch], report, names=[name for name, _ in batch])
        return report

    def rebuild(
        self, paths: Iterable[str | Path], progress: ProgressCallback | None = None, allow_failures: bool = False
    ) -> IndexReport:
        """Index ``paths`` into a fresh staged store, then swap it in atomically.

        Readers keep seeing the old index until the swap. When any file fails and ``allow_failures`` is
        False, the staged store is discarded and the live one is left as it was.
        """
        live = self.store
        with rebuilding(live) as staged:
            try:
                self.use_store(staged)
                report = self.index(paths, progress)
            finally:
                self.use_store(live)
        report.rebuild = settle_rebuild(live, staged, bool(report.failures), allow_failures)
        return report

    def use_store(self, store: RetrievalStore) -> None:
        """Point the pipeline's writer at another store (a staged rebuild, say)."""
        attach_store(self.pipeline, store)
        self.store = store

    def index_batch(self, batch: list[Path], report: IndexReport, names: list[str] | None = None) -> None:
        """Run one batch of files through the pipeline, adding its outcome to ``report``.

        :param names: Source names of the files, in order, when not their paths.
        """
        self.warm_up()
        converter_inputs: dict[str, Any] = {"sources": [str(p) for p in batch]}
        if names is not None:
            converter_inputs["source_names"] = names
        result = run_pipeline(
            self.pipeline,
            {self._converter_name: converter_inputs},
            include_outputs_from={self._converter_name, "ids"} & set(self.spec.indexing["components"]),
        )
        converted = result.get(self._converter_name, {})
        report.failures.extend(converted.get("failures", []))
        writer_out = result.get(self._writer_name, {})
        report.chunks_written += int(writer_out.get("documents_written", 0))
        report.chunks_deleted += int(writer_out.get("documents_deleted", 0))
        for rejection in writer_out.get("rejected", []):
            report.failures.append(
                FileFailure(rejection.source, f"chunk {rejection.id[:12]} rejected by the store: {rejection.reason}")
            )
        chunk_docs = result.get("ids", {}).get("documents") or converted.get("documents", [])
        counts = Counter(str(d.meta.get("source")) for d in chunk_docs)
        for source, n in counts.items():
            report.chunks_by_source[source] = report.chunks_by_source.get(source, 0) + n
