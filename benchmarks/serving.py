"""Serving figures over real HTTP: latency of /retrieve and /ask, and embedder throughput with and without
adaptive batching.

1. Latency: `bentoml serve bentos.query:RAG` (RAG + Embedder + Generator, the default extractive spec)
   over a store holding the project's docs; 1 and 16 concurrent clients send the same question mix.
2. Throughput: `bentoml serve ragship.serving.embedder:Embedder` twice in one run, adaptive batching on
   and off (RAGSHIP_SERVING__EMBEDDER_BATCHING); 32 clients each send one text per request (the
   traffic pattern batching exists for), first 200-word chunks, then short queries. The on/off ratio
   is the figure that matters; the mean batch size comes from BentoML's Prometheus histogram.
3. Side by side, one run: /retrieve with the query embedder in the API process and in the Embedder
   (``serving.query_models``), Hayhooks serving the same retrieval pipeline (benchmarks/hayhooks), and
   the pipeline called in this process; the ratios are the figures to compare.

    make bench-serving                                  # embedded store of the docs
    make bench-serving BENCH_ARGS="--store http://127.0.0.1:9200"
    make bench-serving BENCH_ARGS="--store .ragship/store-eval-nfcorpus --store-ready --side-by-side-only"
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from ragship.local.process import free_port
from ragship.planning.capacity import default_capacity_file, update_capacity_file
from ragship.serving.launch import bentoml_serve, serving

REPO = Path(__file__).resolve().parents[1]
RAGSHIP = str(Path(sys.executable).parent / "ragship")
HAYHOOKS_DIR = REPO / "benchmarks" / "hayhooks"
QUESTIONS = [
    "How do I run the tests?",
    "How do I start a local Elasticsearch node?",
    "What does the pipeline spec contain?",
    "How is a new champion promoted?",
    "How does incremental reindexing find changed files?",
    "Which settings configure the embedding model?",
    "How do I evaluate retrieval on a BEIR dataset?",
    "Where does the embedded store keep its data?",
]
CLIENTS = (1, 16)  # alone, and enough to saturate a replica on the machines measured so far
console = Console()


def run_clients(clients: int, requests: int, call: Callable[[httpx.Client, int], None]) -> tuple[list[float], float]:
    """``requests`` calls spread over ``clients`` threads; returns per-request seconds and the wall time."""
    latencies: list[float] = []

    def worker(offset: int) -> list[float]:
        own: list[float] = []
        with httpx.Client(timeout=120) as http:
            for i in range(offset, requests, clients):
                start = time.perf_counter()
                call(http, i)
                own.append(time.perf_counter() - start)
        return own

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for own in pool.map(worker, range(clients)):
            latencies.extend(own)
    return latencies, time.perf_counter() - start


def latency(url: str, requests: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for route in ("/retrieve", "/ask"):

        def call(http: httpx.Client, i: int, route: str = route) -> None:
            response = http.post(f"{url}{route}", json={"question": QUESTIONS[i % len(QUESTIONS)]})
            response.raise_for_status()

        run_clients(4, 16, call)  # warm caches and the batcher's latency model
        for clients in CLIENTS:
            seconds, wall = run_clients(clients, requests, call)
            ms = np.array(seconds) * 1000
            rows.append(
                {
                    "route": route,
                    "clients": clients,
                    "requests": len(seconds),
                    "mean_ms": round(float(ms.mean()), 1),
                    "p50_ms": round(float(np.percentile(ms, 50)), 1),
                    "p95_ms": round(float(np.percentile(ms, 95)), 1),
                    "p99_ms": round(float(np.percentile(ms, 99)), 1),
                    "req_per_s": round(len(seconds) / wall, 1),
                }
            )
            console.print(rows[-1])
    return rows


def server_cpu_s() -> float:
    """CPU seconds used so far by this process's children (the server under test and its workers): a
    figure that a busy shared host changes far less than wall-clock throughput."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = child.cpu_times()
            total += times.user + times.system
    return total


def retrieve_cells(label: str, url: str, requests: int, route: str = "/retrieve") -> dict[str, object]:
    """``route`` alone (1 client: p50) and saturated (16 clients: req/s, and the server's CPU per request)."""

    def call(http: httpx.Client, i: int) -> None:
        http.post(f"{url}{route}", json={"question": QUESTIONS[i % len(QUESTIONS)]}).raise_for_status()

    run_clients(4, 16, call)  # warm-up
    alone, alone_wall = run_clients(1, requests, call)
    cpu_before = server_cpu_s()
    _, busy_wall = run_clients(max(CLIENTS), requests, call)
    cpu_ms = (server_cpu_s() - cpu_before) / requests * 1000
    row = {
        "server": label,
        "p50_ms_1_client": round(float(np.percentile(np.array(alone) * 1000, 50)), 1),
        "req_per_s_1_client": round(requests / alone_wall, 1),
        "req_per_s_16_clients": round(requests / busy_wall, 1),
        "server_cpu_ms_per_request_16_clients": round(cpu_ms, 2),
    }
    console.print(row)
    return row


