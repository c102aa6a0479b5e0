"""The cost of tracing: /retrieve with tracing off and on (sampling 1.0, OTLP export to a real MLflow server's
/v1/traces receiver), 1 and 16 clients, both servers up at once and measured in alternating rounds so that
the machine's load drifts over both alike. Goal (issue 31): on / off <= 1.05x.

    .venv/bin/python benchmarks/tracing_overhead.py --out benchmarks/results-tracing.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from mlflow import MlflowClient
from serving import QUESTIONS, RAGSHIP, REPO, run_clients

from ragship.local.process import free_port
from ragship.serving.launch import bentoml_serve, serving

BIN = Path(sys.executable).parent


def cpu_seconds(port: str) -> float:
    """CPU time (user + system) so far of the server started with ``--port port`` and all its children.

    Unlike latency, a process's CPU time per request does not move with what else the machine runs, so it
    is the cost figure that stands on a shared host."""
    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "--port" in cmdline and port in cmdline and "serve" in " ".join(cmdline):
            for p in [proc, *proc.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = p.cpu_times()
                    total += times.user + times.system
    return total


def cells(url: str, requests: int, receiver_port: str) -> dict[str, float]:
    """p50 at 1 client and req/s at 1 and 16 clients for ``requests`` calls each, and the CPU milliseconds
    per request that the server and the OTLP receiver spent over both."""

    def call(http: httpx.Client, i: int) -> None:
        http.post(f"{url}/retrieve", json={"question": QUESTIONS[i % len(QUESTIONS)]}).raise_for_status()

    port = url.rsplit(":", 1)[1]
    server_before, receiver_before = cpu_seconds(port), cpu_seconds(receiver_port)
    alone, alone_wall = run_clients(1, requests, call)
    busy, busy_wall = run_clients(16, requests, call)
    server_after, receiver_after = cpu_seconds(port), cpu_seconds(receiver_port)
    return {
        "p50_ms_1_client": float(np.percentile(np.array(alone) * 1000, 50)),
        "req_per_s_1_client": requests / alone_wall,
        "p50_ms_16_clients": float(np.percentile(np.array(busy) * 1000, 50)),
        "req_per_s_16_clients": requests / busy_wall,
        "server_cpu_ms_per_request": 1000 * (server_after - server_before) / (2 * requests),
        "receiver_cpu_ms_per_request": 1000 * (receiver_after - receiver_before) / (2 * requests),
    }


def slowest_trace(traces: list[Any]) -> list[str]:
    """The span tree of the slowest of ``traces`` (MLflow ``Trace`` objects): name, service, milliseconds."""
    slowest = max(traces, key=lambda t: t.info.execution_duration or 0)
    spans = sorted(slowest.data.spans, key=lambda s: s.start_time_ns)
    children: dict[str | None, list[Any]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    lines: list[str] = []

    def walk(parent: str | None, depth: int) -> None:
        for span in children.get(parent, []):
            ms = (span.end_time_ns - span.start_time_ns) / 1e6
            name = span.attributes.get("haystack.component.name") or span.name
            lines.append(f"{'  ' * depth}{name:<{48 - 2 * depth}} {ms:8.1f} ms")
            walk(span.span_id, depth + 1)

    walk(None, 0)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=96, help="Timed requests per cell and round.")
    parser.add_argument("--rounds", type=int, default=3, help="Alternating off/on rounds.")
    parser.add_argument("--out", type=Path, help="Write the results as JSON here.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ragship-bench-tracing-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        env = {**os.environ, "RAGSHIP_HOME": str(work), "RAGSHIP_STORE": str(work / "store"), "HF_HUB_OFFLINE": "1"}
        env["BENTOML_HOME"] = str(work / "bentoml")
        env["BENTOML_DO_NOT_TRACK"] = "True"
        subprocess.run(
            [RAGSHIP, "sync", "docs", "README.md", "--store", env["RAGSHIP_STORE"]], cwd=REPO, env=env, check=True
        )
        port = free_port()
        receiver = f"http://127.0.0.1:{port}"
        mlflow_cmd = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        mlflow_cmd += ["--backend-store-uri", f"sqlite:///{work / 'traces.db'}", "--default-artifact-root", str(work)]
        stack.enter_context(
            serving(mlflow_cmd, env=env, log=work / "mlflow.log", cwd=work, url=receiver, ready_path="/health")
        )
        experiment = MlflowClient(receiver).create_experiment("tracing-overhead")
        traced = {
            **env,
            "RAGSHIP_TRACING__ENDPOINT": f"{receiver}/v1/traces",
            "RAGSHIP_TRACING__SAMPLE_RATIO": "1.0",
            "RAGSHIP_TRACING__HEADERS": json.dumps({"x-mlflow-experiment-id": experiment}),
        }
        urls = {
            "off": stack.enter_context(
                bentoml_serve("bentos.query:RAG", env=env, log=work / "off.log", cwd=REPO, timeout_s=900)
            ),
            "on": stack.enter_context(
                bentoml_serve("bentos.query:RAG", env=traced, log=work / "on.log", cwd=REPO, timeout_s=900)
            ),
        }
        for url in urls.values():  # warm-up
            cells(url, 16, str(port))
        rounds: dict[str, list[dict[str, float]]] = {"off": [], "on": []}
        for r in range(args.rounds):
            for mode in ("off", "on") if r % 2 == 0 else ("on", "off"):
                rounds[mode].append(cells(urls[mode], args.requests, str(port)))
                print(mode, {k: round(v, 1) for k, v in rounds[mode][-1].items()}, flush=True)
        time.sleep(6)  # the batch span processor exports every 5 s
        # 500: the most traces MLflow serves per page.
        received = MlflowClient(receiver).search_traces(locations=[experiment], max_results=500)
        traces = len(received)
        print("the slowest trace received:", *slowest_trace(received), sep="\n")
    medians = {mode: {k: float(np.median([c[k] for c in cs])) for k in cs[0]} for mode, cs in rounds.items()}
    ratios = {
        "p50_1_client": medians["on"]["p50_ms_1_client"] / medians["off"]["p50_ms_1_client"],
        "p50_16_clients": medians["on"]["p50_ms_16_clients"] / medians["off"]["p50_ms_16_clients"],
        "throughput_1_client": medians["off"]["req_per_s_1_client"] / medians["on"]["req_per_s_1_client"],
        "throughput_16_clients": medians["off"]["req_per_s_16_clients"] / medians["on"]["req_per_s_16_clients"],
        "server_cpu_per_request": medians["on"]["server_cpu_ms_per_request"]
        / medians["off"]["server_cpu_ms_per_request"],
        # Each round's on and off ran back to back: their ratio sees the least load drift.
        "server_cpu_per_request_paired": float(
            np.median([on["server_cpu_ms_per_request"] / off["server_cpu_ms_per_request"]
                       for on, off in zip(rounds["on"], rounds["off"], strict=True)])
        ),
    }  # fmt: skip
    result = {
        "requests_per_cell": args.requests,
        "rounds": args.rounds,
        "median": {m: {k: round(v, 1) for k, v in c.items()} for m, c in medians.items()},
        "cost_on_over_off": {k: round(v, 3) for k, v in ratios.items()},
        "traces_received": traces,
        "per_round": rounds,
    }
    print(json.dumps({k: result[k] for k in ("median", "cost_on_over_off", "traces_received")}, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
