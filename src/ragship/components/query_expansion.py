"""Pseudo-relevance feedback for keyword search (RM3): widen a question with the words of its best hits.

A keyword search misses chunks that say the same thing in other words. RM3 (Lavrenko and Croft's relevance
model, interpolated with the question as Anserini runs it) takes the first search's top hits as if they
were relevant, weighs every term by the share of each hit it makes up (hits weighted by a softmax of their
BM25 scores), and searches again: the question's own terms keep ``original_query_weight`` of the say, the
``terms`` heaviest terms of the hits share the rest. Figures: docs/evaluation.md, "Query expansion".

Terms are counted with ragship's English analysis (:mod:`ragship.stores.es_text`); each new term is sent as
the word it most often came from, so every store analyses it its own way into the same stem.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence

from ragship.stores.base import WeightedClause
from ragship.stores.es_text import analyze, analyze_words


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
