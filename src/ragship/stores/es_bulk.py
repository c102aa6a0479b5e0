"""Chunks to and from Elasticsearch: bulk actions, one bulk pass with per-chunk rejections, hits as Documents.

A bulk pass retries 429 (queue full) per item with backoff through the client's bulk helper; a connection
failure stops the pass and propagates, so the caller can retry the whole batch (chunk ids are stable,
so writing a batch twice is harmless).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch, helpers
from haystack import Document

from ragship.stores.base import Rejection, WriteResult
from ragship.stores.es_client import TRANSIENT

_NULLABLE = ("embedding", "blob", "sparse_embedding")  # typed fields: ES rejects explicit nulls


def actions(documents: list[Document], index: str, op_type: str) -> Iterator[dict[str, Any]]:
    """Bulk actions writing ``documents`` into ``index`` (``op_type`` ``index`` overwrites, ``create`` does not)."""
    for doc in documents:
        body = doc.to_dict(flatten=True)
        body.pop("score", None)  # a retrieval score is not document data
        for key in _NULLABLE:
            if body.get(key) is None:
                body.pop(key, None)
        yield {"_op_type": op_type, "_index": index, "_id": doc.id, "_source": body}


def bulk_pass(client: Elasticsearch, documents: list[Document], index: str, op_type: str) -> WriteResult:
    """Write ``documents`` in one streaming bulk pass; refused chunks come back with Elasticsearch's reason.

    :raises elasticsearch.ConnectionError: (or a timeout) when the cluster cannot be reached mid-pass.
    """
    sources = {d.id: str(d.meta.get("source", "")) for d in documents}
    result = WriteResult()
    for ok, item in helpers.streaming_bulk(
        client,
        actions(documents, index, op_type),
        raise_on_error=False,
        raise_on_exception=False,
        max_retries=4,  # per-item retries of 429 (queue full) with exponential backoff
        initial_backoff=1,
        max_backoff=16,
        chunk_size=500,
    ):
        info = next(iter(item.values()))
        if ok:
            result.written += 1
            continue
        if isinstance(info.get("exception"), TRANSIENT):
            raise info["exception"]
        error = info.get("error", {})
        reason = (
            f"{error.get('type', 'error')}: {error.get('reason', error)}" if isinstance(error, dict) else str(error)
        )
        result.rejected.append(Rejection(str(info.get("_id")), sources.get(str(info.get("_id")), ""), reason))
    return result


def to_document(hit: dict[str, Any]) -> Document:
    """A search or scan hit as a Document (id from ``_id``, score from ``_score``)."""
    data = dict(hit["_source"])
    data["id"] = hit["_id"]
    data["score"] = hit.get("_score")
    return Document.from_dict(data)
