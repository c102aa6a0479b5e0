"""The BEIR datasets ``ragship data get NAME`` knows: where each archive is published and its checksums.

Declared once here; the downloader (``ragship.eval.download``) and the name lookup of ``--dataset NAME``
(``ragship.eval.datasets``) read this table.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Where BEIR publishes its archives (beir-cellar/beir README, "Available Datasets": the Down-load links).
BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"


@dataclass(frozen=True)
class Archive:
    """A published archive ``{base}/{name}.zip`` holding ``{name}/corpus.jsonl``, ``queries.jsonl``, ``qrels/``.

    :param md5: The MD5 its publisher lists; checked on every download.
    :param sha256: The SHA-256, where one is on record; checked too when known.
    :param size: Bytes of the archive, where known: a shorter download is reported as truncated.
    """

    name: str
    md5: str
    sha256: str | None = None
    size: int | None = None

    def url(self, base: str = BEIR_BASE_URL) -> str:
        """The archive's URL under ``base`` (BEIR's location, or a mirror's base URL)."""
        return f"{base.rstrip('/')}/{self.name}.zip"


# MD5 values: beir-cellar/beir README.md, table "Available Datasets", column "md5" (commit ef83d2930706, the
# values unchanged since a575b7c40aeb, 2021-05-18). BEIR publishes no SHA-256. The SHA-256 values and sizes of
# nfcorpus and scifact are those that several unrelated public projects record for the official archives;
# ragship checked nfcorpus's against an archive whose MD5 equals BEIR's (2,448,432 bytes, entries dated
# 2021-01-13; ../shared/data/nfcorpus/SOURCE.md). Left out: cqadupstack (one sub-folder per forum, not one
# BEIR folder) and the sets BEIR does not publish (bioasq, signal1m, trec-news, robust04).
CATALOG: dict[str, Archive] = {
    archive.name: archive
    for archive in (
        Archive(
            "nfcorpus",
            md5="a89dba18a62ef92f7d323ec890a0d38d",
            sha256="efe5be03f8c5b86a5870102d0599d227c8c6e2484328e68c6522560385671b0b",
            size=2_448_432,
        ),
        Archive(
            "scifact",
            md5="5f7d1de60b170fc8027bb7898e2efca1",
            sha256="536e14446a0ba56ed1398ab1055f39fe852686ecad24a6306c80c490fa8e0165",
            size=2_816_079,
        ),
        Archive("arguana", md5="8ad3e3c2a5867cdced806d6503f29b99"),
        Archive("fiqa", md5="17918ed23cd04fb15047f73e6c3bd9d9"),
        Archive("scidocs", md5="38121350fc3a4d2f48850f6aff52e4a9"),
        Archive("trec-covid", md5="ce62140cb23feb9becf6270d0d1fe6d1"),
        Archive("webis-touche2020", md5="46f650ba5a527fc69e0a6521c5a23563"),
        Archive("quora", md5="18fb154900ba42a600f84b839c173167"),
        Archive("nq", md5="d4d3d2e48787a744b6f6e691ff534307"),
        Archive("hotpotqa", md5="f412724f78b0d91183a0e86805e16114"),
        Archive("dbpedia-entity", md5="c2a39eb420a3164af735795df012ac2c"),
        Archive("fever", md5="5a818580227bfb4b35bb6fa46d9b6c03"),
        Archive("climate-fever", md5="8b66f0a9126c521bae2bde127b4dc99d"),
        Archive("msmarco", md5="444067daf65d982533ea17ebd59501e4"),
    )
}
