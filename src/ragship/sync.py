"""The one indexing path: every write of files or uploads into a store goes through :class:`Syncer`.

The store keeps a manifest (source -> content hash, pipeline hash, chunk ids, file size and mtime).
Indexing hashes the sources, compares, and then

* indexes new sources and re-indexes changed ones (their old chunks are replaced, see ``StoreWriter``),
* with ``sync``, also deletes the chunks of files that are gone (``index`` never deletes),
* leaves everything else alone, so a second run in a row changes nothing.

Sources go through the pipeline in fixed-size batches, and a source's manifest entry is written only
after its chunks have landed. A run killed at any point therefore leaves the manifest behind the index,
never ahead of it: the next run redoes the unfinished sources (chunk ids are stable, so rewriting them
creates no duplicates) and the result is exactly what an uninterrupted run gives. That is also what
makes a redelivered queue job harmless.

A file whose size and modification time (ns) equal its manifest entry's is not read at all: its recorded
hash stands. Any other file is hashed, and the hash decides (a touched but unchanged file is not re-indexed;
its new stamp is recorded). Racy files, as git calls them: on a filesystem with coarse timestamps a file
changed within the same tick as the sync that recorded it keeps its mtime and maybe its size, so a stamp is
recorded only when the mtime is at least :data:`RACY_WINDOW_NS` older than the sync's start; younger files
are hashed again next time.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ragship.access.marks import Rules, rules_fingerprint
from ragship.enums import SyncMode
from ragship.file_scan import scan_files
from ragship.source_files import FileFailure, source_name
from ragship.spec import PipelineSpec
from ragship.stores.manifest_entry import FileStamp, ManifestEntry, ManifestReader

# Imported where used: planning loads no Haystack (and so no torch), so a no-change ``ragship sync`` process
# starts in a fraction of the time (ragship.quick_sync); a pipeline, an upload or a store brings them.
if TYPE_CHECKING:
    from ragship.components.remote import RemoteModels
    from ragship.pipelines.indexing import IndexingPipeline, SourceData
    from ragship.stores.base import RetrievalStore

SyncProgress = Callable[[int, int], None]
StopCheck = Callable[[], bool]

# The coarsest timestamp granularity in use (FAT: 2 s; ext3, HFS+, some NFS servers: 1 s). A file modified
# less than this before a sync started may be modified again without its mtime changing.
RACY_WINDOW_NS = 2_000_000_000


def file_sha256(path: str | Path, block: int = 1 << 20) -> str:
    """Hash a file in blocks (bounded memory for large files); same digest as the converter's content_hash."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


class Source(NamedTuple):
    """One thing to index: the name it is stored and cited under, its content's hash, and the content.

    A named tuple, not a frozen dataclass: a sync plans one per file, and at 100,000 files building them
    was 0.17 s of a no-change run's CPU (0.05 s as tuples).
    """

    name: str
    content_hash: str
    data: SourceData
    size: int | None = None
    mtime_ns: int | None = None  # None: not recorded (an upload, or a racy file: see the module's doc)

    @classmethod
    def from_file(cls, path: Path, started_ns: int | None = None) -> Source:
        """A file on disk, named relative to the working directory, hashed.

        :param started_ns: When the sync started (``time.time_ns()``, default now): see :meth:`stamped`.
        """
        stat = path.stat()  # before reading: a change while hashing then shows as a new mtime next time
        return cls.stamped(source_name(path), path, stat, file_sha256(path), started_ns)

    @classmethod
    def stamped(
        cls, name: str, path: str | Path, stat: os.stat_result, content_hash: str, started_ns: int | None = None
    ) -> Source:
        """A file with its size and mtime; the mtime is kept only when it is :data:`RACY_WINDOW_NS` older
        than the sync's start ``started_ns`` (default now), so a racy file is hashed again next time."""
        started = time.time_ns() if started_ns is None else started_ns
        mtime = stat.st_mtime_ns if stat.st_mtime_ns < started - RACY_WINDOW_NS else None
        return cls(name, content_hash, path, stat.st_size, mtime)

    @classmethod
    def from_bytes(cls, name: str, content: bytes) -> Source:
        """Content already in memory (an upload), named by its sender."""
        from haystack.dataclasses import ByteStream

        return cls(name, hashlib.sha256(content).hexdigest(), ByteStream(data=content, meta={"source": name}))


@dataclass
class SyncPlan:
    """What a run will do, decided before any write."""

    added: list[Source] = field(default_factory=list)
    updated: list[Source] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: list[Source] = field(default_factory=list)
    missing: list[FileFailure] = field(default_factory=list)
    restamped: list[FileStamp] = field(default_factory=list)  # unchanged files whose size or mtime is new
    hashed: int = 0  # files read to hash them (the others' size and mtime matched the manifest)


