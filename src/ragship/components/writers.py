"""StoreWriter: overwrites chunks by id and drops a file's stale chunks after its new ones land."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ragship.components.retrievers import StoreBound
from ragship.stores.base import ChunkWriter, Rejection


@component
class StoreWriter(StoreBound):
    """Writes chunks to the attached store.

    :param replace_sources: After writing a file's chunks, delete that file's older chunks that are
        not among them (an edited file leaves nothing stale behind). The new chunks are written
        first, so a reader never sees the file missing.
    """

    def __init__(self, replace_sources: bool = True) -> None:
        self.replace_sources = replace_sources

    def to_dict(self) -> dict[str, Any]:
        """Serialize (without the store)."""
        return default_to_dict(self, replace_sources=self.replace_sources)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoreWriter:
        """Deserialize."""
        return default_from_dict(cls, data)

    @component.output_types(
        documents_written=int, documents_deleted=int, rejected=list[Rejection], chunks_by_source=dict[str, int]
    )
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Write ``documents`` (overwriting same ids).

        :returns: counts written and deleted, the chunks the store ``rejected`` with its reasons, and
            ``chunks_by_source``: the chunks that landed, per source file.
        """
        store: ChunkWriter = self._store()
        result = store.write_chunks(documents)
        deleted = 0
        if self.replace_sources:
            ids_by_source: dict[str, set[str]] = defaultdict(set)
            for doc in documents:
                if doc.meta.get("source"):
                    ids_by_source[doc.meta["source"]].add(doc.id)
            # A file with a refused chunk keeps its older chunks: nothing stored is lost to a partial write.
            for source in {r.source for r in result.rejected}:
                ids_by_source.pop(source, None)
            # One call for the batch (a store looks the sources up together); chunk ids are unique across
            # sources, so keeping their union keeps exactly each source's new chunks.
            if ids_by_source:
                keep = set().union(*ids_by_source.values())
                deleted = store.delete_by_source(list(ids_by_source), keep_ids=keep)
        refused = {r.id for r in result.rejected}
        landed = Counter(str(d.meta.get("source")) for d in documents if d.id not in refused)
        return {
            "documents_written": result.written,
            "documents_deleted": deleted,
            "rejected": result.rejected,
            "chunks_by_source": dict(landed),
        }
