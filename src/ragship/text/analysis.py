"""Small text utilities shared by keyword search and extractive answering."""

from __future__ import annotations

import re
import threading
from typing import Any

# Words too common to help ranking; dropping them keeps keyword search from scoring most of a corpus.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "than",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
        "can",
    ]
)
_WORD = re.compile(r"\w+", re.UNICODE)


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without stopwords, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in STOPWORDS:
            seen.setdefault(word, None)
    return list(seen)


_THREAD_STEMMERS = threading.local()


def stemmer(algorithm: str) -> Any:
    """A Snowball stemmer (``"english"``, ``"porter"``, ...) of the calling thread.

    A stemmer object holds the word it is stemming in its own fields, so one shared by the threads
    of a server corrupts words (IndexError, wrong stems) under concurrent requests: each thread gets its own.
    """
    own: dict[str, Any] = _THREAD_STEMMERS.__dict__
    if algorithm not in own:
        import snowballstemmer

        own[algorithm] = snowballstemmer.stemmer(algorithm)
    return own[algorithm]
