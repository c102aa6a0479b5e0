"""Score the golden conversations for several history weights, gated by need (ragship's way) or naive.

    .venv/bin/python evaluation/followup_variants.py 0,0.25,0.5,0.75,1.0            # gated (the default spec's way)
    .venv/bin/python evaluation/followup_variants.py 0.25,0.5,1.0 --naive           # every earlier turn, always
    .venv/bin/python evaluation/followup_variants.py 0.5 --retrieval-only           # the answerer ignores history

Run from the repository root; indexes docs/ and README.md into .scratch/followup-store once. The tracked figures
come from ``ragship eval-qa --qa evaluation/golden_conversations.jsonl``; this script only compares variants
(figures: evaluation/README.md, "Golden conversations").
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragship import followups
from ragship.assembly import store_for
from ragship.eval.conversations import evaluate_conversations, load_conversations
from ragship.pipelines.indexing import discover_files
from ragship.pipelines.query import QueryEngine
from ragship.settings import load_settings
from ragship.spec import default_spec, with_overrides
from ragship.sync import Syncer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("weights", help="history weights, comma-separated")
    parser.add_argument("--naive", action="store_true", help="every earlier turn counts, whatever the question")
    parser.add_argument("--retrieval-only", action="store_true", help="the extractive answerer ignores history")
    parser.add_argument("--set", default="evaluation/golden_conversations.jsonl", type=Path)
    args = parser.parse_args()
    if args.naive:
        followups.needs_history = lambda question: True  # the variant measured against: no gate
    spec = default_spec()
    store = store_for(spec, ".scratch/followup-store", load_settings(home=Path(".scratch/followup-home")))
    if store.count_documents() == 0:
        files, _ = discover_files([Path("docs"), Path("README.md")])
        Syncer(spec, store).rebuild(files, allow_failures=True)
    conversations = load_conversations(args.set)
    for weight in (float(w) for w in args.weights.split(",")):
        variant = with_overrides(spec, history_weight=weight)
        if args.retrieval_only:
            variant.query["components"]["answerer"]["init_parameters"]["history_weight"] = 0.0
        metrics = evaluate_conversations(QueryEngine(variant, store), conversations).metrics
        name = "naive" if args.naive else "retrieval-only" if args.retrieval_only else "gated"
        print(json.dumps({"variant": name, "history_weight": weight, **{k: round(v, 3) for k, v in metrics.items()}}))


if __name__ == "__main__":
    main()
