"""What names and types a source file has, and how one that failed is reported: light on purpose.

Kept apart from the converters (which import Haystack, and Haystack imports torch when it is installed) so
that a no-change ``ragship sync`` plans without loading either (:mod:`ragship.quick_sync`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TEXT_TYPES = {".txt", ".md", ".markdown", ".html", ".htm", ".jsonl"}
BINARY_TYPES = {".pdf", ".docx"}
SUPPORTED_TYPES = TEXT_TYPES | BINARY_TYPES


@dataclass(frozen=True)
class FileFailure:
    """A file (or one record of a .jsonl file) that could not be converted."""

    source: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        """Plain-data form for summaries and JSON output."""
        return {"source": self.source, "reason": self.reason}


def source_name(path: str | Path) -> str:
    """Canonical name of a source file: relative to the working directory when inside it."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()
