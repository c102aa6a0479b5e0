"""StableIdAssigner: document ids derived from source path, chunk position and content."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

from haystack import Document, component


def stable_id(source: str, position: str, content: str) -> str:
    """The id of a chunk: sha256 over its source, position and text (unit separator between them)."""
    return hashlib.sha256("\x1f".join((source, position, content)).encode("utf-8")).hexdigest()


@component
class StableIdAssigner:
    """Gives each chunk an id that is the same every time the same file is indexed.

    Re-indexing a file overwrites its chunks instead of duplicating them; a changed chunk gets a
    new id, so stale chunks can be told apart and removed.
    """

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Assign ids.

        :param documents: Chunks with ``meta.source`` and, from the splitter, ``meta.split_id``.
        :returns: ``documents`` with stable ids (copies; inputs are not modified).
        """
        out = []
        for doc in documents:
            meta = doc.meta
            position = f"{meta.get('record', '')}#{meta.get('split_id', 0)}"
            out.append(replace(doc, id=stable_id(str(meta.get("source", "")), position, doc.content or "")))
        return {"documents": out}
