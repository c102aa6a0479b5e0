"""The embedders' ONNX Runtime backends: export of the bundled MiniLM, cache reuse, spec round trip, errors.

Real model, real export: the session fixture exports all-MiniLM-L6-v2 once (float32 and int8) into a
temporary cache that every test here shares.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from haystack import Document

import ragship.models.onnx as onnx_models
from ragship.components.embedders import DocumentEmbedder, TextEmbedder
from ragship.enums import EmbeddingBackend
from ragship.errors import SpecError
from ragship.models.resolve import resolve_embedding_model
from ragship.pipelines import load_pipeline
from ragship.pipelines.validate import validate_spec
from ragship.settings import DEFAULT_EMBEDDING_MODEL, get_settings
from ragship.spec import PipelineSpec, default_spec, load_spec

TEXTS = [
    "Does vitamin D supplementation lower the risk of breast cancer?",
    "Statins lower LDL cholesterol; muscle pain is the side effect patients report most often, "
    "and trials compare it against placebo over several years of follow-up in older adults.",
]
# Measured on the bundled model: float32 ONNX >= 0.99999 of torch, int8 (avx512_vnni) >= 0.992.
MIN_COSINE = {EmbeddingBackend.ONNX: 0.9999, EmbeddingBackend.ONNX_INT8: 0.98}


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache holding the bundled MiniLM's float32 and int8 exports; the onnx_cache setting points at it."""
    cache = tmp_path_factory.mktemp("onnx-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAGSHIP_ONNX_CACHE", str(cache))
        get_settings.cache_clear()
        model_dir = resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)
        for backend in (EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8):
            onnx_models.onnx_model_path(model_dir, backend)
        yield cache
    get_settings.cache_clear()


def _query_embedder(spec: PipelineSpec) -> TextEmbedder:
    """The spec's query embedder, built the way pipelines build it (from the spec's serialization)."""
    section = {"components": {"query_embedder": spec.query["components"]["query_embedder"]}, "connections": []}
    embedder = load_pipeline(section, "query").get_component("query_embedder")
    assert isinstance(embedder, TextEmbedder)
    return embedder


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / np.linalg.norm(x) / np.linalg.norm(y))


@pytest.mark.parametrize("backend", [EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8])
def test_onnx_backends_load_from_the_spec_and_embed_like_torch(onnx_cache: Path, backend: EmbeddingBackend) -> None:
    reference = _query_embedder(default_spec(embedding_backend=EmbeddingBackend.TORCH))
    candidate = _query_embedder(default_spec(embedding_backend=backend))
    assert candidate.backend == backend.value
    for text in TEXTS:
        assert _cosine(reference.run(text)["embedding"], candidate.run(text)["embedding"]) > MIN_COSINE[backend]

    documents = DocumentEmbedder(model=DEFAULT_EMBEDDING_MODEL, backend=backend)
    documents.warm_up()
    embedded = documents.run([Document(content=t) for t in TEXTS])["documents"]
    assert [len(d.embedding or []) for d in embedded] == [384, 384]
    # Both embedders of one backend share the loaded ONNX session.
    assert documents.embedding_backend is candidate.embedding_backend


def test_the_cached_export_is_reused_not_redone(onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("exported again although the cache holds the model")

    monkeypatch.setattr(onnx_models, "_export_fp32", refuse)
    monkeypatch.setattr(onnx_models, "_quantize", refuse)
    model_dir = resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)
    for backend in (EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8):
        path = onnx_models.onnx_model_path(model_dir, backend)
        assert path.is_relative_to(onnx_cache) and path.stat().st_size > 1_000_000
    # One folder per model fingerprint, no temporary files left behind.
    (folder,) = [p for p in onnx_cache.iterdir() if p.is_dir()]
    assert sorted(p.name for p in folder.glob("*.onnx")) == [
        "model.onnx",
        f"model_qint8_{onnx_models.cpu_int8_profile()}.onnx",
    ]
    assert not list(folder.glob("*.tmp"))


def test_a_backend_round_trips_through_the_spec_file_and_makes_the_index_stale(tmp_path: Path) -> None:
    torch_spec = default_spec(embedding_backend=EmbeddingBackend.TORCH)
    for backend in (EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8):
        spec = default_spec(embedding_backend=backend)
        assert load_spec(spec.save(tmp_path / f"{backend.value}.yaml")) == spec
        assert set(spec.embedding_backends().values()) == {backend.value}
        assert spec.indexing_hash != torch_spec.indexing_hash
    assert (
        default_spec(embedding_backend="onnx").indexing_hash
        != default_spec(embedding_backend="onnx-int8").indexing_hash
    )


