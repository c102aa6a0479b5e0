"""A principal: who is calling (a name), the groups whose documents it reads, and what it may do (scopes)."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

from ragship.access.scope import AccessScope
from ragship.enums import AccessDefault, Scope
from ragship.errors import InvalidRequestError, PermissionDeniedError


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names.

    :raises InvalidRequestError: naming an unknown scope and the known ones.
    """
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise InvalidRequestError(f"Unknown scope {value!r}: use {known}.") from None
    return frozenset(scopes)


@dataclass(frozen=True)
class Principal:
    """A caller the guard has resolved from its key or token (never holding either).

    :param name: Its name in records and logs (a key's name, a token's subject).
    :param groups: Groups whose documents it reads.
    :param scopes: What it may do; ``admin`` may do everything and read every document.
    """

    name: str
    groups: frozenset[str]
    scopes: frozenset[Scope]

    @classmethod
    def admin(cls, name: str) -> Principal:
        """A principal with every right (the shared API key, an unguarded development server)."""
        return cls(name, frozenset(), frozenset({Scope.ADMIN}))

    @property
    def is_admin(self) -> bool:
        """Whether it holds the admin scope."""
        return Scope.ADMIN in self.scopes

    def allows(self, scope: Scope) -> bool:
        """Whether it may act with ``scope`` (admins may do everything)."""
        return self.is_admin or scope in self.scopes

    def require(self, scope: Scope) -> None:
        """:raises PermissionDeniedError: naming the missing scope."""
        if not self.allows(scope):
            raise PermissionDeniedError(f"Principal {self.name!r} lacks the '{scope.value}' scope this route needs.")

    def require_groups(self, groups: Iterable[str], what: str) -> None:
        """:raises PermissionDeniedError: when ``groups`` (of a document to index) are not all its own."""
        foreign = sorted(set(groups) - self.groups)
        if foreign and not self.is_admin:
            raise PermissionDeniedError(
                f"{what} is marked for group(s) {', '.join(foreign)}, which principal {self.name!r} is not in; "
                "only members (or admins) may submit documents for a group."
            )

    def access(self, default: AccessDefault) -> AccessScope:
        """The documents it reads: all for admins, else its groups' (and unmarked ones when public)."""
        if self.is_admin:
            return AccessScope.everything(self.name)
        return AccessScope.of_groups(self.groups, default, self.name)


_current: ContextVar[Principal | None] = ContextVar("ragship_principal", default=None)


def set_current_principal(principal: Principal) -> None:
    """Make ``principal`` the caller of the request being served (the guard does this)."""
    _current.set(principal)


def current_principal() -> Principal | None:
    """The caller of the request being served (None outside a request: the CLI, notebooks)."""
    return _current.get()
