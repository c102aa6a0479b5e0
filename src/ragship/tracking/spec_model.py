"""The registered spec model: an MLflow pyfunc model that answers questions with a logged pipeline spec.

High in the import graph: answering uses :func:`ragship.assembly.open_query_engine`.

Logged as MLflow *models-from-code*: the logged model holds the code file
:mod:`ragship.tracking.spec_model_code` (which names :class:`RagshipModel` with
``mlflow.models.set_model``) and ``spec.yaml``, and no pickle, so loading a version runs no pickled code.
Versions logged before that hold a pickled ``RagshipModel`` that names this module, or
``ragship.serving_model`` (an alias module): both keep loading. Ragship itself reads only a version's
``spec.yaml`` (:func:`ragship.tracking.registry.load_registered_spec`), so serving, reindexing and promotion
work with every version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PythonModel, log_model
from pydantic import BaseModel

from ragship.spec import PipelineSpec, load_spec
from ragship.tracking.runs import MODEL_URI_TAG, spec_file

#: The model name inside a run (``models:/<model id>`` is what gets registered).
MODEL_NAME = "ragship"
#: The models-from-code file MLflow logs and runs on load.
MODEL_CODE = Path(__file__).with_name("spec_model_code.py")


class SourceRecord(BaseModel):
    """One source of an answer (the output schema MLflow infers from :meth:`RagshipModel.predict`)."""

    id: str
    source: str
    score: float | None = None
    snippet: str
    citation: int
    cited: bool
    title: str | None = None


class AnswerRecord(BaseModel):
    """One answer and its sources."""

    answer: str
    sources: list[SourceRecord]


class RagshipModel(PythonModel):
    """Loads the logged spec and answers questions over the store in settings (RAGSHIP_STORE).

    Input: a list of questions (a DataFrame's first string column, e.g. ``question``, is taken as that list).
    Output: one ``{"answer", "sources"}`` dict per question. Param ``top_k``: sources per answer.
    """

    def load_context(self, context: Any) -> None:
        """Load the spec (models load lazily on the first question)."""
        self.spec = load_spec(context.artifacts["spec"])
        self._engine: Any = None

    # The hints give MLflow the signature and its input validation. The return is plain dicts (the
    # ``AnswerRecord`` shape): callers json.dumps them.
    def predict(self, context: Any, model_input: list[str], params: dict[str, Any] | None = None) -> list[AnswerRecord]:
        """Answer each question in ``model_input``."""
        # Lazy: the runtime brings Haystack and the stores, needed only once a question comes.
        from ragship.assembly import open_query_engine

        if self._engine is None:
            self._engine = open_query_engine(self.spec)
        top_k = (params or {}).get("top_k")
        return [self._engine.ask(str(q), top_k=top_k).to_dict() for q in model_input]


@dataclass(frozen=True)
class LoggedSpecModel:
    """A spec model logged in a run: ``models:/<model_id>``, what registration points at."""

    model_id: str
    model_uri: str


def log_spec_model(spec: PipelineSpec) -> LoggedSpecModel:
    """Log the spec as a models-from-code pyfunc model in the active run (not registered: see
    :func:`ragship.tracking.versions.register_run`), and tag the run with the model's URI."""
    import mlflow
    from mlflow.models import ModelSignature, set_signature
    from mlflow.types.schema import ParamSchema, ParamSpec

    with spec_file(spec) as path:
        info = log_model(
            name=MODEL_NAME,
            python_model=str(MODEL_CODE),
            artifacts={"spec": str(path)},
            pip_requirements=["ragship"],
        )
    # MLflow infers inputs and outputs from the type hints, but params only from an input example,
    # which it would answer at logging time (loading models, opening a store): declare ``top_k`` here.
    inferred = info.signature
    params = ParamSchema([ParamSpec("top_k", "long", None)])
    set_signature(info.model_uri, ModelSignature(inputs=inferred.inputs, outputs=inferred.outputs, params=params))
    mlflow.set_tag(MODEL_URI_TAG, info.model_uri)
    return LoggedSpecModel(model_id=str(info.model_id), model_uri=str(info.model_uri))
