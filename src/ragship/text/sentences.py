"""Sentence segmentation that works offline: sentencex (rule-based, no model or data download)."""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _segmenter() -> Any:
    from sentencex import segment

    return segment


def split_sentences(text: str, language: str = "en") -> list[str]:
    """The sentences of one paragraph, whitespace-normalised; abbreviations and file names stay whole."""
    return [" ".join(s.split()) for s in _segmenter()(language, text) if s.strip()]
