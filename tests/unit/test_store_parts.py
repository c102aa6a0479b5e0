"""The store protocol's parts, the registry's backend choice, the one URL redaction, the one stop-word list."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragship.errors import ConfigError, StoreError
from ragship.settings import redacted_url
from ragship.stores import EmbeddedDocumentStore, open_store
from ragship.stores.base import (
    ChunkWriter,
    Described,
    EvaluationIndex,
    KeywordSearch,
    Manifest,
    Rebuilds,
    VectorSearch,
    evaluation_store,
)
from ragship.stores.registry import BACKENDS, backend_for
from ragship.text.analysis import (
    ENGLISH_STOP_WORDS,
    MATCHING_STOP_WORDS,
    QUESTION_WORDS,
    analyze,
    content_words,
)

pytestmark = pytest.mark.unit

PARTS = (Described, KeywordSearch, VectorSearch, ChunkWriter, Rebuilds, EvaluationIndex)


def _members(part: type) -> set[str]:
    return {name for name in vars(part) if not name.startswith("_")}


@pytest.mark.parametrize("store_class", ["ragship.stores.embedded", "ragship.stores.elasticsearch"])
def test_both_backends_offer_every_part(store_class: str) -> None:
    import importlib

    module = importlib.import_module(store_class)
    store = module.EmbeddedDocumentStore if "embedded" in store_class else module.ElasticsearchStore
    for part in PARTS:
        assert _members(part) <= set(dir(store)), part.__name__


def test_the_manifest_moves_with_a_staged_rebuild(tmp_path: Path) -> None:
    from ragship.stores.base import ManifestEntry

    live = EmbeddedDocumentStore(tmp_path / "live")
    manifest: Manifest = live.manifest
    manifest.write([ManifestEntry("a.md", "h1", "p1", ("x",))])
    staged = live.staged_rebuild()
    staged.manifest.write([ManifestEntry("b.md", "h2", "p1", ("y",))])
    assert set(live.manifest.read()) == {"a.md"}
    live.promote(staged)
    assert set(live.manifest.read()) == {"b.md"}
    live.manifest.delete(["b.md"])
    assert live.manifest.read() == {}


def test_evaluation_needs_a_backend_with_evaluation_indices(tmp_path: Path) -> None:
    store = EmbeddedDocumentStore(tmp_path / "s")
    assert evaluation_store(store) is store

    class NoEvaluation:
        def describe(self) -> str:
            return "a store without sibling indices"

    with pytest.raises(StoreError, match="without sibling indices cannot hold evaluation indices"):
        evaluation_store(NoEvaluation())  # type: ignore[arg-type]


def test_each_scheme_belongs_to_one_backend_and_a_prefix_names_one(tmp_path: Path) -> None:
    schemes = [s for b in BACKENDS for s in b.schemes]
    assert len(schemes) == len(set(schemes))
    assert backend_for("https://es.internal:9200")[0].name == "elasticsearch"
    assert backend_for("elasticsearch+https://u:p@es.internal:9200") == (
        backend_for("https://u:p@es.internal:9200")[0],
        "https://u:p@es.internal:9200",
    )
    assert backend_for(str(tmp_path))[0].name == "embedded"
    store = open_store(f"embedded+file://{tmp_path / 'e'}")
    assert isinstance(store, EmbeddedDocumentStore) and store.path == tmp_path / "e"
    with pytest.raises(ConfigError, match=r"no backend for 'opensearch\+https://'.*elasticsearch\+") as refused:
        open_store("opensearch+https://admin:s3cret@search.internal:9200")
    assert "s3cret" not in str(refused.value)


def test_one_redaction_rule_for_stores_brokers_and_settings() -> None:
    assert redacted_url("https://elastic:pw@es:9200/?api_key=abc&x=1#f") == "https://es:9200/"
    assert redacted_url("amqps://app:s3cret@mq:5671/%2F") == "amqps://mq:5671/%2F"
    assert redacted_url("http://[::1]:9200,http://u:p@b:9201?token=t") == "http://[::1]:9200,http://b:9201"
    assert redacted_url(".ragship/store") == ".ragship/store"
    assert "pw" not in redacted_url("http://u:pw@[bad")


def test_one_stop_word_list_and_its_named_extension_for_matching() -> None:
    # Elasticsearch's `_english_` (Lucene's EnglishAnalyzer set): the client-side analysis must equal the cluster's.
    assert len(ENGLISH_STOP_WORDS) == 33 and {"a", "such", "with", "not"} <= ENGLISH_STOP_WORDS
    assert analyze("Such is not the way") == ["wai"]
    # Matching a question to passages also drops question words, and keeps negations and "such".
    assert QUESTION_WORDS <= MATCHING_STOP_WORDS and len(MATCHING_STOP_WORDS) == 50
    assert content_words("How do I not run such tests with the CLI?") == ["not", "run", "such", "tests", "cli"]