@dataclass
class SyncReport:
    """Counts and failures of one run (``failed`` sources keep whatever they had in the index)."""

    mode: SyncMode
    dry_run: bool
    store: str
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    chunks_written: int = 0
    chunks_deleted: int = 0
    chunks_by_source: dict[str, int] = field(default_factory=dict)
    failures: list[FileFailure] = field(default_factory=list)
    duration_s: float = 0.0
    hashed: int = 0
    rebuild: str | None = None
    cancelled: bool = False

    @classmethod
    def of_plan(cls, plan: SyncPlan, mode: SyncMode, dry_run: bool, store: str) -> SyncReport:
        """The report of ``plan`` before anything is written: what stays, what goes, what failed to be found."""
        report = cls(mode=mode, dry_run=dry_run, store=store, failures=list(plan.missing))
        report.unchanged, report.deleted, report.hashed = len(plan.unchanged), len(plan.deleted), plan.hashed
        return report

    @property
    def failed(self) -> int:
        """Sources that could not be indexed."""
        return len(self.failures)

    @property
    def files_indexed(self) -> int:
        """Sources whose chunks were written in this run."""
        return len(self.chunks_by_source)

    @property
    def ok(self) -> bool:
        """True when nothing failed."""
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON output, the reindex notebook's summary, job results)."""
        return {
            "added": self.added,
            "updated": self.updated,
            "deleted": self.deleted,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "files_indexed": self.files_indexed,
            "chunks_written": self.chunks_written,
            "chunks_deleted": self.chunks_deleted,
            "files": dict(sorted(self.chunks_by_source.items())),
            "failures": [f.to_dict() for f in self.failures],
            "mode": self.mode,
            "dry_run": self.dry_run,
            "store": self.store,
            "duration_s": round(self.duration_s, 3),
            "hashed": self.hashed,
            "cancelled": self.cancelled,
            **({"rebuild": self.rebuild} if self.rebuild else {}),
        }


def _under(source: str, roots: list[str]) -> bool:
    return any(source == root or source.startswith(root.rstrip("/") + "/") for root in roots)


def entry_hash(spec: PipelineSpec, source: str, access_rules: Rules) -> str:
    """The pipeline hash a source's manifest entry records: the spec's indexing hash, plus what the access
    path rules decide for it (only when one matches, so stores indexed without rules stay current)."""
    return _entry_hash(spec.indexing_hash, source, access_rules)


def _entry_hash(indexing_hash: str, source: str, access_rules: Rules) -> str:
    ruled = rules_fingerprint(source, access_rules) if access_rules else None
    return f"{indexing_hash}+access:{ruled}" if ruled else indexing_hash


def plan_changes(
    spec: PipelineSpec,
    store: RetrievalStore,
    sources: list[Source],
    delete_under: list[str] | None = None,
    access_rules: Rules | None = None,
) -> SyncPlan:
    """Compare ``sources`` with the store's manifest.

    :param delete_under: Roots whose manifest entries without a source here are to be deleted; None
        deletes nothing. Limiting deletions to the roots means syncing ``docs`` never deletes what another
        sync put in from elsewhere. Reading the manifest is the first store call, so an unreachable store
        fails here, before anything is written.
    """
    manifest = _manifest(store.manifest, [s.name for s in sources], delete_under)
    return _compare(spec, manifest, sources, delete_under, access_rules)


def _manifest(manifest: ManifestReader, names: list[str], delete_under: list[str] | None) -> dict[str, ManifestEntry]:
    """The whole manifest when deletions are planned (they need every entry under the roots), else only
    the entries of ``names``: a queue job of 10 files then reads 10 entries, not the corpus's."""
    return manifest.read() if delete_under is not None else manifest.read_sources(names)


def _compare(
    spec: PipelineSpec,
    manifest: Mapping[str, ManifestEntry],
    sources: list[Source],
    delete_under: list[str] | None,
    access_rules: Rules | None,
) -> SyncPlan:
    plan = SyncPlan()
    indexing_hash = spec.indexing_hash  # a digest of the spec: computed once, not per source
    rules = access_rules or {}
    for source in sources:
        entry = manifest.get(source.name)
        if entry is None:
            plan.added.append(source)
        elif entry.content_hash != source.content_hash or entry.pipeline_hash != (
            _entry_hash(indexing_hash, source.name, rules) if rules else indexing_hash
        ):
            plan.updated.append(source)
        else:
            plan.unchanged.append(source)
            if source.size is not None and (entry.size, entry.mtime_ns) != (source.size, source.mtime_ns):
                plan.restamped.append(FileStamp(source.name, source.size, source.mtime_ns))
    if delete_under is not None:
        seen = {s.name for s in sources}
        plan.deleted = sorted(s for s in manifest if s not in seen and _under(s, delete_under))
    return plan


