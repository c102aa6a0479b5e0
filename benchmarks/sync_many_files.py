"""Incremental sync of many small files: the size+mtime check against hashing every file, side by side.

Writes N small .txt files (default 100,000; one short paragraph each, mtimes an hour old, as in a corpus
that was not edited in the last seconds) in a temporary folder, then, in one run:

1. ``full``: a full sync (staged index + atomic swap) of the first ``--full-sample`` files into a store of
   their own, extrapolated per file to N (embedding 100,000 files takes ~40 min on the shared 2-core box);
2. a second embedded store gets the manifest a full sync of all N files records (hash, pipeline hash,
   size, mtime: the same entries, written directly; no chunks), then
3. ``no change``: an incremental sync, with the stamp check (now) and with the old path (hash every file);
4. ``1% changed``: edits 1% of the files (appends a line) and syncs, both ways (a fresh 1% for each); the
   changed files are embedded and written for real.

Besides the in-process ``Syncer.sync`` rows, ``no change (process)`` runs ``ragship sync DIR --json`` as a
user does (a new Python process: imports, settings, store open, plan), and ``imports only`` times a process
that only imports what that command imports, so the two show how much of the command is start-up.

Goals (issue 30): no change <= 2 s at 100,000 files (warm file cache), 1% changed <= 5% of full. The old
path is the code before the stamp check: it hashes every file before comparing with the manifest.

    .venv/bin/python benchmarks/sync_many_files.py [--files 100000] [--json benchmarks/results-sync.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ragship import sync
from ragship.access.marks import Rules
from ragship.assembly import store_for
from ragship.components.converters import source_name
from ragship.pipelines.indexing import discover_files
from ragship.spec import PipelineSpec, default_spec
from ragship.stores.base import ManifestEntry, RetrievalStore
from ragship.sync import Source, Syncer, SyncPlan, SyncReport

WORDS = ["amber", "basalt", "cobalt", "dolomite", "emerald", "feldspar", "garnet", "hematite", "ilmenite", "jasper",
         "kyanite", "lazurite", "malachite", "nephrite", "obsidian", "peridot", "quartz", "rhodonite", "sapphire",
         "topaz"]  # fmt: skip
AN_HOUR_AGO = time.time() - 3600


def write_files(folder: Path, n: int) -> list[Path]:
    """N small files in folders of 1,000, each with a few words that make its text unique."""
    rng, files = random.Random(7), []
    for i in range(n):
        sub = folder / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            sub.mkdir()
        path = sub / f"f{i:06d}.txt"
        words = " ".join(rng.choice(WORDS) for _ in range(12))
        path.write_text(f"Note {i}. This note is about {words}.\n")
        os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
        files.append(path)
    return files


def old_plan_sync(
    spec: PipelineSpec,
    store: RetrievalStore,
    roots: Iterable[str | Path],
    access_rules: Rules | None = None,
    rehash: bool = True,
) -> SyncPlan:
    """The plan before the stamp check: hash every file, then compare (sync.py before issue 30)."""
    roots = list(roots)
    files, missing = discover_files(roots)
    sources = [Source.from_file(p) for p in files]
    plan = sync.plan_changes(spec, store, sources, [source_name(r) for r in roots], access_rules)
    plan.missing, plan.hashed = missing, len(sources)
    return plan


@contextlib.contextmanager
def old_path() -> Iterator[None]:
    """Run Syncer.sync with the old plan (the benchmark's only patch; the store and pipeline are the same)."""
    saved, sync.plan_sync = sync.plan_sync, old_plan_sync
    try:
        yield
    finally:
        sync.plan_sync = saved


def seed_manifest(spec: PipelineSpec, store: RetrievalStore, folder: Path) -> None:
    """The manifest entries a full sync of ``folder`` records, written directly (no chunks)."""
    plan = sync.plan_sync(spec, store, [folder])
    pipeline_hash = sync.entry_hash(spec, "", {})  # no access rules here
    entries = [ManifestEntry(s.name, s.content_hash, pipeline_hash, (), "", s.size, s.mtime_ns) for s in plan.added]
    store.manifest.write(entries)


def edit(files: list[Path], fraction: float, seed: int) -> int:
    changed = random.Random(seed).sample(files, max(1, round(len(files) * fraction)))
    for path in changed:
        with path.open("a") as fh:
            fh.write("Revised: this note was updated.\n")
        os.utime(path, (AN_HOUR_AGO + seed, AN_HOUR_AGO + seed))  # old mtime: no racy re-hash next run
    return len(changed)


def cli_sync(folder: Path, store: Path, spec_file: Path, expected: int, src: Path | None = None) -> SyncReport:
    """``ragship sync`` in a new process; refuses to go on if it would not be a no-change run (a spec that
    differs from the seeded one would re-embed every file). ``src``: run the ragship package found there
    instead (an older checkout's ``src``, for a before/after in one run)."""
    command = [str(Path(sys.executable).with_name("ragship")), "sync", str(folder), "--store", str(store)]
    command += ["--spec", str(spec_file), "--json"]
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    report = json.loads(done.stdout)
    if report["unchanged"] != expected:
        raise SystemExit(f"ragship sync did not find {expected} unchanged files: {report}")
    return SyncReport(mode=report["mode"], dry_run=False, store=report["store"], unchanged=report["unchanged"],
                      hashed=report["hashed"])  # fmt: skip


IMPORTS = "import ragship.cli, ragship.cli.index, ragship.assembly, ragship.sync, ragship.settings"


def imports_only() -> SyncReport:
    subprocess.run([sys.executable, "-c", IMPORTS], check=True)
    return SyncReport(mode="incremental", dry_run=False, store="-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=100_000, help="Number of files (default 100000)")
    parser.add_argument("--changed", type=float, default=0.01, help="Fraction of files edited (default 0.01)")
    parser.add_argument("--full-sample", type=int, default=2000, help="Files in the timed full sync (default 2000)")
    parser.add_argument("--repeat", type=int, default=1, help="Runs of each no-change row (default 1)")
    parser.add_argument("--json", type=Path, help="Write the figures here")
    parser.add_argument("--baseline-src", type=Path, help="Also time `ragship sync` with the package in this src")
    args = parser.parse_args()
    console, spec = Console(width=140), default_spec()
    rows: list[dict[str, object]] = []

    def timed(name: str, path: str, run: Callable[[], SyncReport], scale: float = 1.0) -> None:
        # CPU seconds of this process beside the wall time: on the shared box (load 30-100 on 2 cores) the
        # wall time mostly measures the wait for a core.
        started, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
        report = run()
        seconds = (time.perf_counter() - started) * scale
        cpu_s = (time.process_time() - cpu + _children_cpu() - child) * scale  # a subprocess's CPU included
        counts = report.to_dict() if report is not None else {}
        rows.append({"run": name, "path": path, "seconds": round(seconds, 3), "cpu_s": round(cpu_s, 3), **{
            k: counts.get(k) for k in ("added", "updated", "unchanged", "hashed", "chunks_written")},
            "loadavg_1m": os.getloadavg()[0]})  # fmt: skip
        console.print(rows[-1])

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "files"
        folder.mkdir()
        started = time.perf_counter()
        files = write_files(folder, args.files)
        console.print(f"wrote {len(files)} files in {time.perf_counter() - started:.1f} s")
        sample = Syncer(spec, store_for(spec, str(Path(tmp) / "sample")), batch_files=256)
        sample.warm_up()  # model load is not sync work
        part = files[: args.full_sample]
        timed(f"full ({len(part)} files x {len(files) / len(part):.0f})", "-",
              lambda: sample.sync(part, mode="full"), len(files) / len(part))  # fmt: skip
        store = store_for(spec, str(Path(tmp) / "store"))
        seed_manifest(spec, store, folder)
        syncer = Syncer(spec, store, batch_files=256)
        spec_file = spec.save(Path(tmp) / "spec.yaml")
        store_dir = Path(tmp) / "store"
        for _ in range(args.repeat):  # the shared box's load moves by the second: repeats show the spread
            timed("no change", "stamps", lambda: syncer.sync([folder]))
            timed("no change (process)", "stamps", lambda: cli_sync(folder, store_dir, spec_file, len(files)))
            timed("imports only (process)", "-", imports_only)
            if args.baseline_src:
                timed("no change (process, baseline src)", "stamps",
                      lambda: cli_sync(folder, store_dir, spec_file, len(files), args.baseline_src))  # fmt: skip
        with old_path():
            timed("no change", "hash all (old)", lambda: syncer.sync([folder]))
        console.print(f"manifest seeded ({len(store.manifest.read())} entries)")
        n = edit(files, args.changed, 1)
        timed(f"{n} changed", "stamps", lambda: syncer.sync([folder]))
        n = edit(files, args.changed, 2)
        with old_path():
            timed(f"{n} changed", "hash all (old)", lambda: syncer.sync([folder]))
    full_s = float(rows[0]["seconds"])  # type: ignore[arg-type]
    table = Table(title=f"Sync of {len(files)} small files into {store.describe()}")
    for column in ("run", "path", "seconds", "% of full", "hashed", "updated", "unchanged", "chunks written"):
        table.add_column(column, justify="left" if column in ("run", "path") else "right")
    for r in rows:
        seconds = float(r["seconds"])  # type: ignore[arg-type]
        table.add_row(str(r["run"]), str(r["path"]), f"{seconds:.2f}", f"{100 * seconds / full_s:.2f}%",
                      str(r["hashed"]), str(r["updated"]), str(r["unchanged"]), str(r["chunks_written"]))  # fmt: skip
    console.print(table)
    if args.json:
        load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
        args.json.write_text(json.dumps({"files": len(files), "loadavg": load, "rows": rows}, indent=2) + "\n")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
