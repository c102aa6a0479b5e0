from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragship.components.converters import FileConverter


def _run(*paths: Path, **kwargs: int) -> tuple[list, dict[str, str]]:
    result = FileConverter(**kwargs).run(sources=list(paths))
    return result["documents"], {Path(f.source).name: f.reason for f in result["failures"]}


def test_text_markdown_html(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("plain text about kettles")
    (tmp_path / "b.md").write_text("# Brewing guide\n\nSteep the **tea** for three minutes.\n")
    (tmp_path / "c.html").write_text(
        "<html><head><title>Kettle page</title></head><body><article><p>"
        + "Boil water in the kettle before pouring it over the leaves. " * 5
        + "</p></article></body></html>"
    )
    docs, failures = _run(tmp_path / "a.txt", tmp_path / "b.md", tmp_path / "c.html")
    assert failures == {}
    by_type = {d.meta["file_type"]: d for d in docs}
    assert by_type["txt"].content == "plain text about kettles"
    assert "Steep the **tea** for three minutes" in by_type["md"].content  # kept as Markdown for the splitter
    assert by_type["md"].meta["title"] == "Brewing guide"
    assert "Boil water in the kettle" in by_type["html"].content
    assert by_type["html"].meta["title"] == "Kettle page"
    for doc in docs:
        assert len(doc.meta["content_hash"]) == 64
        assert doc.meta["modified_at"].endswith("+00:00")
        assert doc.meta["source"].endswith(doc.meta["file_type"])


def test_pdf_and_docx(make_pdf, make_docx) -> None:
    pdf = make_pdf("guide.pdf", ["Volcanoes erupt basalt lava.", "Second line of the page."])
    docx = make_docx("notes.docx", ["Glaciers carve valleys.", "They move slowly."])
    docs, failures = _run(pdf, docx)
    assert failures == {}
    text = {d.meta["file_type"]: d.content for d in docs}
    assert "Volcanoes erupt basalt lava." in text["pdf"]
    assert "Glaciers carve valleys." in text["docx"]


def test_jsonl_records_and_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    lines = [
        json.dumps({"_id": "r1", "title": "First", "text": "Record one text", "meta": {"lang": "en"}}),
        "{not json",
        json.dumps({"_id": "r3", "text": ""}),
        json.dumps(["a", "list"]),
        json.dumps({"_id": "r5", "text": "Record five text"}),
    ]
    path.write_text("\n".join(lines) + "\n")
    docs, failures = _run(path)
    assert [d.meta["record"] for d in docs] == ["r1", "r5"]
    assert docs[0].content.startswith("First\n\nRecord one text")
    assert docs[0].meta["lang"] == "en" and docs[0].meta["title"] == "First"
    assert set(failures) == {"records.jsonl:2", "records.jsonl:3", "records.jsonl:4"}
    assert "invalid JSON" in failures["records.jsonl:2"]
    assert "empty text field 'text'" in failures["records.jsonl:3"]
    assert "JSON object" in failures["records.jsonl:4"]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.md", b"", "empty file"),
        ("blank.txt", b"   \n\n  ", "only whitespace"),
        ("binary.txt", b"\x00\x01\x02ELF\x00", "binary content"),
        ("latin1.txt", "caf\xe9 cr\xe8me".encode("latin-1"), "not valid UTF-8 (byte 0xe9 at offset 3)"),
        ("truncated.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog", "pdf conversion failed"),
        ("garbage.docx", b"PK\x03\x04 definitely not a zip", "docx conversion failed"),
        ("table.xlsx", b"whatever", "unsupported file type '.xlsx'"),
    ],
)
def test_bad_files_are_reported_with_reason(tmp_path: Path, name: str, content: bytes, reason: str) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    good = tmp_path / "good.txt"
    good.write_text("still indexed")
    docs, failures = _run(bad, good)
    assert [d.content for d in docs] == ["still indexed"]
    assert reason in failures[name]


def test_real_pdf_cut_in_half_is_reported(tmp_path: Path, make_pdf) -> None:
    pdf = make_pdf("whole.pdf", ["Some text"])
    cut = tmp_path / "cut.pdf"
    cut.write_bytes(pdf.read_bytes()[: pdf.stat().st_size // 3])
    _, failures = _run(cut)
    assert failures["cut.pdf"].startswith("pdf conversion failed")


def test_oversized_missing_and_unreadable(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_text("x" * 2000)
    locked = tmp_path / "locked.txt"
    locked.write_text("secret")
    locked.chmod(0)
    docs, failures = _run(big, tmp_path / "missing.txt", tmp_path, max_file_bytes=1000)
    assert docs == []
    assert "over the 1,000-byte limit" in failures["big.txt"]
    assert failures["missing.txt"] == "file not found"
    assert failures[tmp_path.name] == "not a regular file"
    _, failures = _run(locked)
    locked.chmod(0o600)
    # root can read anything; otherwise the permission error is the reason
    assert failures == {} or "cannot read file" in failures["locked.txt"]


def test_round_trip_serialization() -> None:
    converter = FileConverter(max_file_bytes=10, jsonl_text_field="body")
    clone = FileConverter.from_dict(converter.to_dict())
    assert clone.max_file_bytes == 10 and clone.jsonl_text_field == "body"