def plan_sync(
    spec: PipelineSpec,
    store: RetrievalStore,
    roots: Iterable[str | Path],
    access_rules: Rules | None = None,
    rehash: bool = False,
) -> SyncPlan:
    """Plan a sync of the files under ``roots`` (files and directories), deletions included.

    :param rehash: Hash every file whatever its size and mtime (a full rebuild reads them all anyway, and
        so records the hash of what it indexed, even for an edit that kept both).
    """
    roots = list(roots)
    return plan_files(spec, store, roots, [source_name(r) for r in roots], access_rules, rehash)


def plan_files(
    spec: PipelineSpec,
    store: RetrievalStore,
    roots: list[str | Path],
    delete_under: list[str] | None,
    access_rules: Rules | None,
    rehash: bool = False,
) -> SyncPlan:
    """Plan the files under ``roots``: those whose size and mtime match the manifest are not read
    (unless ``rehash``)."""
    return plan_against(spec, store.manifest, roots, delete_under, access_rules, rehash)


def plan_against(
    spec: PipelineSpec,
    manifest: ManifestReader,
    roots: list[str | Path],
    delete_under: list[str] | None,
    access_rules: Rules | None,
    rehash: bool = False,
) -> SyncPlan:
    """:func:`plan_files` against any reader of a manifest (:mod:`ragship.quick_sync` reads it without
    opening the store)."""
    racy_from = time.time_ns() - RACY_WINDOW_NS  # see Source.stamped (inlined: this loop runs per file)
    files, missing = scan_files(roots)  # stat taken before any read: see Source.from_file
    entries = _manifest(manifest, [f.name for f in files], delete_under)
    sources, hashed = [], 0
    for name, path, size, mtime in files:
        entry = entries.get(name)
        if not rehash and entry is not None and entry.mtime_ns == mtime and entry.size == size:
            content_hash = entry.content_hash
        else:
            content_hash, hashed = file_sha256(path), hashed + 1
        sources.append(Source(name, content_hash, path, size, mtime if mtime < racy_from else None))
    plan = _compare(spec, entries, sources, delete_under, access_rules)
    plan.missing, plan.hashed = missing, hashed
    return plan


