"""Evaluation datasets: BEIR retrieval sets and question-answer sets, validated line by line."""

from __future__ import annotations

import csv
import hashlib
import json
import re
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragship.errors import RagshipError

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
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


def load_beir(source: str | Path, split: str = "test", cache_dir: Path | None = None) -> BeirDataset:
    """Load and validate a BEIR dataset from a directory, or download it by name.

    :param source: A directory, or a BEIR dataset name (``nfcorpus``, ``scifact``...) to download.
    :param split: Which qrels file to use (``test``, ``dev``...).
    :param cache_dir: Where downloads go.
    :raises DatasetError: naming the file and line of the first problem.
    """
    path = Path(source)
    if not path.is_dir():
        if isinstance(source, str) and _DATASET_NAME.match(source) and cache_dir is not None:
            path = download_beir(source, cache_dir)
        else:
            raise DatasetError(f"{source}: not a directory with corpus.jsonl, queries.jsonl and qrels/.")
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


def download_beir(name: str, cache_dir: Path) -> Path:
    """Download and unpack a BEIR dataset from its official location (needs internet)."""
    target = cache_dir / name
    if (target / "corpus.jsonl").exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    archive = cache_dir / f"{name}.zip"
    url = BEIR_URL.format(name=name)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
            while block := response.read(1 << 20):
                out.write(block)
    except (urllib.error.URLError, OSError) as e:
        archive.unlink(missing_ok=True)
        raise DatasetError(
            f"Could not download BEIR dataset {name!r} from {url} ({e}); download and unzip it yourself, then pass "
            "its directory to --dataset."
        ) from e
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(cache_dir)
    archive.unlink(missing_ok=True)
    if not (target / "corpus.jsonl").exists():
        raise DatasetError(f"The archive from {url} has no {name}/corpus.jsonl.")
    return target


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
