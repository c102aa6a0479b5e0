"""What OpenAI's protocol costs: /v1/chat/completions against /ask on one `bentoml serve`, side by side.

The default extractive spec over an embedded store of the project's docs; both routes get the same
question mix from the same HTTP client (httpx, so the client's own cost is equal). Each round measures
p50 at 1 client and req/s at 16 clients for both routes, the order swapped every round so that drift
on a shared machine hits both; the figure is chat/ask per round and its median. Goal: <= 1.1x.

    .venv/bin/python benchmarks/chat.py --requests 160 --rounds 3 --out benchmarks/results-chat.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from docs_service import docs_service
from serving import QUESTIONS, run_clients

console = Console()


def ask(url: str) -> Callable[[httpx.Client, int], None]:
    def call(http: httpx.Client, i: int) -> None:
        http.post(f"{url}/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]}).raise_for_status()

    return call


def chat(url: str) -> Callable[[httpx.Client, int], None]:
    def call(http: httpx.Client, i: int) -> None:
        body = {"model": "ragship", "messages": [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]}
        response = http.post(f"{url}/v1/chat/completions", json=body)
        response.raise_for_status()
        assert response.json()["choices"][0]["message"]["content"]

    return call


def cells(route: str, call: Callable[[httpx.Client, int], None], requests: int) -> dict[str, object]:
    """p50 alone, req/s with 16 clients."""
    alone, _ = run_clients(1, requests, call)
    _, busy_wall = run_clients(16, requests, call)
    row = {
        "route": route,
        "p50_ms_1_client": round(float(np.percentile(np.array(alone) * 1000, 50)), 1),
        "req_per_s_16_clients": round(requests / busy_wall, 1),
    }
    console.print(row)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=160, help="Timed requests per route, concurrency and round.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds, the route order swapped each round.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()

    rounds: list[dict[str, dict[str, object]]] = []
    with tempfile.TemporaryDirectory(prefix="ragship-bench-chat-") as tmp, docs_service(Path(tmp)) as url:
        routes = {"/ask": ask(url), "/v1/chat/completions": chat(url)}
        for call in routes.values():
            run_clients(4, 16, call)  # warm caches and the batcher's latency model
        for i in range(args.rounds):
            order = list(routes) if i % 2 == 0 else list(reversed(routes))
            rounds.append({route: cells(route, routes[route], args.requests) for route in order})

    def ratios(key: str) -> list[float]:
        return [float(r["/v1/chat/completions"][key]) / float(r["/ask"][key]) for r in rounds]  # type: ignore[arg-type]

    p50, rps = ratios("p50_ms_1_client"), ratios("req_per_s_16_clients")
    table = Table(title="/v1/chat/completions against /ask (same server, same store)")
    for column in ("round", "route", "p50 ms (1 client)", "req/s (16 clients)"):
        table.add_column(column)
    for i, r in enumerate(rounds, 1):
        for route in ("/ask", "/v1/chat/completions"):
            table.add_row(str(i), route, str(r[route]["p50_ms_1_client"]), str(r[route]["req_per_s_16_clients"]))
    console.print(table)
    summary = {
        "p50_ratio_median": round(statistics.median(p50), 3),
        "cost_ratio_16_clients_median": round(statistics.median(1 / x for x in rps), 3),
        "p50_ratios": [round(x, 3) for x in p50],
        "req_per_s_ratios": [round(x, 3) for x in rps],
    }
    console.print(summary)
    if args.out:
        args.out.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
