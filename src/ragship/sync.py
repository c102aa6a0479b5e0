"""Incremental sync: bring an index in line with a set of source files, touching only what changed.

The store keeps a manifest (source -> content hash, pipeline hash, chunk ids). A sync hashes the files,
compares, and then

* indexes new files and re-indexes changed ones (their old chunks are replaced, see ``StoreWriter``),
* deletes the chunks of files that are gone,
* leaves everything else alone, so a second run in a row changes nothing.

Files go through the pipeline in fixed-size batches, and a file's manifest entry is written only after
its chunks have landed. A run killed at any point therefore leaves the manifest behind the index, never
ahead of it: the next run redoes the unfinished files (chunk ids are stable, so rewriting them creates no
duplicates) and the result is exactly what an uninterrupted run gives.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ragship.components.converters import FileFailure, source_name
from ragship.pipelines.indexing import Indexer, IndexReport, discover_files
from ragship.settings import SyncMode
from ragship.spec import PipelineSpec
from ragship.stores.base import ManifestEntry, RetrievalStore, rebuilding, settle_rebuild

SyncProgress = Callable[[int, int], None]
StopCheck = Callable[[], bool]


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    """Hash a file in blocks (bounded memory for large files); same digest as the converter's content_hash."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass
class SyncPlan:
    """What a sync will do, decided before any write."""

    added: list[Path] = field(default_factory=list)
    updated: list[Path] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[Path] = field(default_factory=list)
    missing: list[FileFailure] = field(default_factory=list)
    hashes: dict[str, str] = field(default_factory=dict)


@dataclass
class SyncReport:
    """Counts and failures of one sync run (``failed`` files keep whatever they had in the index)."""

    mode: SyncMode
    dry_run: bool
    store: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    failures: list[FileFailure] = field(default_factory=list)
    duration_s: float = 0.0
    rebuild: str | None = None
    cancelled: bool = False

    @property
    def failed(self) -> int:
        """Files that could not be indexed."""
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the reindex notebook's summary)."""
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "failures": [f.to_dict() for f in self.failures],
            "mode": self.mode,
            "dry_run": self.dry_run,
            "store": self.store,
            "duration_s": round(self.duration_s, 3),
            "cancelled": self.cancelled,
            **({"rebuild": self.rebuild} if self.rebuild else {}),
        }


def _under(source: str, roots: list[str]) -> bool:
    return any(source == root or source.startswith(root.rstrip("/") + "/") for root in roots)


def plan_sync(spec: PipelineSpec, store: RetrievalStore, sources: Iterable[str | Path]) -> SyncPlan:
    """Compare the files under ``sources`` with the store's manifest.

    Deletions are limited to manifest entries under the given roots, so syncing ``docs`` never deletes
    what another sync put in from elsewhere. Reading the manifest is the first store call, so an
    unreachable store fails here, before anything is written.
    """
    roots = [str(s) for s in sources]
    files, missing = discover_files(roots)
    manifest = store.read_manifest()
    current = spec.indexing_hash
    plan = SyncPlan(missing=missing)
    seen: set[str] = set()
    for path in files:
        name = source_name(path)
        seen.add(name)
        digest = plan.hashes[name] = file_sha256(path)
        entry = manifest.get(name)
        if entry is None:
            plan.added.append(path)
        elif entry.content_hash != digest or entry.pipeline_hash != current:
            plan.updated.append(path)
        else:
            plan.unchanged.append(path)
    scope = [source_name(r) for r in roots]
    plan.deleted = sorted(s for s in manifest if s not in seen and _under(s, scope))
    return plan


