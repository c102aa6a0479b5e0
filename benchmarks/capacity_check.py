"""Check the capacity planner against the real services: predicted vs measured p95 of /ask at two loads.

One run serves `bentos.query:RAG` (RAG API + Embedder + Generator, default extractive spec) over the
project's docs, measures the replica's profile the way `make bench-serving` does (/ask alone: mean and
p95; saturated by 16 clients: requests per second), and then, for two offered loads (fractions of the
saturation rate), predicts the p95 with `ragship.planning.capacity` and measures it with open-loop Poisson
arrivals (requests are sent on a fixed random schedule whatever the server's pace; latency counts from
the scheduled send, so a late client counts against the server, as a real user would).

    .venv/bin/python benchmarks/capacity_check.py --loads 0.35 0.7 --requests 300 --out benchmarks/results-plan.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from docs_service import docs_service  # benchmarks/ is the script directory
from rich.console import Console
from rich.table import Table
from serving import QUESTIONS, run_clients

from ragship.planning.capacity import ServiceProfile

console = Console(width=120)


def ask(http: httpx.Client, url: str, i: int) -> None:
    http.post(f"{url}/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]}).raise_for_status()


def measure_profile(url: str, requests: int) -> ServiceProfile:
    """The replica alone (1 client) and saturated (16 clients), as `make bench-serving` measures it."""

    def call(http: httpx.Client, i: int) -> None:
        ask(http, url, i)

    run_clients(4, 32, call)  # warm-up
    alone, _ = run_clients(1, requests, call)
    _, wall = run_clients(16, requests, call)
    ms = np.array(alone) * 1000
    return ServiceProfile(mean_ms=float(ms.mean()), p95_ms=float(np.percentile(ms, 95)), max_rps=requests / wall)


def open_loop(url: str, rps: float, requests: int, seed: int) -> tuple[list[float], float]:
    """Poisson arrivals at ``rps``: per-request seconds from the scheduled send, and the achieved rate."""
    rng = random.Random(seed)
    schedule, t = [], 0.0
    for _ in range(requests):
        t += rng.expovariate(rps)
        schedule.append(t)
    local = threading.local()
    latencies: list[float] = []
    lock = threading.Lock()

    def send(i: int, due: float) -> None:
        http = getattr(local, "http", None)
        if http is None:
            http = local.http = httpx.Client(timeout=120)
        ask(http, url, i)
        with lock:
            latencies.append(time.perf_counter() - due)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=128) as pool:
        for i, offset in enumerate(schedule):
            due = start + offset
            time.sleep(max(0.0, due - time.perf_counter()))
            pool.submit(send, i, due)
    return latencies, requests / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loads", type=float, nargs="+", default=[0.35, 0.7], help="Fractions of saturation.")
    parser.add_argument("--requests", type=int, default=300, help="Requests per measurement.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ragship-bench-plan-") as tmp, docs_service(Path(tmp)) as url:
        profile = measure_profile(url, args.requests)
        console.print(f"profile: {profile}, {profile.servers} server(s)")
        rows = []
        for n, fraction in enumerate(args.loads):
            rps = fraction * profile.max_rps
            seconds, achieved = open_loop(url, rps, args.requests, seed=n)
            measured = float(np.percentile(np.array(seconds) * 1000, 95))
            predicted = profile.predicted_p95_ms(rps)
            rows.append(
                {
                    "load_fraction": fraction,
                    "offered_rps": round(rps, 1),
                    "achieved_rps": round(achieved, 1),
                    "requests": len(seconds),
                    "predicted_p95_ms": round(predicted, 1),
                    "measured_p95_ms": round(measured, 1),
                    "measured_over_predicted": round(measured / predicted, 2),
                }
            )
            console.print(rows[-1])

    table = Table(title=f"/ask p95, predicted vs measured ({os.cpu_count()} cores)")
    columns = list(rows[0])
    for column in columns:
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    console.print(table)
    if args.out:
        result = {"cores": os.cpu_count(), "profile": profile.__dict__, "servers": profile.servers, "rows": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