class Syncer:
    """Writes files and uploads into a store, recording the manifest: the one indexing path.

    Usage::

        syncer = Syncer(spec, store)
        syncer.index(["docs"])                    # new and changed files; deletes nothing
        syncer.sync(["docs"])                     # the same, and drops files gone from docs/
        syncer.sync(["docs"], mode="full")        # rebuild into a staged index, swap it in
        syncer.index_documents({"a.md": b"# A"})  # uploads: content in memory, no temp files

    :param store: Store to write into; it holds the manifest.
    :param batch_files: Sources per pipeline run and per manifest commit: bounds memory and lost work on a kill.
    :param access_rules: Path glob -> groups for files with no access mark (settings ``access.rules``); a
        change of what they decide for a file re-indexes it.
    ``spec``, ``max_file_bytes`` and ``remote`` shape the pipeline (see :class:`IndexingPipeline`).
    """

    def __init__(
        self,
        spec: PipelineSpec,
        store: RetrievalStore,
        batch_files: int = 32,
        max_file_bytes: int | None = None,
        remote: RemoteModels | None = None,
        access_rules: Rules | None = None,
    ) -> None:
        self.spec = spec
        self.access_rules = dict(access_rules or {})
        self.store = store
        self.batch_files = batch_files
        self.max_file_bytes = max_file_bytes
        self.remote = remote
        self._pipeline: IndexingPipeline | None = None

    def pipeline_for(self, store: RetrievalStore) -> IndexingPipeline:
        """The indexing pipeline writing to ``store``; the live store's is built once, on first use
        (a no-op run loads no model), a staged store gets a fresh one (models are shared by Haystack's
        embedder cache, so that costs no second load)."""
        from ragship.pipelines.indexing import IndexingPipeline

        if store is not self.store:
            return IndexingPipeline(self.spec, store, self.max_file_bytes, self.remote, self._rules)
        if self._pipeline is None:
            self._pipeline = IndexingPipeline(self.spec, store, self.max_file_bytes, self.remote, self._rules)
        return self._pipeline

    @property
    def _rules(self) -> dict[str, list[str]]:
        return {pattern: list(groups) for pattern, groups in self.access_rules.items()}

    def warm_up(self) -> None:
        """Load the models now rather than on the first write (services call this at startup)."""
        self.pipeline_for(self.store).warm_up()

    def index(
        self,
        sources: Iterable[str | Path],
        progress: SyncProgress | None = None,
        should_stop: StopCheck | None = None,
    ) -> SyncReport:
        """Index new and changed files under ``sources``; unchanged ones are skipped, nothing is deleted."""
        started = time.perf_counter()
        plan = plan_files(self.spec, self.store, list(sources), None, self.access_rules)
        return self._apply(plan, SyncMode.INCREMENTAL, False, False, progress, should_stop, started)

    def index_documents(self, documents: Mapping[str, bytes], progress: SyncProgress | None = None) -> SyncReport:
        """Index contents held in memory under the names their senders gave (uploads, queue jobs).

        A name already indexed with the same content and pipeline is skipped; a changed one replaces its
        older chunks. One bad document never stops the others: it is listed under ``failures``.

        :param progress: Called with (documents done, documents to index).
        """
        started = time.perf_counter()
        sources = [Source.from_bytes(n, c) for n, c in documents.items()]
        plan = plan_changes(self.spec, self.store, sources, None, self.access_rules)
        return self._apply(plan, SyncMode.INCREMENTAL, False, False, progress, None, started)

    def rebuild(
        self, sources: Iterable[str | Path], progress: SyncProgress | None = None, allow_failures: bool = False
    ) -> SyncReport:
        """Index ``sources`` into a fresh staged index and swap it in atomically (a full sync)."""
        return self.sync(sources, mode=SyncMode.FULL, allow_failures=allow_failures, progress=progress)

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
        started = time.perf_counter()
        mode = SyncMode(mode)
        plan = plan_sync(self.spec, self.store, sources, self.access_rules, rehash=mode == SyncMode.FULL)
        return self._apply(plan, mode, dry_run, allow_failures, progress, should_stop, started)

    def apply(
        self,
        plan: SyncPlan,
        started: float,
        dry_run: bool = False,
        allow_failures: bool = False,
        progress: SyncProgress | None = None,
    ) -> SyncReport:
        """Carry out an incremental sync planned elsewhere against this store's manifest (:mod:`ragship.quick_sync`
        plans before the store is opened; when there is work, this does it without planning again).

        :param started: ``time.perf_counter()`` when planning began (the report's duration counts from it).
        """
        return self._apply(plan, SyncMode.INCREMENTAL, dry_run, allow_failures, progress, None, started)

    def _apply(
        self,
        plan: SyncPlan,
        mode: SyncMode,
        dry_run: bool,
        allow_failures: bool,
        progress: SyncProgress | None,
        should_stop: StopCheck | None,
        started: float,
    ) -> SyncReport:
        report = SyncReport.of_plan(plan, mode, dry_run, self.store.describe())
        if dry_run:
            report.added, report.updated = len(plan.added), len(plan.updated)
        elif mode == SyncMode.FULL:
            from ragship.stores.staging import staged

            with staged(self.store) as rebuild:
                todo = plan.added + plan.updated + plan.unchanged
                self._write(rebuild.store, todo, plan, report, progress, should_stop)
                if report.cancelled:
                    rebuild.keep_live("stopped on request")
                elif report.failures and not allow_failures:
                    rebuild.keep_live("some files failed")
            report.rebuild = rebuild.outcome
        else:
            if plan.deleted:
                report.chunks_deleted += self.store.delete_by_source(plan.deleted)
                self.store.manifest.delete(plan.deleted)
            if plan.restamped:
                self.store.manifest.update_stamps(plan.restamped)
            self._write(self.store, plan.added + plan.updated, plan, report, progress, should_stop)
        report.duration_s = time.perf_counter() - started
        return report

    def _write(
        self,
        store: RetrievalStore,
        todo: list[Source],
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
        pipeline = self.pipeline_for(store)
        added = {id(s) for s in plan.added}
        updated = {id(s) for s in plan.updated}
        for start in range(0, len(todo), self.batch_files):
            if should_stop is not None and should_stop():
                report.cancelled = True
                return
            batch = todo[start : start + self.batch_files]
            outcome = pipeline.run([s.data for s in batch], [s.name for s in batch])
            report.failures.extend(outcome.failures)
            report.chunks_written += outcome.chunks_written
            report.chunks_deleted += outcome.chunks_deleted
            for name, n in outcome.chunks_by_source.items():
                report.chunks_by_source[name] = report.chunks_by_source.get(name, 0) + n
            failed = {f.source for f in outcome.failures}
            now = datetime.now(UTC).isoformat()
            entries = []
            stored = store.ids_by_sources([s.name for s in batch if s.name not in failed])  # one lookup a batch
            for source in batch:
                if source.name in failed:
                    continue
                ids = tuple(sorted(stored.get(source.name, set())))
                entries.append(
                    ManifestEntry(
                        source.name,
                        source.content_hash,
                        entry_hash(self.spec, source.name, self.access_rules),
                        ids,
                        now,
                        source.size,
                        source.mtime_ns,
                    )
                )
                report.added += id(source) in added
                report.updated += id(source) in updated
            store.manifest.write(entries)
            if progress:
                progress(min(start + len(batch), len(todo)), len(todo))
