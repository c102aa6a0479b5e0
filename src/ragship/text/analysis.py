"""English text analysis, the one place it is defined: words, stop words, Porter terms, Snowball stemmers.

Keyword search, query expansion and extractive answers all analyse text here:

- :func:`analyze` is Lucene's ``EnglishAnalyzer`` (what Elasticsearch's ``english`` analyzer and Anserini do):
  word tokens, possessive ``'s`` stripped, lowercased, :data:`ENGLISH_STOP_WORDS` dropped, Porter-stemmed.
  It must equal the cluster's analysis: an Elasticsearch index without the ``english`` analyzer is
  analysed with it client-side (:mod:`ragship.stores.es_text`).
- :func:`content_words` matches a question's words against passages (the embedded store's FTS5 query,
  the extractive answerer) with :data:`MATCHING_STOP_WORDS`, the same list widened by question words.
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

# Lucene's EnglishAnalyzer stop set, which is Elasticsearch's ``_english_``: exactly that, so that the
# client-side analysis gives the terms the cluster's ``english`` analyzer gives.
ENGLISH_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these", "they",
    "this", "to", "was", "will", "with"
})  # fmt: skip
# Words every question has and no answer needs: matching a question to passages drops them too.
QUESTION_WORDS = frozenset({
    "can", "do", "does", "from", "has", "have", "how", "i", "its", "so", "than", "we", "what", "when",
    "where", "which", "who", "why", "you", "your"
})  # fmt: skip
# Negations and "such" stay in for matching: "not" in a question should find the sentence that says "not".
MATCHED_ANYWAY = frozenset({"no", "not", "such"})
# The extension of the one stop-word list that question-to-passage matching uses.
MATCHING_STOP_WORDS = (ENGLISH_STOP_WORDS | QUESTION_WORDS) - MATCHED_ANYWAY

_WORD = re.compile(r"\w+", re.UNICODE)
_TOKEN = re.compile(r"\w+(?:['\u2019]\w+)*")  # a contraction ("don't") is one token, as Lucene's tokenizer keeps it
_POSSESSIVE = re.compile(r"['\u2019][sS]$")


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without :data:`MATCHING_STOP_WORDS`, in order, without repeats."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if word not in MATCHING_STOP_WORDS:
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


@lru_cache(maxsize=65536)
def _stem(token: str) -> str:
    return str(stemmer("porter").stemWord(token))


def analyze_words(text: str) -> list[tuple[str, str]]:
    """Each term of ``text`` with the lowercased word it came from (``("run", "running")``), in order."""
    pairs = []
    for token in _TOKEN.findall(text):
        word = _POSSESSIVE.sub("", token).lower()
        if word and word not in ENGLISH_STOP_WORDS:
            pairs.append((_stem(word), word))
    return pairs


def analyze(text: str) -> list[str]:
    """The terms of ``text``: word tokens, possessive ``'s`` stripped, lowercased, stop words out, Porter-stemmed."""
    return [term for term, _ in analyze_words(text)]


def stem_text(text: str) -> str:
    """:func:`analyze`'s terms joined by spaces: the value of ``content_stemmed`` and of a stemmed query."""
    return " ".join(analyze(text))
