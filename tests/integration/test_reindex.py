"""Incremental sync (manifest, resumable), `ragship reindex` (papermill + MLflow) and the scheduler."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ragship.errors import StoreUnavailableError
from ragship.runtime import store_for
from ragship.spec import default_spec
from ragship.stores.base import RetrievalStore
from ragship.stores.elasticsearch import ElasticsearchStore
from ragship.sync import Syncer

pytestmark = pytest.mark.slow
WORDS = ["amber", "basalt", "cobalt", "dolomite", "emerald", "feldspar", "garnet", "hematite", "ilmenite", "jasper",
         "kyanite", "lazurite", "malachite", "nephrite", "obsidian"]  # fmt: skip


def _write(folder: Path, i: int, extra: str = "") -> Path:
    """A small markdown file whose marker word (e.g. 'garnet') appears in no other file."""
    path = folder / f"note-{i:02d}.md"
    word = WORDS[i]
    path.write_text(f"# Note {i}\n\nThis note is about {word}. The {word} mineral is described here. {extra}\n")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for i in range(10):
        _write(folder, i)
    return folder


@pytest.fixture(params=["elasticsearch", "embedded"])
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], RetrievalStore]:
    spec = default_spec()
    if request.param == "embedded":
        return lambda: store_for(spec, str(tmp_path / "store"))
    es_url, alias = request.getfixturevalue("es_url"), request.getfixturevalue("es_alias")
    return lambda: ElasticsearchStore(es_url, alias, embedding_dim=384)


def _sources_in_index(store: RetrievalStore) -> dict[str, int]:
    counts: dict[str, int] = {}
    for doc in store.filter_documents():
        counts[doc.meta["source"]] = counts.get(doc.meta["source"], 0) + 1
    return counts


def _hits(store: RetrievalStore, word: str) -> list[str]:
    return [d.meta["source"] for d in store.bm25_retrieval(word, top_k=5) if word in (d.content or "")]


def test_incremental_sync_adds_updates_deletes_exactly(
    corpus: Path, store_factory: Callable[[], RetrievalStore]
) -> None:
    store = store_factory()
    syncer = Syncer(default_spec(), store, batch_files=4)
    first = syncer.sync([corpus])
    assert (first.added, first.updated, first.deleted, first.unchanged, first.failed) == (10, 0, 0, 0, 0)
    assert len(store.read_manifest()) == 10 and len(_sources_in_index(store)) == 10

    for i in (10, 11, 12):
        _write(corpus, i)
    modified = corpus / "note-03.md"
    modified.write_text("# Note 3\n\nRewritten: this note now covers quartz only.\n")
    (corpus / "note-07.md").unlink()

    second = syncer.sync([corpus])
    assert (second.added, second.updated, second.deleted, second.unchanged, second.failed) == (3, 1, 1, 8, 0)
    in_index = _sources_in_index(store)
    assert len(in_index) == 12 and not any(s.endswith("note-07.md") for s in in_index)
    assert set(store.read_manifest()) == set(in_index)
    assert _hits(store, "dolomite") == []  # the modified file's old text is gone
    assert [Path(s).name for s in _hits(store, "quartz")] == ["note-03.md"]
    assert _hits(store, "hematite") == []  # the deleted file is gone
    assert [Path(s).name for s in _hits(store, "lazurite")] == ["note-11.md"]  # a new file is found
    third = syncer.sync([corpus])
    assert (third.added, third.updated, third.deleted, third.unchanged) == (0, 0, 0, 12)
    assert third.chunks_written == 0 and third.chunks_deleted == 0


def test_a_bad_file_is_counted_and_retried_while_the_rest_goes_on(corpus: Path, tmp_path: Path) -> None:
    store = store_for(default_spec(), str(tmp_path / "store"))
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    syncer = Syncer(default_spec(), store)
    first = syncer.sync([corpus])
    assert (first.added, first.failed) == (10, 1)
    assert first.failures[0].source.endswith("broken.pdf")
    again = syncer.sync([corpus])
    assert (again.added, again.unchanged, again.failed) == (0, 10, 1)  # not in the manifest: tried again


def test_dry_run_writes_nothing(corpus: Path, tmp_path: Path) -> None:
    store = store_for(default_spec(), str(tmp_path / "store"))
    report = Syncer(default_spec(), store).sync([corpus], dry_run=True)
    assert (report.added, report.dry_run) == (10, True)
    assert store.count_documents() == 0 and store.read_manifest() == {}


def test_full_mode_rebuilds_and_swaps(corpus: Path, es_url: str, es_alias: str) -> None:
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=384)
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    before = store._current_indices()
    (corpus / "note-00.md").unlink()
    report = syncer.sync([corpus], mode="full")
    assert report.rebuild == "promoted" and (report.deleted, report.unchanged) == (1, 9)
    assert store._current_indices() != before
    assert len(_sources_in_index(store)) == 9 and len(store.read_manifest()) == 9
    again = syncer.sync([corpus])
    assert (again.added, again.updated, again.deleted, again.unchanged) == (0, 0, 0, 9)


def test_unreachable_store_fails_before_any_write(corpus: Path) -> None:
    store = ElasticsearchStore("http://127.0.0.1:9", "nowhere", embedding_dim=384, request_timeout_s=2)
    with pytest.raises(StoreUnavailableError, match=r"Cannot reach Elasticsearch at http://127\.0\.0\.1:9"):
        Syncer(default_spec(), store).sync([corpus])


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from ragship.spec import default_spec
    from ragship.stores.elasticsearch import ElasticsearchStore
    from ragship.sync import Syncer

    url, alias, folder, kill_after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    store = ElasticsearchStore(url, alias, embedding_dim=384)
    real_write, calls = store.write_chunks, []

    def write_then_die(documents):
        result = real_write(documents)
        calls.append(1)
        if len(calls) == kill_after:  # chunks of this batch landed, its manifest entries did not
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    store.write_chunks = write_then_die
    Syncer(default_spec(), store, batch_files=2).sync([folder])
    """
)


