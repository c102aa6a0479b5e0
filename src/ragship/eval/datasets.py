"""Evaluation datasets: BEIR retrieval sets and question-answer sets, validated line by line."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragship.errors import RagshipError
from ragship.eval.catalog import CATALOG
from ragship.settings import get_settings

_DATASET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
#: Key of the review fields on QA lines exported from users' ratings (``ragship feedback export``); not scored.
FEEDBACK_FIELD = "feedback"


class DatasetError(RagshipError):
    """An evaluation dataset is missing or malformed."""


@dataclass
class BeirDataset:
    """A BEIR dataset: corpus, queries and graded relevance judgments of one split.

    :param path: Directory with corpus.jsonl, queries.jsonl and qrels/<split>.tsv.
    """

    name: str
    path: Path
    split: str
    corpus_ids: set[str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    fingerprint: str
    corpus_fingerprint: str  # the corpus alone: what an evaluation index depends on, whatever the split

    @property
    def corpus_file(self) -> Path:
        """The corpus, which ragship indexes as a .jsonl file."""
        return self.path / "corpus.jsonl"

    def limited(self, limit: int | None) -> BeirDataset:
        """The first ``limit`` judged queries (all when None); the fingerprint records the limit."""
        if limit is None or limit >= len(self.qrels):
            return self
        keep = sorted(self.qrels)[:limit]
        return BeirDataset(
            self.name,
            self.path,
            self.split,
            self.corpus_ids,
            {q: self.queries[q] for q in keep},
            {q: self.qrels[q] for q in keep},
            f"{self.fingerprint}-q{limit}",
            self.corpus_fingerprint,
        )


def _jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found.")
    with path.open(encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{path}:{line_no}: invalid JSON ({e.msg} at column {e.colno}).") from e
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{line_no}: expected a JSON object.")
            yield line_no, record


def _sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name that is not lower-case letters, digits, ``-`` and ``_`` (it names a folder).

    :raises DatasetError: naming the bad name.
    """
    if not _DATASET_NAME.match(name):
        raise DatasetError(f"dataset name {name!r}: use lower-case letters, digits, '-' and '_' (e.g. nfcorpus).")


def is_beir_folder(path: Path) -> bool:
    """Whether ``path`` holds a BEIR dataset's files: corpus.jsonl, queries.jsonl and qrels/*.tsv."""
    return (
        (path / "corpus.jsonl").is_file() and (path / "queries.jsonl").is_file() and any((path / "qrels").glob("*.tsv"))
    )


def resolve_dataset(source: str | Path, datasets_dir: Path) -> Path:
    """The folder of a dataset given as a directory (kept as is) or as a name downloaded into ``datasets_dir``.

    A directory wins over a name: ``nfcorpus`` is ``./nfcorpus`` when that folder exists.

    :param datasets_dir: Where ``ragship data get NAME`` puts datasets (the ``datasets_dir`` setting).
    :raises DatasetError: for a name not downloaded yet (saying how to get it), or a missing directory.
    """
    path = Path(source)
    if path.is_dir():
        return path
    if isinstance(source, str) and _DATASET_NAME.match(source):
        named = datasets_dir / source
        if named.is_dir():
            return named
        if source in CATALOG:
            fix = f"run `ragship data get {source}`"
        else:
            fix = (
                f"ragship knows {', '.join(sorted(CATALOG))}; get another archive in BEIR's layout with "
                f"`ragship data get {source} --url URL --sha256 HEX`, or pass a BEIR directory"
            )
        raise DatasetError(f"dataset {source!r} is not downloaded yet (no folder {named}): {fix}.")
    raise DatasetError(f"{source}: not a directory with corpus.jsonl, queries.jsonl and qrels/.")


