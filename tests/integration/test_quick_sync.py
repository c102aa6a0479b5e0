"""A no-change ``ragship sync`` plans from the manifest file and loads neither Haystack nor torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragship.spec import default_spec
from ragship.stores.embedded import EmbeddedDocumentStore

pytestmark = pytest.mark.slow
OLD = time.time() - 3600  # an hour ago: outside the racy window, so the first sync records the stamps


def _sync(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``ragship sync ARGS --json`` in a new process, with the top-level packages it imported."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "ragship.cli", "sync", *args, "--json"],
        cwd=cwd,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    # -X importtime writes "import time: self | cumulative | <indented module>" per import to stderr.
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    return done, imported


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    os.utime(path, (OLD, OLD))


def test_a_no_change_sync_imports_no_haystack_and_no_torch(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, word in enumerate(["amber", "basalt", "cobalt"]):
        _write(corpus / f"note-{i}.md", f"# Note {i}\n\nThis note is about {word}.\n")
    store = tmp_path / "store"

    first, imported = _sync("corpus", "--store", str(store), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["added"] == 3
    assert "haystack" in imported  # the files were embedded: the check below can tell

    again, imported = _sync("corpus", "--store", str(store), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert (report["unchanged"], report["hashed"], report["added"], report["chunks_written"]) == (3, 0, 0, 0)
    assert report["store"] == EmbeddedDocumentStore(store).describe()
    assert "haystack" not in imported and "torch" not in imported

    # A file gone and one added: the same plan is carried out by the store (deleted and indexed, exit 0).
    (corpus / "note-0.md").unlink()
    _write(corpus / "note-9.md", "# Note 9\n\nThis note is about dolomite.\n")
    changed, _ = _sync("corpus", "--store", str(store), cwd=tmp_path)
    assert changed.returncode == 0, changed.stderr
    report = json.loads(changed.stdout)
    assert (report["added"], report["deleted"], report["unchanged"]) == (1, 1, 2)
    assert report["chunks_written"] > 0 and report["chunks_deleted"] > 0

    # A missing path is a failure (exit 1) with nothing to write: still no Haystack.
    missing, imported = _sync("corpus", "gone.md", "--store", str(store), cwd=tmp_path)
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["failures"] == [{"source": "gone.md", "reason": "path not found"}]
    assert "haystack" not in imported


def test_the_quick_plan_leaves_stores_it_cannot_read_to_the_store(tmp_path: Path) -> None:
    from ragship.quick_sync import plan_quickly  # here: the test above also runs against code without it

    spec = default_spec()
    assert plan_quickly(spec, str(tmp_path / "not-yet"), [tmp_path], None) is None  # created by the store
    assert not (tmp_path / "not-yet").exists()
    assert plan_quickly(spec, "http://localhost:9200", [tmp_path], None) is None  # Elasticsearch: its own path
    other = EmbeddedDocumentStore(tmp_path / "other", embedding_dim=7)
    other.manifest.read()  # creates it, recording no dimension yet
    assert plan_quickly(spec, str(tmp_path / "other"), [tmp_path], None) is not None
