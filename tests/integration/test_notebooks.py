"""Every notebook executes top to bottom under papermill on small data, as `jupyter lab` would run it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import papermill
import pytest

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
NFCORPUS = REPO.parent / "shared" / "data" / "nfcorpus"
NOTEBOOKS = REPO / "notebooks"


def _execute(name: str, out_dir: Path, **parameters: object) -> nbformat.NotebookNode:
    output = out_dir / name
    papermill.execute_notebook(
        str(NOTEBOOKS / name), str(output), parameters=parameters, cwd=str(NOTEBOOKS), progress_bar=False
    )
    return nbformat.read(output, as_version=4)


def _text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.extend(str(v) for k, v in output.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def _warnings(nb: nbformat.NotebookNode) -> list[str]:
    """stderr lines that warn (Python warnings, logged WARNINGs, TqdmWarning...)."""
    lines = (
        line
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream" and output.get("name") == "stderr"
        for line in output.get("text", "").splitlines()
    )
    return [line for line in lines if "warn" in line.lower()]


def _images(nb: nbformat.NotebookNode) -> int:
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def test_prototype_notebook(tmp_path: Path) -> None:
    nb = _execute(
        "01_prototype.ipynb",
        tmp_path,
        home=str(tmp_path / "home"),
        store=str(tmp_path / "store"),
        spec_path=str(tmp_path / "spec.yaml"),
    )
    text = _text(nb)
    assert "docs/testing.md" in text  # the test question's best source, shown with its score
    assert {"bm25", "dense", "hybrid"} <= set(text.split())
    assert (tmp_path / "spec.yaml").is_file() and "indexing:" in (tmp_path / "spec.yaml").read_text()
    assert _warnings(nb) == [] and _images(nb) == 0


def test_reindex_notebook_returns_its_summary(tmp_path: Path) -> None:
    nb = _execute("reindex.ipynb", tmp_path, sources=[str(REPO / "docs")], store=str(tmp_path / "store"), batch_files=4)
    summary = next(o["data"]["application/json"] for c in nb.cells for o in c.get("outputs", []) if "data" in o
                   and "application/json" in o["data"])  # fmt: skip
    assert summary["added"] == len(list((REPO / "docs").glob("*.md"))) and summary["failed"] == 0
    assert _warnings(nb) == []


def _registry(home: str) -> Any:
    from mlflow import MlflowClient

    from ragship.settings import load_settings
    from ragship.tracking.runs import init_mlflow

    init_mlflow(load_settings(home=home))
    return MlflowClient()


@pytest.mark.skipif(not NFCORPUS.exists(), reason="needs ../shared/data/nfcorpus (BEIR NFCorpus)")
def test_evaluate_then_promote_notebooks(
    tmp_path: Path, nfcorpus_slice: Path, monkeypatch: pytest.MonkeyPatch, bare_path: str
) -> None:
    home = str(tmp_path / "home")
    # The kernel inherits both: notebook 03 builds a bento, which must use the environment's own uv.
    monkeypatch.setenv("BENTOML_HOME", str(tmp_path / "bentoml"))
    monkeypatch.setenv("PATH", bare_path)
    evaluated = _execute(
        "02_evaluate.ipynb",
        tmp_path,
        home=home,
        dataset=str(nfcorpus_slice),
        limit_queries=20,
        modes=["bm25", "hybrid"],
    )
    text = _text(evaluated)
    assert "ndcg_at_10" in text and "best run:" in text
    assert _warnings(evaluated) == []
    # What the notebook draws, once each: the metric bars and the grid comparison (not the figures logged
    # to MLflow by each run).
    assert _images(evaluated) == 2
    registry = _registry(home)
    assert registry.search_model_versions("name='ragship'") == []  # evaluations log models, register none

    promoted = _execute("03_promote_and_package.ipynb", tmp_path, home=home)
    assert _warnings(promoted) == [] and _images(promoted) == 0
    [found] = registry.search_model_versions("name='ragship'")  # the promoted run, and only it
    version = registry.get_model_version("ragship", found.version)  # search results carry no aliases
    assert version.aliases == ["champion"] and version.description
    assert {"spec_name", "spec_hash", "dataset", "dataset_fingerprint", "ndcg_at_10", "run_id"} <= set(version.tags)
    assert version.tags["run_id"] == version.run_id and version.tags["answers.run_id"]  # notebook 02's QA run
    decision = next(
        o["data"]["text/plain"] for c in promoted.cells for o in c.get("outputs", []) if "'promoted'" in
        o.get("data", {}).get("text/plain", "")
    )  # fmt: skip
    assert "'promoted': True" in decision
    assert "models:/ragship@champion" in _text(promoted)
    tag = _text(promoted).split("built bento: ", 1)[1].split()[0]
    assert tag.startswith("ragship-query:")
    assert (tmp_path / "bentoml" / "bentos" / "ragship-query" / tag.split(":")[1] / "bento.yaml").is_file()
