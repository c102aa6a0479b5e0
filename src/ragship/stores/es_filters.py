"""Haystack metadata filters as Elasticsearch query DSL, for ragship's index layout.

ragship stores a document's metadata as top-level fields (``meta.source`` is the keyword field
``source``) and its text in the analysed field ``content``. Filters are Haystack 2 filters: a comparison
``{"field", "operator", "value"}`` or a logical ``{"operator": "AND"|"OR"|"NOT", "conditions": [...]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ragship.errors import StoreError

_RANGES = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def to_es_filter(filters: dict[str, Any]) -> dict[str, Any]:
    """The ES query clause (for a ``bool.filter`` or a ``knn.filter``) that matches ``filters``.

    :raises StoreError: for a malformed filter, naming the part that is wrong.
    """
    if not isinstance(filters, dict):
        raise StoreError(f"filters must be a dict, got {type(filters).__name__}.")
    if "conditions" in filters:
        return _logical(filters)
    if "field" in filters:
        return _comparison(filters)
    raise StoreError(
        f"Malformed filter {filters!r}: give {{'field', 'operator', 'value'}} or {{'operator', 'conditions'}}."
    )


def _logical(condition: dict[str, Any]) -> dict[str, Any]:
    operator = str(condition.get("operator", "")).upper()
    clauses = [to_es_filter(c) for c in condition["conditions"]]
    if operator == "AND":
        return {"bool": {"filter": clauses}}
    if operator == "OR":
        return {"bool": {"should": clauses, "minimum_should_match": 1}}
    if operator == "NOT":  # Haystack's NOT negates the conjunction of its conditions
        return {"bool": {"must_not": [{"bool": {"filter": clauses}}]}}
    raise StoreError(f"Unknown logical operator {condition.get('operator')!r}: use AND, OR or NOT.")


def _comparison(condition: dict[str, Any]) -> dict[str, Any]:
    if "operator" not in condition or "value" not in condition:
        raise StoreError(f"Comparison filter {condition!r} needs 'field', 'operator' and 'value'.")
    field = str(condition["field"]).removeprefix("meta.")
    operator, value = condition["operator"], condition["value"]
    build = _COMPARISONS.get(operator)
    if build is None:
        raise StoreError(f"Unknown comparison operator {operator!r}: use one of {sorted(_COMPARISONS)}.")
    return build(field, value)


def _equal(field: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"bool": {"must_not": [{"exists": {"field": field}}]}}
    if field == "content":  # analysed text: every word must match
        return {"match": {field: {"query": value, "minimum_should_match": "100%"}}}
    return {"term": {field: value}}


def _not(clause: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"must_not": [clause]}}


def _range(operator: str) -> Callable[[str, Any], dict[str, Any]]:
    def build(field: str, value: Any) -> dict[str, Any]:
        if value is None or isinstance(value, (list, dict)):
            raise StoreError(f"Filter on {field!r} with {operator!r} needs a number, string or date, got {value!r}.")
        return {"range": {field: {_RANGES[operator]: value}}}

    return build


def _in(field: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, list):
        raise StoreError(f"Filter on {field!r} with 'in' needs a list, got {value!r}.")
    return {"terms": {field: value}}


_COMPARISONS: dict[str, Callable[[str, Any], dict[str, Any]]] = {
    "==": _equal,
    "!=": lambda field, value: _not(_equal(field, value)),
    "in": _in,
    "not in": lambda field, value: _not(_in(field, value)),
    **{op: _range(op) for op in _RANGES},
}
