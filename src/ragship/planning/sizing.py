"""Estimate the size of an Elasticsearch index before buying or sizing a cluster."""

from __future__ import annotations

from dataclasses import asdict, dataclass

HNSW_M = 16  # Elasticsearch's default graph degree
TEXT_OVERHEAD = 1.3  # stored _source plus inverted index, relative to raw text (measured order of magnitude)
META_BYTES = 300  # id, source, title, hashes, timestamps per chunk


@dataclass
class SizeEstimate:
    """Disk and memory needs of one index (all copies when ``replicas`` > 0)."""

    chunks: int
    dims: int
    element_type: str
    vector_disk_bytes: int
    vector_ram_bytes: int
    text_disk_bytes: int
    total_disk_bytes: int
    copies: int

    def to_dict(self) -> dict[str, int | str]:
        """Plain-data form."""
        return asdict(self)


def estimate(
    docs: int,
    chunks_per_doc: float = 5.0,
    dims: int = 384,
    chunk_chars: int = 1200,
    quantized: bool = True,
    replicas: int = 0,
) -> SizeEstimate:
    """Index size for ``docs`` documents split into ``chunks_per_doc`` chunks each.

    Follows Elastic's vector sizing guidance: float vectors need ``4 * dims`` bytes each plus the HNSW
    graph (``4 * m`` bytes); int8 quantization keeps the floats on disk for rescoring but needs only
    ``dims + 4`` bytes per vector in memory. Memory figures are what should fit in the page cache for
    fast kNN; text is stored once per copy.

    :param quantized: int8 HNSW (ragship's mapping) when True, float HNSW otherwise.
    :param replicas: Extra copies of each shard.
    """
    if docs < 0 or chunks_per_doc <= 0 or dims <= 0:
        raise ValueError("docs must be >= 0, chunks_per_doc and dims > 0")
    chunks = int(docs * chunks_per_doc)
    graph = chunks * 4 * HNSW_M
    float_bytes = chunks * 4 * dims
    if quantized:
        ram = chunks * (dims + 4) + graph
        disk = float_bytes + chunks * (dims + 4) + graph
    else:
        ram = float_bytes + graph
        disk = float_bytes + graph
    text = int(chunks * (chunk_chars * TEXT_OVERHEAD + META_BYTES))
    copies = 1 + replicas
    return SizeEstimate(
        chunks=chunks,
        dims=dims,
        element_type="int8" if quantized else "float",
        vector_disk_bytes=disk * copies,
        vector_ram_bytes=ram * copies,
        text_disk_bytes=text * copies,
        total_disk_bytes=(disk + text) * copies,
        copies=copies,
    )
