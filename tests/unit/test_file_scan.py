"""The sync walk finds what ``discover_files`` finds, named and ordered as ``source_name`` and ``sorted`` do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragship.components.converters import source_name
from ragship.file_scan import scan_files
from ragship.pipelines.indexing import discover_files


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Names chosen so that a walk in the wrong order shows: "a" (folder) sorts before "a.md" and "a-b.md"
    by component, but "a-b.md" < "a/..." < "a.md" as whole strings."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "docs"
    for rel in ["a.md", "a-b.md", "a/z.txt", "a/b/c.md", "B.md", "b.txt", "x y/é.md", "deep/1/2/3/4.html"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    for rel in [".hidden.md", ".git/config.md", "a/.draft.md", "image.png", "Notes.MD"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    os.symlink(root / "b.txt", root / "link.txt")
    return root


def test_the_walk_matches_discover_files_in_order_names_and_stats(tree: Path) -> None:
    found, missing = scan_files([tree, "docs/a", "gone"])
    expected, expected_missing = discover_files([tree, "docs/a", "gone"])
    # discover_files keeps a file reached twice (under two roots, or by a symlink) twice; the walk once
    assert [f.name for f in found] == list(dict.fromkeys(source_name(p) for p in expected))
    assert [f.name for f in found][:4] == ["docs/B.md", "docs/Notes.MD", "docs/a/b/c.md", "docs/a/z.txt"]
    assert missing == expected_missing
    assert all((f.size, f.mtime_ns) == (os.stat(f.path).st_size, os.stat(f.path).st_mtime_ns) for f in found)


def test_a_symlinked_file_is_named_by_its_target_and_kept_once(tree: Path) -> None:
    names = [f.name for f in scan_files([tree])[0]]
    assert names.count("docs/b.txt") == 1 and "docs/link.txt" not in names


def test_a_file_given_by_name_is_kept_whatever_its_type(tree: Path) -> None:
    found, _ = scan_files([tree / "image.png", "docs/image.png"])
    assert [f.name for f in found] == ["docs/image.png"]


def test_the_sync_command_path_does_not_import_the_model_libraries() -> None:
    """A no-change sync must not pay for sentence-transformers (seconds of imports before any work)."""
    code = (
        "import sys, ragship.cli, ragship.cli.index, ragship.assembly, ragship.sync\n"
        "print(sorted(m for m in ('sentence_transformers', 'transformers', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "[]"
