"""Hayhooks serving ragship's own retrieval pipeline (the default spec over RAGSHIP_STORE), for bench-serving.

`hayhooks run --pipelines-dir benchmarks/hayhooks` deploys it at POST /ragship_retrieve/run {"question": ...}:
the same pipeline `/retrieve` runs, in one process behind Hayhooks' FastAPI app.
"""

from __future__ import annotations

import os

from hayhooks import BasePipelineWrapper

from ragship.assembly import open_query_engine
from ragship.pipelines.query import QueryEngine
from ragship.spec import default_spec


class PipelineWrapper(BasePipelineWrapper):
    """The retrieval half of the default query pipeline."""

    def setup(self) -> None:
        """Open the store named by RAGSHIP_STORE and load the query embedder once."""
        self.engine: QueryEngine = open_query_engine(default_spec(), os.environ["RAGSHIP_STORE"])
        self.engine.warm_up()
        self.pipeline = self.engine.retrieval_pipeline

    def run_api(self, question: str) -> list[dict[str, object]]:
        """The ranked chunks for ``question``: id, source and score, best first."""
        return [{"id": d.id, "source": d.meta.get("source"), "score": d.score} for d in self.engine.retrieve(question)]
