"""Elasticsearch store: BM25 + kNN over one index reached through an alias.

- Reads and writes go through the alias; ``--rebuild`` fills a new versioned index and swaps the
  alias atomically, so queries never see an empty or half-built index.
- The mapping is explicit: ``content`` text, ``embedding`` dense_vector with ``dims`` from the model
  and cosine similarity (int8 HNSW), string metadata as keyword.
- Bulk writes report every rejected chunk with Elasticsearch's reason and write the rest; 429s are
  retried per item with backoff by the client's bulk helper, connection failures by tenacity.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

from elastic_transport import TlsError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    helpers,
)
from elasticsearch import ConnectionError as ESConnectionError
from elasticsearch import ConnectionTimeout as ESConnectionTimeout
from haystack import Document
from haystack.document_stores.errors import DocumentStoreError, DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from ragship.errors import StoreError, StoreUnavailableError
from ragship.settings import ElasticsearchSettings, Settings
from ragship.stores.base import ManifestEntry, Rejection, RetrievalStore, WriteResult
from ragship.stores.es_filters import to_es_filter
from ragship.stores.registry import redact_url

T = TypeVar("T")
TEXT_ANALYZER = {"type": "standard", "stopwords": "_english_"}
_TRANSIENT = (ESConnectionError, ESConnectionTimeout)
MANIFEST_SUFFIX = "-manifest"
_MANIFEST_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "source": {"type": "keyword"},
        "content_hash": {"type": "keyword"},
        "pipeline_hash": {"type": "keyword"},
        "chunk_ids": {"type": "keyword", "index": False, "doc_values": False},
        "indexed_at": {"type": "date"},
    },
}
_NULLABLE = ("embedding", "blob", "sparse_embedding")  # typed fields: ES rejects explicit nulls


def _manifest_id(source: str) -> str:
    # Paths can exceed the 512-byte _id limit; a digest never does.
    return hashlib.sha256(source.encode()).hexdigest()


def index_body(
    embedding_dim: int | None, shards: int = 1, replicas: int = 0, analyzer: str | None = None
) -> dict[str, Any]:
    """Settings and mappings of a ragship index."""
    embedding: dict[str, Any] = {"type": "dense_vector", "index": True, "similarity": "cosine"}
    if embedding_dim:
        embedding["dims"] = embedding_dim
        embedding["index_options"] = {"type": "int8_hnsw"}
    return {
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": {"analyzer": {"ragship_text": TEXT_ANALYZER}},
        },
        "mappings": {
            "dynamic_templates": [
                {"strings": {"match_mapping_type": "string", "mapping": {"type": "keyword", "ignore_above": 2048}}}
            ],
            "properties": {
                "id": {"type": "keyword"},
                "content": {"type": "text", "analyzer": analyzer or "ragship_text"},
                "embedding": embedding,
                "source": {"type": "keyword"},
                "title": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 512}}},
            },
        },
    }


class ElasticsearchStore:
    """The production document store.

    Usage::

        store = ElasticsearchStore("http://127.0.0.1:9200", alias="docs", embedding_dim=384)
        store.write_chunks(documents)
        store.bm25_retrieval("how do I run the tests", top_k=5)

    :param url: Cluster URL.
    :param alias: Alias that reads and writes go through.
    :param embedding_dim: Vector size of the spec's model; a mismatch with the index fails early.
    :param api_key: Base64 API key (wins over basic auth).
    :param username: Basic-auth user.
    :param password: Basic-auth password.
    :param ca_certs: CA bundle path for https clusters with a private CA.
    :param verify_certs: Verify TLS certificates.
    :param shards: Primary shards of new indices.
    :param replicas: Replicas of new indices (>0 for high availability).
    :param analyzer: Analyzer of ``content`` (e.g. ``english`` on clusters that have it).
    :param request_timeout_s: Per-request timeout.
    :param physical_index: Target this concrete index instead of the alias (a staged rebuild).
    """

    def __init__(
        self,
        url: str,
        alias: str = "ragship",
        *,
        embedding_dim: int | None = None,
        api_key: str | None = None,
        username: str | None = None,
        password: str | None = None,
        ca_certs: str | None = None,
        verify_certs: bool = True,
        shards: int = 1,
        replicas: int = 0,
        analyzer: str | None = None,
        request_timeout_s: float = 30.0,
        physical_index: str | None = None,
    ) -> None:
        self.url = url
        self.alias = alias
        self._embedding_dim = embedding_dim
        self._auth: dict[str, Any] = {}
        if api_key:
            self._auth["api_key"] = api_key
        elif username:
            self._auth["basic_auth"] = (username, password or "")
        self._tls: dict[str, Any] = (
            {"ca_certs": ca_certs, "verify_certs": verify_certs} if url.startswith("https") else {}
        )
        self.shards = shards
        self.replicas = replicas
        self.analyzer = analyzer
        self.request_timeout_s = request_timeout_s
        self.physical_index = physical_index
        self._client: Elasticsearch | None = None
        self._ready = False
        self._mapped_dim: int | None = None  # cached so bulk writes need no mapping lookup

    @classmethod
    def from_settings(
        cls, settings: ElasticsearchSettings, url: str | None = None, embedding_dim: int | None = None
    ) -> ElasticsearchStore:
        """Build from :class:`~ragship.settings.ElasticsearchSettings` (``url`` overrides the setting)."""
        return cls(
            url or settings.url,
            settings.index,
            embedding_dim=embedding_dim,
            api_key=settings.api_key.get_secret_value() if settings.api_key else None,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            ca_certs=str(settings.ca_certs) if settings.ca_certs else None,
            verify_certs=settings.verify_certs,
            shards=settings.shards,
            replicas=settings.replicas,
            analyzer=settings.analyzer,
            request_timeout_s=settings.request_timeout_s,
        )

    def _derived(self, alias: str, physical_index: str | None = None) -> ElasticsearchStore:
        """A store on the same cluster with the same credentials and layout, for another alias or index."""
        derived = copy.copy(self)
        derived.alias, derived.physical_index = alias, physical_index
        derived._client, derived._ready, derived._mapped_dim = None, False, None
        return derived

    def sibling(self, name: str) -> ElasticsearchStore:
        """An index beside this one (alias ``<alias>-<name>``) on the same cluster, e.g. for evaluation."""
        return self._derived(f"{self.alias}-{name}".lower())

    # -- connection ------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the store lives (credentials never included)."""
        target = f"index {self.physical_index}" if self.physical_index else f"alias '{self.alias}'"
        return f"Elasticsearch {target} at {redact_url(self.url)}"

    @property
    def client(self) -> Elasticsearch:
        """The client, connected and with the index in place (created on first use)."""
        if self._client is None:
            self._client = Elasticsearch(
                self.url,
                request_timeout=self.request_timeout_s,
                max_retries=2,
                retry_on_timeout=True,
                retry_on_status=(502, 503, 504),
                **self._auth,
                **self._tls,
            )
        if not self._ready:
            self._call(self._client.cluster.health)
            self._ensure_index()
            self._ready = True
        return self._client

    def close(self) -> None:
        """Close the HTTP connections."""
        if self._client is not None:
            self._client.close()
        self._client = None
        self._ready = False

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one client call, turning connection and auth failures into one actionable error."""
        where = redact_url(self.url)
        try:
            return fn(*args, **kwargs)
        except AuthenticationException as e:
            raise StoreUnavailableError(
                f"Elasticsearch at {where} rejected the credentials (HTTP 401); check RAGSHIP_ES__API_KEY "
                "or RAGSHIP_ES__USERNAME / RAGSHIP_ES__PASSWORD."
            ) from e
        except AuthorizationException as e:
            raise StoreUnavailableError(
                f"Elasticsearch at {where} refused the request (HTTP 403): the user or API key lacks privileges "
                f"on '{self.alias}*' (needs read, write, create_index, manage)."
            ) from e
        except TlsError as e:
            raise StoreUnavailableError(
                f"TLS to Elasticsearch at {where} failed ({e.message}); set RAGSHIP_ES__CA_CERTS to the "
                "cluster's CA bundle."
            ) from e
        except _TRANSIENT as e:
            raise StoreUnavailableError(
                f"Cannot reach Elasticsearch at {where} ({type(e).__name__}); check that it runs "
                "(`ragship es start` for a local node) and that --store / RAGSHIP_ES__URL is right."
            ) from e

    def _ensure_index(self) -> None:
        assert self._client is not None
        es = self._client
        if self.physical_index:
            return
        if self._call(es.indices.exists_alias, name=self.alias):
            self._check_dimension(self._current_indices()[0])
            return
        if self._call(es.indices.exists, index=self.alias):
            raise StoreError(
                f"'{self.alias}' at {redact_url(self.url)} is a concrete index, not an alias; ragship reads and writes "
                "through an alias. Choose another RAGSHIP_ES__INDEX, or delete that index."
            )
        first = f"{self.alias}-000001"
        body = index_body(self._embedding_dim, self.shards, self.replicas, self.analyzer)
        try:
            self._call(es.indices.create, index=first, aliases={self.alias: {}}, **body)
        except ApiError as e:
            # Another process created it first: fine, it has the same layout.
            if "resource_already_exists_exception" not in str(e):
                raise StoreError(f"Cannot create index {first}: {e}") from e
        self._check_dimension(first)

    def _current_indices(self) -> list[str]:
        assert self._client is not None
        try:
            return sorted(self._call(self._client.indices.get_alias, name=self.alias).body)
        except NotFoundError:
            return []

    def _target(self) -> str:
        return self.physical_index or self.alias

    def _mapped_dimension(self, index: str) -> int | None:
        assert self._client is not None
        mapping = self._call(self._client.indices.get_mapping, index=index).body
        props = next(iter(mapping.values()))["mappings"].get("properties", {})
        dims = props.get("embedding", {}).get("dims")
        return int(dims) if dims is not None else None

    def _check_dimension(self, index: str) -> None:
        mapped = self._mapped_dim = self._mapped_dimension(index)
        if self._embedding_dim and mapped and mapped != self._embedding_dim:
            raise StoreError(
                f"Index {index} at {redact_url(self.url)} maps {mapped}-dimensional embeddings but the spec's model "
                f"makes {self._embedding_dim}; reindex with `ragship index --rebuild` or use the matching model."
            )

    @property
    def embedding_dim(self) -> int | None:
        """Dimension in the live index's mapping (the configured one before it exists)."""
        indices = [self.physical_index] if self.physical_index else self._current_indices_or_none()
        if indices:
            return self._mapped_dimension(indices[0]) or self._embedding_dim
        return self._embedding_dim

    def _current_indices_or_none(self) -> list[str]:
        _ = self.client
        return self._current_indices()

    # -- Haystack DocumentStore protocol --------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Serialize without credentials (they come from settings)."""
        return {
            "type": f"{type(self).__module__}.{type(self).__name__}",
            "init_parameters": {
                "url": redact_url(self.url),
                "alias": self.alias,
                "embedding_dim": self._embedding_dim,
                "shards": self.shards,
                "replicas": self.replicas,
                "analyzer": self.analyzer,
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ElasticsearchStore:
        """Deserialize."""
        return cls(**data["init_parameters"])

    def count_documents(self) -> int:
        """Chunks in the live index."""
        return int(self._call(self.client.count, index=self._target())["count"])

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        """All documents matching Haystack filters (all when None)."""
        query = {"bool": {"filter": to_es_filter(filters)}} if filters else {"match_all": {}}
        hits = self._call(
            lambda: list(helpers.scan(self.client, index=self._target(), query={"query": query}, size=1000))
        )
        return [self._to_document(h) for h in hits]

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        """Write documents; OVERWRITE replaces, SKIP keeps existing ids, FAIL/NONE raise on duplicates."""
        if policy == DuplicatePolicy.OVERWRITE:
            result = self.write_chunks(documents)
        else:
            result = self._bulk_write(documents, op_type="create")
            duplicates = [r for r in result.rejected if r.reason.startswith("version_conflict_engine_exception")]
            if duplicates and policy != DuplicatePolicy.SKIP:
                raise DuplicateDocumentError(f"IDs {[r.id for r in duplicates]} already exist in {self.describe()}.")
            result.rejected = [r for r in result.rejected if r not in duplicates]
        if result.rejected:
            raise DocumentStoreError(f"{len(result.rejected)} documents rejected: {result.rejected[:5]}")
        return result.written

    def delete_documents(self, document_ids: list[str]) -> None:
        """Delete by id; unknown ids are ignored."""
        actions = ({"_op_type": "delete", "_index": self._target(), "_id": i} for i in document_ids)
        self._call(helpers.bulk, self.client, actions, raise_on_error=False, refresh="wait_for")

    # -- ragship store API --------------------------------------------------------------------
    def write_chunks(self, documents: list[Document]) -> WriteResult:
        """Write with overwrite semantics; rejected chunks are reported with Elasticsearch's reason."""
        return self._bulk_write(documents, op_type="index")

    def _bulk_write(self, documents: list[Document], op_type: str) -> WriteResult:
        if not documents:
            return WriteResult()
        dims = {len(d.embedding) for d in documents if d.embedding is not None}
        if self._mapped_dim is None:
            self._mapped_dim = self.embedding_dim
        expected = self._mapped_dim
        if expected and dims - {expected}:
            raise StoreError(
                f"Chunks have {sorted(dims)}-dimensional embeddings but {self.describe()} maps {expected}; "
                "nothing was written. Reindex with --rebuild after changing the embedding model."
            )
        return self._bulk_with_retries(documents, op_type)

    @retry(
        retry=retry_if_exception_type(StoreUnavailableError),
        stop=stop_after_attempt(3),
        wait=wait_exponential(multiplier=1, max=8),
        reraise=True,
    )
    def _bulk_with_retries(self, documents: list[Document], op_type: str) -> WriteResult:
        sources = {d.id: str(d.meta.get("source", "")) for d in documents}
        result = WriteResult()

        def run() -> None:
            for ok, item in helpers.streaming_bulk(
                self.client,
                self._actions(documents, op_type),
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
                if isinstance(info.get("exception"), _TRANSIENT):
                    raise info["exception"]
                error = info.get("error", {})
                reason = (
                    f"{error.get('type', 'error')}: {error.get('reason', error)}"
                    if isinstance(error, dict)
                    else str(error)
                )
                result.rejected.append(Rejection(str(info.get("_id")), sources.get(str(info.get("_id")), ""), reason))

        self._call(run)
        self._call(self.client.indices.refresh, index=self._target())
        return result

    def _actions(self, documents: list[Document], op_type: str) -> Iterator[dict[str, Any]]:
        for doc in documents:
            body = doc.to_dict(flatten=True)
            body.pop("score", None)  # a retrieval score is not document data
            for key in _NULLABLE:
                if body.get(key) is None:
                    body.pop(key, None)
            yield {"_op_type": op_type, "_index": self._target(), "_id": doc.id, "_source": body}

    def delete_by_source(self, sources: list[str], keep_ids: set[str] | None = None) -> int:
        """Delete chunks of these sources except ``keep_ids``."""
        keep = keep_ids or set()
        doomed = [i for source in sources for i in self.ids_by_source(source) if i not in keep]
        # Ids + bulk delete rather than _delete_by_query: that API lives in the optional reindex module.
        if doomed:
            self.delete_documents(doomed)
        return len(doomed)

    def ids_by_source(self, source: str) -> set[str]:
        """Ids stored for one source file."""
        body = {"query": {"term": {"source": source}}, "_source": False}
        return {h["_id"] for h in self._call(lambda: list(helpers.scan(self.client, index=self._target(), query=body)))}

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """BM25 over ``content``."""
        if not query.strip():
            return []
        bool_query: dict[str, Any] = {"must": [{"match": {"content": {"query": query}}}]}
        if filters:
            bool_query["filter"] = to_es_filter(filters)
        return self._search({"query": {"bool": bool_query}, "size": top_k})

    def embedding_retrieval(
        self, query_embedding: list[float], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """Approximate kNN (HNSW) with cosine similarity."""
        knn: dict[str, Any] = {
            "field": "embedding",
            "query_vector": list(query_embedding),
            "k": top_k,
            "num_candidates": max(100, 10 * top_k),
        }
        if filters:
            knn["filter"] = to_es_filter(filters)
        return self._search({"knn": knn, "size": top_k})

    def _search(self, body: dict[str, Any]) -> list[Document]:
        response = self._call(self.client.search, index=self._target(), source_excludes=["embedding"], **body)
        return [self._to_document(hit) for hit in response["hits"]["hits"]]

    @staticmethod
    def _to_document(hit: dict[str, Any]) -> Document:
        data = dict(hit["_source"])
        data["id"] = hit["_id"]
        data["score"] = hit.get("_score")
        return Document.from_dict(data)

    def _live_index(self) -> str | None:
        if self.physical_index:
            return self.physical_index
        indices = self._current_indices_or_none()
        return indices[0] if indices else None

    def index_fingerprint(self) -> str | None:
        """What the live index was built from (kept in the mapping's ``_meta``)."""
        index = self._live_index()
        if index is None:
            return None
        mapping = self._call(self.client.indices.get_mapping, index=index).body
        meta = next(iter(mapping.values()))["mappings"].get("_meta", {})
        return meta.get("ragship_fingerprint")

    def set_index_fingerprint(self, fingerprint: str) -> None:
        """Record what the live index was built from."""
        index = self._live_index()
        if index is not None:
            self._call(self.client.indices.put_mapping, index=index, meta={"ragship_fingerprint": fingerprint})

    # -- manifest: an index paired with the live index, so a rebuild swaps both at once -------------
    def _manifest_index(self) -> str | None:
        live = self._live_index()
        return f"{live}{MANIFEST_SUFFIX}" if live else None

    def read_manifest(self) -> dict[str, ManifestEntry]:
        """Manifest entries by source, without chunk ids."""
        index = self._manifest_index()
        if index is None or not self._call(self.client.indices.exists, index=index):
            return {}
        fields = ["source", "content_hash", "pipeline_hash", "indexed_at"]
        hits = self._call(lambda: list(helpers.scan(self.client, index=index, _source=fields, size=5000)))
        return {h["_source"]["source"]: ManifestEntry.from_dict(h["_source"]) for h in hits}

    def write_manifest(self, entries: list[ManifestEntry]) -> None:
        """Insert or replace entries (refreshed, so the next run sees them)."""
        index = self._manifest_index()
        if index is None or not entries:
            return
        if not self._call(self.client.indices.exists, index=index):
            try:
                self._call(self.client.indices.create, index=index, mappings=_MANIFEST_MAPPING)
            except ApiError as e:
                if "resource_already_exists_exception" not in str(e):
                    raise StoreError(f"Cannot create the manifest index {index}: {e}") from e
        actions = [
            {"_op_type": "index", "_index": index, "_id": _manifest_id(e.source), "_source": e.to_dict()}
            for e in entries
        ]
        _, errors = self._call(helpers.bulk, self.client, actions, raise_on_error=False, refresh=True)
        if isinstance(errors, list) and errors:
            raise StoreError(f"Manifest update in {index} failed for {len(errors)} entries: {errors[0]}")

    def delete_manifest(self, sources: list[str]) -> None:
        """Drop entries."""
        index = self._manifest_index()
        if index is None or not sources:
            return
        actions = [{"_op_type": "delete", "_index": index, "_id": _manifest_id(s)} for s in sources]
        self._call(helpers.bulk, self.client, actions, raise_on_error=False, refresh=True)

    # -- rebuild through the alias ----------------------------------------------------------------
    def staged_rebuild(self) -> ElasticsearchStore:
        """Create an empty versioned index (not behind the alias) and return a store writing to it."""
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        name = f"{self.alias}-{stamp}"
        body = index_body(self._embedding_dim, self.shards, self.replicas, self.analyzer)
        self._call(self.client.indices.create, index=name, **body)
        staged = self._derived(self.alias, physical_index=name)
        staged._client, staged._ready = self.client, True
        return staged

    def promote(self, staged: RetrievalStore) -> None:
        """Point the alias at the staged index in one atomic step, then delete the old indices."""
        if not isinstance(staged, ElasticsearchStore) or not staged.physical_index:
            raise StoreError("promote() needs a store returned by staged_rebuild().")
        old = self._current_indices()
        actions: list[dict[str, Any]] = [{"remove": {"index": i, "alias": self.alias}} for i in old]
        actions.append({"add": {"index": staged.physical_index, "alias": self.alias}})
        self._call(self.client.indices.update_aliases, actions=actions)
        for index in old:
            self._call(self.client.indices.delete, index=f"{index},{index}{MANIFEST_SUFFIX}", ignore_unavailable=True)
        self._mapped_dim = None  # the new index may map another dimension

    def discard(self, staged: RetrievalStore) -> None:
        """Delete a staged index."""
        if isinstance(staged, ElasticsearchStore) and staged.physical_index:
            name = staged.physical_index
            self._call(self.client.indices.delete, index=f"{name},{name}{MANIFEST_SUFFIX}", ignore_unavailable=True)

    def delete_index(self) -> None:
        """Delete the alias and every index behind it (tests and teardown)."""
        client = self._client or Elasticsearch(self.url, **self._auth, **self._tls)
        try:
            indices = list(self._call(client.indices.get_alias, name=self.alias).body)
        except NotFoundError:
            indices = []
        for index in indices:
            self._call(client.indices.delete, index=f"{index},{index}{MANIFEST_SUFFIX}", ignore_unavailable=True)
        self._ready = False


def open_location(location: str, *, embedding_dim: int | None, settings: Settings) -> ElasticsearchStore:
    """The registry's entry point: the cluster at ``location`` with the ``es`` settings' alias and credentials."""
    return ElasticsearchStore.from_settings(settings.es, url=location, embedding_dim=embedding_dim)
