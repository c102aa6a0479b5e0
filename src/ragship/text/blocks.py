"""Documents as blocks under their heading path: the structure chunking and answering share.

Markdown is parsed with markdown-it (CommonMark plus tables); plain text is split into paragraphs.
A heading is never a block: it becomes the ``section`` path of the blocks below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from markdown_it import MarkdownIt
from markdown_it.token import Token

SECTION_SEPARATOR = " > "


class BlockKind(StrEnum):
    """What a block holds; recorded on every chunk as ``meta.block``."""

    PROSE = "prose"
    LIST = "list"
    CODE = "code"
    TABLE = "table"


MIXED_BLOCKS = "mixed"  # meta.block of a chunk holding blocks of several kinds


@dataclass(frozen=True)
class Block:
    """One unit of a document.

    :param kind: prose, list, code or table.
    :param markdown: The block as Markdown (code fenced), what a chunk's content is made of.
    :param units: Plain-text units: the paragraph (prose), each item (list), the code (code), each row (table).
    :param section: Heading path, outermost first.
    :param heading_level: Level (1-6) of the innermost heading of ``section``; 0 when there is none.
    """

    kind: BlockKind
    markdown: str
    units: tuple[str, ...]
    section: tuple[str, ...] = ()
    heading_level: int = 0
    navigation: bool = False  # a list whose every item starts with a link: a table of contents, not content

    @property
    def words(self) -> int:
        """Length in words, the unit chunk sizes are counted in."""
        return len(self.markdown.split())


def section_label(section: Sequence[str]) -> str:
    """``("Testing", "How to run the tests")`` as ``"Testing > How to run the tests"``."""
    return SECTION_SEPARATOR.join(section)


def fenced(code: str, info: str = "") -> str:
    """``code`` as a fenced block whose fence no line of the code can close."""
    fence = "```"
    while fence in code:
        fence += "`"
    return f"{fence}{info}\n{code.rstrip(chr(10))}\n{fence}"


def parse_blocks(text: str, markdown: bool) -> list[Block]:
    """The blocks of ``text``: Markdown structure when ``markdown``, else paragraphs of prose."""
    return _parse_markdown(text) if markdown else _parse_paragraphs(text)


def _parse_paragraphs(text: str) -> list[Block]:
    blocks = []
    for paragraph in text.replace("\r\n", "\n").split("\n\n"):
        plain = " ".join(paragraph.split())
        if plain:
            blocks.append(Block(BlockKind.PROSE, plain, (plain,)))
    return blocks


_PARSER = MarkdownIt("commonmark").enable("table")


def _parse_markdown(text: str) -> list[Block]:
    lines = text.replace("\r\n", "\n").split("\n")
    tokens = _PARSER.parse("\n".join(lines))
    headings: list[tuple[int, str]] = []
    blocks: list[Block] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        end = _closing(tokens, i)
        section = tuple(title for _, title in headings)
        level = headings[-1][0] if headings else 0
        if token.type == "heading_open":
            depth = int(token.tag[1:])
            while headings and headings[-1][0] >= depth:
                headings.pop()
            title = _inline_text(tokens[i + 1])
            if title:
                headings.append((depth, title))
        elif token.type in ("fence", "code_block"):
            code = token.content.rstrip("\n")
            if code.strip():
                info = token.info.strip().split(" ")[0] if token.type == "fence" else ""
                blocks.append(Block(BlockKind.CODE, fenced(code, info), (code,), section, level))
        elif token.type in ("paragraph_open", "blockquote_open", "bullet_list_open", "ordered_list_open"):
            kind = BlockKind.LIST if token.type.endswith("list_open") else BlockKind.PROSE
            raw = _list_items(tokens[i:end]) if kind is BlockKind.LIST else [_joined_inline(tokens[i:end])]
            units = tuple(u for u in raw if u)
            navigation = kind is BlockKind.LIST and _items_start_with_links(tokens[i:end])
            if units:
                blocks.append(Block(kind, _source(lines, token), units, section, level, navigation))
        elif token.type == "table_open":
            rows = _table_rows(tokens[i:end])
            if rows:
                blocks.append(Block(BlockKind.TABLE, _source(lines, token), tuple(rows), section, level))
        i = end + 1
    return blocks


def _closing(tokens: list[Token], start: int) -> int:
    """Index of the token closing the one at ``start`` (itself when it opens nothing)."""
    if tokens[start].nesting != 1:
        return start
    depth = 0
    for j in range(start, len(tokens)):
        depth += tokens[j].nesting
        if depth == 0:
            return j
    return len(tokens) - 1


def _source(lines: list[str], token: Token) -> str:
    start, stop = token.map or (0, 0)
    return "\n".join(lines[start:stop]).strip("\n")


def _inline_text(token: Token) -> str:
    """Plain text of an inline token; code spans keep their backticks (they are what users type)."""
    parts: list[str] = []
    for child in token.children or []:
        if child.type == "text":
            parts.append(child.content)
        elif child.type == "code_inline":
            parts.append(f"`{child.content}`")
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "image":
            parts.append(child.content)
    return " ".join("".join(parts).split())


def _joined_inline(tokens: Sequence[Token]) -> str:
    return " ".join(t for t in (_inline_text(tok) for tok in tokens if tok.type == "inline") if t)


def _list_items(tokens: Sequence[Token]) -> list[str]:
    """Each top-level item's text; a nested list stays inside its item."""
    items: list[str] = []
    outer = tokens[0].level + 1
    current: list[Token] = []
    for token in tokens[1:]:
        if token.type == "list_item_open" and token.level == outer:
            current = []
        elif token.type == "list_item_close" and token.level == outer:
            items.append(_joined_inline(current))
        else:
            current.append(token)
    return items


def _items_start_with_links(tokens: Sequence[Token]) -> bool:
    outer = tokens[0].level + 1
    firsts = [
        tokens[j + 2]
        for j, t in enumerate(tokens[:-2])
        if t.type == "list_item_open" and t.level == outer and tokens[j + 2].type == "inline"
    ]
    return bool(firsts) and all(f.children and f.children[0].type == "link_open" for f in firsts)


def _table_rows(tokens: Sequence[Token]) -> list[str]:
    rows: list[str] = []
    cells: list[str] = []
    for token in tokens:
        if token.type == "tr_open":
            cells = []
        elif token.type == "inline":
            cells.append(_inline_text(token))
        elif token.type == "tr_close":
            rows.append(" | ".join(cells))
    return rows
