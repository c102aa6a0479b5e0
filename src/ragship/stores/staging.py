"""Staged rebuilds: fill a new index beside the live one, then swap it in atomically (or throw it away)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ragship.stores.base import RetrievalStore


class StagedRebuild:
    """A rebuild in progress: write into :attr:`store`; call :meth:`keep_live` to throw it away instead."""

    def __init__(self, store: RetrievalStore) -> None:
        self.store = store
        self.outcome = "promoted"
        self._promote = True

    def keep_live(self, reason: str) -> None:
        """Discard the rebuild when the block ends, leaving the live index as it was."""
        self._promote = False
        self.outcome = f"discarded: {reason}, the live index is unchanged"


@contextmanager
def staged(live: RetrievalStore) -> Iterator[StagedRebuild]:
    """Build a new index beside ``live`` that readers do not see, then swap it in atomically.

    Usage::

        with staged(store) as rebuild:
            write_everything_into(rebuild.store)
            if something_failed:
                rebuild.keep_live("some files failed")
        print(rebuild.outcome)

    The rebuild is promoted when the block ends normally, and discarded when it raises or was told to
    :meth:`~StagedRebuild.keep_live`.
    """
    rebuild = StagedRebuild(live.staged_rebuild())
    try:
        yield rebuild
    except BaseException:
        live.discard(rebuild.store)
        raise
    if rebuild._promote:
        live.promote(rebuild.store)
    else:
        live.discard(rebuild.store)
