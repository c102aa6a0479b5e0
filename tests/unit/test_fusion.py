"""FusionJoiner: the fusion method, weights and RRF k are spec settings, and round-trip."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document

from ragship.components.joiners import FusionJoiner
from ragship.spec import default_spec, load_spec, with_overrides


def _lists() -> tuple[list[Document], list[Document]]:
    dense = [Document(id="a", content="a", score=0.9), Document(id="b", content="b", score=0.8)]
    bm25 = [Document(id="b", content="b", score=12.0), Document(id="c", content="c", score=3.0)]
    return dense, bm25


def test_rrf_uses_k_and_the_weights() -> None:
    dense, bm25 = _lists()
    docs = FusionJoiner(rrf_k=10).run(documents=[dense, bm25])["documents"]
    scores = {d.id: d.score for d in docs}
    assert scores["b"] == pytest.approx(0.5 / 12 + 0.5 / 11)  # rank 2 in dense, rank 1 in bm25
    assert scores["a"] == pytest.approx(0.5 / 11) and docs[0].id == "b"
    weighted = FusionJoiner(rrf_k=10, weights=[3, 1]).run(documents=[dense, bm25])["documents"]
    assert {d.id: d.score for d in weighted}["a"] == pytest.approx(0.75 / 11)


def test_other_fusion_methods_and_serialization(tmp_path: Path) -> None:
    dense, bm25 = _lists()
    dbsf = FusionJoiner(join_mode="distribution_based_rank_fusion").run(documents=[dense, bm25])["documents"]
    assert {d.id for d in dbsf} == {"a", "b", "c"}
    spec = default_spec(fusion="merge", fusion_weights=[0.7, 0.3], rrf_k=30)
    params = load_spec(spec.save(tmp_path / "spec.yaml")).query["components"]["joiner"]["init_parameters"]
    assert (params["join_mode"], params["weights"], params["rrf_k"]) == ("merge", [0.7, 0.3], 30)
    with pytest.raises(ValueError, match="rrf_k"):
        FusionJoiner(rrf_k=0)


def test_grid_overrides_reach_the_joiner_and_the_retrievers() -> None:
    spec = with_overrides(default_spec(), fusion="distribution_based_rank_fusion", rrf_k=20, candidates=50, top_k=7)
    joiner = spec.query["components"]["joiner"]["init_parameters"]
    assert (joiner["join_mode"], joiner["rrf_k"], joiner["top_k"]) == ("distribution_based_rank_fusion", 20, 7)
    assert spec.query["components"]["bm25_retriever"]["init_parameters"]["top_k"] == 50
    assert spec.query["components"]["dense_retriever"]["init_parameters"]["top_k"] == 50
