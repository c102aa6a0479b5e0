"""Where a queue job's time goes: the worker's indexing call without Redis, against direct indexing.

A worker runs ``Syncer.index`` on each job's paths (``ragship.queue.actors.index_job``). This runs, in one
process on the same NFCorpus files (one per document, read from ../shared/data/nfcorpus), each into a
fresh embedded store after one warm-up file:

1. ``direct``: one ``Syncer.index`` call over all files (batches of ``index_batch_files``, 32);
2. ``job-sized``: one ``Syncer.index`` call per ``--per-job`` files, as a worker makes them, under
   cProfile; the top functions by cumulative time are printed.

``make bench-queue``'s 1-worker time minus ``job-sized`` is what the queue itself adds (Redis, job
state, Dramatiq); ``job-sized`` minus ``direct`` is what small jobs cost in-process.

    .venv/bin/python benchmarks/queue_overhead_profile.py [--limit 200] [--per-job 10]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import tempfile
import time
from pathlib import Path

from reindex_incremental import write_corpus  # benchmarks/ is the script directory

from ragship.assembly import open_indexer, served_spec
from ragship.settings import load_settings


def indexer(root: Path, name: str):  # type: ignore[no-untyped-def]
    settings = load_settings(store=str(root / name))
    spec, _ = served_spec(settings)
    syncer = open_indexer(spec, str(root / name), settings=settings)
    warm = root / f"{name}-warm.txt"
    warm.write_text(f"Warm-up {name}\n\nA short note that loads the embedding model.\n")
    syncer.index([warm])
    return syncer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=200, help="Use the first N documents (default 200)")
    parser.add_argument("--per-job", type=int, default=10, help="Files per job (default 10)")
    parser.add_argument("--json", type=Path, help="Write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "nfcorpus-files"
        corpus.mkdir()
        files = write_corpus(corpus, args.limit)
        direct = indexer(root, "direct")
        started = time.perf_counter()
        direct.index(files)
        direct_s = time.perf_counter() - started
        jobs = indexer(root, "jobs")
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for i in range(0, len(files), args.per_job):
            jobs.index(files[i : i + args.per_job])
        profile.disable()
        jobs_s = time.perf_counter() - started
    out = io.StringIO()
    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
    print(out.getvalue())
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {"docs": len(files), "per_job": args.per_job, "direct_s": round(direct_s, 2),
              "job_sized_s": round(jobs_s, 2), "ratio": round(jobs_s / direct_s, 3), "loadavg": load}  # fmt: skip
    print(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
