"""A large initial ingest into Elasticsearch through the queue, 1 and 2 workers, against the raw int8 encoder.

Issue 30, goal 6: documents/s and chunks/s into Elasticsearch through the job queue with 1 and 2
``ragship worker`` processes, against the raw encoder's chunks/s on the same chunks in the same run; goal:
each worker at >= 0.9x of the raw encode. The documents are NFCorpus's (read from
../shared/data/nfcorpus, written one per file to a temporary folder, never into the repo); past its 3,633
documents they repeat with changed ids and a changed first line, so every chunk is new.

One run: an untimed warm-up ingest of ``--warm-docs`` documents (the node's JIT and caches), then in
rounds: ``queue, 1 worker`` (a fresh index), ``raw encode`` (the indexing pipeline's own document embedder,
loaded once in this process, encoding the chunks that the queue run wrote, read back from Elasticsearch
with their metadata and without their vectors), ``queue, 2 workers`` (a fresh index), and with
``--pinned`` (default) ``queue, 1 worker, pinned`` and ``raw encode, pinned``: Elasticsearch and Redis on
the first core(s), the worker and then the raw encode on the last one (Elasticsearch elsewhere, as in
production; each pinned row is compared with the pinned raw encode), and ``queue, 1 worker, pinned, N job
threads`` (``--pinned-threads``, default 2: one worker process on the same one core running N jobs at once,
``worker.threads``, so that one job encodes while another waits for Elasticsearch).
The queue runs are ``queue_throughput.run_queue``: warmed workers, jobs of ``--per-job`` files, timed from
the first submit to the last job's recorded end. Beside the rates: CPU seconds (user + system) per chunk of
the workers plus Redis, of this process for the raw encode, and of Elasticsearch apart.

    .venv/bin/python benchmarks/large_ingest.py [--docs 1000] [--workers 1 2] [--per-job 20] [--rounds 1]
        [--warm-docs 200] [--no-pinned] [--pinned-threads 2] [--es URL] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from queue_throughput import (  # benchmarks/ is the script directory
    Config,
    bench_home,
    cpu_seconds,
    own_cpu_seconds,
    run_queue,
)
from reindex_incremental import NFCORPUS
from rich.console import Console
from rich.table import Table

from ragship.settings import load_settings


def write_documents(folder: Path, n: int) -> list[Path]:
    """``n`` documents, one per file: NFCorpus's, then the same again with changed ids and first lines."""
    records = [json.loads(line) for line in (NFCORPUS / "corpus.jsonl").open()]
    files = []
    for i in range(n):
        doc = records[i % len(records)]
        copy = i // len(records)
        name = doc["_id"] if copy == 0 else f"{doc['_id']}-copy{copy}"
        title = doc.get("title", "") if copy == 0 else f"{doc.get('title', '')} (copy {copy})"
        path = folder / f"{name}.txt"
        path.write_text(f"{title}\n\n{doc['text']}\n")
        files.append(path)
    return files


def raw_encode(config: Config, corpus: Path) -> tuple[int, float, float]:
    """Encode the chunks of ``config``'s index with the indexing pipeline's embedder: (chunks, seconds, CPU s)."""
    from ragship.assembly import served_spec
    from ragship.stores import open_store

    settings = config.settings()
    spec, _ = served_spec(settings)
    return encode_stored(open_store(config.store, embedding_dim=None, settings=settings), spec, corpus)


def encode_stored(store: Any, spec: Any, corpus: Path) -> tuple[int, float, float]:
    """Encode the chunks ``store`` holds from files under ``corpus`` (read back without their vectors) with the
    indexing pipeline's own embedder, warmed first: (chunks, seconds, CPU s)."""
    from haystack import Document

    from ragship.components.embedders import DocumentEmbedder
    from ragship.pipelines import find_component
    from ragship.pipelines.indexing import IndexingPipeline

    stored = [d for d in store.filter_documents() if str(d.meta.get("source", "")).startswith(str(corpus))]
    chunks = [Document(id=d.id, content=d.content, meta=dict(d.meta)) for d in stored]  # no vectors
    pipeline = IndexingPipeline(spec, store)
    pipeline.warm_up()
    embedder: Any = pipeline.pipeline.get_component(find_component(pipeline.pipeline, DocumentEmbedder, "indexing"))
    embedder.run(documents=[Document(content="Warm-up: a short note that runs the model once.")])
    cpu = own_cpu_seconds()
    started = time.perf_counter()
    embedded = embedder.run(documents=chunks)["documents"]
    seconds = time.perf_counter() - started
    cpu = own_cpu_seconds() - cpu
    if len(embedded) != len(chunks) or any(d.embedding is None for d in embedded):
        raise SystemExit("the raw encode did not embed every chunk")
    return len(chunks), seconds, cpu


