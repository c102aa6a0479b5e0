"""CrossEncoderRanker: re-scores the fused candidates with a cross-encoder (query and chunk read together)."""

from __future__ import annotations

from haystack import component
from haystack_integrations.components.rankers.sentence_transformers import SentenceTransformersSimilarityRanker

from ragship.components.embedders import _ResolvesModel


@component
class CrossEncoderRanker(_ResolvesModel, SentenceTransformersSimilarityRanker):
    """Haystack's sentence-transformers similarity ranker; the model reference resolves at warm-up (a path or
    a hub id), and the device stays unpinned, as for the embedders.

    Public models that fit: ``cross-encoder/ms-marco-MiniLM-L6-v2`` (fast, English), ``BAAI/bge-reranker-base``
    or ``mixedbread-ai/mxbai-rerank-xsmall-v1`` (stronger), ``BAAI/bge-reranker-v2-m3`` (multilingual, GPU).
    """
