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

from ragship.assembly import store_for
from ragship.errors import StoreUnavailableError
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
    assert len(store.manifest.read()) == 10 and len(_sources_in_index(store)) == 10

    for i in (10, 11, 12):
        _write(corpus, i)
    modified = corpus / "note-03.md"
    modified.write_text("# Note 3\n\nRewritten: this note now covers quartz only.\n")
    (corpus / "note-07.md").unlink()

    second = syncer.sync([corpus])
    assert (second.added, second.updated, second.deleted, second.unchanged, second.failed) == (3, 1, 1, 8, 0)
    in_index = _sources_in_index(store)
    assert len(in_index) == 12 and not any(s.endswith("note-07.md") for s in in_index)
    assert set(store.manifest.read()) == set(in_index)
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
    assert store.count_documents() == 0 and store.manifest.read() == {}


def test_full_mode_rebuilds_and_swaps(corpus: Path, es_url: str, es_alias: str) -> None:
    store = ElasticsearchStore(es_url, es_alias, embedding_dim=384)
    syncer = Syncer(default_spec(), store)
    syncer.sync([corpus])
    before = store._current_indices()
    (corpus / "note-00.md").unlink()
    report = syncer.sync([corpus], mode="full")
    assert report.rebuild == "promoted" and (report.deleted, report.unchanged) == (1, 9)
    assert store._current_indices() != before
    assert len(_sources_in_index(store)) == 9 and len(store.manifest.read()) == 9
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
    assert len(store.manifest.read()) == 4  # two batches committed; the third was killed mid-way
    assert len(_sources_in_index(store)) == 6  # ... after its chunks landed

    resumed = Syncer(default_spec(), store, batch_files=2).sync([corpus])
    assert (resumed.added, resumed.unchanged, resumed.failed) == (11, 4, 0)

    reference = ElasticsearchStore(es_url, f"{es_alias}-ref", embedding_dim=384)
    try:
        Syncer(default_spec(), reference).sync([corpus])
        ids = sorted(d.id for d in store.filter_documents())
        assert ids == sorted(d.id for d in reference.filter_documents())  # no duplicates, nothing lost
        assert len(ids) == len(set(ids)) and len(_sources_in_index(store)) == 15
        assert set(store.manifest.read()) == set(reference.manifest.read())
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


def test_a_sync_asked_to_stop_keeps_its_batches_and_the_next_run_resumes(corpus: Path, tmp_path: Path) -> None:
    store = store_for(default_spec(), str(tmp_path / "store"))
    syncer = Syncer(default_spec(), store, batch_files=3)
    done: list[int] = []
    stopped = syncer.sync([corpus], progress=lambda n, _total: done.append(n), should_stop=lambda: len(done) > 1)
    assert stopped.cancelled and (stopped.added, stopped.failed) == (3, 0)  # one batch, then the stop
    assert stopped.to_dict()["cancelled"] is True
    assert len(store.manifest.read()) == 3 and len(_sources_in_index(store)) == 3

    resumed = syncer.sync([corpus])
    assert not resumed.cancelled and (resumed.added, resumed.unchanged) == (7, 3)

    before = sorted(d.id for d in store.filter_documents())
    (corpus / "note-00.md").unlink()
    done.clear()
    rebuild = syncer.sync(
        [corpus], mode="full", progress=lambda n, _total: done.append(n), should_stop=lambda: len(done) > 1
    )
    assert rebuild.cancelled and rebuild.rebuild and rebuild.rebuild.startswith("discarded")
    assert sorted(d.id for d in store.filter_documents()) == before  # the live index is untouched


GATED_NOTEBOOK_WAIT = """\
import pathlib, time
pathlib.Path(gate + ".waiting").touch()
while not pathlib.Path(gate).exists():  # the test opens the gate once the scheduler is where it wants it
    time.sleep(0.05)
from ragship.reindex.job import run_reindex
summary = run_reindex(sources=sources, store=store, batch_files=batch_files, stop_file=stop_file)
"""


