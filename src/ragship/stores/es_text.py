"""How a ragship Elasticsearch index analyses text for BM25: the analyzer, its index settings, its ``_meta``.

ragship wants English BM25 with Porter stemming everywhere (what Anserini's and Lucene's
``EnglishAnalyzer`` do: possessive ``'s`` stripped, lowercase, English stop words, Porter stem).

- A cluster with the ``analysis-common`` module (managed clusters, the default distribution) has the
  ``english`` analyzer: ``content`` is analysed with it.
- A cluster without it (the local ``integ-test-zip`` distribution) gets the same analysis client-side:
  :func:`ragship.text.analysis.stem_text` (which holds the ``_english_`` stop words) fills
  ``content_stemmed`` (whitespace analyzer, indexed, kept out of ``_source``) and stems every BM25 query.
- An ``analyzer`` set explicitly (``RAGSHIP_ES__ANALYZER``) is used on ``content`` as it is.

The choice is recorded in the index's mapping ``_meta`` (``ragship_analysis``), so an index is queried
the way it was built; an index without that record (built before) is queried on ``content``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from ragship.text.analysis import stem_text

Call = Callable[..., Any]  # the store's guard: call(fn, *args, **kwargs) with client errors translated

PORTABLE_ANALYZER = "ragship_text"  # the custom analyzer every index defines: works on every cluster
TEXT_ANALYZER = {"type": "standard", "stopwords": "_english_"}  # its definition: standard tokenizer + stop words
META_KEY = "ragship_analysis"
STEMMED_FIELD = "content_stemmed"
CLIENT_PORTER = "client_porter"  # the ``_meta`` value of an index analysed by :func:`stem_text`


@dataclass(frozen=True)
class TextAnalysis:
    """How an index analyses text: the analyzer of ``content`` and whether ``content_stemmed`` holds the terms."""

    content_analyzer: str
    client_side: bool = False

    @property
    def query_field(self) -> str:
        """The field BM25 queries."""
        return STEMMED_FIELD if self.client_side else "content"

    def meta(self) -> dict[str, str]:
        """The ``_meta`` entry that records this analysis in the index."""
        return {META_KEY: CLIENT_PORTER if self.client_side else self.content_analyzer}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TextAnalysis:
        """The analysis an index records (an index built before the record: ``content`` as mapped)."""
        recorded = meta.get(META_KEY)
        if recorded == CLIENT_PORTER:
            return cls(PORTABLE_ANALYZER, client_side=True)
        return cls(str(recorded or PORTABLE_ANALYZER))

    def query(self, text: str) -> str:
        """The query text to send: stemmed here when the index is analysed client-side."""
        return stem_text(text) if self.client_side else text

    def fields(self, content: str | None) -> dict[str, str]:
        """Fields to index beside a chunk's own (``content_stemmed`` when analysed client-side)."""
        return {STEMMED_FIELD: stem_text(content or "")} if self.client_side else {}


def has_english_analyzer(call: Call, client: Elasticsearch) -> bool:
    """Whether the cluster has the ``english`` analyzer (the ``analysis-common`` module).

    Asked with the ``_analyze`` API; a cluster that refuses the question (an API key without the
    privilege) counts as lacking it: the client-side analysis works everywhere.
    """

    def probe() -> bool:
        try:
            client.indices.analyze(analyzer="english", text="running")
        except ApiError:  # 400 "failed to find global analyzer [english]", or 403
            return False
        return True

    return bool(call(probe))


def choose(call: Call, client: Elasticsearch, configured: str | None) -> TextAnalysis:
    """The analysis of a new index: the configured analyzer, else ``english`` where the cluster has it,
    else Porter stemming client-side."""
    if configured:
        return TextAnalysis(configured)
    if has_english_analyzer(call, client):
        return TextAnalysis("english")
    return TextAnalysis(PORTABLE_ANALYZER, client_side=True)
