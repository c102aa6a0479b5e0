"""Document stores: the protocol parts every backend meets, the backends, and the registry that picks one.

Only this package knows which store is in use; everything else gets a :class:`RetrievalStore` (or the part of
it that it uses, :mod:`ragship.stores.base`).
"""

from __future__ import annotations

from ragship.stores.base import RetrievalStore
from ragship.stores.embedded import EmbeddedDocumentStore
from ragship.stores.registry import open_store

__all__ = ["EmbeddedDocumentStore", "RetrievalStore", "open_store"]
