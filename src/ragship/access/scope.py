"""An access scope: the document groups a caller may read, as the filter every store search carries.

Documents carry their groups in ``meta.access`` (a list of group names; none or an empty list: unmarked).
A scope turns into a Haystack filter that both stores apply inside their queries; a caller's own filter is
ANDed with it (:meth:`AccessScope.restrict`), so it can narrow what is read but never widen it.

The scope of the request being served lives in a context variable that the HTTP guard sets. A process that
serves requests declares so (:func:`require_request_scope`); from then on a search with no scope fails
closed instead of reading everything. The CLI and notebooks act as a local admin unless told otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from ragship.enums import AccessDefault
from ragship.errors import RagshipError

ACCESS_FIELD = "meta.access"
ACCESS_META = ACCESS_FIELD.removeprefix("meta.")
# Marks the clause a scope builds, so a store can apply it natively (an index on groups) and tell it from
# a caller's filter; a caller's filter is never in its place (it is always ANDed after it).
_TAG = "ragship_access"


@dataclass(frozen=True)
class AccessScope:
    """The documents a caller may read.

    :param groups: Groups whose documents it reads; None reads every document (an admin).
    :param include_unmarked: Whether documents without groups are readable (``access.default`` public).
    :param name: Who reads, for logs and records.
    """

    groups: frozenset[str] | None
    include_unmarked: bool = True
    name: str = "local"

    @classmethod
    def everything(cls, name: str = "local admin") -> AccessScope:
        """Every document (admins, the CLI and notebooks by default)."""
        return cls(None, True, name)

    @classmethod
    def of_groups(cls, groups: Iterable[str], default: AccessDefault, name: str = "local") -> AccessScope:
        """The documents of ``groups``, and unmarked ones when ``default`` is public."""
        return cls(frozenset(groups), default == AccessDefault.PUBLIC, name)

    @property
    def unrestricted(self) -> bool:
        """Whether this scope reads every document."""
        return self.groups is None

    def filter(self) -> dict[str, Any] | None:
        """The Haystack filter of this scope (None when unrestricted)."""
        if self.groups is None:
            return None
        conditions: list[dict[str, Any]] = [{"field": ACCESS_FIELD, "operator": "in", "value": sorted(self.groups)}]
        if self.include_unmarked:
            conditions.append({"field": ACCESS_FIELD, "operator": "==", "value": None})
        return {"operator": "OR", "conditions": conditions, _TAG: True}

    def restrict(self, filters: dict[str, Any] | None) -> dict[str, Any] | None:
        """``filters`` ANDed with this scope: the scope's clause first, the caller's after it."""
        own = self.filter()
        if own is None:
            return filters
        if not filters:
            return own
        return {"operator": "AND", "conditions": [own, filters]}

    def admits(self, groups: Iterable[str] | None) -> bool:
        """Whether a document with ``groups`` is readable under this scope (the stores' rule, in Python)."""
        if self.groups is None:
            return True
        marked = list(groups or [])
        return (not marked and self.include_unmarked) or any(g in self.groups for g in marked)


def split_access(filters: dict[str, Any] | None) -> tuple[AccessScope | None, dict[str, Any] | None]:
    """Take a scope's clause out of ``filters`` (as :meth:`AccessScope.restrict` built them).

    :returns: The scope (None when the filters hold none) and the rest of the filters (None when nothing is left).
    """
    if not filters:
        return None, None
    if filters.get(_TAG):
        return _scope_of(filters), None
    conditions = filters.get("conditions") or []
    if str(filters.get("operator", "")).upper() == "AND" and conditions and conditions[0].get(_TAG):
        rest = conditions[1:]
        return _scope_of(conditions[0]), (rest[0] if len(rest) == 1 else {"operator": "AND", "conditions": rest})
    return None, filters


def _scope_of(clause: dict[str, Any]) -> AccessScope:
    groups: frozenset[str] = frozenset()
    unmarked = False
    for condition in clause["conditions"]:
        if condition["operator"] == "in":
            groups = frozenset(condition["value"])
        else:
            unmarked = True
    return AccessScope(groups, unmarked)


_current: ContextVar[AccessScope | None] = ContextVar("ragship_access_scope", default=None)
_served = False


def require_request_scope() -> None:
    """Declare this process a server: from now on a search without a scope fails instead of reading everything."""
    global _served
    _served = True


@contextlib.contextmanager
def acting_as(scope: AccessScope) -> Iterator[AccessScope]:
    """Run the block with ``scope`` as the current one (the guard does this around each request)."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def set_current(scope: AccessScope) -> None:
    """Make ``scope`` the current one in this context (for ASGI code that cannot wrap a block)."""
    _current.set(scope)


def current_scope(explicit: AccessScope | None = None) -> AccessScope:
    """The scope a search runs under: ``explicit``, else the request's, else a local admin's.

    :raises RagshipError: in a serving process when no scope was set (a route that skipped the guard).
    """
    if explicit is not None:
        return explicit
    scope = _current.get()
    if scope is not None:
        return scope
    if _served:
        raise RagshipError("No access scope is set for this request: the route bypassed the guard, so nothing is read.")
    return AccessScope.everything()
