"""Follow-up questions: which earlier user turns a question leans on, and how much.

A follow-up ("And how do I stop it?") only makes sense with the turns before it; a topic change ("Which Python
version does ragship need?") stands alone and must not be pulled toward them. So the earlier turns count only
when the question *needs* them: it refers back (a pronoun such as "it" or "they", an elliptic opener such as
"and ..." or "what about ...") or names almost nothing itself (two content words or fewer). The turns it leans
on run back to the last question that stood alone (the start of the current topic), oldest first; each weighs
``history_weight`` against the question's 1. Figures: evaluation/README.md, "Golden conversations".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ragship.text.analysis import content_words

# Words that point back at something named earlier. Relative "that" / existential "there" are left out: a
# self-contained question uses them too ("the command that ...", "is there a way ...").
_REFERRING = frozenset(
    {"it", "its", "itself", "they", "them", "their", "theirs", "this", "these", "those", "one", "ones", "such"}
)
_REFERRING_PHRASES = re.compile(r"\b(?:that one|the same|the former|the latter|in that case|instead)\b")
# Openers that continue the previous question rather than ask a new one.
_ELLIPTIC_OPENER = re.compile(r"^(?:and|but|or|also|then|so|what about|how about|same for|and what|and how)\b")
_WORD = re.compile(r"[\w']+")
_FEW_CONTENT_WORDS = 2


def needs_history(question: str) -> bool:
    """Whether ``question`` leans on earlier turns: it refers back, continues elliptically, or names almost nothing."""
    text = question.strip().lower()
    words = _WORD.findall(text)
    return (
        any(w in _REFERRING for w in words)
        or bool(_REFERRING_PHRASES.search(text))
        or bool(_ELLIPTIC_OPENER.match(text))
        or len(content_words(text)) <= _FEW_CONTENT_WORDS
    )


def topic_turns(question: str, history: Sequence[str]) -> list[str]:
    """The earlier turns ``question`` leans on, oldest first: none when it stands alone, else back to (and
    including) the last earlier turn that stood alone."""
    if not history or not needs_history(question):
        return []
    turns = [t for t in history if t and t.strip()]
    start = 0
    for i in range(len(turns) - 1, -1, -1):
        if not needs_history(turns[i]):
            start = i
            break
    return turns[start:]


def history_weights(question: str, history: Sequence[str], history_weight: float) -> list[tuple[str, float]]:
    """(earlier turn, weight relative to the question's 1) for the turns ``question`` leans on; empty when none."""
    if history_weight <= 0:
        return []
    return [(turn, history_weight) for turn in topic_turns(question, history)]
