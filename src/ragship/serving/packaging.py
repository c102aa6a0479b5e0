"""Build the bentos from a project checkout (what `make bento` and notebook 03 do)."""

from __future__ import annotations

import contextlib
import os
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from ragship.errors import ConfigError

BENTOFILES = {"query": "bentofile.yaml", "indexing": "bentos/indexing/bentofile.yaml"}


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding ``bentofile.yaml``."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "bentofile.yaml").is_file() and (folder / "bentos").is_dir():
            return folder
    raise ConfigError(f"No bentofile.yaml with a bentos/ folder at or above {here}; run from a ragship checkout.")


@contextlib.contextmanager
def environment_tools_first() -> Iterator[Path]:
    """Put this Python environment's scripts folder first on PATH while the block runs; yields that folder.

    BentoML builds with the first ``uv`` on PATH and only falls back to the ``uv`` package of the running
    environment when there is none. ragship locks uv as a dependency, so the build uses exactly that one,
    never a uv (or pyenv shim) that happens to be on the user's PATH, and works when PATH has none at all.
    """
    scripts = Path(sysconfig.get_path("scripts"))
    before = os.environ.get("PATH")
    os.environ["PATH"] = os.pathsep.join([str(scripts), *([before] if before else [])])
    try:
        yield scripts
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def build_bento(
    kind: Literal["query", "indexing"] = "query",
    root: Path | None = None,
    labels: dict[str, str] | None = None,
) -> str:
    """Build the query or the indexing bento (offline) into the local bento store; returns its tag.

    :param labels: Extra labels, e.g. the champion version and spec hash it was built for.
    """
    import bentoml

    if kind not in BENTOFILES:
        raise ConfigError(f"kind must be one of {sorted(BENTOFILES)}, got {kind!r}.")
    folder = root or project_root()
    # BentoML reads the bentofile's `description: file:` relative to the working directory and refuses
    # paths outside it, so build from the project root (a notebook runs in notebooks/).
    with contextlib.chdir(folder), environment_tools_first():
        bento = bentoml.bentos.build_bentofile(
            BENTOFILES[kind],
            build_ctx=".",
            labels={"project": "ragship", "role": kind, **(labels or {})},
        )
    return str(bento.tag)
