"""Where a worker's CPU goes in an ingest into Elasticsearch: one process, jobs of ``--per-job`` files, cProfile.

A worker runs ``Syncer.index`` on each job's files (``ragship.queue.actors.index_job``). This runs the
same calls without Redis, into a fresh index of an Elasticsearch node (a private local one unless
``--es``), warmed with one file first, under cProfile, then encodes the chunks it wrote once more with
the pipeline's own embedder (the raw encode of ``large_ingest.py``). It prints the split of the jobs' time
over the parts of the pipeline (cumulative time of each part's entry point) and the CPU seconds per chunk
of the jobs, of the raw encode and of Elasticsearch.

    .venv/bin/python benchmarks/ingest_profile.py [--docs 200] [--per-job 20] [--es URL] [--top 0]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from large_ingest import elasticsearch, encode_stored, write_documents  # benchmarks/ is the script directory
from queue_throughput import cpu_seconds, own_cpu_seconds
from rich.console import Console

from ragship.settings import load_settings

# Parts of a job: (label, file suffix, function name) of the entry point whose cumulative time is the part's.
PARTS = [
    ("convert (read + parse files)", "components/converters.py", "run"),
    ("split into chunks", "components/splitters.py", "run"),
    ("embed (DocumentEmbedder.run)", "sentence_transformers_document_embedder.py", "run"),
    ("store write (StoreWriter.run)", "components/writers.py", "run"),
    ("  client-side stemming", "stores/es_text.py", "fields"),
    ("  bulk body JSON", "elastic_transport/_serializer.py", "dumps"),
    ("  bulk request (streaming_bulk)", "elasticsearch/helpers/actions.py", "streaming_bulk"),
    ("  refresh", "elasticsearch/_sync/client/indices.py", "refresh"),
    ("manifest reads", "stores/es_manifest.py", "read_sources"),
    ("manifest writes", "stores/es_manifest.py", "write"),
]


def split(stats: pstats.Stats) -> dict[str, float]:
    """Cumulative seconds of each part's entry point (recursive calls counted once)."""
    raw: Any = stats.stats  # type: ignore[attr-defined]
    out = {}
    for label, suffix, name in PARTS:
        out[label] = sum(v[3] for (file, _, fn), v in raw.items() if file.endswith(suffix) and fn == name)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=200, help="Documents (default 200)")
    parser.add_argument("--per-job", type=int, default=20, help="Files per job (default 20)")
    parser.add_argument("--es", help="Elasticsearch URL (default: a private local node, removed at the end)")
    parser.add_argument("--top", type=int, default=0, help="Also print the top N functions by own time")
    parser.add_argument(
        "--refresh", choices=["per-write", "at-end"], default="per-write",
        help="per-write: the store's refresh after each bulk write (default); at-end: index refresh_interval -1 "
        "during the jobs, no refresh per write, one refresh at the end (restored to the default after)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="Write the figures here")
    args = parser.parse_args()
    console = Console(width=120)
    with elasticsearch(args.es, console) as (es_url, es_pid):
        result = profile_jobs(args, es_url, es_pid)
    console.print_json(json.dumps(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


def profile_jobs(args: argparse.Namespace, es_url: str, es_pid: int | None) -> dict[str, Any]:
    from ragship.assembly import open_indexer, served_spec
    from ragship.stores import open_store

    settings = load_settings(store=es_url, es={"index": f"bench-profile-{uuid.uuid4().hex[:8]}"})
    spec, _ = served_spec(settings)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        corpus.mkdir()
        files = write_documents(corpus, args.docs)
        syncer = open_indexer(spec, es_url, settings=settings)
        warm = root / "warm.txt"
        warm.write_text("Warm-up\n\nA short note that loads the embedding model.\n")
        syncer.index([warm])
        es: Any = syncer.store
        if args.refresh == "at-end":
            es.refresh_after_write = False
            es.client.indices.put_settings(index=es.alias, settings={"index": {"refresh_interval": "-1"}})
        profile = cProfile.Profile()
        es_cpu = cpu_seconds([es_pid]) if es_pid else 0.0
        cpu = own_cpu_seconds()
        started = time.perf_counter()
        profile.enable()
        for i in range(0, len(files), args.per_job):
            syncer.index(files[i : i + args.per_job])
        if args.refresh == "at-end":
            es.client.indices.put_settings(index=es.alias, settings={"index": {"refresh_interval": None}})
            es.client.indices.refresh(index=es.alias)
        profile.disable()
        jobs_s = time.perf_counter() - started
        jobs_cpu = own_cpu_seconds() - cpu
        es_cpu = cpu_seconds([es_pid]) - es_cpu if es_pid else 0.0
        store = open_store(es_url, embedding_dim=None, settings=settings)
        n, raw_s, raw_cpu = encode_stored(store, spec, corpus)
        store.delete_index()
    stats = pstats.Stats(profile)
    if args.top:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    parts = split(stats)
    total = float(stats.total_tt)  # type: ignore[attr-defined]
    return {
        "docs": len(files), "chunks": n, "per_job": args.per_job, "refresh": args.refresh,
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "jobs_s": round(jobs_s, 2), "raw_encode_s": round(raw_s, 2),
        "jobs_cpu_s_per_chunk": round(jobs_cpu / n, 5), "raw_cpu_s_per_chunk": round(raw_cpu / n, 5),
        "cpu_vs_raw": round(jobs_cpu / raw_cpu, 3), "es_cpu_s_per_chunk": round(es_cpu / n, 5),
        "profiled_s": round(total, 2),
        "split_s": {k: round(v, 2) for k, v in parts.items()},
        "split_share": {k: round(v / total, 3) for k, v in parts.items()},
    }  # fmt: skip


if __name__ == "__main__":
    main()