@contextlib.contextmanager
def elasticsearch(url: str | None, console: Console) -> Iterator[tuple[str, int | None]]:
    """The cluster at ``url``, else a private local node (port 0) removed on exit; yields its URL and, for the
    private node, its pid (whose CPU the benchmarks count apart)."""
    if url:
        yield url, None
        return
    from ragship.local.es_node import LocalElasticsearch

    node = LocalElasticsearch(load_settings().local_es, name=f"bench-ingest-{os.getpid()}")
    url = node.start(port=0)
    console.print(f"Elasticsearch at {url}")
    try:
        yield url, node.status().pid
    finally:
        node.remove()


def pin(pid: int, cpus: set[int]) -> None:
    """Pin every thread of process ``pid`` (and so the threads they start later) to ``cpus``."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), cpus)
        except (ProcessLookupError, FileNotFoundError):
            continue  # a thread that ended meanwhile


def warm_es(config: Config, files: list[Path], warm_dir: Path, logs: Path, console: Console, redis_pid: int,
            per_job: int) -> None:  # fmt: skip
    """An untimed queue run into a throwaway index: the node's JIT, caches and thread pools warmed."""
    started = time.perf_counter()
    run_queue(config, files, 1, per_job, warm_dir, logs, console, redis_pid)
    from ragship.stores import open_store

    open_store(config.store, embedding_dim=None, settings=config.settings()).delete_index()  # type: ignore[attr-defined]
    console.print(f"Elasticsearch warmed with {len(files)} documents in {time.perf_counter() - started:.0f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=1000, help="Documents (default 1000; NFCorpus has 3,633)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="Worker counts (default 1 2)")
    parser.add_argument("--per-job", type=int, default=20, help="Files per job (default 20)")
    parser.add_argument("--rounds", type=int, default=1, help="Alternating rounds; medians reported (default 1)")
    parser.add_argument("--warm-docs", type=int, default=200, help="Untimed warm-up ingest first (default 200)")
    parser.add_argument(
        "--pinned", action=argparse.BooleanOptionalAction, default=True,
        help="Also 1 worker and the raw encode on the last core, Elasticsearch and Redis on the others",
    )  # fmt: skip
    parser.add_argument(
        "--pinned-threads", type=int, default=2,
        help="With --pinned, also one pinned worker running this many jobs at once (worker.threads; 1: no such row)",
    )  # fmt: skip
    parser.add_argument("--es", help="Elasticsearch URL (default: a private local node, removed at the end)")
    parser.add_argument("--json", type=Path, help="Also write the results to this JSON file")
    args = parser.parse_args()
    if not NFCORPUS.exists():
        raise SystemExit(f"needs {NFCORPUS} (BEIR NFCorpus)")
    console = Console(width=120)
    cores = sorted(os.sched_getaffinity(0))
    if args.pinned and (args.es or len(cores) < 2):
        raise SystemExit("--pinned needs 2 cores and the private node (no --es); or pass --no-pinned")
    runs: dict[str, list[dict[str, float]]] = {}
    chunks = 0
    with elasticsearch(args.es, console) as (es_url, es_pid), tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "corpus"
        corpus.mkdir()
        files = write_documents(corpus, args.docs)
        redis, env, redis_pid, warm_dir, logs = bench_home(root)
        try:
            if args.warm_docs:
                warm_es(Config(root, "warm", es_url, env), files[: args.warm_docs], warm_dir, logs, console,
                        redis_pid, args.per_job)  # fmt: skip
            for r in range(args.rounds):
                plan = [(n, False, 1) for n in args.workers] + ([(1, True, 1)] if args.pinned else [])
                if args.pinned and args.pinned_threads > 1:
                    plan.append((1, True, args.pinned_threads))
                for n, pinned, threads in plan:
                    label = f"queue, {n} worker{'s' if n > 1 else ''}" + (", pinned" if pinned else "")
                    label += f", {threads} job threads" if threads > 1 else ""
                    config = Config(root, f"w{n}{'p' if pinned else ''}t{threads}-r{r}", es_url, env)
                    if pinned:  # production's layout: Elasticsearch and Redis elsewhere, the worker alone
                        assert es_pid is not None
                        pin(es_pid, set(cores[:-1]))
                        pin(redis_pid, set(cores[:-1]))
                        # Every thread of this process (the encoder's thread pools outlive a pipeline),
                        # and the workers started from it inherit the core.
                        pin(os.getpid(), {cores[-1]})
                    try:
                        found = timed_queue(config, files, n, args, warm_dir, logs, console, redis_pid, es_pid,
                                            runs, label, r, threads)  # fmt: skip
                        if chunks and found != chunks:
                            raise SystemExit(f"{label} wrote {found} chunks, the first run {chunks}")
                        chunks = found
                        if n == 1 and threads == 1:  # the raw encode on the same chunks, on the same cores
                            n_chunks, raw_s, raw_cpu = raw_encode(config, corpus)
                            raw_label = "raw encode (int8, in-process)" + (", pinned" if pinned else "")
                            runs.setdefault(raw_label, []).append(
                                {"workers": 0, "seconds": raw_s, "cpu_s": raw_cpu, "es_cpu_s": 0.0}
                            )
                            console.print(f"round {r + 1}, {raw_label}: {n_chunks / raw_s:.1f} chunks/s")
                    finally:
                        if pinned:
                            pin(os.getpid(), set(cores))
                            pin(es_pid or 0, set(cores))
                            pin(redis_pid, set(cores))
        finally:
            redis.remove()
    report(console, args, runs, len(files), chunks)


