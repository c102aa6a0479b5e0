"""Evaluation runs in MLflow, experiment grids, the promotion gate and the champion model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragship.errors import TrackingError
from ragship.eval.datasets import BeirDataset, load_beir
from ragship.eval.tracked import run_grid, run_tracked_eval
from ragship.settings import Settings, load_settings
from ragship.spec import default_spec, load_spec
from ragship.tracking.registry import CHAMPION, champion, promote
from ragship.tracking.runs import MODEL_URI_TAG, init_mlflow

NFCORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "nfcorpus"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not NFCORPUS.exists(), reason="needs ../shared/data/nfcorpus (BEIR NFCorpus)"),
]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(home=tmp_path_factory.mktemp("home"), mlflow={"trace_queries": 3})


@pytest.fixture(scope="module")
def dataset(nfcorpus_slice: Path) -> BeirDataset:
    return load_beir(nfcorpus_slice)


@pytest.fixture(scope="module")
def slice_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One embedded store location for the module: the slice is indexed once and then reused."""
    return str(tmp_path_factory.mktemp("slice") / "store")


def _client(settings: Settings) -> Any:
    from mlflow import MlflowClient

    init_mlflow(settings)
    return MlflowClient()


def _check_run(settings: Settings, run_id: str, mode: str) -> None:
    client = _client(settings)
    run = client.get_run(run_id)
    params = run.data.params
    assert params["mode"] == mode
    assert params["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert params["split_length"] == "200" and params["top_k"] == "5"
    assert len(params["dataset_fingerprint"]) == 16 and params["git_commit"]
    assert 0 < run.data.metrics["ndcg_at_10"] <= 1
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    assert {"spec.yaml", "per_query.json", "metrics.png", "per_query_ndcg.png"} <= artifacts
    # The run logs its spec model; registering it is for `ragship promote` (or `eval --register`).
    assert run.data.tags[MODEL_URI_TAG].startswith("models:/")
    assert not client.search_model_versions(f"run_id='{run_id}'")
    import mlflow

    spec_path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="spec.yaml")
    assert load_spec(spec_path).hash == params["spec_hash"]
    table = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="per_query.json")).read_text()
    )
    assert len(table["data"]) == int(params["queries"])
    assert "ndcg_at_10" in table["columns"]


def test_eval_on_embedded_store_is_tracked_and_reuses_its_index(
    settings: Settings, dataset: BeirDataset, slice_store: str
) -> None:
    spec = default_spec()
    first = run_tracked_eval(spec, dataset, slice_store, "hybrid", settings)
    assert not first.reused_index
    _check_run(settings, str(first.run_id), "hybrid")
    traces = _client(settings).search_traces(locations=[_experiment_id(settings)])
    assert traces, "haystack autolog recorded no trace"
    again = run_tracked_eval(spec, dataset.limited(10), slice_store, "bm25", settings)
    assert again.reused_index


def _experiment_id(settings: Settings) -> str:
    return str(_client(settings).get_experiment_by_name(settings.mlflow.experiment).experiment_id)


def test_eval_on_elasticsearch_is_tracked(settings: Settings, dataset: BeirDataset, es_url: str) -> None:
    es = settings.es.model_copy(update={"index": f"evaltest-{os.getpid()}"})
    result = run_tracked_eval(default_spec(), dataset, es_url, "hybrid", settings.model_copy(update={"es": es}))
    _check_run(settings, str(result.run_id), "hybrid")
    from ragship.stores.elasticsearch import ElasticsearchStore

    ElasticsearchStore(es_url, f"{es.index}-eval-nfcorpus").delete_index()


