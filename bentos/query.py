"""Entry module of the query bento (root bentofile.yaml): the RAG API with its Embedder and Generator."""

from ragship.serving.rag import RAG

__all__ = ["RAG"]