def _gated_notebook(path: Path) -> Path:
    """A reindex notebook that starts its sync only when the file ``gate`` exists: the test decides when."""
    import nbformat

    v4 = nbformat.v4
    params = v4.new_code_cell('sources = ["docs"]\nstore = None\nbatch_files = 32\nstop_file = None\ngate = ""')
    params.metadata["tags"] = ["parameters"]
    summary = v4.new_code_cell("from IPython.display import JSON, display\ndisplay(JSON(summary))")
    summary.metadata["tags"] = ["summary"]
    nb = v4.new_notebook(cells=[params, v4.new_code_cell(GATED_NOTEBOOK_WAIT), summary])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _wait_for(what: str, condition: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until ``condition`` holds; fail with the log if the scheduler exits or 10 minutes pass first."""
    deadline = time.monotonic() + 600  # a bound against hanging, not a timing the test depends on
    while not condition():
        assert proc.poll() is None, f"scheduler exited before {what}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after 10 minutes:\n{log.read_text()[-3000:]}"
        time.sleep(0.2)


def _start_scheduler(tmp_path: Path, files: int, grace: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    work, home = tmp_path / "work", tmp_path / "home"
    (work / "docs").mkdir(parents=True)
    for i in range(files):
        _write(work / "docs", i)
    log, gate = tmp_path / "schedule.log", tmp_path / "gate"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAGSHIP_HOME": str(home)}
    ragship = str(Path(sys.executable).parent / "ragship")
    cmd = [ragship, "schedule", "reindex", "--every", "1s", "--run-now", "--grace", grace,
           "--notebook", str(_gated_notebook(tmp_path / "gated.ipynb")), "-p", "sources=docs", "-p", "batch_files=1",
           "-p", f"store={tmp_path / 'store'}", "-p", f"gate={gate}"]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, log, gate, home


def _reindex_runs(home: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("reindex")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])


def test_scheduler_skips_overlaps_and_lets_the_run_finish_within_the_grace_period(tmp_path: Path) -> None:
    proc, log, gate, home = _start_scheduler(tmp_path, files=3, grace="600s")
    try:
        _wait_for("run in progress", Path(f"{gate}.waiting").exists, proc, log)
        skipped = "reindex skipped: the previous run still holds"
        _wait_for("skipped trigger", lambda: skipped in log.read_text(), proc, log)
        proc.send_signal(signal.SIGTERM)
        _wait_for("SIGTERM handling", lambda: "SIGTERM received: no new runs" in log.read_text(), proc, log)
        gate.touch()  # the run in progress goes on after SIGTERM and completes
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "reindex run 1 finished" in text and "reindex run 2" not in text  # nothing new after SIGTERM
    assert "scheduler stopped after 1 runs" in text and ", 0 failed, 0 stopped early" in text
    (run,) = _reindex_runs(home)
    assert run.info.status == "FINISHED" and run.data.metrics["added"] == 3 and "stopped" not in run.data.tags


def test_scheduler_stops_a_run_past_the_grace_period_and_the_next_run_resumes(tmp_path: Path, cli) -> None:
    proc, log, gate, home = _start_scheduler(tmp_path, files=4, grace="0s")
    try:
        _wait_for("run in progress", Path(f"{gate}.waiting").exists, proc, log)
        proc.send_signal(signal.SIGTERM)
        _wait_for("stop request", (home / "reindex.lock.stop").exists, proc, log)
        gate.touch()  # the sync starts with the stop already requested: it stops before its first batch
        code = proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "grace period over" in text and "reindex run 1 stopped early on request" in text
    assert ", 0 failed, 1 stopped early" in text and not (home / "reindex.lock.stop").exists()
    (stopped,) = _reindex_runs(home)
    assert stopped.info.status == "KILLED" and "resumes from the manifest" in stopped.data.tags["stopped"]
    assert {"added", "unchanged", "failed", "duration_s"} <= stopped.data.metrics.keys()  # its counts so far

    store = str(tmp_path / "store")
    nxt = cli("reindex", "-p", "sources=docs", "-p", f"store={store}", "--json", cwd=tmp_path / "work",
              env={"RAGSHIP_HOME": str(home)})  # fmt: skip
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    counts = json.loads(nxt.stdout)
    assert (counts["added"], counts["failed"], counts["cancelled"]) == (4, 0, False)
    assert [r.info.status for r in _reindex_runs(home)] == ["KILLED", "FINISHED"]
