"""Document stores: the protocol parts every backend meets, the backends, and the registry that picks one.

Only this package knows which store is in use; everything else gets a :class:`RetrievalStore` (or the part of
it that it uses, :mod:`ragship.stores.base`).

The names below load on first use: importing a light module of this package (the manifest reader a
no-change ``ragship sync`` uses, :mod:`ragship.stores.manifest_file`) must not load a backend, Haystack or torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ragship.stores.base import RetrievalStore
    from ragship.stores.embedded import EmbeddedDocumentStore
    from ragship.stores.registry import open_store

__all__ = ["EmbeddedDocumentStore", "RetrievalStore", "open_store"]

_HOMES = {
    "EmbeddedDocumentStore": "ragship.stores.embedded",
    "RetrievalStore": "ragship.stores.base",
    "open_store": "ragship.stores.registry",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_HOMES[name]), name)
