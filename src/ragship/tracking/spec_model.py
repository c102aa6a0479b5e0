"""The registered spec model: an MLflow pyfunc model that answers questions with a logged pipeline spec.

High in the import graph: answering uses :func:`ragship.assembly.open_query_engine`.

MLflow pickles the model class by module path; versions logged while it lived in
``ragship.serving_model`` find it through that alias module. Ragship itself reads only a version's
``spec.yaml`` (:func:`ragship.tracking.registry.load_registered_spec`), so serving, reindexing and
promotion work with every version.
"""

from __future__ import annotations

from typing import Any

from mlflow.pyfunc import PythonModel, log_model

from ragship.settings import Settings, get_settings
from ragship.spec import PipelineSpec, load_spec
from ragship.tracking.runs import spec_file


class RagshipModel(PythonModel):
    """Loads the logged spec and answers questions over the store in settings (RAGSHIP_STORE).

    Input: a DataFrame with a ``question`` column, a list of strings, or one string.
    Output: one ``{"answer", "sources"}`` dict per question.
    """

    def load_context(self, context: Any) -> None:
        """Load the spec (models load lazily on the first question)."""
        self.spec = load_spec(context.artifacts["spec"])
        self._engine: Any = None

    # Deliberately unannotated: MLflow derives a signature from type hints, and this model accepts
    # a DataFrame, a list of strings or one string.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        """Answer each question: ``model_input`` is a DataFrame with ``question``, a list of str, or a str."""
        # Lazy: the runtime brings Haystack and the stores, needed only once a question comes.
        from ragship.assembly import open_query_engine

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


def log_spec_model(spec: PipelineSpec, settings: Settings | None = None) -> str:
    """Log the spec as a pyfunc model in the active run and register it; returns the model version."""
    settings = settings or get_settings()
    with spec_file(spec) as path:
        info = log_model(
            name="ragship",
            python_model=RagshipModel(),
            artifacts={"spec": str(path)},
            registered_model_name=settings.mlflow.registered_model,
            pip_requirements=["ragship"],
        )
    return str(info.registered_model_version)
