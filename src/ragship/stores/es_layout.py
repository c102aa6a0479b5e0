"""How a ragship store lays out its Elasticsearch indices.

- Reads and writes go through an alias (``<alias>``) over one versioned index (``<alias>-000001`` at first,
  ``<alias>-<timestamp>`` after a rebuild); a rebuild fills a new index and swaps the alias atomically.
- Each index has a manifest index beside it (``<index>-manifest``), so a rebuild swaps both at once.
- The mapping is explicit: ``content`` text, ``embedding`` dense_vector with ``dims`` from the model and
  cosine similarity (int8 HNSW), string metadata as keyword; ``content_stemmed`` where the text is
  analysed client-side (:mod:`~ragship.stores.es_text`), recorded in the mapping's ``_meta``.

Every function takes ``call``, the store's guard that turns client failures into ragship errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from ragship.access.scope import ACCESS_META
from ragship.errors import StoreError
from ragship.stores.es_text import PORTABLE_ANALYZER, STEMMED_FIELD, TEXT_ANALYZER, TextAnalysis

Call = Callable[..., Any]  # call(fn, *args, **kwargs) -> fn(*args, **kwargs), errors translated

MANIFEST_SUFFIX = "-manifest"
# A file's size and modification time when it was hashed (added later: older manifests get them on write)
STAMP_MAPPING = {"size": {"type": "long"}, "mtime_ns": {"type": "long"}}
MANIFEST_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "source": {"type": "keyword"},
        "content_hash": {"type": "keyword"},
        "pipeline_hash": {"type": "keyword"},
        "chunk_ids": {"type": "keyword", "index": False, "doc_values": False},
        "indexed_at": {"type": "date"},
        **STAMP_MAPPING,
    },
}


def manifest_id(source: str) -> str:
    """The manifest document id of a source: paths can exceed the 512-byte _id limit, a digest never does."""
    return hashlib.sha256(source.encode()).hexdigest()


def index_body(
    embedding_dim: int | None,
    shards: int = 1,
    replicas: int = 0,
    analyzer: str | None = None,
    analysis: TextAnalysis | None = None,
) -> dict[str, Any]:
    """Settings and mappings of a ragship index.

    :param analyzer: Analyzer of ``content`` (the portable ``ragship_text`` when None).
    :param analysis: How the index analyses text (wins over ``analyzer``); recorded in ``_meta``.
    """
    analysis = analysis or TextAnalysis(analyzer or PORTABLE_ANALYZER)
    properties: dict[str, Any] = {
        "id": {"type": "keyword"},
        "content": {"type": "text", "analyzer": analysis.content_analyzer},
        "source": {"type": "keyword"},
        ACCESS_META: {"type": "keyword"},  # the groups that may read the chunk (ragship.access.scope)
        "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
    }
    mappings: dict[str, Any] = {"_meta": analysis.meta()}
    if analysis.client_side:
        # Terms already analysed by ragship: split on spaces only; indexed, never returned.
        properties[STEMMED_FIELD] = {"type": "text", "analyzer": "whitespace"}
        mappings["_source"] = {"excludes": [STEMMED_FIELD]}
    embedding: dict[str, Any] = {"type": "dense_vector", "index": True, "similarity": "cosine"}
    if embedding_dim:
        embedding["dims"] = embedding_dim
        embedding["index_options"] = {"type": "int8_hnsw"}
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": {"analyzer": {PORTABLE_ANALYZER: TEXT_ANALYZER}},
        },
        "mappings": {
            **mappings,
            "dynamic_templates": [
                {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 2048}}}
            ],
            "properties": {**properties, "embedding": embedding},
        },
    }


def resolve_replicas(call: Call, client: Elasticsearch, replicas: int | None) -> int:
    """Replicas of a new index: as configured, else 1 when the cluster has more than one data node, else 0."""
    if replicas is not None:
        return replicas
    data_nodes = int(call(client.cluster.health)["number_of_data_nodes"])
    return 1 if data_nodes > 1 else 0


def current_indices(call: Call, client: Elasticsearch, alias: str) -> list[str]:
    """The indices behind ``alias``, sorted (none when the alias does not exist)."""
    try:
        return sorted(call(client.indices.get_alias, name=alias).body)
    except NotFoundError:
        return []


def mapped_dimension(call: Call, client: Elasticsearch, index: str) -> int | None:
    """The ``dims`` of ``index``'s embedding field (None when the mapping has none yet)."""
    mapping = call(client.indices.get_mapping, index=index).body
    props = next(iter(mapping.values()))["mappings"].get("properties", {})
    dims = props.get("embedding", {}).get("dims")
    return int(dims) if dims is not None else None


def mapping_meta(call: Call, client: Elasticsearch, index: str) -> dict[str, Any]:
    """The ``_meta`` of ``index``'s mapping (empty when it has none)."""
    mapping = call(client.indices.get_mapping, index=index).body
    return dict(next(iter(mapping.values()))["mappings"].get("_meta", {}))


def update_meta(call: Call, client: Elasticsearch, index: str, entries: dict[str, Any]) -> None:
    """Set ``entries`` in ``index``'s ``_meta``, keeping the others (a mapping update replaces ``_meta`` whole)."""
    call(client.indices.put_mapping, index=index, meta={**mapping_meta(call, client, index), **entries})


def create_first_index(call: Call, client: Elasticsearch, alias: str, body: dict[str, Any]) -> str:
    """Create ``<alias>-000001`` behind ``alias``; another process having created it first is fine."""
    first = f"{alias}-000001"
    try:
        call(client.indices.create, index=first, aliases={alias: {}}, **body)
    except ApiError as e:
        # Another process created it first: fine, it has the same layout.
        if "resource_already_exists_exception" not in str(e):
            raise StoreError(f"Cannot create index {first}: {e}") from e
    return first


def create_staged_index(call: Call, client: Elasticsearch, alias: str, body: dict[str, Any]) -> str:
    """Create an empty versioned index for ``alias`` that the alias does not point at yet; returns its name."""
    name = f"{alias}-{datetime.now(UTC).strftime('%Y%m%d%H%M%S%f')}"
    call(client.indices.create, index=name, **body)
    return name


def swap_alias(call: Call, client: Elasticsearch, alias: str, index: str) -> None:
    """Point ``alias`` at ``index`` alone in one atomic step, then delete the indices it pointed at."""
    old = current_indices(call, client, alias)
    actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": alias}} for i in old]
    actions.append({"add": {"index": index, "alias": alias}})
    call(client.indices.update_aliases, actions=actions)
    for name in old:
        delete_with_manifest(call, client, name)


def delete_with_manifest(call: Call, client: Elasticsearch, index: str) -> None:
    """Delete an index and its manifest index (either may be missing)."""
    call(client.indices.delete, index=f"{index},{index}{MANIFEST_SUFFIX}", ignore_unavailable=True)


def ensure_manifest_index(call: Call, client: Elasticsearch, index: str, replicas: int | None) -> None:
    """Create the manifest index ``index`` unless it exists (racing creators are fine), with as many
    replicas as the chunk indices (see :func:`resolve_replicas`)."""
    if call(client.indices.exists, index=index):
        return
    try:
        call(
            client.indices.create,
            index=index,
            settings={"number_of_shards": 1, "number_of_replicas": resolve_replicas(call, client, replicas)},
            mappings=MANIFEST_MAPPING,
        )
    except ApiError as e:
        if "resource_already_exists_exception" not in str(e):
            raise StoreError(f"Cannot create the manifest index {index}: {e}") from e
