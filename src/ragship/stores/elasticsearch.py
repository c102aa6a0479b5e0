"""Elasticsearch store: BM25 + kNN over one index reached through an alias.

- Reads and writes go through the alias; ``--rebuild`` fills a new versioned index and swaps the
  alias atomically, so queries never see an empty or half-built index.
- The mapping is explicit: ``content`` text, ``embedding`` dense_vector with ``dims`` from the model
  and cosine similarity (int8 HNSW), string metadata as keyword.
- BM25 is English with Porter stemming: the ``english`` analyzer where the cluster has it, else the
  same analysis done client-side into ``content_stemmed`` (:mod:`~ragship.stores.es_text`); the index
  records which in its ``_meta`` and is queried that way.
- Bulk writes report every rejected chunk with Elasticsearch's reason and write the rest; 429s are
  retried per item with backoff by the client's bulk helper; an unreachable cluster and chunks that
  meet a node going down are written again with backoff (``write_retries``).
- On a cluster the client gets every node's URL and fails over between them (``max_retries``).

The store class lives here, with document operations and retrieval; it builds on
:mod:`~ragship.stores.es_client` (client, auth, TLS, error translation), :mod:`~ragship.stores.es_layout`
(index and alias names, mapping, alias swaps), :mod:`~ragship.stores.es_bulk` (bulk writes, hits) and
:mod:`~ragship.stores.es_manifest` (the manifest index).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from elasticsearch import Elasticsearch, helpers
from haystack import Document
from haystack.document_stores.errors import DocumentStoreError, DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy

from ragship.errors import StoreError
from ragship.settings import ElasticsearchSettings, Settings, redacted_url
from ragship.stores import es_bulk, es_layout, es_text
from ragship.stores.base import RetrievalStore, WeightedClause, WriteResult
from ragship.stores.es_client import auth_options, new_client, node_urls, tls_options, translated_errors
from ragship.stores.es_filters import to_es_filter
from ragship.stores.es_layout import MANIFEST_SUFFIX, index_body
from ragship.stores.es_manifest import ElasticsearchManifest
from ragship.stores.es_text import TEXT_ANALYZER, TextAnalysis

__all__ = ["MANIFEST_SUFFIX", "TEXT_ANALYZER", "ElasticsearchStore", "index_body", "open_location"]

T = TypeVar("T")


class ElasticsearchStore:
    """The production document store.

    Usage::

        store = ElasticsearchStore("http://127.0.0.1:9200", alias="docs", embedding_dim=384)
        store.write_chunks(documents)
        store.bm25_retrieval("how do I run the tests", top_k=5)

    :param url: Cluster URL, or the URLs of several nodes comma-separated (the client fails over between them).
    :param alias: Alias that reads and writes go through.
    :param embedding_dim: Vector size of the spec's model; a mismatch with the index fails early.
    :param api_key: Base64 API key (wins over basic auth).
    :param username: Basic-auth user.
    :param password: Basic-auth password.
    :param ca_certs: CA bundle path for https clusters with a private CA.
    :param verify_certs: Verify TLS certificates.
    :param shards: Primary shards of new indices.
    :param replicas: Replicas of new indices (>0 for high availability); None: 1 on a cluster with more
        than one data node, else 0.
    :param analyzer: Analyzer of ``content`` for new indices; None: ``english`` where the cluster has it,
        else Porter stemming client-side into ``content_stemmed``.
    :param request_timeout_s: Per-request timeout.
    :param physical_index: Target this concrete index instead of the alias (a staged rebuild).
    :param max_retries: Client retries of one request on another node.
    :param write_retries: Attempts of a bulk batch whose chunks meet an unreachable node or shard.
    :param retry_backoff_max_s: Longest pause between two write attempts.
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
        replicas: int | None = None,
        analyzer: str | None = None,
        request_timeout_s: float = 30.0,
        physical_index: str | None = None,
        max_retries: int = 3,
        write_retries: int = 5,
        retry_backoff_max_s: float = 8.0,
    ) -> None:
        self.url = url
        self.alias = alias
        self._embedding_dim = embedding_dim
        self._auth = auth_options(api_key, username, password)
        self._tls = tls_options(url, ca_certs, verify_certs)
        self.shards = shards
        self.replicas = replicas
        self.analyzer = analyzer
        self.request_timeout_s = request_timeout_s
        self.physical_index = physical_index
        self.max_retries = max_retries
        self.write_retries = write_retries
        self.retry_backoff_max_s = retry_backoff_max_s
        self._client: Elasticsearch | None = None
        self._ready = False
        self._mapped_dim: int | None = None  # cached so bulk writes need no mapping lookup
        self._analysis: TextAnalysis | None = None  # the target index's, read from its _meta on first use
        # Refresh after each bulk write, so a finished write is searchable; a bulk loader that refreshes once
        # at its end may turn it off (benchmarks/ingest_profile.py measures what that saves).
        self.refresh_after_write = True

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
            max_retries=settings.max_retries,
            write_retries=settings.write_retries,
            retry_backoff_max_s=settings.retry_backoff_max_s,
        )

    def _derived(self, alias: str, physical_index: str | None = None) -> ElasticsearchStore:
        """A store on the same cluster with the same credentials and layout, for another alias or index."""
        derived = copy.copy(self)
        derived.alias, derived.physical_index = alias, physical_index
        derived._client, derived._ready, derived._mapped_dim, derived._analysis = None, False, None, None
        return derived

    def sibling(self, name: str) -> ElasticsearchStore:
        """An index beside this one (alias ``<alias>-<name>``) on the same cluster, e.g. for evaluation."""
        return self._derived(f"{self.alias}-{name}".lower())

    # -- connection ------------------------------------------------------------------------------
    def describe(self) -> str:
        """Where the store lives (credentials never included)."""
        target = f"index {self.physical_index}" if self.physical_index else f"alias '{self.alias}'"
        return f"Elasticsearch {target} at {redacted_url(self.url)}"

    @property
    def client(self) -> Elasticsearch:
        """The client, connected and with the index in place (created on first use)."""
        if self._client is None:
            self._client = new_client(
                self.url,
                request_timeout_s=self.request_timeout_s,
                auth=self._auth,
                tls=self._tls,
                max_retries=self.max_retries,
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
        with translated_errors(redacted_url(self.url), self.alias):
            return fn(*args, **kwargs)

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
                f"'{self.alias}' at {redacted_url(self.url)} is a concrete index, not an alias; ragship reads and "
                "writes through an alias. Choose another RAGSHIP_ES__INDEX, or delete that index."
            )
        self._check_dimension(es_layout.create_first_index(self._call, es, self.alias, self._new_index_body()))

    def _new_index_body(self) -> dict[str, Any]:
        """Settings and mappings of a new index, with the analysis this cluster allows."""
        client = self._client if self._client is not None else self.client
        analysis = es_text.choose(self._call, client, self.analyzer)
        return index_body(self._embedding_dim, self.shards, self._replicas(), analysis=analysis)

    @property
    def text_analysis(self) -> TextAnalysis:
        """How the target index analyses text (from its ``_meta``; an index without the record: ``content``)."""
        if self._analysis is None:
            index = self._live_index()
            meta = es_layout.mapping_meta(self._call, self.client, index) if index else {}
            self._analysis = TextAnalysis.from_meta(meta)
        return self._analysis

    def _current_indices(self) -> list[str]:
        assert self._client is not None
        return es_layout.current_indices(self._call, self._client, self.alias)

    def _replicas(self) -> int:
        """Replicas of a new index: the configured number, else decided by the cluster's data nodes."""
        client = self._client if self._client is not None else self.client  # no readiness loop inside _ensure_index
        return es_layout.resolve_replicas(self._call, client, self.replicas)

    def _target(self) -> str:
        return self.physical_index or self.alias

    def _mapped_dimension(self, index: str) -> int | None:
        assert self._client is not None
        return es_layout.mapped_dimension(self._call, self._client, index)

    def _check_dimension(self, index: str) -> None:
        mapped = self._mapped_dim = self._mapped_dimension(index)
        if self._embedding_dim and mapped and mapped != self._embedding_dim:
            raise StoreError(
                f"Index {index} at {redacted_url(self.url)} maps {mapped}-dimensional embeddings but the spec's model "
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
                "url": redacted_url(self.url),
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
        return [es_bulk.to_document(h) for h in hits]

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

    def _bulk_with_retries(self, documents: list[Document], op_type: str) -> WriteResult:
        target = self._target()
        result = es_bulk.write_with_retries(
            self._call,
            lambda: self.client,
            documents,
            target,
            op_type,
            fields=self.text_analysis.fields,
            attempts=self.write_retries,
            backoff_max_s=self.retry_backoff_max_s,
        )
        if self.refresh_after_write:
            self._call(self.client.indices.refresh, index=target)
        return result

    def delete_by_source(self, sources: list[str], keep_ids: set[str] | None = None) -> int:
        """Delete chunks of these sources except ``keep_ids``."""
        keep = keep_ids or set()
        doomed = [i for i in self._ids_by_sources(sources) if i not in keep]
        # Ids + bulk delete rather than _delete_by_query: that API lives in the optional reindex module.
        if doomed:
            self.delete_documents(doomed)
        return len(doomed)

    def ids_by_source(self, source: str) -> set[str]:
        """Ids stored for one source file."""
        return self.ids_by_sources([source])[source]

    def ids_by_sources(self, sources: list[str]) -> dict[str, set[str]]:
        """Ids stored for each of these source files: one search per group of sources (a scroll only past
        :data:`~ragship.stores.es_bulk.ID_PAGE` hits), not a scroll per file."""
        ids: dict[str, set[str]] = {source: set() for source in sources}
        for i in range(0, len(sources), es_bulk.TERMS_PER_QUERY):
            query = {"terms": {"source": sources[i : i + es_bulk.TERMS_PER_QUERY]}}
            for doc_id, source in self._call(es_bulk.matching_ids, self.client, self._target(), query):
                ids.setdefault(source, set()).add(doc_id)
        return ids

    def _ids_by_sources(self, sources: list[str]) -> set[str]:
        return set().union(*self.ids_by_sources(sources).values())

    def bm25_retrieval(self, query: str, top_k: int = 10, filters: dict[str, Any] | None = None) -> list[Document]:
        """BM25 over ``content``, or over ``content_stemmed`` with the query stemmed alike where the index
        is analysed client-side."""
        return self.weighted_bm25_retrieval([(query, 1.0)], top_k=top_k, filters=filters)

    def weighted_bm25_retrieval(
        self, clauses: Sequence[WeightedClause], top_k: int = 10, filters: dict[str, Any] | None = None
    ) -> list[Document]:
        """One ``match`` per clause, boosted by its weight: Elasticsearch sums the scores of the clauses."""
        analysis = self.text_analysis
        should = [
            {"match": {analysis.query_field: {"query": text, "boost": weight}}}
            for text, weight in ((analysis.query(t), w) for t, w in clauses)
            if weight > 0 and text.strip()
        ]
        if not should or top_k <= 0:
            return []
        bool_query: dict[str, Any] = {"should": should, "minimum_should_match": 1}
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
        return [es_bulk.to_document(hit) for hit in response["hits"]["hits"]]

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
        return es_layout.mapping_meta(self._call, self.client, index).get("ragship_fingerprint")

    def set_index_fingerprint(self, fingerprint: str) -> None:
        """Record what the live index was built from."""
        index = self._live_index()
        if index is not None:
            es_layout.update_meta(self._call, self.client, index, {"ragship_fingerprint": fingerprint})

    @property
    def manifest(self) -> ElasticsearchManifest:
        """The manifest index paired with the live index (:mod:`~ragship.stores.es_manifest`)."""
        return ElasticsearchManifest(self._call, lambda: self.client, self._live_index, self.replicas)

    # -- rebuild through the alias ----------------------------------------------------------------
    def staged_rebuild(self) -> ElasticsearchStore:
        """Create an empty versioned index (not behind the alias) and return a store writing to it."""
        body = self._new_index_body()
        name = es_layout.create_staged_index(self._call, self.client, self.alias, body)
        staged = self._derived(self.alias, physical_index=name)
        staged._client, staged._ready = self.client, True
        staged._analysis = TextAnalysis.from_meta(body["mappings"]["_meta"])
        return staged

    def promote(self, staged: RetrievalStore) -> None:
        """Point the alias at the staged index in one atomic step, then delete the old indices."""
        if not isinstance(staged, ElasticsearchStore) or not staged.physical_index:
            raise StoreError("promote() needs a store returned by staged_rebuild().")
        es_layout.swap_alias(self._call, self.client, self.alias, staged.physical_index)
        self._mapped_dim = self._analysis = None  # the new index may map another dimension and analysis

    def discard(self, staged: RetrievalStore) -> None:
        """Delete a staged index."""
        if isinstance(staged, ElasticsearchStore) and staged.physical_index:
            es_layout.delete_with_manifest(self._call, self.client, staged.physical_index)

    def delete_index(self) -> None:
        """Delete the alias and every index behind it (tests and teardown)."""
        client = self._client or Elasticsearch(node_urls(self.url), **self._auth, **self._tls)
        for index in es_layout.current_indices(self._call, client, self.alias):
            es_layout.delete_with_manifest(self._call, client, index)
        self._ready, self._analysis = False, None


def open_location(location: str, *, embedding_dim: int | None, settings: Settings) -> ElasticsearchStore:
    """The registry's entry point: the cluster at ``location`` with the ``es`` settings' alias and credentials."""
    return ElasticsearchStore.from_settings(settings.es, url=location, embedding_dim=embedding_dim)
