"""The body of ``/index/submit``: documents sent over HTTP to be indexed by the queue's workers.

``serving.jobs`` puts a validated request on the queue; ``ragship worker`` runs it through the one
indexing path (``Syncer.index_documents``).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import BaseModel, Field, field_validator, model_validator

from ragship.components.converters import SUPPORTED_TYPES


class IndexDocument(BaseModel):
    """One document to index: its name (``source``) and its content, as text or base64 bytes."""

    source: str = Field(
        min_length=1,
        max_length=1024,
        description="Name the document is cited and replaced by, e.g. notes/setup.md; its extension picks the parser.",
    )
    text: str | None = Field(None, description="Content of a text document (.md, .txt, .html, .jsonl).")
    content_base64: str | None = Field(None, description="Bytes of any supported file (e.g. a PDF), base64-encoded.")

    @field_validator("source")
    @classmethod
    def _known_type(cls, source: str) -> str:
        if "\x00" in source:
            raise ValueError("must not contain NUL characters")
        suffix = PurePosixPath(source).suffix.lower()
        if suffix not in SUPPORTED_TYPES:
            raise ValueError(f"extension {suffix or '(none)'!r} is not one of {sorted(SUPPORTED_TYPES)}")
        return source

    @model_validator(mode="after")
    def _one_content(self) -> IndexDocument:
        if (self.text is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of text or content_base64")
        if self.content_base64 is not None:
            try:
                base64.b64decode(self.content_base64, validate=True)
            except binascii.Error as e:
                raise ValueError(f"content_base64 is not valid base64 ({e})") from e
        return self

    def content(self) -> bytes:
        """The document's bytes."""
        if self.text is not None:
            return self.text.encode("utf-8")
        return base64.b64decode(self.content_base64 or "")


MAX_DOCUMENTS = 1000
Documents = Annotated[list[IndexDocument], Field(min_length=1, max_length=MAX_DOCUMENTS)]


class IndexRequest(BaseModel):
    """Body of ``/index/submit``."""

    documents: Documents

    @classmethod
    def check(cls, body: bytes) -> None:
        """Validate a raw JSON body (raises pydantic's ValidationError naming the field)."""
        cls.model_validate_json(body)
