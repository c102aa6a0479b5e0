"""Indexing throughput through the job queue with 1, 2 and 4 workers, against the same corpus indexed directly.

Writes each NFCorpus document (title + abstract) to its own .txt file in a temporary folder (read from
../shared/data/nfcorpus, never copied into the repo), starts a private Redis on a free port (the library's
``LocalRedis``, in a temporary ragship home) and, in one run:

1. ``direct``: indexes the files in this process with ``Syncer.index`` into a fresh store, after indexing
   one small warm-up file outside the corpus (model load and first inference are not indexing work);
2. ``queue, N workers``: for each N, a fresh store and N ``ragship worker --processes 1 --threads 1``
   processes. Warm-up jobs (one new small file each, outside the corpus) run until every worker process
   has finished one, so all have loaded the model; then the corpus is submitted as jobs of ``--per-job``
   files (``JobQueue.submit_paths``) and timed from the first submission to the last job finished.

Each queue run must leave exactly the direct run's chunks of the corpus (same ids), or the bench fails.
"queue overhead" is the 1-worker time divided by the direct time (issue 13).

Beside wall time, each configuration reports the CPU seconds (user + system) it spent per document: the
direct run's own process, or the worker processes (the ``ragship worker`` tree) plus Redis. On a machine
shared with other work these move far less than wall time. ``--rounds R`` runs the configurations R times,
alternately (direct, queue, direct, queue, ...), each on a fresh store, and reports medians. From the job
states it also reports where a queue run's wall time went: inside the jobs (``started_at`` to
``finished_at``) and between them (a worker idle while jobs waited: fetch, acknowledgement, state writes).

    .venv/bin/python benchmarks/queue_throughput.py [--limit N] [--workers 1 2 4] [--per-job K] [--rounds R]
        [--json FILE]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
from reindex_incremental import NFCORPUS, write_corpus  # benchmarks/ is the script directory
from rich.console import Console
from rich.table import Table

from ragship.local.process import poll, stop_groups
from ragship.local.redis_server import LocalRedis
from ragship.planning.capacity import default_capacity_file, update_capacity_file
from ragship.queue.client import JobQueue
from ragship.queue.job_state import JobStatus
from ragship.settings import Settings, load_settings

RAGSHIP = str(Path(sys.executable).parent / "ragship")


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 0.1) -> Any:
    value = poll(check, timeout_s, every_s)
    if not value:
        raise SystemExit(f"timed out after {timeout_s:.0f}s waiting for {what}")
    return value


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and all their descendants (live ones, and reaped children)."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for proc in tree:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                t = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += t.user + t.system + t.children_user + t.children_system
    return total


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children (live ones are workers and Redis)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def job_profile(jobs: list[Any], started: float, seconds: float) -> dict[str, float]:
    """Where a queue run's wall time went, from the job states (Redis clock, one host): in jobs, between them."""
    spans = sorted((float(j.started_at), float(j.finished_at)) for j in jobs if j.started_at and j.finished_at)
    in_jobs = sum(end - start for start, end in spans)
    # Per worker process, the idle time between one job's end and its next job's start.
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for j in jobs:
        if j.started_at and j.finished_at:
            by_pid.setdefault(int(j.pid or 0), []).append((float(j.started_at), float(j.finished_at)))
    gaps = [b[0] - a[1] for runs in by_pid.values() for a, b in zip(sorted(runs), sorted(runs)[1:], strict=False)]
    first_wait = spans[0][0] - started if spans else 0.0
    return {
        "in_jobs_s": in_jobs,
        "mean_job_s": in_jobs / len(spans) if spans else 0.0,
        "between_jobs_s": sum(gaps),
        "mean_gap_s": statistics.mean(gaps) if gaps else 0.0,
        "first_start_s": first_wait,
        "wall_s": seconds,
    }


def final_job(queue: JobQueue, job_id: str) -> Any:
    """The job once it has ended, else None."""
    job = queue.job(job_id)
    return job if job.status.final else None


class Config:
    """The settings of one configuration: its own store (and Elasticsearch index) and queue namespace."""

    def __init__(self, root: Path, name: str, store_url: str | None, env: dict[str, str]) -> None:
        self.name = name
        self.env = dict(env)
        if store_url:
            self.store = store_url
            self.env["RAGSHIP_ES__INDEX"] = f"bench-queue-{name}-{uuid.uuid4().hex[:8]}"
        else:
            self.store = str(root / f"store-{name}")
        self.env["RAGSHIP_STORE"] = self.store
        self.env["RAGSHIP_QUEUE__NAMESPACE"] = f"bench-{name}-{uuid.uuid4().hex[:8]}"

    def settings(self) -> Settings:
        queue = {
            k.removeprefix("RAGSHIP_QUEUE__").lower(): v for k, v in self.env.items() if k.startswith("RAGSHIP_QUEUE__")
        }
        es = {"index": self.env["RAGSHIP_ES__INDEX"]} if "RAGSHIP_ES__INDEX" in self.env else {}
        return (
            load_settings(queue=queue, es=es, store=self.store) if es else load_settings(queue=queue, store=self.store)
        )

    def corpus_chunk_ids(self, corpus: Path) -> list[str]:
        """Ids of the chunks whose source lies in the corpus folder (warm-up files excluded)."""
        from ragship.stores import open_store

        documents = open_store(self.store, embedding_dim=None, settings=self.settings()).filter_documents()
        return sorted(d.id for d in documents if str(d.meta.get("source", "")).startswith(str(corpus)))


