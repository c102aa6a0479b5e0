"""Where registered spec models logged before the tracking split find their class.

MLflow pickles a pyfunc model's class by module path, and versions registered before the split name
``ragship.serving_model.RagshipModel``. Newer versions name :mod:`ragship.tracking.spec_model`. This alias
keeps the older ones loadable with ``mlflow.pyfunc.load_model``; nothing in ragship imports it.
"""

from __future__ import annotations

from ragship.tracking.spec_model import RagshipModel

__all__ = ["RagshipModel"]