def in_process_cells(store: str, requests: int) -> dict[str, object]:
    """The same retrieval pipeline's ``retrieve`` in this process, one request at a time: the floor."""
    from ragship.assembly import open_query_engine
    from ragship.serving.common import limit_compute_threads
    from ragship.settings import get_settings
    from ragship.spec import default_spec

    limit_compute_threads(get_settings().serving.query_threads)  # as the query API does
    engine = open_query_engine(default_spec(), store)
    engine.warm_up()
    for i in range(16):
        engine.retrieve(QUESTIONS[i % len(QUESTIONS)])
    seconds = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for i in range(requests):
        start = time.perf_counter()
        engine.retrieve(QUESTIONS[i % len(QUESTIONS)])
        seconds.append(time.perf_counter() - start)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    row = {
        "server": "pipeline run() in process",
        "p50_ms_1_client": round(float(np.percentile(np.array(seconds) * 1000, 50)), 1),
        "req_per_s_1_client": round(requests / wall, 1),
        "req_per_s_16_clients": None,
        "cpu_ms_per_request_1_client": round(cpu / requests * 1000, 2),
    }
    console.print(row)
    return row


@contextlib.contextmanager
def hayhooks_serve(env: dict[str, str], log: Path) -> Iterator[str]:
    """Hayhooks (the `bench` extra) serving benchmarks/hayhooks/ragship_retrieve; yields its URL once deployed."""
    port = free_port()
    hayhooks = str(Path(sys.executable).parent / "hayhooks")
    if not Path(hayhooks).exists():
        raise SystemExit("Hayhooks is not installed: run `make bench-serving` (it installs the bench extra).")
    command = [hayhooks, "run", "--host", "127.0.0.1", "--port", str(port), "--pipelines-dir", str(HAYHOOKS_DIR)]
    command += ["--without-monitoring", "--without-tracing"]
    url = f"http://127.0.0.1:{port}"
    # /status/<name> answers 200 only once the wrapper's setup() has loaded the pipeline
    with serving(command, env=env, log=log, cwd=REPO, url=url, timeout_s=600, ready_path="/status/ragship_retrieve"):
        yield url


def hayhooks_cells(env: dict[str, str], requests: int, work: Path) -> dict[str, object]:
    """The same retrieval pipeline behind Hayhooks, measured like /retrieve."""
    with hayhooks_serve(env, work / "hayhooks.log") as url:
        return retrieve_cells("Hayhooks, same pipeline", url, requests, route="/ragship_retrieve/run")


def side_by_side(env: dict[str, str], store: str, requests: int, work: Path) -> list[dict[str, object]]:
    """The same retrieval pipeline, one run: ragship's /retrieve with the query embedder in the API process
    and in the Embedder service (the figures behind ``serving.query_models: auto``), Hayhooks, and the
    pipeline in this process (the floor)."""
    rows = []
    # (label, settings): the CPU default (query models in the API, one worker), one worker per core, and the
    # Embedder hop (the GPU layout)
    cores = str(os.cpu_count() or 1)
    layouts = [
        ("query_models=api, workers=1 (default)", {"RAGSHIP_SERVING__QUERY_MODELS": "api"}),
        (
            f"query_models=api, workers={cores}",
            {"RAGSHIP_SERVING__QUERY_MODELS": "api", "RAGSHIP_SERVING__WORKERS": cores},
        ),
        ("query_models=service", {"RAGSHIP_SERVING__QUERY_MODELS": "service"}),
    ]
    for number, (label, settings) in enumerate(layouts):
        run_env = {**env, **settings}
        with bentoml_serve("bentos.query:RAG", env=run_env, log=work / f"rag-{number}.log", cwd=REPO) as url:
            rows.append(retrieve_cells(f"ragship /retrieve, {label}", url, requests))
    rows.append(hayhooks_cells(env, requests, work))
    rows.append(in_process_cells(store, requests))
    return rows


