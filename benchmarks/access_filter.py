"""Retrieval p50 with the access filter vs without, on 50,000 chunks in ten groups: embedded store and ES.

Each chunk belongs to one of ten groups (``meta.access``); the reader belongs to two of them, so the filter
keeps a fifth of the chunks (plus none unmarked). The same queries run interleaved with and without the
filter, in one run per store, so the ratio holds on a noisy machine. Corpus: NFCorpus windows when
../shared/data/nfcorpus exists, else the synthetic Zipf corpus (benchmarks/store_latency.py).

Run: ``.venv/bin/python benchmarks/access_filter.py [--es-url URL] [--size 50000]``; without --es-url a
local Elasticsearch node is started for the run (``ragship.local.es_node``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from store_latency import NFCORPUS, make_corpus, p

from ragship.access.scope import AccessScope
from ragship.enums import AccessDefault
from ragship.stores import EmbeddedDocumentStore

GROUPS = [f"g{i}" for i in range(10)]
READER = AccessScope.of_groups(["g3", "g7"], AccessDefault.PUBLIC, "bench")


def measure(store: Any, queries: list[str], qvecs: np.ndarray, rounds: int) -> dict[str, dict[str, float]]:
    """p50 / p95 in ms of bm25 and dense, without and with the filter, interleaved query by query."""
    times: dict[str, list[float]] = {f"{m} {f}": [] for m in ("bm25", "dense") for f in ("open", "filtered")}
    flt = READER.filter()
    for i in range(rounds + 5):
        q, v = queries[i % len(queries)], qvecs[i % len(qvecs)].tolist()
        for label, filters in (("open", None), ("filtered", flt)):
            for mode, call in (
                ("bm25", lambda f=filters, q=q: store.bm25_retrieval(q, top_k=20, filters=f)),
                ("dense", lambda f=filters, v=v: store.embedding_retrieval(v, top_k=20, filters=f)),
            ):
                start = time.perf_counter()
                hits = call()
                elapsed = (time.perf_counter() - start) * 1000
                if filters is not None:
                    assert all(set(d.meta["access"]) & {"g3", "g7"} for d in hits)
                if i >= 5:  # the first rounds warm caches
                    times[f"{mode} {label}"].append(elapsed)
    return {k: {"p50": round(p(v, 50), 2), "p95": round(p(v, 95), 2)} for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--es-url", default=None)
    parser.add_argument("--skip-es", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results-access.json"))
    args = parser.parse_args()
    corpus = "nfcorpus" if NFCORPUS.exists() else "synthetic"
    docs, queries, qvecs = make_corpus(corpus, args.size)
    for i, doc in enumerate(docs):
        doc.meta["access"] = [GROUPS[i % len(GROUPS)]]
    results: dict[str, Any] = {"corpus": corpus, "chunks": args.size, "groups": len(GROUPS), "reader": ["g3", "g7"]}
    with tempfile.TemporaryDirectory() as tmp:
        embedded = EmbeddedDocumentStore(Path(tmp) / "store")
        for i in range(0, len(docs), 1000):
            embedded.write_documents(docs[i : i + 1000])
        results["embedded"] = measure(embedded, queries, qvecs, args.rounds)
        print(json.dumps(results["embedded"]), flush=True)
    if not args.skip_es:
        results["elasticsearch"] = _es(args, docs, queries, qvecs)
    for store in ("embedded", "elasticsearch"):
        if store in results:
            for mode in ("bm25", "dense"):
                cell = results[store]
                cell[f"{mode} ratio p50"] = round(cell[f"{mode} filtered"]["p50"] / cell[f"{mode} open"]["p50"], 2)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


def _es(args: argparse.Namespace, docs: list[Any], queries: list[str], qvecs: np.ndarray) -> dict[str, Any]:
    from ragship.local.es_node import LocalElasticsearch
    from ragship.settings import load_settings
    from ragship.stores.elasticsearch import ElasticsearchStore

    node = None
    url = args.es_url
    if url is None:
        node = LocalElasticsearch(load_settings().local_es, name=f"bench-access-{uuid.uuid4().hex[:6]}")
        url = node.start(port=0)
    alias = f"bench-access-{uuid.uuid4().hex[:8]}"
    store = ElasticsearchStore(url, alias, embedding_dim=len(docs[0].embedding))
    try:
        for i in range(0, len(docs), 2000):
            store.write_documents(docs[i : i + 2000])
        return measure(store, queries, qvecs, args.rounds)
    finally:
        store.delete_index()
        if node is not None:
            node.remove()


if __name__ == "__main__":
    main()
