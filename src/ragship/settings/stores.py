"""Settings of the embedded store's in-memory indexes. Part of :mod:`ragship.settings`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EmbeddedStoreSettings(BaseModel):
    """Memory the embedded store may spend to answer searches without reading SQLite."""

    model_config = ConfigDict(extra="forbid")

    exact_vectors_mib: int = Field(
        256,
        ge=0,
        le=65_536,
        description="Keep the float32 embeddings that rescore the int8 scan's candidates in memory while they "
        "take at most this many MiB (1 KiB per chunk at 384 dimensions; 256 MiB: ~170k chunks); a larger store "
        "reads them from SQLite per query. 0: always read them.",
    )