class Syncer:
    """Runs incremental or full syncs of source files into a store.

    Usage::

        report = Syncer(spec, store).sync(["docs"], mode="incremental")

    :param spec: The pipeline spec (its indexing pipeline is used).
    :param store: Store to sync into; holds the manifest.
    :param batch_files: Files per pipeline run and per manifest commit: bounds memory and lost work on a kill.
    """

    def __init__(self, spec: PipelineSpec, store: RetrievalStore, batch_files: int = 32) -> None:
        self.spec = spec
        self.store = store
        self.batch_files = batch_files
        self._indexer: Indexer | None = None

    @property
    def indexer(self) -> Indexer:
        """The indexing pipeline, built on first use (a no-op sync loads no model)."""
        if self._indexer is None:
            self._indexer = Indexer(self.spec, self.store, batch_files=self.batch_files)
        return self._indexer

    def sync(
        self,
        sources: Iterable[str | Path],
        mode: SyncMode | str = SyncMode.INCREMENTAL,
        dry_run: bool = False,
        allow_failures: bool = False,
        progress: SyncProgress | None = None,
        should_stop: StopCheck | None = None,
    ) -> SyncReport:
        """Sync ``sources`` (files and directories) into the store.

        :param mode: ``incremental`` touches only new, changed and removed files; ``full`` rebuilds the
            whole index in a staged copy and swaps it in atomically.
        :param dry_run: Report what would change; write nothing.
        :param allow_failures: Full mode only: promote the rebuild even when some files fail (they are then
            missing from the new index). By default the live index is kept instead.
        :param progress: Called with (files done, files to index).
        :param should_stop: Asked before each batch; when it says yes the run stops there with
            ``cancelled`` set. Batches already done are committed (incremental: the next run resumes from
            the manifest); a full rebuild that stops is discarded and the live index stays as it was.
        """
        mode = SyncMode(mode)
        started = time.perf_counter()
        sources = list(sources)
        plan = plan_sync(self.spec, self.store, sources)
        report = SyncReport(mode=mode, dry_run=dry_run, store=self.store.describe(), failures=list(plan.missing))
        if dry_run:
            report.added, report.updated = len(plan.added), len(plan.updated)
            report.deleted, report.unchanged = len(plan.deleted), len(plan.unchanged)
        elif mode == SyncMode.FULL:
            self._full(plan, report, allow_failures, progress, should_stop)
        else:
            self._incremental(self.store, plan, report, progress, should_stop)
        report.duration_s = time.perf_counter() - started
        return report

    def _incremental(
        self,
        store: RetrievalStore,
        plan: SyncPlan,
        report: SyncReport,
        progress: SyncProgress | None,
        should_stop: StopCheck | None,
    ) -> None:
        report.unchanged = len(plan.unchanged)
        if plan.deleted:
            report.chunks_deleted += store.delete_by_source(plan.deleted)
            store.delete_manifest(plan.deleted)
            report.deleted = len(plan.deleted)
        self._index(store, plan.added + plan.updated, plan, report, progress, should_stop)

    def _full(
        self,
        plan: SyncPlan,
        report: SyncReport,
        allow_failures: bool,
        progress: SyncProgress | None,
        should_stop: StopCheck | None,
    ) -> None:
        live = self.store
        report.unchanged, report.deleted = len(plan.unchanged), len(plan.deleted)
        with rebuilding(live) as staged:
            try:
                self._index(staged, plan.added + plan.updated + plan.unchanged, plan, report, progress, should_stop)
            finally:
                if self._indexer is not None:
                    self._indexer.use_store(live)
        if report.cancelled:
            live.discard(staged)
            report.rebuild = "discarded: stopped on request, the live index is unchanged"
        else:
            report.rebuild = settle_rebuild(live, staged, bool(report.failures), allow_failures)

    def _index(
        self,
        store: RetrievalStore,
        todo: list[Path],
        plan: SyncPlan,
        report: SyncReport,
        progress: SyncProgress | None,
        should_stop: StopCheck | None,
    ) -> None:
        """Index ``todo`` batch by batch, committing each batch's manifest entries after its chunks."""
        if progress:
            progress(0, len(todo))
        if not todo:
            return
        self.indexer.use_store(store)
        current = self.spec.indexing_hash
        added = {id(p) for p in plan.added}
        updated = {id(p) for p in plan.updated}
        for start in range(0, len(todo), self.batch_files):
            if should_stop is not None and should_stop():
                report.cancelled = True
                return
            batch = todo[start : start + self.batch_files]
            outcome = IndexReport()
            self.indexer.index_batch(batch, outcome)
            report.failures.extend(outcome.failures)
            report.chunks_written += outcome.chunks_written
            report.chunks_deleted += outcome.chunks_deleted
            failed = {f.source for f in outcome.failures}
            now = datetime.now(UTC).isoformat()
            entries = []
            for path in batch:
                name = source_name(path)
                if name in failed:
                    continue
                ids = tuple(sorted(store.ids_by_source(name)))
                entries.append(ManifestEntry(name, plan.hashes[name], current, ids, now))
                report.added += id(path) in added
                report.updated += id(path) in updated
            store.write_manifest(entries)
            if progress:
                progress(min(start + len(batch), len(todo)), len(todo))
