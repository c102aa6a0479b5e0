"""Time to first token of a streamed answer over the llama.cpp path, side by side in one run.

`bentoml serve bentos.query:RAG` with the spec's ``openai`` generator pointed at a local llama.cpp server
(``ragship llm start``: SmolLM2-135M-Instruct, Q4_1 GGUF, on CPU) answers the same questions through
``/ask_stream`` and a streamed ``/v1/chat/completions`` (alternating round by round); beside them, the
same spec called in this process (``QueryEngine.ask(on_token=...)``) and, with ``--transformers``, the
same model loaded by transformers in the served Generator (``make run-llm-transformers``'s path). Time to
first token is from sending the question to the first ``{"token"}`` line or the first chunk with content;
it includes retrieval (query embedding, BM25 + dense, fusion) and prompt evaluation.

    .venv/bin/python benchmarks/llm_ttft.py                       # indexes docs/ + README.md first
    .venv/bin/python benchmarks/llm_ttft.py --store .ragship/store --rounds 5 --transformers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from ragship.assembly import open_indexer, open_query_engine
from ragship.local.llama_server import LocalLlama
from ragship.serving.launch import bentoml_serve
from ragship.settings import load_settings
from ragship.spec import PipelineSpec, default_spec

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results-llm.json"
KEY_ENV = "RAGSHIP_BENCH_LLM_KEY"
QUESTIONS = [
    "How do I run the tests?",
    "How do I start a local Elasticsearch node?",
    "What does the pipeline spec contain?",
    "How does incremental reindexing find changed files?",
]
console = Console()


def summary(name: str, ttft: list[float], total: list[float], tokens: list[int]) -> dict[str, object]:
    """One row: TTFT and full-answer percentiles in ms, and the streamed pieces per answer."""
    return {
        "path": name,
        "answers": len(ttft),
        "ttft_p50_ms": round(float(np.percentile(ttft, 50)) * 1000, 1),
        "ttft_p90_ms": round(float(np.percentile(ttft, 90)) * 1000, 1),
        "total_p50_ms": round(float(np.percentile(total, 50)) * 1000, 1),
        "pieces_mean": round(float(np.mean(tokens)), 1),
    }


def _ask_stream_token(line: str) -> bool:
    return bool(line) and "token" in json.loads(line)


def _chat_chunk_token(line: str) -> bool:
    """A ``chat.completion.chunk`` event carrying answer text (not the role, the end or ``[DONE]``)."""
    if not line.startswith("data: {"):
        return False
    choices = json.loads(line[len("data: ") :]).get("choices") or [{}]
    return bool(choices[0].get("delta", {}).get("content"))


ROUTES = {
    "/ask_stream": (lambda q: {"question": q}, _ask_stream_token),
    "/v1/chat/completions": (
        lambda q: {"model": "ragship", "stream": True, "messages": [{"role": "user", "content": q}]},
        _chat_chunk_token,
    ),
}


def over_http(url: str, rounds: int, route: str = "/ask_stream") -> tuple[list[float], list[float], list[int]]:
    """TTFT, full time and piece count of each streamed answer from ``route`` (see ROUTES)."""
    body, is_token = ROUTES[route]
    ttft, total, pieces = [], [], []
    with httpx.Client(base_url=url, timeout=300) as http:
        http.post("/ask", json={"question": QUESTIONS[0]}).raise_for_status()  # warm: models loaded, caches hot
        for _ in range(rounds):
            for question in QUESTIONS:
                start = time.perf_counter()
                first = None
                count = 0
                with http.stream("POST", route, json=body(question)) as response:
                    response.raise_for_status()
                    for line in response.iter_lines():
                        if is_token(line):
                            first = first or time.perf_counter()
                            count += 1
                end = time.perf_counter()
                ttft.append((first or end) - start)
                total.append(end - start)
                pieces.append(count)
    return ttft, total, pieces


def in_process(spec: PipelineSpec, store: str, rounds: int) -> tuple[list[float], list[float], list[int]]:
    """The same measurement with the query pipeline called in this process (no BentoML in between)."""
    engine = open_query_engine(spec, store)
    engine.ask(QUESTIONS[0])
    ttft, total, pieces = [], [], []
    for _ in range(rounds):
        for question in QUESTIONS:
            arrivals: list[float] = []

            def note(_piece: str, arrivals: list[float] = arrivals) -> None:
                arrivals.append(time.perf_counter())

            start = time.perf_counter()
            engine.ask(question, on_token=note)
            end = time.perf_counter()
            ttft.append((arrivals[0] if arrivals else end) - start)
            total.append(end - start)
            pieces.append(len(arrivals))
    return ttft, total, pieces


@contextlib.contextmanager
def served(spec: PipelineSpec, store: str, home: Path) -> Iterator[str]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGSHIP_")},
        "RAGSHIP_HOME": str(home),
        "RAGSHIP_STORE": store,
        "RAGSHIP_SERVING__SPEC": str(spec.save(home / f"{spec.name}-{spec.hash}.yaml")),
        KEY_ENV: os.environ[KEY_ENV],
        "BENTOML_HOME": str(home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "HF_HUB_OFFLINE": "1",
        # BentoML's 60 s default cut a streamed answer off on a machine shared with other builds
        "RAGSHIP_SERVING__TIMEOUT_S": "300",
    }
    with bentoml_serve("bentos.query:RAG", env=env, log=home / "serve.log", cwd=REPO, timeout_s=600) as url:
        yield url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="An indexed store of the docs (default: index docs/ + README.md first).")
    parser.add_argument("--rounds", type=int, default=3, help="Passes over the questions per path.")
    parser.add_argument("--max-tokens", type=int, default=64, help="Answer length cap (max_tokens).")
    parser.add_argument("--transformers", action="store_true", help="Also the model in process via transformers.")
    args = parser.parse_args()
    load_start = os.getloadavg()  # a shared machine: the load goes on the record

    os.environ[KEY_ENV] = "loopback-server-checks-no-key"
    with tempfile.TemporaryDirectory(prefix="ragship-bench-llm-") as tmp:
        home = Path(tmp)
        store = args.store or str(home / "store")
        if not args.store:
            report = open_indexer(default_spec(), store).index([REPO / "docs", REPO / "README.md"])
            assert report.ok, report.failures
        settings = load_settings(home=home, local_llama={"venv": REPO / ".tools/llama"})
        server = LocalLlama(settings.local_llama, home=home)
        start = time.perf_counter()
        base_url = server.start(port=0)
        started_s = time.perf_counter() - start
        try:
            spec = default_spec(
                generator="openai", openai_base_url=base_url, openai_model="smollm2", openai_api_key_env=KEY_ENV
            )
            spec.query["components"]["llm"]["init_parameters"]["generation_kwargs"]["max_tokens"] = args.max_tokens
            spec.query["components"]["llm"]["init_parameters"]["timeout"] = 300  # 60 s timed out on a busy machine
            rows = [summary("llama.cpp in process (QueryEngine)", *in_process(spec, store, args.rounds))]
            with served(spec, store, home) as url:
                # the two routes alternate round by round, so drift on a shared machine hits both
                runs: dict[str, list[tuple[list[float], list[float], list[int]]]] = {r: [] for r in ROUTES}
                for i in range(args.rounds):
                    for route in ROUTES if i % 2 == 0 else reversed(ROUTES):
                        runs[route].append(over_http(url, 1, route))
                for n, route in enumerate(ROUTES):
                    merged = [[x for run in runs[route] for x in run[k]] for k in range(3)]
                    rows.insert(n, summary(f"llama.cpp via {route} (stream)", *merged))
        finally:
            server.stop()
        if args.transformers:
            local = default_spec(generator="local", local_model="smollm2")
            local.query["components"]["llm"]["init_parameters"]["generation_kwargs"]["max_new_tokens"] = args.max_tokens
            with served(local, store, home) as url:
                rows.append(summary("transformers via /ask_stream", *over_http(url, args.rounds)))

    table = Table(title=f"Time to first token, {len(QUESTIONS)} questions x {args.rounds} rounds")
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row.values()))
    console.print(table)
    console.print(f"llama.cpp server start to /v1/models: {started_s:.1f} s")
    RESULTS.write_text(
        json.dumps(
            {
                "recorded": time.strftime("%Y-%m-%d"),
                "load_1_5_15_min_start": [round(x, 1) for x in load_start],
                "load_1_5_15_min_end": [round(x, 1) for x in os.getloadavg()],
                "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
                "max_tokens": args.max_tokens,
                "server_start_s": round(started_s, 1),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
