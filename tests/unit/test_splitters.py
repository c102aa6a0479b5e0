"""SectionSplitter and the block parser: chunks follow sections and blocks."""

from __future__ import annotations

import pytest
from haystack import Document

from ragship.components.converters import FileConverter
from ragship.components.splitters import SectionSplitter
from ragship.text.blocks import BlockKind, parse_blocks

GUIDE = """# Guide

Intro sentence one. Intro sentence two.

## Install

Run the installer with the command below.

```sh
pip install ragship   # the package
ragship es start
```

- First item.
- Second item with `code`.

| key | value |
|---|---|
| a | 1 |

### Details

More details here.
"""


def _split(text: str, file_type: str = "md", **kwargs: int) -> list[Document]:
    doc = Document(content=text, meta={"source": f"g.{file_type}", "file_type": file_type})
    return SectionSplitter(**kwargs).run([doc])["documents"]


def test_blocks_carry_their_heading_path_and_kind() -> None:
    blocks = parse_blocks(GUIDE, markdown=True)
    assert [(b.kind, b.section) for b in blocks] == [
        (BlockKind.PROSE, ("Guide",)),
        (BlockKind.PROSE, ("Guide", "Install")),
        (BlockKind.CODE, ("Guide", "Install")),
        (BlockKind.LIST, ("Guide", "Install")),
        (BlockKind.TABLE, ("Guide", "Install")),
        (BlockKind.PROSE, ("Guide", "Install", "Details")),
    ]
    assert blocks[2].units == ("pip install ragship   # the package\nragship es start",)
    assert blocks[3].units == ("First item.", "Second item with `code`.")
    assert blocks[4].units == ("key | value", "a | 1")
    assert not any("#" in u for b in blocks if b.kind is not BlockKind.CODE for u in b.units)


def test_chunks_never_cross_a_section_and_record_path_and_blocks() -> None:
    chunks = _split(GUIDE)
    assert [c.meta["section"] for c in chunks] == ["Guide", "Guide > Install", "Guide > Install > Details"]
    install = chunks[1]
    assert install.meta["block"] == "mixed" and install.meta["blocks"] == ["prose", "code", "list", "table"]
    assert install.content.startswith("## Install\n\nRun the installer")
    assert "```sh\npip install ragship   # the package\nragship es start\n```" in install.content
    assert chunks[2].meta["block"] == "prose" and chunks[2].content.startswith("### Details")
    assert [c.meta["split_id"] for c in chunks] == [0, 1, 2]


def test_a_long_code_block_is_cut_between_lines_and_fenced_again() -> None:
    code = "\n".join(f"echo line {i} with some words" for i in range(60))
    chunks = _split(f"# T\n\n```bash\n{code}\n```\n", split_length=50, split_overlap=10)
    assert len(chunks) > 3
    for chunk in chunks:
        body = chunk.content.split("\n\n", 1)[1]
        assert body.startswith("```bash\n") and body.endswith("\n```"), body  # no chunk starts mid-block
        assert len(body.split()) <= 52
    lines = [ln for c in chunks for ln in c.content.split("\n") if ln.startswith("echo")]
    assert lines == code.split("\n")  # every line once, in order


def test_a_long_paragraph_is_cut_between_sentences_with_overlap() -> None:
    sentences = [f"Sentence number {i} says something about the topic at hand." for i in range(40)]
    chunks = _split(" ".join(sentences), file_type="txt", split_length=60, split_overlap=15)
    assert len(chunks) > 4
    for chunk in chunks:
        assert chunk.content.endswith("."), chunk.content  # whole sentences only
        assert len(chunk.content.split()) <= 60
    assert chunks[1].content.split(". ")[0] + "." in chunks[0].content  # the overlap repeats a sentence


def test_plain_text_is_not_read_as_markdown() -> None:
    chunks = _split("# not a heading in a .txt file\n\nSecond paragraph.", file_type="txt")
    assert len(chunks) == 1 and chunks[0].meta["section"] == ""
    assert chunks[0].content.startswith("# not a heading")


def test_html_becomes_markdown_with_its_structure() -> None:
    from haystack.dataclasses import ByteStream

    html = (
        "<html><head><title>Page</title></head><body><article><h1>Guide</h1>"
        "<p>Intro text that is long enough to count as the main content of this page.</p>"
        "<h2>Install</h2><p>Install it with the command below, then start it.</p>"
        "<pre><code>pip install ragship\nragship es start</code></pre></article></body></html>"
    )
    converted = FileConverter().run([ByteStream(html.encode(), meta={"source": "page.html"})])
    assert not converted["failures"]
    chunks = SectionSplitter().run(converted["documents"])["documents"]
    install = next(c for c in chunks if c.meta["section"].endswith("Install"))
    assert "code" in install.meta["blocks"] and "pip install ragship" in install.content


def test_the_default_spec_splits_by_section_and_a_unit_count_is_still_offered() -> None:
    from ragship.errors import SpecError
    from ragship.spec import Role, default_spec

    section = default_spec().components_of("indexing", Role.SPLITTER)
    assert [c["type"].rsplit(".", 1)[1] for c in section.values()] == ["SectionSplitter"]
    words = default_spec(split_by="word", split_length=99)
    splitter = next(iter(words.components_of("indexing", Role.SPLITTER).values()))
    assert splitter["type"].endswith("DocumentSplitter") and splitter["init_parameters"]["split_length"] == 99
    assert words.indexing_hash != default_spec().indexing_hash
    with pytest.raises(SpecError, match=r"split_by: 'chapter' is not one of \['section'"):
        default_spec(split_by="chapter")
