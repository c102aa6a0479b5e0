"""FileConverter: turns files of many types into Documents, reporting each failure with its reason."""

from __future__ import annotations

import hashlib
import json
import logging as std_logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.dataclasses import ByteStream

from ragship.access.marks import front_matter_access, groups_of, rule_access
from ragship.access.scope import ACCESS_META
from ragship.errors import ConversionError
from ragship.source_files import BINARY_TYPES as BINARY_TYPES  # re-exported: callers import them from here
from ragship.source_files import SUPPORTED_TYPES as SUPPORTED_TYPES
from ragship.source_files import TEXT_TYPES as TEXT_TYPES
from ragship.source_files import FileFailure as FileFailure
from ragship.source_files import source_name as source_name
from ragship.spec.knobs import default_of

# ``meta.file_type`` values whose converted text is Markdown (HTML is converted to Markdown).
MARKDOWN_FILE_TYPES = frozenset({"md", "markdown", "html", "htm"})
_MARKDOWN_TITLE = re.compile(r"^\s{0,3}#\s+(.+?)\s*#*\s*$", re.MULTILINE)
_HTML_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


@component
class FileConverter:
    """Converts .txt, .md, .html, .pdf, .docx and .jsonl files to Documents.

    One bad file never stops the batch: it is listed in ``failures`` with the reason.
    Each document's meta holds ``source`` (path), ``title``, ``modified_at``, ``content_hash``
    (sha256 of the file) and ``file_type``; .jsonl records also get ``record``. Markdown stays Markdown and
    HTML becomes Markdown (its main content, by trafilatura), so headings, code and tables survive for
    the splitter (:class:`~ragship.components.splitters.SectionSplitter`).

    :param max_file_bytes: Larger files are refused.
    :param jsonl_text_field: Field of a .jsonl record holding the text.
    :param jsonl_title_field: Optional field of a .jsonl record holding the title.
    :param jsonl_id_field: Optional field holding the record's id (else its line number).
    """

    def __init__(
        self,
        max_file_bytes: int = default_of("max_file_bytes"),
        jsonl_text_field: str = "text",
        jsonl_title_field: str = "title",
        jsonl_id_field: str = "_id",
    ) -> None:
        self.max_file_bytes = max_file_bytes
        self.jsonl_text_field = jsonl_text_field
        self.jsonl_title_field = jsonl_title_field
        self.jsonl_id_field = jsonl_id_field
        # Path rules (settings, not spec): set by the indexing pipeline for files that carry no access mark.
        self.access_rules: dict[str, list[str]] = {}
        self._converters: dict[str, Any] = {}

    def to_dict(self) -> dict[str, Any]:
        """Serialize the component."""
        return default_to_dict(
            self,
            max_file_bytes=self.max_file_bytes,
            jsonl_text_field=self.jsonl_text_field,
            jsonl_title_field=self.jsonl_title_field,
            jsonl_id_field=self.jsonl_id_field,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileConverter:
        """Deserialize the component."""
        return default_from_dict(cls, data)

    @component.output_types(documents=list[Document], failures=list[FileFailure])
    def run(self, sources: list[str | Path | ByteStream], source_names: list[str] | None = None) -> dict[str, Any]:
        """Convert files, or contents already in memory.

        :param sources: File paths, or ``ByteStream``s (uploads) whose ``meta["source"]`` names them.
        :param source_names: The ``source`` of each item, in order, when not its path or meta (overrides both).
        :returns: ``documents`` converted, and ``failures`` (source + reason) for what could not be.
        """
        if source_names is not None and len(source_names) != len(sources):
            raise ValueError(f"source_names has {len(source_names)} names for {len(sources)} sources.")
        documents: list[Document] = []
        failures: list[FileFailure] = []
        for i, item in enumerate(sources):
            name = source_names[i] if source_names is not None else _name_of(item)
            try:
                data, modified_at = _read(item, name, self.max_file_bytes)
                docs, record_failures = self._convert(data, name, modified_at)
                self._mark_access(docs, data, name)
            except ConversionError as e:
                failures.append(FileFailure(name, str(e)))
                continue
            documents.extend(docs)
            failures.extend(record_failures)
        return {"documents": documents, "failures": failures}

    def _convert(self, data: bytes, name: str, modified_at: str) -> tuple[list[Document], list[FileFailure]]:
        suffix = PurePosixPath(name).suffix.lower()
        stem = PurePosixPath(name).stem
        meta = {
            "source": name,
            "file_type": suffix.lstrip("."),
            "content_hash": hashlib.sha256(data).hexdigest(),
            "modified_at": modified_at,
        }
        if suffix in TEXT_TYPES:
            text = _decode_text(data)
            if suffix == ".jsonl":
                return self._convert_jsonl(text, meta)
            if suffix in {".md", ".markdown"}:
                meta["title"] = _first_match(_MARKDOWN_TITLE, text) or stem
                if not text.strip():
                    raise ConversionError("file holds only whitespace")
                # Kept as Markdown: the splitter and the answerer read its headings, code and tables.
                return [Document(content=text, meta=meta)], []
            if suffix in {".html", ".htm"}:
                meta["title"] = _first_match(_HTML_TITLE, text) or stem
                return [Document(content=_html_to_markdown(text), meta=meta)], []
            if not text.strip():
                raise ConversionError("file holds only whitespace")
            meta["title"] = stem
            return [Document(content=text, meta=meta)], []
        meta["title"] = stem
        kind = "pdf" if suffix == ".pdf" else "docx"
        return [self._run_haystack(kind, data, meta)], []

    def _mark_access(self, docs: list[Document], data: bytes, name: str) -> None:
        """Give each document its access groups (``meta.access``): its own mark, else the path rules."""
        suffix = PurePosixPath(name).suffix.lower()
        marked = None
        if suffix in {".md", ".markdown", ".html", ".htm"}:
            marked = front_matter_access(_decode_text(data), name)
        by_rule = rule_access(name, self.access_rules)
        for doc in docs:
            groups = doc.meta.get(ACCESS_META) if suffix == ".jsonl" else None
            groups = groups_of(groups, f"{name} (record {doc.meta.get('record')})") if groups is not None else None
            groups = groups if groups is not None else marked if marked is not None else by_rule
            if groups is not None:
                doc.meta[ACCESS_META] = groups
            else:
                doc.meta.pop(ACCESS_META, None)

    def _converter(self, kind: str) -> Any:
        if kind not in self._converters:
            from haystack.components.converters import DOCXToDocument, PyPDFToDocument

            factories: dict[str, Callable[[], Any]] = {
                "pdf": PyPDFToDocument,
                "docx": DOCXToDocument,
            }
            self._converters[kind] = factories[kind]()
        return self._converters[kind]

    def _run_haystack(self, kind: str, data: bytes, meta: dict[str, Any]) -> Document:
        # Haystack's converters log and skip a file they cannot read; capture that log as the reason.
        with _captured_warnings("haystack.components.converters") as warnings:
            try:
                result = self._converter(kind).run(sources=[ByteStream(data=data)], meta=[meta])
            except Exception as e:  # a converter library raising is a bad file, not a crash of the batch
                raise ConversionError(f"{kind} conversion failed: {e}") from e
        docs = [d for d in result["documents"] if d.content and d.content.strip()]
        if not docs:
            detail = warnings[-1] if warnings else "no text could be extracted"
            raise ConversionError(f"{kind} conversion failed: {detail}")
        return docs[0]

    def _convert_jsonl(self, text: str, meta: dict[str, Any]) -> tuple[list[Document], list[FileFailure]]:
        documents: list[Document] = []
        failures: list[FileFailure] = []
        for line_no, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{meta['source']}:{line_no}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                failures.append(FileFailure(where, f"invalid JSON: {e.msg} at column {e.colno}"))
                continue
            if not isinstance(record, dict):
                failures.append(FileFailure(where, "a line must hold a JSON object"))
                continue
            content = record.get(self.jsonl_text_field)
            if not isinstance(content, str) or not content.strip():
                failures.append(FileFailure(where, f"missing or empty text field '{self.jsonl_text_field}'"))
                continue
            title = record.get(self.jsonl_title_field)
            raw_meta = record.get("meta")
            extra: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
            record_meta = {
                # A record's groups come from its own `access` field only (what /index/submit checks).
                **{k: v for k, v in extra.items() if k not in meta and k != ACCESS_META},
                **meta,
                "record": str(record.get(self.jsonl_id_field, line_no)),
                "title": title if isinstance(title, str) and title else meta["source"],
            }
            if "access" in record:  # the record's own groups; checked with the others in _mark_access
                record_meta[ACCESS_META] = record["access"]
            body = f"{title}\n\n{content}" if isinstance(title, str) and title else content
            documents.append(Document(content=body, meta=record_meta))
        if not documents and not failures:
            raise ConversionError("no records found")
        return documents, failures


def _name_of(item: str | Path | ByteStream) -> str:
    if isinstance(item, ByteStream):
        name = item.meta.get("source") or item.meta.get("file_path")
        if not name:
            raise ValueError("a ByteStream source needs meta['source'] (or source_names) to name it.")
        return str(name)
    return source_name(item)


def _read(item: str | Path | ByteStream, name: str, max_bytes: int) -> tuple[bytes, str]:
    """The item's bytes and modification time, refusing what cannot be indexed (with the reason).

    The type comes from ``name``'s extension, so an upload is parsed as what its sender called it.
    """
    if isinstance(item, ByteStream):
        size, modified_at = len(item.data), datetime.now(UTC).isoformat()
    else:
        path = Path(item)
        if not path.is_file():
            raise ConversionError("not a regular file" if path.exists() else "file not found")
        stat = path.stat()
        size, modified_at = stat.st_size, datetime.fromtimestamp(stat.st_mtime, tz=UTC).isoformat()
    suffix = PurePosixPath(name).suffix.lower()
    if suffix not in SUPPORTED_TYPES:
        raise ConversionError(
            f"unsupported file type '{suffix or '(none)'}'; supported: {', '.join(sorted(SUPPORTED_TYPES))}"
        )
    if size == 0:
        raise ConversionError("empty file")
    if size > max_bytes:
        raise ConversionError(
            f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (raise RAGSHIP_MAX_FILE_BYTES to index it)"
        )
    if isinstance(item, ByteStream):
        return item.data, modified_at
    try:
        return path.read_bytes(), modified_at
    except OSError as e:
        raise ConversionError(f"cannot read file: {e.strerror or e}") from e


def _decode_text(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ConversionError("binary content (NUL bytes) in a text file type; is the extension right?")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConversionError(
            f"not valid UTF-8 (byte 0x{data[e.start]:02x} at offset {e.start}); re-save the file as UTF-8"
        ) from e


def _html_to_markdown(html: str) -> str:
    """The main content of an HTML page as Markdown (headings, lists, code and tables kept), by trafilatura."""
    import trafilatura

    try:
        markdown = trafilatura.extract(
            html, output_format="markdown", include_formatting=True, include_tables=True, include_comments=False
        )
    except Exception as e:  # a parser library raising is a bad file, not a crash of the batch
        raise ConversionError(f"html conversion failed: {e}") from e
    if not markdown or not markdown.strip():
        raise ConversionError("html conversion failed: no main text found in the page")
    return markdown


def _first_match(pattern: re.Pattern[str], text: str) -> str | None:
    match = pattern.search(text)
    return re.sub(r"\s+", " ", match.group(1)).strip() if match else None


class _ListHandler(std_logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=std_logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: std_logging.LogRecord) -> None:
        message = record.getMessage()
        error = getattr(record, "error", None)
        self.messages.append(f"{message} ({error})" if error and str(error) not in message else message)


@contextmanager
def _captured_warnings(logger_name: str) -> Iterator[list[str]]:
    handler = _ListHandler()
    logger = std_logging.getLogger(logger_name)
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)
