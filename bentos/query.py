"""Entry module of the query bento (root bentofile.yaml): the RAG API, with its Embedder and Generator where
a request can reach them (ragship.serving.topology).

`bentoml serve`'s supervisor gets the services' definitions without their code (ragship.serving.supervisor_view),
so it does not hold Haystack and torch; the workers it starts, `bentoml build` and tests get the services.
"""

from ragship.serving.topology import in_bentoml_supervisor

if in_bentoml_supervisor():
    from ragship.serving.supervisor_view import RAG
else:
    from ragship.serving.rag import RAG  # type: ignore[assignment]

__all__ = ["RAG"]