def run_direct(config: Config, files: list[Path], warm_dir: Path) -> tuple[float, float]:
    from ragship.assembly import open_indexer, served_spec

    settings = config.settings()
    spec, _ = served_spec(settings)  # what a worker resolves with the same settings
    syncer = open_indexer(spec, config.store, settings=settings)
    # Warmed like a worker: one small file outside the corpus indexed first (model load, first inference).
    warm = warm_dir / "direct-warm.txt"
    warm.write_text("Warm-up direct\n\nA short note that loads the embedding model.\n")
    syncer.index([warm])
    cpu = own_cpu_seconds()
    started = time.perf_counter()
    report = syncer.index(files)
    seconds = time.perf_counter() - started
    cpu = own_cpu_seconds() - cpu
    if not report.ok:
        raise SystemExit(f"direct indexing failed: {report.to_dict()}")
    return seconds, cpu


def run_queue(
    config: Config,
    files: list[Path],
    workers: int,
    per_job: int,
    warm_dir: Path,
    logs: Path,
    console: Console,
    redis_pid: int,
    prefetch: int | None = None,
    threads: int = 1,
) -> tuple[float, float, dict[str, float]]:
    """One timed queue run of ``files`` in jobs of ``per_job``: ``workers`` processes of ``threads`` job threads each
    (``threads`` is ignored with ``prefetch``). Returns the seconds, the CPU seconds and the job profile."""
    queue = JobQueue(config.settings().queue)
    procs: list[subprocess.Popen[bytes]] = []
    argv = [RAGSHIP, "worker", "--processes", "1", "--threads", str(threads)]
    env = config.env
    if prefetch is not None:
        # What `ragship worker` runs, with another prefetch (its own is set by the CLI, not overridable).
        argv = [sys.executable, "-m", "dramatiq", "ragship.queue.worker:setup", "--processes", "1", "--threads", "1",
                "--queues", config.settings().queue.name]  # fmt: skip
        env = {**env, "dramatiq_queue_prefetch": str(prefetch)}
    try:
        for i in range(workers):
            log = (logs / f"{config.name}-worker-{i}.log").open("wb")
            procs.append(
                subprocess.Popen(
                    argv,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        # Ready = every worker process has run one job (so has loaded the model). Each warm-up job is a
        # new file: an unchanged one would be skipped without loading anything.
        warm_pids: set[int] = set()
        deadline = time.monotonic() + 600  # a worker still importing takes no job: keep trying until it does
        n = 0
        while len(warm_pids) < workers:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(warm_pids)} of {workers} workers took a warm-up job (logs in {logs})")
            if any(p.poll() is not None for p in procs):
                raise SystemExit(f"a worker exited during warm-up (logs in {logs})")
            path = warm_dir / f"{config.name}-warm-{n}.txt"
            path.write_text(f"Warm-up {config.name} {n}\n\nA short note that loads the embedding model.\n")
            n += 1
            job_id = queue.submit_paths([path])
            job = wait_for(f"warm-up job {job_id}", functools.partial(final_job, queue, job_id), 600)
            if job.status != JobStatus.DONE:
                raise SystemExit(f"warm-up job {job_id} ended {job.status}: {job.error} (logs in {logs})")
            if job.pid:
                warm_pids.add(int(job.pid))
            time.sleep(0.5)
        if threads > 1:
            # Each job thread builds its own pipeline (and loads the model) on its first job: as many warm-up
            # jobs at once as a process has threads, so that the idle threads take one each.
            paths = [warm_dir / f"{config.name}-warm-thread-{i}.txt" for i in range(threads * workers)]
            for i, path in enumerate(paths):
                path.write_text(f"Warm-up thread {config.name} {i}\n\nA short note that loads the embedding model.\n")
            for job_id in [queue.submit_paths([path]) for path in paths]:
                wait_for(f"warm-up job {job_id}", functools.partial(final_job, queue, job_id), 600)
        pids = [p.pid for p in procs] + [redis_pid]
        cpu = cpu_seconds(pids)
        redis_cpu = cpu_seconds([redis_pid])
        client_cpu = own_cpu_seconds()
        started = time.perf_counter()
        started_wall = time.time()
        job_ids = [queue.submit_paths(files[i : i + per_job]) for i in range(0, len(files), per_job)]
        done: dict[str, Any] = {}

        def all_final() -> bool:
            # Only the unfinished jobs, twice a second: this process shares the CPU with the workers.
            for job_id in [j for j in job_ids if j not in done]:
                if (job := queue.job(job_id)).status.final:
                    done[job_id] = job
            return len(done) == len(job_ids)

        wait_for("the corpus jobs", all_final, 3600, every_s=0.5)
        cpu = cpu_seconds(pids) - cpu
        redis_cpu = cpu_seconds([redis_pid]) - redis_cpu
        client_cpu = own_cpu_seconds() - client_cpu
        jobs = [done[j] for j in job_ids]
        # Timed to the last job's recorded end (same host clock), not to when the poll noticed it.
        seconds = max(float(j.finished_at or 0) for j in jobs) - started_wall
        if seconds <= 0:
            seconds = time.perf_counter() - started
        bad = [(j.id, j.status, j.error) for j in jobs if j.status != JobStatus.DONE or j.counts.get("failed")]
        if bad:
            raise SystemExit(f"{config.name}: jobs did not all succeed: {bad} (logs in {logs})")
        by_pid: dict[int, int] = {}
        for j in jobs:
            by_pid[int(j.pid or 0)] = by_pid.get(int(j.pid or 0), 0) + 1
        console.print(f"{config.name}: {len(jobs)} jobs, per worker process {sorted(by_pid.values(), reverse=True)}")
        profile = job_profile(jobs, started_wall, seconds)
        return seconds, cpu, {**profile, "redis_cpu_s": redis_cpu, "client_cpu_s": client_cpu}
    finally:
        stop_groups(procs, timeout_s=120)


def label(workers: int, prefetch: int | None) -> str:
    if not workers:
        return "direct (Syncer.index)"
    name = f"queue, {workers} worker{'s' if workers > 1 else ''}"
    return f"{name}, prefetch {prefetch}" if prefetch is not None else name


def bench_home(root: Path) -> tuple[LocalRedis, dict[str, str], int, Path, Path]:
    """Under ``root``: a fresh ragship home, warm-up and log folders, and a private Redis started in it.
    Returns the Redis, the workers' environment, Redis's pid, the warm-up folder and the log folder."""
    home, warm_dir, logs = (root / n for n in ("home", "warm-up", "logs"))
    for folder in (home, warm_dir, logs):
        folder.mkdir()
    # This process and the workers read the same settings: a fresh home (no registered champion: the
    # default spec), no metrics port, the model from the local cache.
    env = {**os.environ, "RAGSHIP_HOME": str(home), "RAGSHIP_WORKER__METRICS_PORT": "0", "HF_HUB_OFFLINE": "1"}
    os.environ.update({k: env[k] for k in ("RAGSHIP_HOME", "HF_HUB_OFFLINE")})
    redis = LocalRedis(load_settings().local_redis, home=home, name="bench")
    env["RAGSHIP_QUEUE__URL"] = redis.start(port=0)
    return redis, env, redis.status().pid or 0, warm_dir, logs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=400, help="Use the first N documents (default 400)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="Worker counts (default 1 2 4)")
    parser.add_argument("--per-job", type=int, default=10, help="Files per job (default 10)")
    parser.add_argument(
        "--store", help="Elasticsearch URL, one new index per configuration (default: a temporary embedded store each)"
    )
    parser.add_argument(
        "--prefetch",
        type=int,
        nargs="*",
        default=[],
        help="Also run 1 worker with this Dramatiq prefetch (1: before `ragship worker` prefetched threads + 1)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="Alternating rounds; medians reported (default 1)")
    parser.add_argument("--json", type=Path, help="Also write the results to this JSON file")
    parser.add_argument(
        "--capacity",
        type=Path,
        default=default_capacity_file(),
        help="Capacity file that `ragship plan` reads (one worker's docs/s is written there).",
    )
    args = parser.parse_args()
    if not NFCORPUS.exists():
        raise SystemExit(f"needs {NFCORPUS} (BEIR NFCorpus)")
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = root / "nfcorpus-files"
        corpus.mkdir()
        files = write_corpus(corpus, args.limit)
        redis, base_env, redis_pid, warm_dir, logs = bench_home(root)
        # (workers, prefetch): None is `ragship worker`'s own prefetch.
        configs: list[tuple[int, int | None]] = [(0, None), *((n, None) for n in args.workers)]
        configs += [(1, p) for p in args.prefetch]
        runs: dict[tuple[int, int | None], list[dict[str, Any]]] = {c: [] for c in configs}
        expected: list[str] = []
        try:
            for r in range(args.rounds):  # alternately, so a change in the machine's load hits every configuration
                direct = Config(root, f"direct-r{r}", args.store, base_env)
                seconds, cpu = run_direct(direct, files, warm_dir)
                expected = direct.corpus_chunk_ids(corpus)
                console.print(f"round {r + 1}, direct: {seconds:.1f}s, {cpu:.1f} CPU s, {len(expected)} chunks")
                runs[(0, None)].append({"seconds": seconds, "cpu_s": cpu})
                for n, prefetch in configs[1:]:
                    config = Config(root, f"w{n}-p{prefetch or 0}-r{r}", args.store, base_env)
                    seconds, cpu, profile = run_queue(
                        config, files, n, args.per_job, warm_dir, logs, console, redis_pid, prefetch
                    )
                    found = config.corpus_chunk_ids(corpus)
                    console.print(
                        f"round {r + 1}, {label(n, prefetch)}: {seconds:.1f}s, {cpu:.1f} CPU s, {len(found)} chunks; "
                        f"in jobs {profile['in_jobs_s']:.1f}s (mean {profile['mean_job_s']:.2f}s), between jobs "
                        f"{profile['between_jobs_s']:.1f}s (mean gap {profile['mean_gap_s'] * 1000:.0f} ms); CPU s: "
                        f"Redis {profile['redis_cpu_s']:.2f}, this client {profile['client_cpu_s']:.2f}"
                    )
                    if found != expected:
                        raise SystemExit(
                            f"{label(n, prefetch)}: {len(found)} chunks ({len(set(found))} unique) in the store, the "
                            f"direct run has {len(expected)}; ids differ: {len(set(found) ^ set(expected))}"
                        )
                    runs[(n, prefetch)].append({"seconds": seconds, "cpu_s": cpu, "profile": profile})
        finally:
            redis.remove()
    rows = [
        {
            "configuration": label(n, prefetch),
            "workers": n,
            "prefetch": prefetch,
            "seconds": statistics.median(run["seconds"] for run in found_runs),
            "cpu_s": statistics.median(run["cpu_s"] for run in found_runs),
            "runs": found_runs,
        }
        for (n, prefetch), found_runs in runs.items()
    ]
    direct_s = rows[0]["seconds"]
    one = next((r["seconds"] for r in rows if r["workers"] == 1 and r["prefetch"] is None), None)
    for row in rows:
        row["docs"] = len(files)
        row["chunks"] = len(expected)
        row["docs_per_s"] = len(files) / row["seconds"]
        row["ratio_vs_direct"] = row["seconds"] / direct_s
        row["speedup_vs_1_worker"] = one / row["seconds"] if one and row["workers"] and not row["prefetch"] else None
        row["cpu_s_per_doc"] = row["cpu_s"] / len(files)
        row["cpu_ratio_vs_direct"] = row["cpu_s"] / rows[0]["cpu_s"]
    cores = os.cpu_count()
    table = Table(
        title=f"Indexing {len(files)} NFCorpus files ({len(expected)} chunks), {args.per_job} files per job, "
        f"{cores} cores"
    )
    columns = ("configuration", "docs", "seconds", "docs/s", "time ÷ direct", "speedup vs 1 worker", "CPU s/doc",
               "CPU ÷ direct")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in rows:
        speedup = row["speedup_vs_1_worker"]
        table.add_row(
            row["configuration"], str(row["docs"]), f"{row['seconds']:.1f}", f"{row['docs_per_s']:.2f}",
            f"{row['ratio_vs_direct']:.2f}x", f"{speedup:.2f}x" if speedup else "-",
            f"{row['cpu_s_per_doc']:.3f}", f"{row['cpu_ratio_vs_direct']:.2f}x",
        )  # fmt: skip
    console.print(table)
    if one:
        one_cpu = next(r["cpu_s"] for r in rows if r["workers"] == 1 and r["prefetch"] is None)
        console.print(
            f"queue overhead (1 worker ÷ direct, medians of {args.rounds}): {one / direct_s:.2f}x wall time, "
            f"{one_cpu / rows[0]['cpu_s']:.2f}x CPU seconds"
        )
        update_capacity_file(args.capacity, worker_docs_per_s=round(len(files) / one, 2))
        console.print(f"one worker's docs/s written to {args.capacity} (read by `ragship plan`)")
    if args.json:
        result = {
            "cores": cores,
            "docs": len(files),
            "chunks": len(expected),
            "per_job": args.per_job,
            "rounds": args.rounds,
            "command": " ".join(["benchmarks/queue_throughput.py", *sys.argv[1:]]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "store": "elasticsearch" if args.store else "embedded",
            "rows": rows,
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
