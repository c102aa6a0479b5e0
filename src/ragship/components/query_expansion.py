"""Query expansion, a stage of the bm25 branch (RM3): widen a question with the words of its best hits.

A keyword search misses chunks that say the same thing in other words. RM3 (Lavrenko and Croft's relevance
model, interpolated with the question as Anserini runs it) takes the first search's top hits as if they
were relevant, weighs every term by the share of each hit it makes up (hits weighted by a softmax of their
BM25 scores), and searches again: the question's own terms keep ``original_query_weight`` of the say, the
``terms`` heaviest terms of the hits share the rest. Figures: docs/evaluation.md, "Query expansion".

RM3 is known as pseudo-relevance feedback; ragship says "query expansion", since "feedback" means users'
ratings here. The spec knobs keep their RM3 names (``feedback_docs``, ``feedback_terms``,
``original_query_weight``) so existing specs and grids load.

Terms are counted with ragship's English analysis (:mod:`ragship.text.analysis`); each new term is sent as
the word it most often came from, so every store analyses it its own way into the same stem.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from haystack import Document

from ragship.stores.base import KeywordSearch, WeightedClause
from ragship.text.analysis import analyze, analyze_words


def expanded_query(
    query: str, hits: Sequence[tuple[str, float]], terms: int, original_query_weight: float
) -> list[WeightedClause]:
    """The weighted clauses of the second search: the question, then one clause per expansion term.

    :param hits: (text, BM25 score) of the first search's top chunks, best first.
    :param terms: How many expansion terms to add.
    :param original_query_weight: The question's share of the total weight, in [0, 1].
    """
    query_terms = analyze(query)
    hits = [(text, score) for text, score in hits if text]
    # No hits, nothing to add, or a question with no terms left (the hits alone would drift off it).
    if not hits or not query_terms or terms < 1 or original_query_weight >= 1:
        return [(query, 1.0)]
    best = max(score for _, score in hits)
    hit_weights = [math.exp(score - best) for _, score in hits]
    total = sum(hit_weights)
    model: dict[str, float] = defaultdict(float)
    words: dict[str, Counter[str]] = defaultdict(Counter)
    for (text, _), hit_weight in zip(hits, hit_weights, strict=True):
        pairs = analyze_words(text)
        for term, count in Counter(term for term, _ in pairs).items():
            model[term] += hit_weight / total * count / len(pairs)
        for term, word in pairs:
            words[term][word] += 1
    chosen = sorted(model.items(), key=lambda kv: (-kv[1], kv[0]))[:terms]
    mass = sum(weight for _, weight in chosen)
    # The question's terms share their weight as they do in RM3: each query term counts once per mention.
    clauses: list[WeightedClause] = [(query, original_query_weight / len(query_terms))]
    clauses += [
        (words[term].most_common(1)[0][0], (1 - original_query_weight) * weight / mass) for term, weight in chosen
    ]
    return clauses


@dataclass(frozen=True)
class QueryExpansion:
    """The query-expansion stage of a keyword retriever: search, expand the question with the hits, search again.

    :param feedback_docs: Top chunks of the first search the expansion reads; 0 turns it off.
    :param feedback_terms: How many words it adds.
    :param original_query_weight: The question's share of the second search's weight (0 to 1).
    :raises ValueError: for an out-of-range knob, naming it.
    """

    feedback_docs: int
    feedback_terms: int
    original_query_weight: float

    def __post_init__(self) -> None:
        if self.feedback_docs < 0:
            raise ValueError(f"feedback_docs must be >= 0 (0 turns query expansion off), got {self.feedback_docs}")
        if self.feedback_terms < 1:
            raise ValueError(f"feedback_terms must be >= 1, got {self.feedback_terms}")
        if not 0 <= self.original_query_weight <= 1:
            raise ValueError(f"original_query_weight must be between 0 and 1, got {self.original_query_weight}")

    @property
    def enabled(self) -> bool:
        """Whether the stage searches twice."""
        return self.feedback_docs > 0

    def search(
        self,
        store: KeywordSearch,
        query: str,
        top_k: int,
        filters: dict[str, Any] | None,
        earlier: Sequence[WeightedClause] = (),
    ) -> list[Document]:
        """The expanded search: no hits in the first search means none in the second.

        :param earlier: Weighted clauses of the earlier turns a follow-up leans on
            (:mod:`ragship.components.followups`): they join the first search, and keep their weight against the
            question's clause in the second.
        """
        first = [(query, 1.0), *earlier]
        hits = (
            store.weighted_bm25_retrieval(first, top_k=self.feedback_docs, filters=filters)
            if earlier
            else store.bm25_retrieval(query, top_k=self.feedback_docs, filters=filters)
        )
        if not hits:
            return []
        clauses = expanded_query(
            query,
            [(doc.content or "", doc.score or 0.0) for doc in hits],
            terms=self.feedback_terms,
            original_query_weight=self.original_query_weight,
        )
        question_weight = clauses[0][1]
        clauses += [(turn, weight * question_weight) for turn, weight in earlier]
        return store.weighted_bm25_retrieval(clauses, top_k=top_k, filters=filters)
