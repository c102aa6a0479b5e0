"""Chunks to and from Elasticsearch: bulk actions, one bulk pass with per-chunk rejections, hits as Documents.

A bulk pass retries 429 (queue full) per item with backoff through the client's bulk helper and hands
back the chunks that met a passing cluster failure (a node going down, a replica being promoted); a
connection failure stops the pass and propagates. The caller writes those again: chunk ids are stable,
so writing a chunk twice is harmless.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from elasticsearch import Elasticsearch, helpers
from haystack import Document
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from ragship.errors import StoreUnavailableError
from ragship.stores.base import Rejection, WriteResult
from ragship.stores.es_client import TRANSIENT

Call = Callable[..., Any]  # the store's guard: call(fn, *args, **kwargs) with client errors translated
Fields = Callable[[str | None], dict[str, Any]]  # a chunk's content -> fields indexed beside its own

_NULLABLE = ("embedding", "blob", "sparse_embedding")  # typed fields: ES rejects explicit nulls
# Item failures of a cluster in motion (a node left, a replica not yet promoted, no elected master).
RETRY_ITEM_STATUS = (429, 503)
ID_PAGE = 10_000  # ids one search returns (the index's default max_result_window); more are scrolled
TERMS_PER_QUERY = 1_000  # sources per ``terms`` query (well under the cluster's 65,536 terms limit)
RETRY_ITEM_TYPES = frozenset(
    {
        "unavailable_shards_exception",
        "no_shard_available_action_exception",
        "node_not_connected_exception",
        "node_disconnected_exception",
        "node_closed_exception",
        "cluster_block_exception",
    }
)


def actions(
    documents: list[Document], index: str, op_type: str, fields: Fields | None = None
) -> Iterator[dict[str, Any]]:
    """Bulk actions writing ``documents`` into ``index`` (``op_type`` ``index`` overwrites, ``create`` does not);
    ``fields`` adds fields derived from the content (the client-side analysed text)."""
    for doc in documents:
        # to_dict deep-copies every field: without the vector in it, 384 floats per chunk are not copied twice.
        body = replace(doc, embedding=None).to_dict(flatten=True)
        if doc.embedding is not None:
            body["embedding"] = doc.embedding
        if fields is not None:
            body.update(fields(doc.content))
        body.pop("score", None)  # a retrieval score is not document data
        for key in _NULLABLE:
            if body.get(key) is None:
                body.pop(key, None)
        yield {"_op_type": op_type, "_index": index, "_id": doc.id, "_source": body}


def bulk_pass(
    client: Elasticsearch, documents: list[Document], index: str, op_type: str, fields: Fields | None = None
) -> tuple[WriteResult, list[tuple[Document, Rejection]]]:
    """Write ``documents`` in one streaming bulk pass.

    :returns: What landed and what was refused (with Elasticsearch's reason), and the chunks that met a
        passing failure (a shard without a live copy, a node leaving, no master, a full queue), each with
        the refusal it got, worth writing again.
    :raises elasticsearch.ConnectionError: (or a timeout) when the cluster cannot be reached mid-pass.
    """
    by_id = {d.id: d for d in documents}
    result = WriteResult()
    again: list[tuple[Document, Rejection]] = []
    for ok, item in helpers.streaming_bulk(
        client,
        actions(documents, index, op_type, fields),
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
        doc_id, error = str(info.get("_id")), info.get("error", {})
        reason = str(error)
        if isinstance(error, dict):
            reason = f"{error.get('type', 'error')}: {error.get('reason', error)}"
        rejection = Rejection(doc_id, source_of(by_id.get(doc_id)), reason)
        if _passing(info.get("status"), error) and doc_id in by_id:
            again.append((by_id[doc_id], rejection))
        else:
            result.rejected.append(rejection)
    return result, again


def source_of(document: Document | None) -> str:
    """The source file a chunk came from ("" when unknown)."""
    return str(document.meta.get("source", "")) if document is not None else ""


def _passing(status: object, error: object) -> bool:
    """Whether a refused item met a passing cluster failure rather than a problem with the chunk itself."""
    kind = error.get("type") if isinstance(error, dict) else None
    return status in RETRY_ITEM_STATUS or kind in RETRY_ITEM_TYPES


class PendingChunksError(Exception):
    """Chunks of a bulk write met a passing cluster failure and wait for another attempt."""


def _worth_retrying(error: BaseException) -> bool:
    """A write attempt is repeated for chunks left pending and for a cluster that could not be reached."""
    unreachable = isinstance(error, StoreUnavailableError) and isinstance(error.__cause__, TRANSIENT)
    return isinstance(error, PendingChunksError) or unreachable


def write_with_retries(
    call: Call,
    client: Callable[[], Elasticsearch],
    documents: list[Document],
    index: str,
    op_type: str,
    *,
    fields: Fields | None = None,
    attempts: int,
    backoff_max_s: float,
) -> WriteResult:
    """Bulk passes until every chunk landed or was refused for itself, at most ``attempts`` of them.

    A pass that cannot reach the cluster is run again whole; chunks that met a passing failure (a node
    going down, a replica being promoted) are written again; both after a growing pause (1 s, 2 s, ...
    up to ``backoff_max_s``). What still waits after the last attempt is reported as rejected with its
    last refusal.

    :raises StoreUnavailableError: when the cluster stays unreachable through every attempt.
    """
    result = WriteResult()
    pending: list[Document] = documents
    refusals: list[Rejection] = []

    def attempt() -> None:
        nonlocal pending, refusals
        landed, again = call(bulk_pass, client(), pending, index, op_type, fields)
        result.written += landed.written
        result.rejected.extend(landed.rejected)
        pending, refusals = [d for d, _ in again], [r for _, r in again]
        if pending:
            raise PendingChunksError(f"{len(pending)} chunks met an unavailable node or shard")

    retrying = Retrying(
        retry=retry_if_exception(_worth_retrying),
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=1, max=backoff_max_s),
        reraise=True,
    )
    try:
        retrying(attempt)
    except PendingChunksError:
        result.rejected.extend(refusals)
    return result


def matching_ids(client: Elasticsearch, index: str, query: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, source) of the documents matching ``query``: one search when they fit in :data:`ID_PAGE`, else a scroll.

    A search per written batch replaces a scroll per source file (search, scroll, clear: three requests
    and a scroll context on the cluster for every file of an ingest).
    """
    response = client.search(index=index, query=query, size=ID_PAGE, source_includes=["source"], track_total_hits=True)
    hits = response["hits"]["hits"]
    if response["hits"]["total"]["value"] > len(hits):
        hits = helpers.scan(client, index=index, query={"query": query, "_source": ["source"]})
    return [(h["_id"], str(h["_source"].get("source", ""))) for h in hits]


def to_document(hit: dict[str, Any]) -> Document:
    """A search or scan hit as a Document (id from ``_id``, score from ``_score``)."""
    data = dict(hit["_source"])
    data["id"] = hit["_id"]
    data["score"] = hit.get("_score")
    return Document.from_dict(data)
