"""Notebooks are committed clean: no outputs, no execution counts, and parameter cells papermill can find."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_the_four_notebooks_exist() -> None:
    names = {p.name for p in NOTEBOOKS}
    assert {"01_prototype.ipynb", "02_evaluate.ipynb", "03_promote_and_package.ipynb", "reindex.ipynb"} <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_are_stripped(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} hold outputs; run `make strip-notebooks` before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameters_cell_first_among_code_cells(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{path.name}: the first code cell, and only it, must be tagged 'parameters'"


def test_reindex_parameters_match_the_library() -> None:
    import papermill

    from ragship.reindex.job import ReindexParams

    declared = papermill.inspect_notebook(str(next(p for p in NOTEBOOKS if p.name == "reindex.ipynb")))
    assert set(declared) == set(ReindexParams.model_fields)
