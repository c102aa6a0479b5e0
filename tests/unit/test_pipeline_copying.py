"""Haystack's per-component input copies: the fast path ragship installs keeps their meaning."""

from __future__ import annotations

from typing import Any

import haystack.core.pipeline.pipeline as haystack_pipeline
import haystack.core.pipeline.utils as haystack_utils
from haystack import Document, Pipeline, component

import ragship.pipelines  # noqa: F401 (installs the fast path)
from ragship.pipelines import copying


@component
class _Mutator:
    """Changes what it is given in place, so a missing copy would show in the caller's objects."""

    @component.output_types(total=float)
    def run(self, vector: list[float], documents: list[Document]) -> dict[str, Any]:
        total = sum(vector)
        vector.append(99.0)
        vector[0] = -1.0
        documents[0].meta["touched"] = True
        documents.append(Document(content="added"))
        return {"total": total}


def test_haystack_is_the_one_the_fast_copy_was_checked_against() -> None:
    # Fails when a Haystack upgrade changes the private function the fast path replaces: the message says what to do.
    installed = haystack_utils._deepcopy_with_exceptions
    reason = copying.unchecked_reason(getattr(installed, "haystack_copy", installed))
    assert reason is None, f"{reason}: {copying.RECHECK_HINT}"


def test_an_unchecked_haystack_keeps_its_own_copy(monkeypatch: Any, caplog: Any) -> None:
    original = haystack_utils._deepcopy_with_exceptions.haystack_copy
    monkeypatch.setattr(haystack_utils, "_deepcopy_with_exceptions", original)
    monkeypatch.setattr(copying, "CHECKED_VERSIONS", ((2, 0), (2, 9)))
    assert copying.install() is False
    assert haystack_utils._deepcopy_with_exceptions is original
    assert "outside the checked 2.0-2.9" in caplog.text and "CHECKED_SOURCE_SHA256" in caplog.text
    monkeypatch.setattr(copying, "CHECKED_VERSIONS", ((3, 4), (3, 4)))
    monkeypatch.setattr(copying, "CHECKED_SOURCE_SHA256", "0" * 64)
    assert copying.unchecked_reason(original) is not None and "source differs" in str(
        copying.unchecked_reason(original)
    )


def test_pipeline_run_uses_the_fast_copy() -> None:
    assert copying.install() is True  # idempotent: installing twice keeps one wrapper
    fast = haystack_pipeline._deepcopy_with_exceptions
    assert fast is haystack_utils._deepcopy_with_exceptions
    assert getattr(fast, "haystack_copy", None) is not None
    assert not hasattr(fast.haystack_copy, "haystack_copy")


def test_components_still_get_copies_the_caller_never_sees_changed() -> None:
    vector = [0.5, 0.25, 0.25]
    documents = [Document(content="one", meta={"blocks": [1, 2]})]
    pipeline = Pipeline()
    pipeline.add_component("mutator", _Mutator())
    result = pipeline.run({"mutator": {"vector": vector, "documents": documents}})
    assert result["mutator"]["total"] == 1.0
    assert vector == [0.5, 0.25, 0.25]
    assert len(documents) == 1 and "touched" not in documents[0].meta


def test_only_lists_of_scalars_take_the_shortcut() -> None:
    fast = haystack_utils._deepcopy_with_exceptions
    scalars = [1.0, 2, "three", None, True]
    copied = fast(scalars)
    assert copied == scalars and copied is not scalars
    nested = [[1.0], {"a": [2.0]}]
    copied_nested = fast(nested)
    assert copied_nested == nested and copied_nested[0] is not nested[0] and copied_nested[1]["a"] is not nested[1]["a"]

    class _Floats(list):  # a subclass may carry state of its own: Haystack's own copy handles it
        pass

    sub = _Floats([1.0])
    assert type(fast(sub)) is _Floats


def test_scalars_are_their_own_copies_without_the_protocol_check() -> None:
    original = haystack_utils._deepcopy_with_exceptions.haystack_copy
    checked: list[Any] = []

    def counting(obj: Any) -> Any:  # Haystack's copy, which tests what it is given against the protocols
        checked.append(obj)
        return original(obj)

    fast = copying._make_fast(counting)
    for value in ("a question", 5, 0.5, None, True, b"raw"):
        assert fast(value) is value
    assert checked == []
    inputs = {"query": "q", "top_k": 3, "filters": {"field": "meta.x"}}
    copied = fast(inputs)
    assert copied == inputs and copied is not inputs and copied["filters"] is not inputs["filters"]


def test_documents_are_copied_as_deeply_as_haystack_copies_them() -> None:
    import numpy as np
    from haystack.dataclasses import ByteStream, SparseEmbedding

    fast = haystack_utils._deepcopy_with_exceptions
    original = Document(
        content="chunk",
        meta={"source": "a.md", "section": ["Guide", "Setup"], "nested": {"k": [1, 2]}, "n": 3},
        embedding=[0.1, 0.2],
        score=0.7,
        blob=ByteStream(data=b"raw"),
        sparse_embedding=SparseEmbedding(indices=[1], values=[0.5]),
    )
    copied = fast([original])[0]
    assert copied == fast.haystack_copy(original) == original and copied.id == original.id
    for name in ("meta", "embedding", "blob", "sparse_embedding"):
        assert getattr(copied, name) is not getattr(original, name)
    assert copied.meta["section"] is not original.meta["section"]
    assert copied.meta["nested"]["k"] is not original.meta["nested"]["k"]
    copied.meta["section"].append("changed")
    copied.meta["nested"]["k"].append(3)
    assert original.meta == {"source": "a.md", "section": ["Guide", "Setup"], "nested": {"k": [1, 2]}, "n": 3}
    plain = Document(content="no vectors", meta={"arr": np.arange(3)})
    assert (
        np.array_equal(fast(plain).meta["arr"], plain.meta["arr"]) and fast(plain).meta["arr"] is not plain.meta["arr"]
    )
