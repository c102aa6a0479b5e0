"""The embedded store's staged rebuild: a sibling directory, swapped in by two renames."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path


def staged_path(live: Path) -> Path:
    """A fresh directory beside ``live`` for a rebuild (``<name>.rebuild-<timestamp>``)."""
    stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
    return live.with_name(f"{live.name}.rebuild-{stamp}")


def swap_in(live: Path, staged: Path) -> None:
    """Move ``staged`` to ``live`` by two renames; the old data is deleted afterwards.

    Both stores must be closed. Other processes holding the old store open keep reading it until they reopen.
    """
    retired = live.with_name(f"{live.name}.retired-{staged.name.rsplit('-', 1)[-1]}")
    if live.exists():
        live.rename(retired)
    staged.rename(live)
    shutil.rmtree(retired, ignore_errors=True)


def remove_staged(staged: Path) -> None:
    """Delete a staged rebuild's directory."""
    shutil.rmtree(staged, ignore_errors=True)
