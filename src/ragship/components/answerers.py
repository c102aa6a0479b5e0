"""ExtractiveAnswerer: answers with the retrieved sentences that best match the question, no LLM."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ChatMessage

from ragship.components.converters import MARKDOWN_FILE_TYPES
from ragship.components.followups import history_weights
from ragship.spec.knobs import default_of
from ragship.text.analysis import content_words, stemmer
from ragship.text.blocks import Block, BlockKind, fenced, parse_blocks
from ragship.text.sentences import split_sentences

NO_ANSWER = "I found nothing in the indexed documents that answers this question."
# Questions about doing something get the command too, not only the sentences around it.
_ASKS_HOW = re.compile(
    r"\bhow (?:do|can|should|would|to) (?:i |we |you )?\w+|\b(?:which|what) (?:command|make target|cli)\b",
    re.IGNORECASE,
)
# Comments and quoted strings (a JSON body, a question passed to `ragship ask`) are not what a command does.
_NOT_COMMAND_WORDS = re.compile(r"(?:^|\s)#.*$|'[^'\n]*'|\"[^\"\n]*\"", re.MULTILINE)
_MIN_SENTENCE_CHARS = 12
_TABLE_ROW_DAMPING = 1.25  # a row ties with a sentence only when it matches clearly better
_TERMS_PER_POINT = 25  # content words a sentence may hold before its length starts to count against it


def _terms(text: str) -> set[str]:
    """Stemmed content words: "tests"/"testing" and "locally"/"local" match."""
    return set(stemmer("english").stemWords(content_words(text)))


@dataclass(frozen=True)
class _Candidate:
    """A sentence (or command) of the ``rank``-th document, with the words it is scored on."""

    rank: int
    position: int
    text: str
    terms: frozenset[str]
    context: frozenset[str]  # heading words (and, for code, the sentence introducing it)
    table: bool = False  # a table row, not a sentence


@component
class ExtractiveAnswerer:
    """Builds an answer from the most relevant sentences of the retrieved documents.

    Documents are read as blocks (:mod:`ragship.text.blocks`): sentences come from prose and list items only,
    so no sentence holds a heading or spans two blocks. When the question asks how to do something, the
    best matching code block follows the sentences as a fenced ``command`` part. Every sentence and the
    command carry a numbered citation ``[n]`` pointing at the n-th input document, the convention LLM
    prompts use, so the same :class:`~haystack.components.builders.AnswerBuilder` turns either into an
    answer with sources.

    :param max_sentences: Most sentences in the answer.
    :param max_sentence_chars: Longer sentences are cut with an ellipsis.
    :param min_relative_score: A further sentence of the best sentence's document must score at least
        this share of the best.
    :param other_source_score: The share a sentence of another document must reach.
    :param commands: Add the command part to "how do I ..." answers.
    :param max_command_lines: Longest command part; a longer code block is cut to its best-matching lines.
    :param history_weight: Weight of the words of the earlier user turns a follow-up leans on
        (:mod:`ragship.components.followups`), against 1 for the question's own words; 0 ignores the history.
    """

    def __init__(
        self,
        max_sentences: int = default_of("answer_sentences"),
        max_sentence_chars: int = 400,
        min_relative_score: float = 0.5,
        other_source_score: float = 1.0,
        commands: bool = True,
        max_command_lines: int = 8,
        history_weight: float = default_of("history_weight"),
    ) -> None:
        self.max_sentences = max_sentences
        self.max_sentence_chars = max_sentence_chars
        self.min_relative_score = min_relative_score
        self.other_source_score = other_source_score
        self.commands = commands
        self.max_command_lines = max_command_lines
        if history_weight < 0:
            raise ValueError(f"history_weight must be >= 0 (0 ignores the history), got {history_weight}")
        self.history_weight = history_weight

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(
            self,
            max_sentences=self.max_sentences,
            max_sentence_chars=self.max_sentence_chars,
            min_relative_score=self.min_relative_score,
            other_source_score=self.other_source_score,
            commands=self.commands,
            max_command_lines=self.max_command_lines,
            history_weight=self.history_weight,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExtractiveAnswerer:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    @component.output_types(replies=list[ChatMessage])
    def run(self, query: str, documents: list[Document], history: list[str] | None = None) -> dict[str, Any]:
        """Answer ``query`` from ``documents``.

        :param history: The conversation's earlier user turns, oldest first: a follow-up's sentences are also
            scored on the words of the turns it leans on, at ``history_weight``.
        :returns: ``replies``: one assistant message whose sentences (and command) cite documents as ``[n]``.
        """
        query_terms = _weighted_terms(query, history or [], self.history_weight)
        blocks_by_doc = [_blocks(d) for d in documents]
        # Chunks of one file count as one source when deciding what else to cite.
        files = [str(d.meta.get("source", i)) for i, d in enumerate(documents)]
        sentences = [c for rank, blocks in enumerate(blocks_by_doc) for c in self._sentences(rank, blocks)]
        idf = _idf(query_terms, blocks_by_doc)
        scored = [(self._score(c, query_terms, idf), c) for c in sentences]
        scored = [(s, c) for s, c in scored if s > 0]
        if not scored:
            return {"replies": [ChatMessage.from_assistant(NO_ANSWER)]}
        scored.sort(key=lambda sc: (-sc[0], sc[1].rank, sc[1].position))
        best_score, best = scored[0]
        # More sentences of the best one's document fill in the answer; another document's sentence must
        # come close to the best to be cited too (each extra source is one more place to check).
        chosen = [
            c
            for s, c in scored
            if s
            >= (self.min_relative_score if files[c.rank] == files[best.rank] else self.other_source_score) * best_score
        ][: self.max_sentences]
        text = " ".join(f"{c.text} [{c.rank + 1}]" for c in chosen)
        if self.commands and _ASKS_HOW.search(query):
            cited_files = {files[c.rank] for c in chosen}
            command = self._command(
                query_terms,
                idf,
                blocks_by_doc,
                cited=[f in cited_files for f in files],
                first=[f == files[best.rank] for f in files],
            )
            if command is not None:
                text += f"\n\n{fenced(command.text, 'sh')}\n[{command.rank + 1}]"
        return {"replies": [ChatMessage.from_assistant(text)]}

    def _sentences(self, rank: int, blocks: list[Block]) -> list[_Candidate]:
        out: list[_Candidate] = []
        for block in blocks:
            if block.kind is BlockKind.CODE or block.navigation:
                continue
            context = frozenset(_terms(" ".join(block.section)))
            if block.kind is BlockKind.TABLE:
                out.extend(self._rows(rank, block, context, len(out)))
                continue
            for unit in block.units:
                # A list item is one point ("`bm25`: keyword search. Best for exact names."): kept whole
                # unless too long, when its sentences stand alone.
                whole = block.kind is BlockKind.LIST and len(unit) <= self.max_sentence_chars
                for sentence in [unit] if whole else split_sentences(unit):
                    if len(sentence) < _MIN_SENTENCE_CHARS:
                        continue
                    if len(sentence) > self.max_sentence_chars:
                        sentence = sentence[: self.max_sentence_chars].rsplit(" ", 1)[0] + " ..."
                    out.append(_Candidate(rank, len(out), sentence, frozenset(_terms(sentence)), context))
        return out

    def _rows(self, rank: int, block: Block, context: frozenset[str], start: int) -> list[_Candidate]:
        """A table's rows as candidates ("`.jsonl`: one JSON object per line ..."), the header row left out."""
        out: list[_Candidate] = []
        for row in block.units[1:]:
            text = ": ".join(cell for cell in row.split(" | ") if cell)
            if _MIN_SENTENCE_CHARS <= len(text) <= self.max_sentence_chars:
                out.append(_Candidate(rank, start + len(out), text, frozenset(_terms(text)), context, table=True))
        return out

    @staticmethod
    def _score(candidate: _Candidate, query_terms: dict[str, float], idf: dict[str, float]) -> float:
        overlap = candidate.terms & query_terms.keys()
        if not overlap:
            return 0.0
        # Rare query words weigh more (a follow-up's words from earlier turns less); words of the heading above
        # count half (they set the topic); a long sentence is damped (it matches by its length, not its point);
        # earlier-ranked documents get a small prior.
        weight = sum(idf[t] * query_terms[t] for t in overlap) + 0.5 * sum(
            idf[t] * query_terms[t] for t in candidate.context & query_terms.keys()
        )
        damping = 1 + len(candidate.terms) / _TERMS_PER_POINT
        if candidate.table:
            damping *= _TABLE_ROW_DAMPING
        if candidate.text.endswith(":"):
            damping *= 2  # it introduces the point (a list, a command) rather than making it
        return weight / math.sqrt(sum(query_terms.values())) / damping + 0.3 / (candidate.rank + 1)

    def _command(
        self,
        query_terms: dict[str, float],
        idf: dict[str, float],
        blocks_by_doc: list[list[Block]],
        cited: list[bool],
        first: list[bool],
    ) -> _Candidate | None:
        """The code block that best matches the question: from the best sentence's file first (its command
        is the one the sentence explains), then other cited files, then any retrieved file."""
        best: tuple[float, _Candidate] | None = None
        for rank, blocks in enumerate(blocks_by_doc):
            previous: Block | None = None
            for position, block in enumerate(blocks):
                if block.kind is BlockKind.CODE:
                    intro = previous.units[-1] if previous is not None and previous.kind is BlockKind.PROSE else ""
                    context = frozenset(_terms(" ".join(block.section) + " " + intro))
                    commands = frozenset(_terms(_NOT_COMMAND_WORDS.sub(" ", block.units[0])))
                    if not commands & query_terms.keys():
                        continue  # only its comments, strings or heading match: not the command asked for
                    code = self._best_lines(block.units[0], query_terms)
                    candidate = _Candidate(rank, position, code, frozenset(_terms(block.units[0])), context)
                    score = self._score(candidate, query_terms, idf) + 0.5 * first[rank] + 0.5 * cited[rank]
                    if score > 0.5 and (best is None or score > best[0]):
                        best = (score, candidate)
                previous = block
        return best[1] if best else None

    def _best_lines(self, code: str, query_terms: dict[str, float]) -> str:
        lines = code.split("\n")
        if len(lines) <= self.max_command_lines:
            return code
        window = self.max_command_lines
        hits = [len(_terms(line) & query_terms.keys()) for line in lines]
        start = max(range(len(lines) - window + 1), key=lambda i: (sum(hits[i : i + window]), -i))
        return "\n".join(lines[start : start + window])


def _blocks(doc: Document) -> list[Block]:
    markdown = str(doc.meta.get("file_type", "")).lower() in MARKDOWN_FILE_TYPES
    return parse_blocks(doc.content or "", markdown)


def _weighted_terms(query: str, history: list[str], history_weight: float) -> dict[str, float]:
    """The question's terms (weight 1), and those of the earlier turns it leans on (their weight) that it lacks."""
    weights = dict.fromkeys(_terms(query), 1.0)
    for turn, weight in history_weights(query, history, history_weight):
        for term in _terms(turn) - weights.keys():
            weights[term] = weight
    return weights


def _idf(query_terms: dict[str, float], blocks_by_doc: list[list[Block]]) -> dict[str, float]:
    """Inverse document frequency of each query term over the retrieved documents."""
    doc_freq = dict.fromkeys(query_terms, 0)
    for blocks in blocks_by_doc:
        words = _terms(
            " ".join(u for b in blocks for u in b.units) + " " + " ".join(s for b in blocks for s in b.section)
        )
        for term in words & query_terms.keys():
            doc_freq[term] += 1
    n = max(len(blocks_by_doc), 1)
    return {t: math.log(1 + n / max(f, 1)) for t, f in doc_freq.items()}
