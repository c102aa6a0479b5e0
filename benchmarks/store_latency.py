"""Retrieval latency of ragship's embedded store vs Haystack's InMemoryDocumentStore.

Both stores get the same chunks and answer the same queries in one run, so the ratio is meaningful
on a noisy machine. Corpora:
- ``nfcorpus`` (default when ../shared/data/nfcorpus exists): 60-word windows (stride 12) over the
  BEIR NFCorpus titles+abstracts, queried with its real queries. Read from disk, never copied.
- ``synthetic``: Zipf(1.3) vocabulary, 120 words a chunk; a stress case where most query words
  occur in most chunks.
Embeddings are random 384-d vectors (as all-MiniLM-L6-v2 makes): dense latency does not depend on
their values. Query embedding time is excluded (the same for both stores).

    .venv/bin/python benchmarks/store_latency.py --sizes 1000 10000 50000

``--compare-fts5`` times the embedded store's BM25 two ways on the same store in one run: FTS5's
``bm25()`` (the store before the pruned index) and the pruned in-memory index (now), with the dense
search, the time to build the index on the first query, the process RSS and the write time:

    .venv/bin/python benchmarks/store_latency.py --compare-fts5 --corpus synthetic --sizes 50000 500000 \
        --queries 30 --out benchmarks/results-store-500k.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from haystack import Document
from haystack.document_stores.in_memory import InMemoryDocumentStore
from rich.console import Console
from rich.progress import track
from rich.table import Table

from ragship.stores import EmbeddedDocumentStore

DIM = 384
VOCAB = 30_000
WORDS_PER_CHUNK = 120


NFCORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nfcorpus"


def _texts(corpus: str, n: int, rng: np.random.Generator) -> tuple[list[str], list[str]]:
    if corpus == "nfcorpus":
        chunks: list[str] = []
        with (NFCORPUS / "corpus.jsonl").open() as f:
            for line in f:
                record = json.loads(line)
                words = f"{record['title']} {record['text']}".split()
                chunks.extend(" ".join(words[s : s + 60]) for s in range(0, max(1, len(words) - 60), 12))
        with (NFCORPUS / "queries.jsonl").open() as f:
            queries = [json.loads(line)["text"] for line in f]
        if len(chunks) < n:
            raise SystemExit(f"nfcorpus yields {len(chunks)} chunks; ask for at most that many")
        return chunks[:n], queries[:200]
    vocab = np.array([f"w{i}" for i in range(VOCAB)])
    ids = rng.zipf(1.3, size=(n, WORDS_PER_CHUNK)) % VOCAB
    query_ids = rng.zipf(1.3, size=(200, 6)) % VOCAB
    return [" ".join(vocab[row]) for row in ids], [" ".join(vocab[q]) for q in query_ids]


def make_corpus(corpus: str, n: int, seed: int = 0) -> tuple[list[Document], list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, queries = _texts(corpus, n, rng)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    docs = [
        Document(id=f"c{i}", content=text, meta={"source": f"f{i // 20}.md"}, embedding=vectors[i].tolist())
        for i, text in enumerate(texts)
    ]
    return docs, queries, rng.normal(size=(len(queries), DIM)).astype(np.float32)


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm caches (e.g. the dense matrix) outside the measurement
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def bench(
    corpus: str, size: int, queries_per_mode: int, with_in_memory: bool, console: Console
) -> list[tuple[str, ...]]:
    docs, queries, qvecs = make_corpus(corpus, size)
    nq = len(queries)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, object] = {"ragship embedded": EmbeddedDocumentStore(Path(tmp) / "s")}
        if with_in_memory:
            stores["haystack InMemory"] = InMemoryDocumentStore(embedding_similarity_function="cosine")
        results: dict[str, dict[str, list[float]]] = {}
        for name, store in stores.items():
            start = time.perf_counter()
            for i in track(range(0, size, 1000), description=f"{size:>6} chunks -> {name}", console=console):
                store.write_documents(docs[i : i + 1000])  # type: ignore[attr-defined]
            write_s = time.perf_counter() - start
            # Both stores expose the same two retrieval methods, so one pair of calls serves both.
            bm25 = lambda i, s=store: s.bm25_retrieval(queries[i % nq], top_k=20)  # type: ignore[attr-defined]  # noqa: E731
            dense = lambda i, s=store: s.embedding_retrieval(qvecs[i % nq].tolist(), top_k=20)  # type: ignore[attr-defined]  # noqa: E731
            counter = iter(range(10**9))
            results[name] = {
                "bm25": timed(lambda b=bm25, c=counter: b(next(c)), queries_per_mode),
                "dense": timed(lambda d=dense, c=counter: d(next(c)), queries_per_mode),
            }
            results[name]["hybrid"] = [
                b + d for b, d in zip(results[name]["bm25"], results[name]["dense"], strict=True)
            ]
            for mode in ("bm25", "dense", "hybrid"):
                values = results[name][mode]
                rows.append(
                    (corpus, str(size), name, mode, f"{p(values, 50):.1f}", f"{p(values, 95):.1f}", f"{write_s:.1f}")
                )
        if with_in_memory:
            for mode in ("bm25", "dense", "hybrid"):
                ratio = statistics.median(results["haystack InMemory"][mode]) / statistics.median(
                    results["ragship embedded"][mode]
                )
                rows.append((corpus, str(size), "InMemory p50 / embedded p50", mode, f"{ratio:.1f}x", "", ""))
    return rows


def rss_mb() -> float:
    """This process's resident memory now (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def compare_fts5(corpus: str, size: int, queries_per_mode: int, console: Console) -> dict[str, object]:
    """FTS5 BM25 (before) and the pruned index (after) on one store, with dense, RSS and write time."""
    rng = np.random.default_rng(0)
    texts, queries = _texts(corpus, size, rng)
    qvecs = rng.normal(size=(len(queries), DIM)).astype(np.float32)
    nq = len(queries)
    record: dict[str, object] = {"corpus": corpus, "chunks": size}
    with tempfile.TemporaryDirectory() as tmp:
        store = EmbeddedDocumentStore(Path(tmp) / "s")
        start = time.perf_counter()
        for i in track(range(0, size, 1000), description=f"{size:>6} chunks -> embedded", console=console):
            # Documents are made a batch at a time, so the RSS below is the store's, not the corpus's.
            vectors = rng.normal(size=(min(1000, size - i), DIM)).astype(np.float32)
            store.write_documents(
                [
                    Document(id=f"c{j}", content=texts[j], meta={"source": f"f{j // 20}.md"}, embedding=v.tolist())
                    for j, v in zip(range(i, i + len(vectors)), vectors, strict=True)
                ]
            )
        record["write_s"] = round(time.perf_counter() - start, 1)
        del texts
        gc.collect()
        record["rss_before_indexes_mb"] = round(rss_mb())
        start = time.perf_counter()
        store.bm25_retrieval(queries[0], top_k=20)
        record["bm25_index_build_s"] = round(time.perf_counter() - start, 1)
        start = time.perf_counter()
        store.embedding_retrieval(qvecs[0].tolist(), top_k=20)
        record["dense_index_build_s"] = round(time.perf_counter() - start, 1)
        record["rss_mb"] = round(rss_mb())
        counter = iter(range(10**9))
        modes = {
            "bm25 fts5 (before)": lambda i: store.fts5_bm25_retrieval([(queries[i % nq], 1.0)], top_k=20),
            "bm25 pruned (after)": lambda i: store.bm25_retrieval(queries[i % nq], top_k=20),
            "dense": lambda i: store.embedding_retrieval(qvecs[i % nq].tolist(), top_k=20),
        }
        times = {mode: timed(lambda f=fn: f(next(counter)), queries_per_mode) for mode, fn in modes.items()}
        # Each mode ran the same questions in order (the counter restarts per mode), so hybrid adds them up.
        times["hybrid (before)"] = [a + b for a, b in zip(times["bm25 fts5 (before)"], times["dense"], strict=True)]
        times["hybrid (after)"] = [a + b for a, b in zip(times["bm25 pruned (after)"], times["dense"], strict=True)]
        record["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
        record["dense_recall_at_20"] = dense_recall(store, qvecs[: queries_per_mode + 1], 20)
        record["write_then_query"] = [
            write_then_query(store, rng, size + 1000 * k, queries[k], qvecs[k]) for k in range(3)
        ]
        record["ms"] = {mode: {"p50": round(p(v, 50), 1), "p95": round(p(v, 95), 1)} for mode, v in times.items()}
        store.close()
    return record


def dense_recall(store: EmbeddedDocumentStore, qvecs: np.ndarray, k: int) -> float:
    """Mean recall@k of the store's dense search against exact float32 cosine over every stored vector."""
    queries = qvecs / np.linalg.norm(qvecs, axis=1, keepdims=True)
    best: list[list[tuple[float, str]]] = [[] for _ in queries]
    cursor = store._connect().execute("SELECT id, embedding FROM documents")
    while batch := cursor.fetchmany(20_000):
        matrix = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in batch])
        matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
        for q, scores in enumerate(queries @ matrix.T):
            top = np.argpartition(-scores, k)[:k]
            best[q] = sorted(best[q] + [(float(scores[i]), batch[i][0]) for i in top], reverse=True)[:k]
    found = [{d.id for d in store.embedding_retrieval(q.tolist(), top_k=k)} for q in qvecs]
    return round(float(np.mean([len(f & {i for _, i in b}) / k for f, b in zip(found, best, strict=True)])), 4)


