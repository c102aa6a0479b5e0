"""Shared test setup: offline model hub, markers from folders, file factories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The embedding model ships in a package; tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(str(item.fspath)).parent.name
        if folder in {"unit", "integration"}:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture
def make_pdf(tmp_path: Path):
    """Write a real PDF with the given lines of text (reportlab) and return its path."""

    def _make(name: str, lines: list[str]) -> Path:
        from reportlab.lib.pagesizes import A4
        from reportlab.pdfgen import canvas

        path = tmp_path / name
        pdf = canvas.Canvas(str(path), pagesize=A4)
        y = 800
        for line in lines:
            pdf.drawString(50, y, line)
            y -= 20
        pdf.save()
        return path

    return _make


@pytest.fixture
def make_docx(tmp_path: Path):
    """Write a real .docx with the given paragraphs (python-docx) and return its path."""

    def _make(name: str, paragraphs: list[str]) -> Path:
        import docx

        document = docx.Document()
        for paragraph in paragraphs:
            document.add_paragraph(paragraph)
        path = tmp_path / name
        document.save(str(path))
        return path

    return _make
