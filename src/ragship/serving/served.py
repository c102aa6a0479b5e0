"""The RAG service's query engine, for the ASGI apps mounted on it (``/v1``, ``/mcp``).

BentoML mounts those apps when the service class is defined and builds the service instance later, in
each worker; the instance hands its engine over here, and the apps read it per request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ragship.errors import ModelServiceUnavailableError
from ragship.pipelines.query import QueryEngine


@dataclass
class ServedEngine:
    """Where a mounted app finds the engine and the names of the spec it serves."""

    engine: QueryEngine | None = None
    model_names: tuple[str, ...] = field(default_factory=tuple)

    def set(self, engine: QueryEngine, *model_names: str) -> None:
        """Publish ``engine``, answering to ``model_names`` (the first is the stable id)."""
        self.engine = engine
        self.model_names = tuple(dict.fromkeys(model_names))

    def get(self) -> QueryEngine:
        """The engine; 503 while the service is still starting."""
        if self.engine is None:
            raise ModelServiceUnavailableError("The query engine is still starting; retry in a few seconds.")
        return self.engine
