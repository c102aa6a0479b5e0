"""Plan an incremental sync before opening the store, so that a run with nothing to do loads no Haystack.

Haystack imports torch whenever it is installed, and the store, the converters and the pipeline import
Haystack: a no-change ``ragship sync`` of 100,000 files spent ~3.6 s of its ~4.8 s CPU importing them. Here
the embedded store's manifest is read with sqlite3 (:mod:`ragship.stores.manifest_file`) and the folders are
walked by the same planner as :meth:`Syncer.sync <ragship.sync.Syncer.sync>`. Nothing to write (no new,
changed, deleted or re-stamped file) gives the report right away; otherwise the caller opens the store and
carries out this very plan (:meth:`Syncer.apply <ragship.sync.Syncer.apply>`), so nothing is scanned twice.
Other backends (Elasticsearch) and full syncs take the ordinary path.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ragship.access.marks import Rules
from ragship.enums import SyncMode
from ragship.models.resolve import embedding_dimension
from ragship.source_files import source_name
from ragship.spec import PipelineSpec
from ragship.stores.embedded_schema import location_path
from ragship.stores.manifest_file import open_manifest
from ragship.stores.registry import backend_for
from ragship.sync import SyncPlan, SyncReport, plan_against


@dataclass
class QuickPlan:
    """An incremental sync planned against the embedded store's manifest file."""

    plan: SyncPlan
    store: str  # the store as its describe() says it (reports)
    started: float  # time.perf_counter() when planning began

    @property
    def has_work(self) -> bool:
        """True when carrying the plan out writes something (chunks or manifest entries)."""
        p = self.plan
        return bool(p.added or p.updated or p.deleted or p.restamped)

    def report(self, dry_run: bool) -> SyncReport:
        """The run's report when there is no work (what :meth:`Syncer.sync` reports for the same plan)."""
        report = SyncReport.of_plan(self.plan, SyncMode.INCREMENTAL, dry_run, self.store)
        report.duration_s = time.perf_counter() - self.started
        return report


def plan_quickly(
    spec: PipelineSpec, location: str, roots: list[str | Path], access_rules: Rules | None
) -> QuickPlan | None:
    """Plan an incremental sync of ``roots`` into the store at ``location`` without opening it.

    None when the store is not an embedded one, or its manifest cannot be read without opening it (not
    created yet, another embedding size, unreadable): the caller then runs the ordinary sync, which
    creates the store or reports the problem as it always has.
    """
    started = time.perf_counter()
    backend, where = backend_for(location)
    if backend.name != "embedded":
        return None
    path = Path(location_path(where))
    model = spec.embedding_model
    manifest = open_manifest(path, embedding_dimension(model) if model else None)
    if manifest is None:
        return None
    try:
        plan = plan_against(spec, manifest, list(roots), [source_name(r) for r in roots], access_rules)
    except sqlite3.Error:
        return None  # the store reports it in its own words when opened
    finally:
        manifest.close()
    # EmbeddedDocumentStore.describe()'s words (tests/integration/test_quick_sync.py holds them equal).
    return QuickPlan(plan, f"embedded store at {path}", started)