def chunk_texts(limit: int) -> list[str]:
    """~200-word windows over the project's docs (the default spec's chunk size)."""
    words = " ".join(p.read_text() for p in sorted((REPO / "docs").glob("*.md"))).split()
    chunks = [" ".join(words[s : s + 200]) for s in range(0, max(1, len(words) - 200), 160)]
    return [chunks[i % len(chunks)] for i in range(limit)]


def _mean_batch_size(url: str) -> float | None:
    """Mean adaptive batch size from the Prometheus histogram BentoML exports (None when unbatched)."""
    total = count = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=30).text.splitlines():
        if line.startswith("#") or "adaptive_batch_size" not in line:
            continue
        name, value = line.rsplit(" ", 1)
        if name.split("{")[0].endswith("_sum"):
            total += float(value)
        elif name.split("{")[0].endswith("_count"):
            count += float(value)
    return round(total / count, 1) if count else None


def throughput(
    env: dict[str, str], workloads: dict[str, tuple[str, list[str]]], clients: int, work: Path
) -> list[dict[str, object]]:
    """Texts/s of the Embedder, batching on and off, one text per request from ``clients`` threads."""
    rows: list[dict[str, object]] = []
    for batching in (True, False):
        run_env = {**env, "RAGSHIP_SERVING__EMBEDDER_BATCHING": str(batching).lower()}
        log = work / f"embedder-{batching}.log"
        with bentoml_serve("ragship.serving.embedder:Embedder", env=run_env, log=log, cwd=REPO) as url:
            info = httpx.post(f"{url}/model_info", json={}, timeout=30).json()
            for workload, (route, texts) in workloads.items():

                def call(
                    http: httpx.Client, i: int, url: str = url, route: str = route, texts: list[str] = texts
                ) -> None:
                    http.post(f"{url}/{route}", json={"texts": [texts[i]]}).raise_for_status()

                run_clients(clients, clients * 2, call)  # warm-up
                seconds, wall = run_clients(clients, len(texts), call)
                rows.append(
                    {
                        "workload": workload,
                        "adaptive_batching": batching,
                        "device": info["device"],
                        "clients": clients,
                        "texts": len(texts),
                        "texts_per_s": round(len(texts) / wall, 1),
                        "p50_ms": round(float(np.percentile(np.array(seconds) * 1000, 50)), 1),
                        "mean_batch": _mean_batch_size(url) if batching else 1,
                    }
                )
                console.print(rows[-1])
    return rows


def beir_questions(folder: Path, count: int) -> list[str]:
    """The first ``count`` query texts of a BEIR dataset (read in place, never copied)."""
    with (folder / "queries.jsonl").open() as lines:
        return [json.loads(line)["text"] for line, _ in zip(lines, range(count), strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="Store URL or directory (default: a fresh embedded store).")
    parser.add_argument("--requests", type=int, default=160, help="Timed requests per route and concurrency.")
    parser.add_argument("--chunks", type=int, default=512, help="Chunks embedded per throughput run.")
    parser.add_argument("--clients", type=int, default=32, help="Concurrent clients of the throughput runs.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    parser.add_argument(
        "--store-ready", action="store_true", help="--store already holds a corpus (e.g. NFCorpus): index nothing."
    )
    parser.add_argument(
        "--side-by-side-only", action="store_true", help="Only the /retrieve side by side (no capacity file)."
    )
    parser.add_argument(
        "--questions-from",
        type=Path,
        help="A BEIR dataset folder (e.g. ../shared/data/nfcorpus): ask its first 64 queries instead of the docs "
        "questions, for a store holding that corpus.",
    )
    parser.add_argument(
        "--capacity",
        type=Path,
        default=default_capacity_file(),
        help="Capacity file that `ragship plan` reads (per-replica figures of this hardware).",
    )
    args = parser.parse_args()
    if args.questions_from:
        QUESTIONS[:] = beir_questions(args.questions_from, 64)

    with tempfile.TemporaryDirectory(prefix="ragship-bench-serving-") as tmp:
        work = Path(tmp)
        store = args.store or str(work / "store")
        env = {**os.environ, "RAGSHIP_HOME": str(work), "RAGSHIP_STORE": store, "HF_HUB_OFFLINE": "1"}
        env["BENTOML_HOME"] = str(work / "bentoml")
        if not args.store_ready:
            subprocess.run([RAGSHIP, "sync", "docs", "README.md", "--store", store], cwd=REPO, env=env, check=True)
        if args.side_by_side_only:
            rows = side_by_side(env, store, args.requests, work)
            print_placements(rows)
            if args.out:
                args.out.write_text(json.dumps({"side_by_side": rows}, indent=2))
            return
        with bentoml_serve("bentos.query:RAG", env=env, log=work / "rag.log", cwd=REPO) as url:
            latency_rows = latency(url, args.requests)
        placement_rows = side_by_side(env, store, args.requests, work)
        workloads = {
            "chunks (200 words)": ("embed_documents", chunk_texts(args.chunks)),
            "queries (short)": ("embed_queries", [QUESTIONS[i % len(QUESTIONS)] for i in range(args.chunks * 4)]),
        }
        throughput_rows = throughput(env, workloads, args.clients, work)

    table = Table(title="Query API latency (ms)")
    for column in ("route", "clients", "requests", "p50_ms", "p99_ms", "req_per_s"):
        table.add_column(column)
    for row in latency_rows:
        table.add_row(*(str(row[c]) for c in ("route", "clients", "requests", "p50_ms", "p99_ms", "req_per_s")))
    console.print(table)
    print_placements(placement_rows)
    table = Table(title="Embedder throughput (one text per request)")
    columns = ("workload", "adaptive_batching", "device", "clients", "texts", "texts_per_s", "p50_ms", "mean_batch")
    for column in columns:
        table.add_column(column)
    for row in throughput_rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)
    for workload in workloads:
        on, off = (float(str(r["texts_per_s"])) for r in throughput_rows if r["workload"] == workload)
        console.print(f"{workload}: adaptive batching gives {on / off:.2f}x the unbatched throughput")
    if args.out:
        results = {"latency": latency_rows, "placements": placement_rows, "embedder": throughput_rows}
        args.out.write_text(json.dumps(results, indent=2))
    write_capacity(args.capacity, latency_rows, throughput_rows)


