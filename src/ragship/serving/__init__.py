"""BentoML services over the library: Embedder, Generator, the RAG query API and the indexing service.

Importing this package does not import BentoML; the service modules do.
"""
