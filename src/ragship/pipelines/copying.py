"""A faster copy of component inputs for Haystack's ``Pipeline.run`` (same result, a fraction of the time).

``Pipeline.run`` deep-copies every component's inputs with ``_deepcopy_with_exceptions``, which recurses into
lists element by element and tests each element against the ``Component`` protocol (a slow runtime
``isinstance``). A query embedding is a list of 384 floats: copying it took 8.4 ms per question on this
project's 2-core machine, as long as encoding the question (py-spy on ``/retrieve``; benchmarks/README.md).
A list holding only immutable scalars needs no recursion: a shallow copy is already a deep one, and a scalar
itself (the question, ``top_k``) is its own copy, so it skips the protocol check too.

Retrieved chunks are the other cost: every ``Document`` went through ``copy.deepcopy`` (``__reduce_ex__``,
a memo, a walk of every field) after the protocol check, about 4 ms per question for the 40 chunks two
retriever branches hand the joiner (cProfile of ``QueryEngine.retrieve`` on the NFCorpus store). A
``Document`` is a plain dataclass of strings, numbers, a float list and a metadata dict: copying its fields,
with the same rule for the metadata's values, gives the same deep copy directly.

Haystack offers no public switch for these copies (``Pipeline.run`` always calls its private
``_deepcopy_with_exceptions``; a ``Document.__deepcopy__`` would still pay the protocol check and the
per-float recursion), so this module replaces that private function, and only on a Haystack it was checked
against: the version range below and the function's exact source. Anything else runs Haystack's own copy
(slower, same results) and says so once; ``tests/unit/test_pipeline_copying.py`` fails with the fix.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import haystack.core.pipeline.base as haystack_base
import haystack.core.pipeline.pipeline as haystack_pipeline
import haystack.core.pipeline.utils as haystack_utils
from haystack import Document

logger = logging.getLogger(__name__)

# The haystack-ai releases (major, minor) this fast path was checked against, and the source of the function it
# replaces there. A Haystack outside the range, or with another source, keeps its own copy.
CHECKED_VERSIONS = ((3, 4), (3, 4))
CHECKED_SOURCE_SHA256 = "e672e1a2e12bd270bc4cd3ad1d1640fb2096159abf94ddf1a9b11c2f22659620"
RECHECK_HINT = (
    "compare haystack.core.pipeline.utils._deepcopy_with_exceptions with ragship/pipelines/copying.py's copies; "
    "when they still agree, update CHECKED_VERSIONS and CHECKED_SOURCE_SHA256 there"
)

# Types whose deep copy is the object itself (copy._deepcopy_atomic).
_SCALARS = frozenset({float, int, str, bool, bytes, type(None)})
# The modules that call it by a name of their own (``from ... import``); utils recurses through its own.
_MODULES = (haystack_utils, haystack_pipeline, haystack_base)


def _is_scalar_list(value: Any) -> bool:
    return type(value) is list and all(type(v) in _SCALARS for v in value)


def _copy_value(value: Any) -> Any:
    if type(value) in _SCALARS:
        return value
    if _is_scalar_list(value):
        return value.copy()
    return copy.deepcopy(value)


def _copy_document(doc: Document) -> Document:
    """A deep copy of ``doc``, field by field (``Document.__new__``: no id recomputed, no legacy-field check)."""
    new = Document.__new__(Document)
    fields = {name: _copy_value(value) for name, value in vars(doc).items() if name != "meta"}
    fields["meta"] = {key: _copy_value(value) for key, value in doc.meta.items()}
    vars(new).update(fields)
    return new


def _make_fast(haystack_copy: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def copy_inputs(obj: Any) -> Any:
        # A question, a top_k, a None: their deep copy is themselves, and Haystack's copy would first test each
        # against the Component protocol (typing's _get_protocol_attrs: 13% of a served /retrieve's GIL time).
        if type(obj) in _SCALARS:
            return obj
        if _is_scalar_list(obj):
            return obj.copy()
        if type(obj) is Document:
            return _copy_document(obj)
        return haystack_copy(obj)

    copy_inputs.haystack_copy = haystack_copy  # type: ignore[attr-defined]
    return copy_inputs


def haystack_version() -> tuple[int, int]:
    """The installed haystack-ai's (major, minor)."""
    major, minor, *_ = version("haystack-ai").split(".")
    return int(major), int(minor)


def unchecked_reason(original: Callable[[Any], Any] | None) -> str | None:
    """Why the fast path must not replace ``original`` (None: this Haystack is the one it was checked against)."""
    if original is None:
        return "this Haystack has no _deepcopy_with_exceptions"
    low, high = CHECKED_VERSIONS
    found = haystack_version()
    if not low <= found <= high:
        return f"haystack-ai {found[0]}.{found[1]} is outside the checked {low[0]}.{low[1]}-{high[0]}.{high[1]}"
    source = hashlib.sha256(inspect.getsource(original).encode()).hexdigest()
    if source != CHECKED_SOURCE_SHA256:
        return "Haystack's _deepcopy_with_exceptions changed (its source differs from the checked one)"
    return None


def install() -> bool:
    """Route Haystack's input copies through the fast path, on a checked Haystack only; False where it is not
    installed (Haystack's own copy runs: same results, about 4 ms more per question)."""
    original = getattr(haystack_utils, "_deepcopy_with_exceptions", None)
    if original is not None and hasattr(original, "haystack_copy"):
        return True
    reason = unchecked_reason(original)
    if reason is not None:
        logger.warning(
            "Pipelines copy their inputs the slower way: %s; to restore the fast copy, %s.", reason, RECHECK_HINT
        )
        return False
    assert original is not None  # unchecked_reason said so
    fast = _make_fast(original)
    for module in _MODULES:
        if getattr(module, "_deepcopy_with_exceptions", None) is original:
            module._deepcopy_with_exceptions = fast  # type: ignore[attr-defined]
    return True
