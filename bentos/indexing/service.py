"""Entry module of the indexing bento (bentos/indexing/bentofile.yaml): the Embedder and the indexing job routes."""

from ragship.serving.indexing_service import Indexing

__all__ = ["Indexing"]
