"""The MLflow pyfunc model: a pipeline spec that answers questions."""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel


class RagshipModel(PythonModel):
    """Loads the logged spec and answers questions over the store in settings (RAGSHIP_STORE).

    Input: a DataFrame with a ``question`` column, a list of strings, or one string.
    Output: one ``{"answer", "sources"}`` dict per question.
    """

    def load_context(self, context: Any) -> None:
        """Load the spec (models load lazily on the first question)."""
        from ragship.spec import load_spec

        self.spec = load_spec(context.artifacts["spec"])
        self._engine: Any = None

    # Deliberately unannotated: MLflow derives a signature from type hints, and this model accepts
    # a DataFrame, a list of strings or one string.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Answer each question: ``model_input`` is a DataFrame with ``question``, a list of str, or a str."""
        from ragship.runtime import open_query_engine

        if self._engine is None:
            self._engine = open_query_engine(self.spec)
        if isinstance(model_input, str):
            questions = [model_input]
        elif hasattr(model_input, "columns"):
            questions = [str(q) for q in model_input["question"].tolist()]
        else:
            questions = [str(q) for q in model_input]
        top_k = (params or {}).get("top_k")
        return [self._engine.ask(q, top_k=top_k).to_dict() for q in questions]