def load_beir(source: str | Path, split: str = "test", datasets_dir: Path | None = None) -> BeirDataset:
    """Load and validate a BEIR dataset from a directory, or by the name it was downloaded under.

    :param source: A directory, or a name fetched with ``ragship data get NAME`` (``nfcorpus``, ``scifact``...).
    :param split: Which qrels file to use (``test``, ``dev``...).
    :param datasets_dir: Where names are looked up; the ``datasets_dir`` setting when None.
    :raises DatasetError: naming the file and line of the first problem, or how to download a missing name.
    """
    path = resolve_dataset(source, get_settings().datasets_dir if datasets_dir is None else datasets_dir)
    corpus_ids: set[str] = set()
    for line_no, record in _jsonl(path / "corpus.jsonl"):
        doc_id = record.get("_id")
        if not isinstance(doc_id, str) or not doc_id:
            raise DatasetError(f"{path / 'corpus.jsonl'}:{line_no}: missing '_id'.")
        if not str(record.get("text", "")).strip() and not str(record.get("title", "")).strip():
            raise DatasetError(f"{path / 'corpus.jsonl'}:{line_no}: document {doc_id} has no title and no text.")
        corpus_ids.add(doc_id)
    all_queries: dict[str, tuple[int, str]] = {}
    for line_no, record in _jsonl(path / "queries.jsonl"):
        all_queries[str(record.get("_id"))] = (line_no, str(record.get("text", "")))
    qrels_path = path / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = sorted(p.stem for p in (path / "qrels").glob("*.tsv"))
        raise DatasetError(f"{qrels_path}: not found; splits available: {available}.")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as f:
        for line_no, row in enumerate(csv.reader(f, delimiter="\t"), start=1):
            if line_no == 1 and row and row[0] == "query-id":
                continue
            if len(row) != 3:
                raise DatasetError(f"{qrels_path}:{line_no}: expected 3 tab-separated fields, got {len(row)}.")
            qid, doc_id, grade = row
            if qid not in all_queries:
                raise DatasetError(f"{qrels_path}:{line_no}: query id {qid!r} is not in queries.jsonl.")
            if doc_id not in corpus_ids:
                raise DatasetError(f"{qrels_path}:{line_no}: document id {doc_id!r} is not in corpus.jsonl.")
            try:
                qrels.setdefault(qid, {})[doc_id] = int(grade)
            except ValueError as e:
                raise DatasetError(f"{qrels_path}:{line_no}: relevance {grade!r} is not an integer.") from e
    queries = {}
    for qid in qrels:
        line_no, text = all_queries[qid]
        if not text.strip():
            raise DatasetError(f"{path / 'queries.jsonl'}:{line_no}: query {qid} has empty text.")
        queries[qid] = text
    if not queries:
        raise DatasetError(f"{qrels_path}: no judged queries.")
    fingerprint = _sha256(path / "corpus.jsonl", path / "queries.jsonl", qrels_path)
    corpus = _sha256(path / "corpus.jsonl")
    return BeirDataset(path.name, path, split, corpus_ids, queries, qrels, fingerprint, corpus)


@dataclass
class QAExample:
    """One question with its gold answers and the files that hold them."""

    question: str
    answers: list[str]
    sources: list[str] = field(default_factory=list)


def load_qa(path: str | Path) -> list[QAExample]:
    """Load a QA set: JSONL with ``question``, ``answers`` (list of strings) and ``sources`` (file paths).

    :raises DatasetError: naming file and line of the first problem.
    """
    path = Path(path)
    examples = []
    for line_no, record in _jsonl(path):
        question = record.get("question")
        answers = record.get("answers")
        sources = record.get("sources", [])
        if not isinstance(question, str) or not question.strip():
            raise DatasetError(f"{path}:{line_no}: 'question' must be a non-empty string.")
        if answers == [] and isinstance(record.get(FEEDBACK_FIELD), dict):
            raise DatasetError(
                f"{path}:{line_no}: no gold answer yet (exported from feedback, rated "
                f"{record[FEEDBACK_FIELD].get('rating')!r}): write the correct answer into 'answers' and the files "
                "that hold it into 'sources', or delete the line."
            )
        if not isinstance(answers, list) or not answers or not all(isinstance(a, str) and a for a in answers):
            raise DatasetError(f"{path}:{line_no}: 'answers' must be a non-empty list of strings.")
        if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
            raise DatasetError(f"{path}:{line_no}: 'sources' must be a list of file paths.")
        examples.append(QAExample(question, answers, sources))
    if not examples:
        raise DatasetError(f"{path}: no questions.")
    return examples
