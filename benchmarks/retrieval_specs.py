"""What a spec's retrieval costs per question, specs side by side: the built-in spec against tuned ones.

In process (``QueryEngine.retrieve``, what ``/retrieve`` runs), one store, the specs taking turns on each
question so machine noise hits all of them alike. Reported: p50 and p90 per spec and the p50 ratio to the
first spec. The store must hold the corpus already (``ragship eval`` leaves one: ``<index>-eval-nfcorpus``).

    RAGSHIP_ES__INDEX=nfc-eval-nfcorpus .venv/bin/python benchmarks/retrieval_specs.py \\
        --store http://127.0.0.1:9200 --spec builtin --spec rm3.yaml --questions 200
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from ragship.assembly import open_query_engine, resolve_spec
from ragship.eval.datasets import load_beir
from ragship.settings import redacted_url

NFCORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nfcorpus"
WARM_UP_QUESTIONS = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", required=True, help="Embedded store directory or Elasticsearch URL.")
    parser.add_argument("--spec", action="append", required=True, help="Spec file, or 'builtin'; repeatable.")
    parser.add_argument("--dataset", default=str(NFCORPUS), help="BEIR directory whose test queries are asked.")
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--out", type=Path, help="Write the figures as JSON here.")
    args = parser.parse_args()

    engines = {
        name: open_query_engine(resolve_spec(None if name == "builtin" else name), args.store) for name in args.spec
    }
    questions = [text for _, text in sorted(load_beir(args.dataset, "test").queries.items())][: args.questions]
    for engine in engines.values():
        engine.warm_up()
        for question in questions[:WARM_UP_QUESTIONS]:
            engine.retrieve(question)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for question in questions:
        for name, engine in engines.items():
            started = time.perf_counter()
            engine.retrieve(question)
            seconds[name].append(time.perf_counter() - started)
    first = statistics.median(seconds[args.spec[0]])
    rows = []
    for name, times in seconds.items():
        p50, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        rows.append(
            {
                "spec": name,
                "p50_ms": round(p50 * 1000, 1),
                "p90_ms": round(p90 * 1000, 1),
                "x_first": round(p50 / first, 2),
            }
        )
        print(f"{name}: p50 {p50 * 1000:.1f} ms ({p50 / first:.2f}x), p90 {p90 * 1000:.1f} ms")
    if args.out:
        args.out.write_text(
            json.dumps({"store": redacted_url(args.store), "questions": len(questions), "rows": rows}, indent=2) + "\n"
        )


if __name__ == "__main__":
    main()
