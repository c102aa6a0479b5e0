"""Which rows of an embedded-store index a search may return: the access scope and Haystack filters as a mask.

Both of the store's in-memory indexes (dense and BM25) search with this mask, so a filter cuts the
candidates before ranking, never after.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from haystack import Document
from haystack.utils.filters import document_matches_filter

from ragship.access.scope import ACCESS_META, AccessScope


class RowMask:
    """The metadata of an index's rows, with the rows of each access group precomputed.

    Metadata is kept as its JSON text (a quarter of the memory of parsed dicts at 500,000 rows) and
    parsed again the first time a filter needs it.
    """

    def __init__(self, metas: list[str]) -> None:
        self.texts = metas
        self._parsed: list[dict[str, Any]] | None = None
        # Rows of each access group, and the unmarked rows: a scope's mask is an OR of a few boolean arrays.
        self.unmarked = np.ones(len(metas), dtype=bool)
        self.group_rows: dict[str, np.ndarray] = {}
        for i, text in enumerate(metas):
            if ACCESS_META not in text:  # cheap test first: most rows carry no access mark
                continue
            for group in json.loads(text).get(ACCESS_META) or []:
                rows = self.group_rows.setdefault(group, np.zeros(len(metas), dtype=bool))
                rows[i] = True
                self.unmarked[i] = False

    @property
    def metas(self) -> list[dict[str, Any]]:
        """Each row's metadata, parsed on first use."""
        if self._parsed is None:
            self._parsed = [json.loads(t) for t in self.texts]
        return self._parsed

    def updated(self, keep: np.ndarray | None, metas: list[str]) -> RowMask:
        """This mask with only the ``keep`` rows (None: all), then ``metas``' rows appended."""
        if keep is None and not metas:
            return self
        old = self.texts if keep is None else [m for m, k in zip(self.texts, keep.tolist(), strict=True) if k]
        added = RowMask(metas)
        mask = RowMask.__new__(RowMask)
        mask.texts = old + metas
        mask._parsed = None
        mask.unmarked = np.concatenate((self.unmarked if keep is None else self.unmarked[keep], added.unmarked))
        mask.group_rows = {}
        for group in self.group_rows.keys() | added.group_rows.keys():
            before = self.group_rows.get(group)
            before = np.zeros(len(old), dtype=bool) if before is None else before if keep is None else before[keep]
            after = added.group_rows.get(group, np.zeros(len(metas), dtype=bool))
            mask.group_rows[group] = np.concatenate((before, after))
        return mask

    def access_mask(self, access: AccessScope) -> np.ndarray | None:
        """Rows ``access`` may read (None: all)."""
        if access.groups is None:
            return None
        mask = self.unmarked.copy() if access.include_unmarked else np.zeros(len(self.texts), dtype=bool)
        for group in access.groups:
            if group in self.group_rows:
                mask |= self.group_rows[group]
        return mask

    def allowed(self, filters: dict[str, Any] | None, access: AccessScope | None) -> np.ndarray | None:
        """Rows that ``access`` may read and that match ``filters`` (None: all rows)."""
        allowed = self.access_mask(access) if access is not None else None
        if filters:
            metas = self.metas
            matches = np.fromiter(
                (document_matches_filter(filters, Document(content="", meta=m)) for m in metas),
                dtype=bool,
                count=len(metas),
            )
            allowed = matches if allowed is None else allowed & matches
        return allowed
