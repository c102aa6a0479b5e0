"""The models-from-code file of the spec model: MLflow logs this file and runs it when a version loads.

It only names the model class (:class:`ragship.tracking.spec_model.RagshipModel`), which loads its spec in
``load_context``; nothing is unpickled. Nothing in ragship imports this module.
"""

import mlflow

from ragship.tracking.spec_model import RagshipModel

mlflow.models.set_model(RagshipModel())
