"""Where registered spec models logged before the tracking split find their class.

Versions logged before models-from-code hold a cloudpickled ``RagshipModel`` named by module path: the
oldest name ``ragship.serving_model.RagshipModel``, later ones :mod:`ragship.tracking.spec_model`. This
alias keeps the oldest loadable with ``mlflow.pyfunc.load_model``; nothing in ragship imports it. Versions
logged since hold code (:mod:`ragship.tracking.spec_model_code`) and no pickle.
"""

from __future__ import annotations

from ragship.tracking.spec_model import RagshipModel

__all__ = ["RagshipModel"]
