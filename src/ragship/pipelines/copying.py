"""A faster copy of component inputs for Haystack's ``Pipeline.run`` (same result, a fraction of the time).

``Pipeline.run`` deep-copies every component's inputs with ``_deepcopy_with_exceptions``, which recurses into
lists element by element and tests each element against the ``Component`` protocol (a slow runtime
``isinstance``). A query embedding is a list of 384 floats: copying it took 8.4 ms per question on this
project's 2-core machine, as long as encoding the question (py-spy on ``/retrieve``; benchmarks/README.md).
A list holding only immutable scalars needs no recursion: a shallow copy is already a deep one.

Retrieved chunks are the other cost: every ``Document`` went through ``copy.deepcopy`` (``__reduce_ex__``,
a memo, a walk of every field) after the protocol check, about 4 ms per question for the 40 chunks two
retriever branches hand the joiner (cProfile of ``QueryEngine.retrieve`` on the NFCorpus store). A
``Document`` is a plain dataclass of strings, numbers, a float list and a metadata dict: copying its fields,
with the same rule for the metadata's values, gives the same deep copy directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import haystack.core.pipeline.base as haystack_base
import haystack.core.pipeline.pipeline as haystack_pipeline
import haystack.core.pipeline.utils as haystack_utils
from haystack import Document

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
        if _is_scalar_list(obj):
            return obj.copy()
        if type(obj) is Document:
            return _copy_document(obj)
        return haystack_copy(obj)

    copy_inputs.haystack_copy = haystack_copy  # type: ignore[attr-defined]
    return copy_inputs


def install() -> bool:
    """Route Haystack's input copies through the fast path; False where this Haystack has no such function."""
    original = getattr(haystack_utils, "_deepcopy_with_exceptions", None)
    if original is None:
        return False
    if hasattr(original, "haystack_copy"):
        return True
    fast = _make_fast(original)
    for module in _MODULES:
        if getattr(module, "_deepcopy_with_exceptions", None) is original:
            module._deepcopy_with_exceptions = fast  # type: ignore[attr-defined]
    return True
