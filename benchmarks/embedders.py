"""Embedder backends side by side: torch float32 vs ONNX Runtime float32 vs ONNX Runtime int8.

One process, one run: the three backends load through ragship's embedder components (the path the CLI,
workers and services take), then take turns in rounds, the order rotating each round, so machine noise
hits all of them alike. Per round each backend
- encodes the same chunks of about 200 words (NFCorpus titles + abstracts cut to 200 words), batch 32;
- embeds NFCorpus queries one at a time (the served path's query embedding).
Reported: chunks/s and query p50/p95 per backend, their ratios to torch, and the cosine similarity of
each backend's chunk embeddings to torch's (the quality proxy; nDCG@10 comes from `ragship eval`).

    .venv/bin/python benchmarks/embedders.py --chunks 256 --queries 100 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from haystack import Document
from rich.console import Console
from rich.table import Table

from ragship.components.embedders import DocumentEmbedder, TextEmbedder
from ragship.enums import EmbeddingBackend
from ragship.models.onnx import cpu_int8_profile
from ragship.settings import DEFAULT_EMBEDDING_MODEL

NFCORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nfcorpus"
CHUNK_WORDS = 200


def load_texts(n_chunks: int, n_queries: int) -> tuple[list[str], list[str]]:
    """NFCorpus records of at least 200 words, cut to 200; the first ``n_queries`` queries."""
    chunks: list[str] = []
    with (NFCORPUS / "corpus.jsonl").open() as f:
        for line in f:
            record = json.loads(line)
            words = f"{record['title']} {record['text']}".split()
            if len(words) >= CHUNK_WORDS:
                chunks.append(" ".join(words[:CHUNK_WORDS]))
            if len(chunks) == n_chunks:
                break
    with (NFCORPUS / "queries.jsonl").open() as f:
        queries = [json.loads(line)["text"] for _, line in zip(range(n_queries), f, strict=False)]
    return chunks, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_EMBEDDING_MODEL)
    parser.add_argument("--chunks", type=int, default=256, help="200-word chunks encoded per round")
    parser.add_argument("--queries", type=int, default=100, help="queries embedded one at a time per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results-embedders.json"))
    args = parser.parse_args()
    console = Console(width=140)

    chunks, queries = load_texts(args.chunks, args.queries)
    backends = list(EmbeddingBackend)
    docs: dict[EmbeddingBackend, DocumentEmbedder] = {}
    texts: dict[EmbeddingBackend, TextEmbedder] = {}
    load_s: dict[EmbeddingBackend, float] = {}
    for backend in backends:
        start = time.perf_counter()
        docs[backend] = DocumentEmbedder(model=args.model, backend=backend, batch_size=args.batch_size)
        texts[backend] = TextEmbedder(model=args.model, backend=backend)
        docs[backend].warm_up()
        texts[backend].warm_up()
        load_s[backend] = time.perf_counter() - start
        texts[backend].run(queries[0])  # first-call costs stay outside the measurement
        docs[backend].run([Document(content=c) for c in chunks[: args.batch_size]])

    encode_s = {b: 0.0 for b in backends}
    query_ms: dict[EmbeddingBackend, list[float]] = {b: [] for b in backends}
    vectors: dict[EmbeddingBackend, np.ndarray] = {}
    for r in range(args.rounds):
        order = backends[r % len(backends) :] + backends[: r % len(backends)]
        for backend in order:
            batch = [Document(content=c) for c in chunks]
            start = time.perf_counter()
            out = docs[backend].run(batch)["documents"]
            encode_s[backend] += time.perf_counter() - start
            vectors[backend] = np.array([d.embedding for d in out], dtype=np.float32)
            for q in queries:
                start = time.perf_counter()
                texts[backend].run(q)
                query_ms[backend].append((time.perf_counter() - start) * 1000)
        console.print(f"round {r + 1}/{args.rounds} done")

    def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.asarray((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))

    base = EmbeddingBackend.TORCH
    rows: list[dict[str, Any]] = []
    for backend in backends:
        cps = args.chunks * args.rounds / encode_s[backend]
        p50 = statistics.median(query_ms[backend])
        cos = cosine(vectors[base], vectors[backend])
        rows.append(
            {
                "backend": backend.value,
                "chunks_per_s": round(cps, 2),
                "query_p50_ms": round(p50, 2),
                "query_p95_ms": round(float(np.percentile(query_ms[backend], 95)), 2),
                "cosine_to_torch_min": round(float(cos.min()), 4),
                "cosine_to_torch_mean": round(float(cos.mean()), 4),
                "load_s": round(load_s[backend], 1),
            }
        )
    torch_row = rows[0]
    for row in rows:
        row["throughput_x_torch"] = round(row["chunks_per_s"] / torch_row["chunks_per_s"], 2)
        row["query_latency_x_lower"] = round(torch_row["query_p50_ms"] / row["query_p50_ms"], 2)

    table = Table(
        title=f"{args.model}: {args.chunks} x {CHUNK_WORDS}-word chunks, {args.queries} queries, {args.rounds} rounds"
    )
    for col in ("backend", "chunks/s", "x torch", "query p50 ms", "p95", "x lower", "cos min / mean", "load s"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for row in rows:
        table.add_row(
            row["backend"],
            f"{row['chunks_per_s']:.1f}",
            f"{row['throughput_x_torch']:.2f}x",
            f"{row['query_p50_ms']:.1f}",
            f"{row['query_p95_ms']:.1f}",
            f"{row['query_latency_x_lower']:.2f}x",
            f"{row['cosine_to_torch_min']:.4f} / {row['cosine_to_torch_mean']:.4f}",
            f"{row['load_s']:.1f}",
        )
    console.print(table)
    machine = {
        "cpu_count": torch.get_num_threads(),
        "int8_profile": cpu_int8_profile(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }
    args.out.write_text(
        json.dumps({"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}, "rows": rows}, indent=2)
        + "\n"
    )
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
