"""Building a bento uses the environment's own locked tools, whatever the user's PATH holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from ragship.serving.packaging import environment_tools_first

REPO = Path(__file__).resolve().parents[2]


def test_a_foreign_uv_first_on_path_is_not_the_one_a_build_runs(
    bare_path: str, environment_scripts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", bare_path)
    decoy = shutil.which("uv")
    ran = subprocess.run([decoy or "uv", "--version"], capture_output=True, text=True)
    assert ran.returncode != 0 and "decoy uv" in ran.stderr
    with environment_tools_first() as scripts:
        assert scripts == environment_scripts
        found = shutil.which("uv")
        assert found == str(environment_scripts / "uv")
        version = subprocess.run([found, "--version"], capture_output=True, text=True, check=True).stdout
    assert os.environ["PATH"] == bare_path  # restored afterwards
    locked = {p["name"]: p["version"] for p in tomllib.loads((REPO / "uv.lock").read_text())["package"]}
    assert version.split()[1] == locked["uv"]  # the locked uv, which the Makefile also bootstraps with