def test_a_bad_backend_names_the_field_and_the_choices() -> None:
    with pytest.raises(SpecError, match=r"backend: 'openvino' is not one of torch, onnx, onnx-int8"):
        TextEmbedder(model=DEFAULT_EMBEDDING_MODEL, backend="openvino")
    with pytest.raises(SpecError, match=r"embedding_backend: 'int8' is not one of"):
        default_spec(embedding_backend="int8")

    spec = default_spec()
    spec.query["components"]["query_embedder"]["init_parameters"]["backend"] = "onnx_int8"
    problems = validate_spec(spec)
    assert (
        "query.components.query_embedder: embedder init_parameters.backend: 'onnx_int8' is not one of"
        " torch, onnx, onnx-int8." in problems
    ), problems


def test_query_and_document_embedders_must_share_the_backend() -> None:
    spec = default_spec(embedding_backend=EmbeddingBackend.TORCH)
    spec.query["components"]["query_embedder"]["init_parameters"]["backend"] = "onnx-int8"
    (problem,) = validate_spec(spec)
    assert "indexing.components.embedder.init_parameters.backend='torch'" in problem
    assert "query.components.query_embedder.init_parameters.backend='onnx-int8'" in problem
    assert "same backend" in problem


def test_the_exports_run_fused_attention_and_int8_attention(onnx_cache: Path) -> None:
    # The fusion is what takes int8 past 2x torch's throughput (benchmarks/README.md); an exporter change
    # that breaks the pattern would silently keep embeddings right and lose the speed.
    import onnx

    model_dir = resolve_embedding_model(DEFAULT_EMBEDDING_MODEL)
    ops = {
        backend: {node.op_type for node in onnx.load(str(onnx_models.onnx_model_path(model_dir, backend))).graph.node}
        for backend in (EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8)
    }
    assert {"Attention", "SkipLayerNormalization", "BiasGelu"} <= ops[EmbeddingBackend.ONNX]
    assert {"QAttention", "MatMulInteger"} <= ops[EmbeddingBackend.ONNX_INT8]
    assert "Softmax" not in ops[EmbeddingBackend.ONNX_INT8]


def test_the_built_in_spec_embeds_with_int8_onnx_and_a_spec_without_a_backend_means_torch() -> None:
    # int8 met both speed goals at the same nDCG@10 (docs/indexing.md); older specs, written before the
    # backend existed, were indexed with torch and must keep querying their index with torch.
    assert set(default_spec().embedding_backends().values()) == {EmbeddingBackend.ONNX_INT8.value}
    spec = default_spec()
    for section in (spec.indexing, spec.query):
        for comp in section["components"].values():
            comp.get("init_parameters", {}).pop("backend", None)
    assert set(spec.embedding_backends().values()) == {EmbeddingBackend.TORCH.value}
    assert TextEmbedder(model=DEFAULT_EMBEDDING_MODEL).backend == EmbeddingBackend.TORCH.value


@pytest.mark.parametrize("backend", [EmbeddingBackend.ONNX, EmbeddingBackend.ONNX_INT8])
def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(onnx_cache: Path, backend: EmbeddingBackend) -> None:
    # The API batches concurrent questions and indexing batches chunks: what else is in the batch must not
    # change a text's vector (int8's dynamic activation scales would, run as one tensor: cosine ~0.99).
    embedder = TextEmbedder(model=DEFAULT_EMBEDDING_MODEL, backend=backend)
    embedder.warm_up()
    texts = [TEXTS[0], TEXTS[1] * 3, "statins"]
    alone = [embedder.run(t)["embedding"] for t in texts]
    together = embedder.embedding_backend.embed(texts, batch_size=len(texts), normalize_embeddings=True)
    assert np.allclose(together, alone, atol=1e-5)


def test_quantizing_shows_no_preprocessing_advice(
    onnx_cache: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The export is already optimized (fused) and shape inference cannot type the fused operators: ONNX
    # Runtime's advice to pre-process does not apply and must not reach a notebook's output.
    (fp32,) = onnx_cache.glob("*/model.onnx")
    with caplog.at_level("WARNING"):
        onnx_models._quantize(fp32, tmp_path / "q.onnx")
    assert (tmp_path / "q.onnx").stat().st_size > 1_000_000
    assert not [r for r in caplog.records if "pre-processing" in r.getMessage()]