def write_then_query(
    store: EmbeddedDocumentStore, rng: np.random.Generator, first: int, query: str, qvec: np.ndarray
) -> dict[str, float]:
    """A write batch (1,000 new chunks, 100 deleted), then the first BM25 and dense queries after it (s).

    Those queries bring the indexes up to date with the batch (an incremental update, not a rebuild).
    """
    vectors = rng.normal(size=(1000, DIM)).astype(np.float32)
    words = np.array([f"w{i}" for i in range(VOCAB)])
    texts = [" ".join(words[row]) for row in rng.zipf(1.3, size=(1000, WORDS_PER_CHUNK)) % VOCAB]
    start = time.perf_counter()
    store.write_documents(
        [
            Document(id=f"c{first + j}", content=t, embedding=v.tolist())
            for j, (t, v) in enumerate(zip(texts, vectors, strict=True))
        ]
    )
    store.delete_documents([f"c{j}" for j in range(first - 1000 - 100 * 7, first - 1000, 7)])
    write = time.perf_counter() - start
    start = time.perf_counter()
    store.bm25_retrieval(query, top_k=20)
    bm25 = time.perf_counter() - start
    start = time.perf_counter()
    store.embedding_retrieval(qvec.tolist(), top_k=20)
    dense = time.perf_counter() - start
    return {"write_s": round(write, 2), "first_bm25_s": round(bm25, 2), "first_dense_s": round(dense, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    parser.add_argument("--queries", type=int, default=100, help="Timed queries per mode and store.")
    parser.add_argument(
        "--corpus",
        choices=["nfcorpus", "synthetic"],
        nargs="+",
        default=["nfcorpus", "synthetic"] if NFCORPUS.exists() else ["synthetic"],
    )
    parser.add_argument(
        "--in-memory-max", type=int, default=10000, help="Largest size also run on InMemoryDocumentStore."
    )
    parser.add_argument("--compare-fts5", action="store_true", help="BM25 before/after on one store, RSS.")
    parser.add_argument("--out", type=Path, help="Write the --compare-fts5 records as JSON.")
    args = parser.parse_args()
    console = Console(stderr=True)
    if args.compare_fts5:
        records = []
        for corpus in args.corpus:
            for size in args.sizes:
                records.append(compare_fts5(corpus, size, args.queries, console))
                console.print_json(json.dumps(records[-1]))  # each record as soon as it is measured
        table = Table(title="Embedded store, top_k=20: FTS5 BM25 (before) vs pruned index (after), ms")
        for column in ("corpus", "chunks", "mode", "p50 ms", "p95 ms"):
            table.add_column(column)
        for r in records:
            for mode, v in r["ms"].items():  # type: ignore[attr-defined]
                table.add_row(str(r["corpus"]), str(r["chunks"]), mode, str(v["p50"]), str(v["p95"]))
        Console().print(table)
        Console().print_json(json.dumps([{k: v for k, v in r.items() if k != "ms"} for r in records]))
        if args.out:
            args.out.write_text(json.dumps({"command": " ".join(sys.argv), "records": records}, indent=2) + "\n")
        return
    table = Table(title="Retrieval latency, top_k=20 (ms)")
    for column in ("corpus", "chunks", "store", "mode", "p50 ms", "p95 ms", "write s"):
        table.add_column(column)
    for corpus in args.corpus:
        for size in args.sizes:
            for row in bench(corpus, size, args.queries, size <= args.in_memory_max, console):
                table.add_row(*row)
    Console().print(table)


if __name__ == "__main__":
    main()
