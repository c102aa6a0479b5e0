"""`--dataset NAME` resolves to a download, a path stays a path; what `ragship data get` would fetch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragship.eval.catalog import BEIR_BASE_URL, CATALOG
from ragship.eval.datasets import DatasetError, load_beir, resolve_dataset
from ragship.eval.download import dataset_source
from ragship.settings import load_settings


def _beir(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "what"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    return folder


def test_a_name_resolves_in_the_datasets_folder(tmp_path: Path) -> None:
    _beir(tmp_path / "datasets" / "nfcorpus")
    assert resolve_dataset("nfcorpus", tmp_path / "datasets") == tmp_path / "datasets" / "nfcorpus"
    data = load_beir("nfcorpus", datasets_dir=tmp_path / "datasets")
    assert data.name == "nfcorpus" and data.queries == {"q1": "what"}


def test_a_path_stays_a_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _beir(tmp_path / "datasets" / "nfcorpus")
    local = _beir(tmp_path / "work" / "nfcorpus")
    assert resolve_dataset(str(local), tmp_path / "datasets") == local
    monkeypatch.chdir(tmp_path / "work")  # a folder named like a dataset wins over the download
    assert resolve_dataset("nfcorpus", tmp_path / "datasets") == Path("nfcorpus")
    with pytest.raises(DatasetError, match=r"not a directory with corpus\.jsonl"):
        resolve_dataset("./missing/nfcorpus", tmp_path / "datasets")


def test_a_name_not_downloaded_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"'scifact' is not downloaded yet .*run `ragship data get scifact`"):
        resolve_dataset("scifact", tmp_path)
    with pytest.raises(DatasetError, match=r"'mydata' is not downloaded.*`ragship data get mydata --url URL --sha256"):
        resolve_dataset("mydata", tmp_path)


def test_the_datasets_folder_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAGSHIP_DATA__DIR", raising=False)
    assert load_settings(home=tmp_path / "h").datasets_dir == tmp_path / "h" / "datasets"
    monkeypatch.setenv("RAGSHIP_DATA__DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("RAGSHIP_DATA__MIRROR", "https://proxy.example/beir")
    settings = load_settings()
    assert settings.datasets_dir == tmp_path / "shared" and settings.data.mirror == "https://proxy.example/beir"
    monkeypatch.setenv("RAGSHIP_DATA__MIRROR", "ftp://x")
    with pytest.raises(Exception, match=r"data\.mirror"):
        load_settings()


def test_sources_from_the_catalog_a_mirror_or_an_explicit_archive() -> None:
    official = dataset_source("scifact")
    assert official.url == f"{BEIR_BASE_URL}/scifact.zip" and official.md5 == CATALOG["scifact"].md5
    assert official.sha256 == CATALOG["scifact"].sha256 and official.size == 2_816_079
    mirrored = dataset_source("scifact", mirror="https://proxy.example/beir/")
    assert mirrored.url == "https://proxy.example/beir/scifact.zip" and mirrored.md5 == official.md5
    explicit = dataset_source("mine", url="https://x.example/m.zip", sha256="AB" * 32)
    assert (explicit.md5, explicit.sha256, explicit.size) == (None, "ab" * 32, None)
    with pytest.raises(DatasetError, match=r"unknown dataset 'mine' \(known: .*nfcorpus.*--url URL and --sha256"):
        dataset_source("mine", url="https://x.example/m.zip")
    with pytest.raises(DatasetError, match="--sha256 'abc': expected 64 hexadecimal digits"):
        dataset_source("nfcorpus", sha256="abc")
    with pytest.raises(DatasetError, match="dataset name 'NF/corpus'"):
        dataset_source("NF/corpus")
