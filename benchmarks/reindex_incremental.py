"""Incremental vs full reindex time on BEIR NFCorpus, one file per document.

Writes each NFCorpus document (title + abstract) to its own .txt file in a temporary folder (read from
../shared/data/nfcorpus, never copied into the repo), then, in one run on one store:

1. ``full``: a full sync (staged index + atomic swap) of every file;
2. ``incremental, 1% changed``: edits 1% of the files and syncs incrementally;
3. ``incremental, nothing changed``: syncs again.

The goal (issue 5) is incremental <= 5% of full. Both use the default spec (all-MiniLM-L6-v2 on CPU).

    .venv/bin/python benchmarks/reindex_incremental.py [--store http://127.0.0.1:9200] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ragship.assembly import store_for
from ragship.spec import default_spec
from ragship.sync import Syncer

NFCORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "nfcorpus"


def write_corpus(folder: Path, limit: int | None) -> list[Path]:
    """One file per NFCorpus document."""
    files = []
    with (NFCORPUS / "corpus.jsonl").open() as fh:
        for i, line in enumerate(fh):
            if limit is not None and i >= limit:
                break
            doc = json.loads(line)
            path = folder / f"{doc['_id']}.txt"
            path.write_text(f"{doc.get('title', '')}\n\n{doc['text']}\n")
            files.append(path)
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="Elasticsearch URL (default: a temporary embedded store)")
    parser.add_argument("--limit", type=int, help="Use only the first N documents")
    parser.add_argument("--changed", type=float, default=0.01, help="Fraction of files edited (default 0.01)")
    args = parser.parse_args()
    if not NFCORPUS.exists():
        raise SystemExit(f"needs {NFCORPUS} (BEIR NFCorpus)")
    console = Console()
    spec = default_spec()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "nfcorpus-files"
        folder.mkdir()
        files = write_corpus(folder, args.limit)
        store = store_for(spec, args.store or str(Path(tmp) / "store"))
        syncer = Syncer(spec, store, batch_files=64)
        syncer.warm_up()  # model load is not reindex work
        rows = []
        started = time.perf_counter()
        full = syncer.sync([folder], mode="full")
        rows.append(("full", time.perf_counter() - started, full.to_dict()))
        changed = random.Random(7).sample(files, max(1, round(len(files) * args.changed)))
        for path in changed:
            path.write_text(path.read_text() + "\nRevised: this abstract was updated.\n")
        started = time.perf_counter()
        incremental = syncer.sync([folder])
        rows.append((f"incremental, {len(changed)} changed", time.perf_counter() - started, incremental.to_dict()))
        started = time.perf_counter()
        noop = syncer.sync([folder])
        rows.append(("incremental, nothing changed", time.perf_counter() - started, noop.to_dict()))
    table = Table(title=f"Reindex of {len(files)} NFCorpus files into {store.describe()}")
    for column in ("run", "seconds", "% of full", "added", "updated", "unchanged", "chunks written"):
        table.add_column(column, justify="right" if column != "run" else "left")
    full_s = rows[0][1]
    for name, seconds, s in rows:
        table.add_row(
            name, f"{seconds:.1f}", f"{100 * seconds / full_s:.1f}%", str(s["added"]), str(s["updated"]),
            str(s["unchanged"]), str(s["chunks_written"]),
        )  # fmt: skip
    console.print(table)


if __name__ == "__main__":
    main()
