"""Soak: many /ask requests against `bentoml serve bentos.query:RAG`; errors, p99 and memory growth.

The default extractive spec over a store of the project's docs; ``--clients`` threads send the question
mix until ``--requests`` answers came back. The resident memory (RSS) of every process of the server
(the API, the Embedder, the Generator, BentoML's supervisor) is read after ``--checkpoint`` requests
and at the end: a leak shows as growth between the two. Exit status 1 when a request failed or a
process grew by ``--max-growth`` or more.

    make bench-soak                                   # 10,000 requests, 16 clients
    .venv/bin/python benchmarks/soak.py --requests 2000 --checkpoint 200
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from ragship.serving.launch import bentoml_serve

REPO = Path(__file__).resolve().parents[1]
RAGSHIP = str(Path(sys.executable).parent / "ragship")
sys.path.insert(0, str(Path(__file__).parent))
from serving import QUESTIONS  # noqa: E402  (the question mix of bench-serving)

MARKER = "RAGSHIP_SOAK_RUN"
console = Console()


def server_processes(run: str) -> dict[int, str]:
    """pid -> a short name, for every process started with this run's marker in its environment."""
    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if process.environ().get(MARKER) != run:
                continue
            cmdline = " ".join(process.info["cmdline"] or [])
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found[process.info["pid"]] = _name(cmdline)
    return found


def _name(cmdline: str) -> str:
    for service in ("ragship-embedder", "ragship-generator", "Embedder", "Generator"):
        if service in cmdline:
            return service.lower().removeprefix("ragship-")
    if "--service-name" in cmdline or "worker" in cmdline:
        return "api"
    return "supervisor" if "bentoml" in cmdline else cmdline[:40]


def rss_mib(pids: dict[int, str]) -> dict[str, float]:
    """RSS of each named process in MiB (summed when a name has several processes)."""
    sizes: dict[str, float] = {}
    for pid, name in pids.items():
        try:
            sizes[f"{name} ({pid})"] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            sizes[f"{name} ({pid})"] = float("nan")
    return sizes


def soak(url: str, run: str, requests: int, clients: int, checkpoint: int) -> dict[str, object]:
    """Send ``requests`` /ask calls from ``clients`` threads; sample RSS at ``checkpoint`` and at the end."""
    lock = threading.Lock()
    sent = 0
    latencies: list[float] = []
    errors: list[str] = []
    at_checkpoint: dict[str, float] = {}
    started = time.perf_counter()

    def worker() -> None:
        nonlocal sent
        with httpx.Client(timeout=120) as http:
            while True:
                with lock:
                    if sent >= requests:
                        return
                    sent += 1
                    index = sent
                start = time.perf_counter()
                try:
                    response = http.post(f"{url}/ask", json={"question": QUESTIONS[index % len(QUESTIONS)]})
                    if response.status_code != 200:
                        errors.append(f"{response.status_code}: {response.text[:200]}")
                except httpx.HTTPError as e:
                    errors.append(repr(e))
                with lock:
                    latencies.append(time.perf_counter() - start)
                    done = len(latencies)
                if done == checkpoint:
                    at_checkpoint.update(rss_mib(server_processes(run)))
                if done % 1000 == 0:
                    console.print(f"{done}/{requests} answered, {len(errors)} errors")

    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(worker) for _ in range(clients)]:
            future.result()
    wall = time.perf_counter() - started
    at_end = rss_mib(server_processes(run))
    ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "clients": clients,
        "errors": len(errors),
        "first_errors": errors[:5],
        "req_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p99_ms": round(float(np.percentile(ms, 99)), 1),
        "max_ms": round(float(ms.max()), 1),
        "rss_mib": {
            name: {
                "at_checkpoint": round(at_checkpoint.get(name, float("nan")), 1),
                "at_end": round(size, 1),
                "growth_pct": round(100 * (size / at_checkpoint[name] - 1), 2) if name in at_checkpoint else None,
            }
            for name, size in at_end.items()
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--checkpoint", type=int, default=1_000, help="Request count of the first RSS reading.")
    parser.add_argument("--max-growth", type=float, default=10.0, help="RSS growth (%%) that fails the soak.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    parser.add_argument(
        "--ready-timeout", type=float, default=300, help="Seconds the server may take to start (busy hosts)."
    )
    args = parser.parse_args()
    if not 0 < args.checkpoint < args.requests:
        parser.error("--checkpoint must be between 0 and --requests")

    run = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="ragship-soak-") as tmp:
        work = Path(tmp)
        store = str(work / "store")
        env = {**os.environ, "RAGSHIP_HOME": str(work), "RAGSHIP_STORE": store, "HF_HUB_OFFLINE": "1", MARKER: run}
        env["BENTOML_HOME"] = str(work / "bentoml")
        subprocess.run([RAGSHIP, "sync", "docs", "README.md", "--store", store], cwd=REPO, env=env, check=True)
        log = work / "rag.log"
        with bentoml_serve("bentos.query:RAG", env=env, log=log, cwd=REPO, timeout_s=args.ready_timeout) as url:
            result = soak(url, run, args.requests, args.clients, args.checkpoint)
        if result["errors"]:
            text = log.read_text(errors="replace")
            first = text.find("Traceback")
            console.print(
                f"first server error in {log.name}:\n{text[first : first + 6000] if first >= 0 else text[-3000:]}"
            )

    table = Table(title=f"RSS (MiB) after {args.checkpoint:,} and {result['requests']:,} requests")
    for column in ("process", "at_checkpoint", "at_end", "growth_pct"):
        table.add_column(column)
    rss = result["rss_mib"]
    assert isinstance(rss, dict)
    for name, sizes in rss.items():
        table.add_row(name, *(str(sizes[c]) for c in ("at_checkpoint", "at_end", "growth_pct")))
    console.print(table)
    summary = {k: v for k, v in result.items() if k != "rss_mib"}
    console.print(summary)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    grew = [n for n, s in rss.items() if s["growth_pct"] is None or s["growth_pct"] >= args.max_growth]
    if result["errors"] or grew:
        console.print(f"[red]soak failed[/red]: {result['errors']} errors; grew >= {args.max_growth}%: {grew}")
        sys.exit(1)
    console.print(f"soak passed: 0 errors, every process grew < {args.max_growth}%")


if __name__ == "__main__":
    main()