def print_placements(placement_rows: list[dict[str, object]]) -> None:
    """The placement table and its ratios."""
    table = Table(title="/retrieve by where the query embedder runs, and the in-process floor")
    placement_columns = ("server", "p50_ms_1_client", "req_per_s_1_client", "req_per_s_16_clients")
    for column in placement_columns:
        table.add_column(column)
    for row in placement_rows:
        table.add_row(*(str(row[c]) for c in placement_columns))
    console.print(table)
    api, per_core, service, hayhooks, floor = placement_rows

    def ratio(a: dict[str, object], b: dict[str, object], key: str) -> float:
        return float(str(a[key])) / float(str(b[key]))

    console.print(
        f"served p50 (default) / in-process p50: {ratio(api, floor, 'p50_ms_1_client'):.2f}x (goal <= 1.1x); "
        f"16-client throughput vs Hayhooks, same pipeline: {ratio(api, hayhooks, 'req_per_s_16_clients'):.2f}x "
        f"(goal >= 2x)"
    )
    console.print(
        f"one API worker per core vs one: 16-client throughput {ratio(per_core, api, 'req_per_s_16_clients'):.2f}x; "
        f"query embedder in the API vs in the Embedder: p50 {ratio(api, service, 'p50_ms_1_client'):.2f}x, "
        f"16-client throughput {ratio(api, service, 'req_per_s_16_clients'):.2f}x"
    )
    cpu = "server_cpu_ms_per_request_16_clients"
    console.print(
        f"server CPU per request at 16 clients: ragship (default) {api[cpu]} ms, Hayhooks {hayhooks[cpu]} ms "
        f"(Hayhooks / ragship {ratio(hayhooks, api, cpu):.2f}x); in process {floor['cpu_ms_per_request_1_client']} ms"
    )


def write_capacity(path: Path, latency_rows: list[dict[str, object]], throughput_rows: list[dict[str, object]]) -> None:
    """Per-replica figures for `ragship plan`: /ask alone (1 client) and saturated (16), batched query embedding."""
    alone, saturated = (
        next(r for r in latency_rows if r["route"] == "/ask" and r["clients"] == n) for n in (1, max(CLIENTS))
    )
    embedder = next(r for r in throughput_rows if r["workload"] == "queries (short)" and r["adaptive_batching"])
    update_capacity_file(
        path,
        api={"mean_ms": alone["mean_ms"], "p95_ms": alone["p95_ms"], "max_rps": saturated["req_per_s"]},
        embedder_queries_per_s=embedder["texts_per_s"],
        hardware=hardware(str(embedder["device"])),
    )
    console.print(f"capacity figures written to {path} (read by `ragship plan`)")


def hardware(device: str) -> str:
    """A one-line description of the machine the figures belong to."""
    return f"{os.cpu_count()} CPU cores, {device}"


if __name__ == "__main__":
    main()