def timed_queue(config: Config, files: list[Path], n: int, args: argparse.Namespace, warm_dir: Path, logs: Path,
                console: Console, redis_pid: int, es_pid: int | None, runs: dict[str, list[dict[str, float]]],
                label: str, r: int, threads: int = 1) -> int:  # fmt: skip
    """One timed queue run into a fresh index, recorded under ``label``; returns the chunks it wrote."""
    es_cpu = cpu_seconds([es_pid]) if es_pid else 0.0
    seconds, cpu, profile = run_queue(config, files, n, args.per_job, warm_dir, logs, console, redis_pid,
                                      threads=threads)  # fmt: skip
    es_cpu = cpu_seconds([es_pid]) - es_cpu if es_pid else 0.0
    found = len(config.corpus_chunk_ids(files[0].parent))
    runs.setdefault(label, []).append({"workers": n, "seconds": seconds, "cpu_s": cpu, "es_cpu_s": es_cpu, **profile})
    console.print(
        f"round {r + 1}, {label}: {seconds:.1f}s, {found / seconds:.1f} chunks/s, "
        f"{cpu:.1f} CPU s (+ Elasticsearch {es_cpu:.1f}); gaps {profile['between_jobs_s']:.1f}s"
    )
    return found


def report(console: Console, args: argparse.Namespace, runs: dict[str, list[dict[str, float]]], docs: int,
           chunks: int) -> None:  # fmt: skip
    rows = []
    for name, found in runs.items():
        # Each configuration against the raw encode on the same cores (the pinned rows against the pinned one).
        raw = runs["raw encode (int8, in-process)" + (", pinned" if ", pinned" in name else "")]
        raw_rate = chunks / statistics.median(r["seconds"] for r in raw)
        seconds = statistics.median(r["seconds"] for r in found)
        workers = int(found[0]["workers"])
        rate = chunks / seconds
        rows.append({
            "configuration": name, "workers": workers, "seconds": seconds, "docs_per_s": docs / seconds,
            "chunks_per_s": rate, "per_worker_vs_raw": rate / max(workers, 1) / raw_rate,
            "cpu_s_per_chunk": statistics.median(r["cpu_s"] for r in found) / chunks,
            "es_cpu_s_per_chunk": statistics.median(r["es_cpu_s"] for r in found) / chunks, "runs": found,
        })  # fmt: skip
    table = Table(title=f"Ingest of {docs} documents ({chunks} chunks) into Elasticsearch, {os.cpu_count()} cores")
    for column in (
        "configuration",
        "seconds",
        "docs/s",
        "chunks/s",
        "per worker ÷ raw",
        "CPU s/chunk",
        "ES CPU s/chunk",
    ):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        table.add_row(
            row["configuration"], f"{row['seconds']:.1f}", f"{row['docs_per_s']:.2f}", f"{row['chunks_per_s']:.1f}",
            f"{row['per_worker_vs_raw']:.2f}x", f"{row['cpu_s_per_chunk']:.4f}", f"{row['es_cpu_s_per_chunk']:.4f}",
        )  # fmt: skip
    console.print(table)
    if args.json:
        result = {
            "command": " ".join(["benchmarks/large_ingest.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "cores": os.cpu_count(),
            "docs": docs,
            "chunks": chunks,
            "per_job": args.per_job,
            "rounds": args.rounds,
            "warm_docs": args.warm_docs,
            "rows": rows,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
