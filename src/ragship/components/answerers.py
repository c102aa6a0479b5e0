"""ExtractiveAnswerer: answers with the retrieved sentences that best match the question, no LLM."""

from __future__ import annotations

import math
import re
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage

from ragship.text import content_words

NO_ANSWER = "I found nothing in the indexed documents that answers this question."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n{2,}|\n(?=\s*[-*#>|]|\s*\d+\.)")
_MARKUP = re.compile(r"^[\s#>*|`-]+|`")


def _stem(word: str) -> str:
    # Light suffix stripping is enough to match "tests"/"testing"/"tested" against "test".
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in content_words(text)}


@component
class ExtractiveAnswerer:
    """Builds an answer from the most relevant sentences of the retrieved documents.

    Each sentence carries a numbered citation ``[n]`` pointing at the n-th input document, the same
    convention LLM prompts use, so the same :class:`~haystack.components.builders.AnswerBuilder`
    turns either into an answer with sources.

    :param max_sentences: Sentences in the answer.
    :param max_sentence_chars: Longer sentences are cut with an ellipsis.
    """

    def __init__(self, max_sentences: int = 3, max_sentence_chars: int = 400) -> None:
        self.max_sentences = max_sentences
        self.max_sentence_chars = max_sentence_chars

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(self, max_sentences=self.max_sentences, max_sentence_chars=self.max_sentence_chars)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveAnswerer:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    @component.output_types(replies=list[ChatMessage])
    def run(self, query: str, documents: list[Document]) -> dict[str, Any]:
        """Answer ``query`` from ``documents``.

        :returns: ``replies``: one assistant message whose sentences cite documents as ``[n]``.
        """
        query_terms = _terms(query)
        candidates: list[tuple[float, int, int, str]] = []
        doc_freq: dict[str, int] = {}
        sentences_by_doc = [self._sentences(d.content or "") for d in documents]
        for sentences in sentences_by_doc:
            for term in {t for s in sentences for t in _terms(s)} & query_terms:
                doc_freq[term] = doc_freq.get(term, 0) + 1
        for rank, sentences in enumerate(sentences_by_doc):
            for position, sentence in enumerate(sentences):
                overlap = _terms(sentence) & query_terms
                if not overlap:
                    continue
                # Rare query words weigh more; earlier-ranked documents get a small prior.
                weight = sum(math.log(1 + len(documents) / doc_freq[t]) for t in overlap)
                score = weight / math.sqrt(len(query_terms)) + 0.3 / (rank + 1)
                candidates.append((score, rank, position, sentence))
        if not candidates:
            return {"replies": [ChatMessage.from_assistant(NO_ANSWER)]}
        best = sorted(candidates, key=lambda c: (-c[0], c[1], c[2]))[: self.max_sentences]
        text = " ".join(f"{sentence} [{rank + 1}]" for _, rank, _, sentence in best)
        return {"replies": [ChatMessage.from_assistant(text)]}

    def _sentences(self, text: str) -> list[str]:
        out = []
        for raw in _SENTENCE_END.split(text):
            sentence = _MARKUP.sub("", " ".join(raw.split())).strip()
            if len(sentence) < 12:
                continue
            if len(sentence) > self.max_sentence_chars:
                sentence = sentence[: self.max_sentence_chars].rsplit(" ", 1)[0] + " ..."
            out.append(sentence)
        return out
