"""The Elasticsearch store's manifest: an index paired with the live index, so a rebuild swaps both at once."""

from __future__ import annotations

from collections.abc import Callable

from elasticsearch import Elasticsearch, helpers

from ragship.errors import StoreError
from ragship.stores import es_layout
from ragship.stores.base import FileStamp, ManifestEntry
from ragship.stores.es_layout import MANIFEST_SUFFIX, STAMP_MAPPING
from ragship.stores.es_text import Call

# Read without the chunk ids
_FIELDS = ["source", "content_hash", "pipeline_hash", "indexed_at", "size", "mtime_ns"]


class ElasticsearchManifest:
    """Manifest entries in ``<live index>-manifest``, one document per source.

    :param call: The store's guard around client calls.
    :param client: The store's client, connected (called on each use: the store opens it lazily).
    :param live_index: The store's live index, None before it exists.
    :param replicas: Replicas of the manifest index when it is created.
    """

    def __init__(
        self,
        call: Call,
        client: Callable[[], Elasticsearch],
        live_index: Callable[[], str | None],
        replicas: int | None,
    ) -> None:
        self._call, self._client, self._live_index, self._replicas = call, client, live_index, replicas
        self._ready: set[str] = set()

    def _index(self) -> str | None:
        live = self._live_index()
        return f"{live}{MANIFEST_SUFFIX}" if live else None

    def read(self) -> dict[str, ManifestEntry]:
        """Manifest entries by source, without chunk ids."""
        index, client = self._index(), self._client()
        if index is None or not self._call(client.indices.exists, index=index):
            return {}
        hits = self._call(lambda: list(helpers.scan(client, index=index, _source=_FIELDS, size=5000)))
        return {h["_source"]["source"]: ManifestEntry.from_dict(h["_source"]) for h in hits}

    def read_sources(self, sources: list[str]) -> dict[str, ManifestEntry]:
        """The entries of these sources, without chunk ids (one multi-get)."""
        index, client = self._index(), self._client()
        if index is None or not sources or not self._call(client.indices.exists, index=index):
            return {}
        ids = [es_layout.manifest_id(s) for s in sources]
        docs = self._call(client.mget, index=index, ids=ids, source_includes=_FIELDS)["docs"]
        return {d["_source"]["source"]: ManifestEntry.from_dict(d["_source"]) for d in docs if d.get("found")}

    def write(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace entries (refreshed, so the next run sees them)."""
        index = self._index()
        if index is None or not entries:
            return
        client = self._client()
        self._ensure(client, index)
        actions = [
            {"_op_type": "index", "_index": index, "_id": es_layout.manifest_id(e.source), "_source": e.to_dict()}
            for e in entries
        ]
        _, errors = self._call(helpers.bulk, client, actions, raise_on_error=False, refresh=True)
        if isinstance(errors, list) and errors:
            raise StoreError(f"Manifest update in {index} failed for {len(errors)} entries: {errors[0]}")

    def update_stamps(self, stamps: list[FileStamp]) -> None:
        """Record new sizes and modification times of existing entries (refreshed)."""
        index = self._index()
        if index is None or not stamps:
            return
        client = self._client()
        self._ensure(client, index)
        actions = [
            {
                "_op_type": "update",
                "_index": index,
                "_id": es_layout.manifest_id(s.source),
                "doc": {"size": s.size, "mtime_ns": s.mtime_ns},
            }
            for s in stamps
        ]
        _, errors = self._call(helpers.bulk, client, actions, raise_on_error=False, refresh=True)
        if isinstance(errors, list) and errors:
            raise StoreError(f"Manifest update in {index} failed for {len(errors)} entries: {errors[0]}")

    def _ensure(self, client: Elasticsearch, index: str) -> None:
        """Create the manifest index, or add the stamp fields to one made before they existed (once each)."""
        if index in self._ready:
            return
        es_layout.ensure_manifest_index(self._call, client, index, self._replicas)
        # Adding fields to a mapping is allowed on a live index; entries without them are hashed next sync.
        self._call(client.indices.put_mapping, index=index, properties=STAMP_MAPPING)
        self._ready.add(index)

    def delete(self, sources: list[str]) -> None:
        """Drop entries."""
        index = self._index()
        if index is None or not sources:
            return
        actions = [{"_op_type": "delete", "_index": index, "_id": es_layout.manifest_id(s)} for s in sources]
        self._call(helpers.bulk, self._client(), actions, raise_on_error=False, refresh=True)
