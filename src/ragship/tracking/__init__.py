"""MLflow, split by job; import the submodule you need.

- :mod:`ragship.tracking.runs`: connect to MLflow; what a run records about a spec.
- :mod:`ragship.tracking.registry`: registered specs, the promotion gate, the champion.
- :mod:`ragship.tracking.spec_model`: the pyfunc model that answers questions, and logging it.
- :mod:`ragship.tracking.feedback`: users' ratings of served answers.

This file imports none of them: importing any submodule runs it first, so re-exporting here would
tie the registry (which ``ragship.assembly`` imports) to the spec model (which imports ``ragship.assembly``).
"""
