"""SectionSplitter: chunks that follow a document's sections and blocks instead of a word count alone."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict

from ragship.components.converters import MARKDOWN_FILE_TYPES
from ragship.spec.knobs import default_of
from ragship.text.blocks import MIXED_BLOCKS, Block, BlockKind, fenced, parse_blocks, section_label
from ragship.text.sentences import split_sentences


@component
class SectionSplitter:
    """Splits documents into chunks of at most ``split_length`` words that never cross a section.

    A chunk holds whole blocks (paragraphs, lists, code blocks, tables) of one section; a block longer
    than ``split_length`` is cut between sentences (prose), items (lists) or lines (code, tables), and a
    piece of code is fenced again, so no chunk starts inside a code block. Each chunk's content is
    Markdown led by its section's heading; its meta gets ``section`` (the heading path, e.g.
    ``Testing > How to run the tests``), ``block`` (``prose|list|code|table``, or ``mixed``),
    ``blocks`` (the kinds in order), ``split_id`` and ``source_id``.

    :param split_length: Maximum words per chunk (a single longer sentence or line is kept whole).
    :param split_overlap: Words of the previous piece repeated when one long prose block is cut.
    """

    def __init__(
        self, split_length: int = default_of("split_length"), split_overlap: int = default_of("split_overlap")
    ) -> None:
        if split_length < 1 or not 0 <= split_overlap < split_length:
            raise ValueError(
                f"SectionSplitter needs split_length >= 1 and 0 <= split_overlap < split_length "
                f"(got {split_length} and {split_overlap})."
            )
        self.split_length = split_length
        self.split_overlap = split_overlap

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(self, split_length=self.split_length, split_overlap=self.split_overlap)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SectionSplitter:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document])
    def run(self, documents: list[Document]) -> dict[str, Any]:
        """Split each document (Markdown when ``meta.file_type`` says so, paragraphs otherwise).

        :returns: ``documents``: the chunks, in document order.
        """
        out: list[Document] = []
        for doc in documents:
            markdown = str(doc.meta.get("file_type", "")).lower() in MARKDOWN_FILE_TYPES
            chunks = self._chunks(parse_blocks(doc.content or "", markdown))
            for split_id, blocks in enumerate(chunks):
                kinds = [b.kind.value for b in blocks]
                meta = {
                    **doc.meta,
                    "section": section_label(blocks[0].section),
                    "block": kinds[0] if len(set(kinds)) == 1 else MIXED_BLOCKS,
                    "blocks": list(dict.fromkeys(kinds)),
                    "split_id": split_id,
                    "source_id": doc.id,
                }
                out.append(Document(content=_chunk_text(blocks), meta=meta))
        return {"documents": out}

    def _chunks(self, blocks: list[Block]) -> list[list[Block]]:
        chunks: list[list[Block]] = []
        current: list[Block] = []
        size = 0
        for piece in (p for block in blocks for p in self._pieces(block)):
            if current and (piece.section != current[0].section or size + piece.words > self.split_length):
                chunks.append(current)
                current, size = [], 0
            current.append(piece)
            size += piece.words
        if current:
            chunks.append(current)
        return chunks

    def _pieces(self, block: Block) -> list[Block]:
        """``block`` itself, or cut into pieces of at most ``split_length`` words at natural boundaries."""
        if block.words <= self.split_length:
            return [block]
        if block.kind is BlockKind.PROSE:
            units = [s for paragraph in block.units for s in split_sentences(paragraph)]
            groups = _packed(units, self.split_length, self.split_overlap)
            return [replace(block, markdown=" ".join(g), units=(" ".join(g),)) for g in groups]
        if block.kind is BlockKind.CODE:
            info = block.markdown.split("\n", 1)[0].lstrip("`")
            groups = _packed(block.units[0].split("\n"), self.split_length, 0)
            return [replace(block, markdown=fenced("\n".join(g), info), units=("\n".join(g),)) for g in groups]
        if block.kind is BlockKind.LIST:
            groups = _packed(list(block.units), self.split_length, 0)
            return [replace(block, markdown="\n".join(f"- {u}" for u in g), units=tuple(g)) for g in groups]
        header, rows = block.markdown.split("\n")[:2], block.markdown.split("\n")[2:]
        groups = _packed(rows, self.split_length, 0)
        return [replace(block, markdown="\n".join(header + g), units=tuple(g)) for g in groups]


def _packed(units: list[str], limit: int, overlap: int) -> list[list[str]]:
    """Consecutive ``units`` grouped to at most ``limit`` words each; a group repeats up to ``overlap``
    words of whole units from the end of the one before."""
    groups: list[list[str]] = []
    current: list[str] = []
    size = 0
    for unit in units:
        words = len(unit.split())
        if current and size + words > limit:
            groups.append(current)
            carried: list[str] = []
            for previous in reversed(current):
                if sum(len(u.split()) for u in carried) + len(previous.split()) > overlap:
                    break
                carried.insert(0, previous)
            current = carried
            size = sum(len(u.split()) for u in current)
        current.append(unit)
        size += words
    if current:
        groups.append(current)
    return groups


def _chunk_text(blocks: list[Block]) -> str:
    """The chunk as Markdown: its section's heading, then its blocks."""
    first = blocks[0]
    body = "\n\n".join(b.markdown for b in blocks)
    if not first.section:
        return body
    return f"{'#' * max(first.heading_level, 1)} {first.section[-1]}\n\n{body}"