@pytest.fixture(scope="module")
def grid(
    settings: Settings, nfcorpus_slice: Path, slice_store: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("grid") / "modes.yaml"
    store = slice_store
    path.write_text(
        yaml.safe_dump({"dataset": str(nfcorpus_slice), "limit_queries": 20, "grid": {"mode": ["bm25", "dense"]}})
    )
    return run_grid(path, store, settings)


def test_grid_creates_child_runs(settings: Settings, grid: dict[str, Any]) -> None:
    client = _client(settings)
    children = client.search_runs(
        [_experiment_id(settings)], filter_string=f"tags.mlflow.parentRunId = '{grid['parent_run_id']}'"
    )
    assert {c.data.params["mode"] for c in children} == {"bm25", "dense"}
    assert {c.info.run_id for c in children} == {r["run_id"] for r in grid["rows"]}
    artifacts = {a.path for a in client.list_artifacts(grid["parent_run_id"])}
    assert {"grid_comparison.png", "grid.json", "modes.yaml"} <= artifacts


def test_promotion_gate(settings: Settings, grid: dict[str, Any], tmp_path: Path) -> None:
    rows = sorted(grid["rows"], key=lambda r: r["ndcg_at_10"])
    worse, better = rows[0], rows[-1]
    assert worse["ndcg_at_10"] < better["ndcg_at_10"]
    client = _client(settings)
    name = settings.mlflow.registered_model
    assert not client.search_model_versions(f"name='{name}'")  # the grid registered nothing
    assert promote(better["run_id"], settings=settings).promoted
    refused = promote(worse["run_id"], settings=settings)
    assert not refused.promoted and "below the champion" in refused.reason
    assert refused.version == "unregistered"  # a refused run stays out of the registry
    current = champion(settings)
    assert current is not None and current["run_id"] == better["run_id"]
    [version] = client.search_model_versions(f"name='{name}'")
    run = client.get_run(better["run_id"])
    assert version.run_id == better["run_id"] and version.version == current["version"]
    for key in ("spec_name", "spec_hash", "dataset", "dataset_fingerprint"):
        assert version.tags[key] == run.data.params[key] and run.data.params[key] in version.description
    assert version.tags["ndcg_at_10"] == f"{better['ndcg_at_10']:.4f}" and version.tags["run_id"] == better["run_id"]
    assert f"ndcg_at_10 {better['ndcg_at_10']:.4f}" in version.description
    assert current["tags"]["spec_hash"] == run.data.params["spec_hash"] and current["description"]
    with pytest.raises(TrackingError, match="--reason"):
        promote(worse["run_id"], force=True, settings=settings)
    forced = promote(worse["run_id"], force=True, reason="rollback drill", settings=settings)
    assert forced.promoted
    current = champion(settings)
    assert current is not None and current["run_id"] == worse["run_id"]
    assert current["tags"]["promotion_forced_reason"] == "rollback drill"
    assert promote(better["run_id"], settings=settings).promoted  # better again: allowed by the gate


def test_runs_on_other_datasets_are_not_comparable(
    settings: Settings, grid: dict[str, Any], dataset: BeirDataset, slice_store: str
) -> None:
    other = run_tracked_eval(default_spec(), dataset.limited(5), slice_store, "bm25", settings)
    assert other.reused_index
    decision = promote(str(other.run_id), settings=settings)
    assert not decision.promoted and "not comparable" in decision.reason


@pytest.fixture(scope="module")
def answer_store(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with one fact, for registered models to answer from."""
    from ragship.assembly import open_indexer

    folder = tmp_path_factory.mktemp("answers")
    doc = folder / "fact.md"
    doc.write_text("# Fact\n\nThe champion model answers from the pelican archive.\n")
    store = str(folder / "store")
    open_indexer(default_spec(), store, settings).index([doc])
    return store


def _answer_in_fresh_process(settings: Settings, model_uri: str, store: str, forbid_unpickling: bool) -> Any:
    """Load ``model_uri`` with mlflow.pyfunc in a new interpreter and ask it one question."""
    # While the model loads, any unpickling fails the run: models-from-code must load from code alone.
    guard = (
        "import pickle, cloudpickle; saved = (pickle.load, pickle.loads, cloudpickle.load, cloudpickle.loads)\n"
        "def refuse(*a, **k): raise AssertionError('the model unpickled something')\n"
        "pickle.load = pickle.loads = cloudpickle.load = cloudpickle.loads = refuse\n"
        if forbid_unpickling
        else ""
    )
    restore = "pickle.load, pickle.loads, cloudpickle.load, cloudpickle.loads = saved\n" if forbid_unpickling else ""
    code = (
        f"import json, mlflow\nmlflow.set_tracking_uri({settings.tracking_uri!r})\n{guard}"
        f"model = mlflow.pyfunc.load_model({model_uri!r})\n{restore}"
        "print(json.dumps(model.predict(['Which archive does the champion answer from?'])))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "RAGSHIP_STORE": store, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    [answer] = json.loads(result.stdout.strip().splitlines()[-1])
    assert "pelican archive" in answer["answer"]
    assert answer["sources"][0]["source"].endswith("fact.md")
    return answer


def test_champion_model_answers_in_a_fresh_process(settings: Settings, grid: dict[str, Any], answer_store: str) -> None:
    import mlflow

    current = champion(settings)
    assert current is not None
    # The registered version holds code and the spec, no pickled model.
    local = Path(mlflow.artifacts.download_artifacts(current["model_uri"]))
    files = {p.relative_to(local).as_posix() for p in local.rglob("*") if p.is_file()}
    assert "spec_model_code.py" in files and "artifacts/spec.yaml" in files
    assert not [f for f in files if f.endswith(".pkl")], files
    flavor = yaml.safe_load((local / "MLmodel").read_text())["flavors"]["python_function"]
    assert flavor["model_code_path"].endswith("spec_model_code.py") and "python_model" not in flavor
    _answer_in_fresh_process(settings, f"models:/ragship@{CHAMPION}", answer_store, forbid_unpickling=True)


@pytest.mark.parametrize("module", ["ragship.tracking.spec_model", "ragship.serving_model"])
def test_versions_pickled_the_old_way_still_load_and_serve(settings: Settings, answer_store: str, module: str) -> None:
    """Versions registered before models-from-code hold a cloudpickled RagshipModel named by one of two paths."""
    import mlflow

    from ragship.tracking.runs import spec_file
    from ragship.tracking.spec_model import RagshipModel

    legacy = settings.model_copy(update={"mlflow": settings.mlflow.model_copy(update={"registered_model": "legacy"})})
    init_mlflow(legacy)
    # cloudpickle names a class by its __module__ (it checks that path leads back to the class).
    RagshipModel.__module__ = module
    try:
        with mlflow.start_run(run_name=f"old-{module}"), spec_file(default_spec()) as path:
            info = mlflow.pyfunc.log_model(
                name="ragship",
                python_model=RagshipModel(),
                artifacts={"spec": str(path)},
                registered_model_name="legacy",
                pip_requirements=["ragship"],
            )
    finally:
        RagshipModel.__module__ = "ragship.tracking.spec_model"
    uri = f"models:/legacy/{info.registered_model_version}"
    pickled = Path(mlflow.artifacts.download_artifacts(uri)) / "python_model.pkl"
    assert module.encode() in pickled.read_bytes()
    _answer_in_fresh_process(settings, uri, answer_store, forbid_unpickling=False)
    from ragship.tracking.registry import load_registered_spec

    assert load_registered_spec(uri, legacy).hash == default_spec().hash


def test_eval_register_registers_the_run_with_its_facts(
    settings: Settings, dataset: BeirDataset, slice_store: str
) -> None:
    result = run_tracked_eval(default_spec(), dataset.limited(5), slice_store, "bm25", settings, register=True)
    client = _client(settings)
    [version] = client.search_model_versions(f"run_id='{result.run_id}'")
    assert result.registered_version == str(version.version)
    assert version.tags["run_id"] == result.run_id and version.tags["dataset"] == dataset.name
    assert f"{result.metrics['ndcg_at_10']:.4f}" in version.description


def test_cli_eval_json(nfcorpus_slice: Path, slice_store: str, tmp_path: Path, cli) -> None:
    env = {"RAGSHIP_HOME": str(tmp_path / "home"), "RAGSHIP_MLFLOW__TRACE_QUERIES": "0"}
    result = cli(
        "eval",
        "--dataset",
        str(nfcorpus_slice),
        "--mode",
        "bm25",
        "--limit-queries",
        "10",
        "--store",
        slice_store,
        "--json",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert set(out) == {"metrics", "run_id"}
    assert set(out["metrics"]) == {"ndcg_at_10", "mrr_at_10", "recall_at_10", "recall_at_100", "map_at_100"}
    shown = cli("champion", env=env)
    assert shown.returncode == 1 and "no champion yet" in shown.stderr


def test_unreachable_mlflow_server_fails_fast(tmp_path: Path) -> None:
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = load_settings(home=tmp_path, mlflow={"tracking_uri": f"http://127.0.0.1:{port}", "request_timeout_s": 2})
    start = time.monotonic()
    with pytest.raises(TrackingError, match=f"MLflow server at http://127.0.0.1:{port} did not answer"):
        init_mlflow(settings)
    assert time.monotonic() - start < 10


@pytest.fixture(autouse=True)
def _restore_mlflow() -> Iterator[None]:
    yield
    import mlflow

    if mlflow.active_run():
        mlflow.end_run()


def test_golden_qa_set_scores_answers(settings: Settings, tmp_path: Path) -> None:
    from ragship.eval.tracked import run_tracked_qa

    repo = Path(__file__).resolve().parents[2]
    golden = repo / "evaluation" / "golden_qa.jsonl"
    assert len(golden.read_text().splitlines()) >= 30
    cwd = Path.cwd()
    os.chdir(repo)  # gold sources are repo-relative paths
    try:
        result = run_tracked_qa(
            default_spec(), golden, [Path("docs"), Path("README.md")], str(tmp_path / "s"), settings
        )
    finally:
        os.chdir(cwd)
    metrics = result.metrics
    assert {"exact_match", "token_f1", "contains_answer", "sas", "source_recall", "cited_source_precision"} <= set(
        metrics
    )
    # The acceptance of the "first answer" issue for the default extractive spec (46 questions).
    assert metrics["contains_answer"] >= 0.90, result.rows
    assert metrics["cited_source_precision"] >= 0.85, result.rows
    assert metrics["source_recall"] == 1.0, result.rows
    assert 0 < metrics["sas"] <= 1 and 0 < metrics["token_f1"] <= 1
    assert any(n.startswith("faithfulness skipped") for n in result.notes)
    run = _client(settings).get_run(str(result.run_id))
    assert run.data.tags["ragship.notes"].startswith("faithfulness skipped")
    # The same scores per question in MLflow's GenAI evaluation: one trace per question, one assessment per scorer.
    import mlflow

    traces = mlflow.search_traces(run_id=str(result.run_id), return_type="list")
    assert len(traces) == len(result.rows)
    scorers = {"exact_match", "token_f1", "contains_answer", "source_recall", "cited_source_precision"}
    for name in scorers:
        assert run.data.metrics[f"{name}/mean"] == pytest.approx(metrics[name])
    by_question = {t.data.request: t for t in traces}
    row = result.rows[0]
    trace = next(t for q, t in by_question.items() if row["question"] in str(q))
    scores = {a.name: a.value for a in trace.info.assessments if a.name in scorers}
    assert scores == {k: row[k] for k in scorers}


def test_prompt_of_an_llm_spec_is_registered_once_and_linked_to_runs(settings: Settings) -> None:
    import mlflow

    from ragship.spec import default_spec as spec_with
    from ragship.tracking.prompts import link_spec_prompt, prompt_template

    spec = spec_with(generator="openai")
    init_mlflow(settings)
    client = _client(settings)
    with mlflow.start_run() as first:
        uri = link_spec_prompt(spec, first.info.run_id, settings)
    with mlflow.start_run() as second:
        assert link_spec_prompt(spec, second.info.run_id, settings) == uri  # same template: same version
    assert uri == "prompts:/ragship-default-openai/1"
    prompt = mlflow.genai.load_prompt(uri)
    assert prompt.template == prompt_template(spec) and prompt.tags["spec_hash"] == spec.hash
    # The run page's "Prompts" link reads this tag.
    for run in (first, second):
        linked = json.loads(client.get_run(run.info.run_id).data.tags["mlflow.linkedPrompts"])
        assert linked == [{"name": "ragship-default-openai", "version": "1"}]
    with mlflow.start_run() as extractive:
        assert link_spec_prompt(spec_with(), extractive.info.run_id, settings) is None