def test_a_killed_sync_completes_on_the_next_run_exactly(corpus: Path, es_url: str, es_alias: str) -> None:
    for i in range(10, 15):
        _write(corpus, i)
    killed = subprocess.run(
        [sys.executable, "-c", KILLER, es_url, es_alias, str(corpus), "3"], capture_output=True, timeout=600
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=384)
    assert len(store.read_manifest()) == 4  # two batches committed; the third was killed mid-way
    assert len(_sources_in_index(store)) == 6  # ... after its chunks landed

    resumed = Syncer(default_spec(), store, batch_files=2).sync([corpus])
    assert (resumed.added, resumed.unchanged, resumed.failed) == (11, 4, 0)

    reference = ElasticsearchStore(es_url, f"{es_alias}-ref", embedding_dim=384)
    try:
        Syncer(default_spec(), reference).sync([corpus])
        ids = sorted(d.id for d in store.filter_documents())
        assert ids == sorted(d.id for d in reference.filter_documents())  # no duplicates, nothing lost
        assert len(ids) == len(set(ids)) and len(_sources_in_index(store)) == 15
        assert set(store.read_manifest()) == set(reference.read_manifest())
    finally:
        reference.delete_index()


def _reindex_env(home: Path, es_alias: str | None = None) -> dict[str, str]:
    env = {"RAGSHIP_HOME": str(home)}
    if es_alias:
        env["RAGSHIP_ES__INDEX"] = es_alias
    return env


def _mlflow_run(home: Path, run_id: str):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    return client, client.get_run(run_id)


@pytest.mark.parametrize("where", ["embedded", "elasticsearch"])
def test_reindex_command_runs_the_notebook_and_records_mlflow(
    where: str, cli, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    home = tmp_path / "home"
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    for i in range(3):
        _write(work / "docs", i)
    if where == "embedded":
        store, env = str(tmp_path / "store"), _reindex_env(home)
    else:
        store, env = request.getfixturevalue("es_url"), _reindex_env(home, request.getfixturevalue("es_alias"))
    args = ("reindex", "--notebook", str(Path(__file__).parents[2] / "notebooks" / "reindex.ipynb"))
    first = cli(*args, "-p", "sources=docs", "-p", f"store={store}", "-p", "mode=incremental", "--json",
                cwd=work, env=env)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    counts = json.loads(first.stdout)
    assert {k: counts[k] for k in ("added", "updated", "deleted", "unchanged", "failed")} == {
        "added": 3,
        "updated": 0,
        "deleted": 0,
        "unchanged": 0,
        "failed": 0,
    }
    client, run = _mlflow_run(home, counts["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "reindex"
    assert run.data.metrics["added"] == 3 and run.data.metrics["duration_s"] > 0
    assert json.loads(run.data.params["mode"]) == "incremental" and json.loads(run.data.params["store"]) == store
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"reindex.ipynb", "summary.json"} <= artifacts
    executed = Path(client.download_artifacts(run.info.run_id, "reindex.ipynb", str(tmp_path)))
    assert '"added": 3' in executed.read_text()  # the executed notebook holds its outputs

    second = cli(*args, "-p", "sources=docs", "-p", f"store={store}", "--json", cwd=work, env=env)
    assert second.returncode == 0, second.stderr[-3000:]
    again = json.loads(second.stdout)
    assert (again["added"], again["updated"], again["deleted"], again["unchanged"]) == (0, 0, 0, 3)
    assert again["run_id"] != counts["run_id"]


def test_reindex_failure_is_recorded_and_bad_params_run_nothing(cli, tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _reindex_env(home)
    bad = cli("reindex", "-p", "mode=sideways", "--json", env=env)
    assert bad.returncode == 2 and "'mode'" in bad.stderr
    assert not (home / "mlflow.db").exists()  # refused before MLflow or the store were touched

    failed = cli("reindex", "-p", f"spec={tmp_path / 'missing.yaml'}", "-p", f"store={tmp_path / 's'}", "--json",
                 env=env)  # fmt: skip
    assert failed.returncode == 1
    out = json.loads(failed.stdout)
    assert "missing.yaml" in out["error"]
    _, run = _mlflow_run(home, out["run_id"])
    assert run.info.status == "FAILED" and "missing.yaml" in run.data.tags["error"]


def test_scheduler_skips_overlapping_runs_and_stops_on_sigterm(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "docs").mkdir(parents=True)
    _write(work / "docs", 0)
    log = tmp_path / "schedule.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGSHIP_HOME": str(tmp_path / "home")}
    ragship = str(Path(sys.executable).parent / "ragship")
    notebook = str(Path(__file__).parents[2] / "notebooks" / "reindex.ipynb")
    cmd = [ragship, "schedule", "reindex", "--every", "1s", "--run-now", "--notebook", notebook,
           "-p", "sources=docs", "-p", f"store={tmp_path / 'store'}"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "finished" not in log.read_text():
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        text = log.read_text()
        assert "reindex run 1 finished" in text
        assert "reindex skipped: the previous run still holds" in text  # 1s triggers during a longer run
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=300)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "SIGTERM received" in text and "scheduler stopped after" in text
    assert "ERROR" not in text and ", 0 failed" in text
