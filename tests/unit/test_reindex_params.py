"""Reindex parameters and schedule options are checked before anything runs, naming what is wrong."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from filelock import FileLock

from ragship.errors import ConfigError
from ragship.reindex.job import ReindexParams, check_notebook_params, default_notebook
from ragship.reindex.schedule import LockedJob, make_trigger, parse_every


def test_strings_from_the_command_line_are_coerced() -> None:
    p = ReindexParams.parse({"sources": "docs, README.md", "dry_run": "true", "batch_files": "8", "mode": "full"})
    assert p.sources == ["docs", "README.md"] and p.dry_run is True and p.batch_files == 8 and p.mode == "full"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"mode": "fast"}, "'mode'"),
        ({"dry_run": "maybe"}, "'dry_run'"),
        ({"batch_files": "0"}, "'batch_files'"),
        ({"colour": "red"}, "'colour': unknown parameter"),
    ],
)
def test_bad_parameters_are_named(values: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        ReindexParams.parse(values)


def test_notebook_check_refuses_keys_the_notebook_does_not_take() -> None:
    with pytest.raises(ConfigError, match="Unknown parameter 'sourcez'"):
        check_notebook_params(default_notebook(), {"sourcez": "docs"})
    assert check_notebook_params(default_notebook(), {"dry_run": "yes"}) == {"dry_run": True}


def test_a_notebook_without_parameters_cell_is_refused(tmp_path: Path) -> None:
    import nbformat

    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), path)
    with pytest.raises(ConfigError, match="no cell tagged 'parameters'"):
        check_notebook_params(path, {})


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("15m", 900), ("2h", 7200), ("1d", 86400), ("PT5M", 300)])
def test_every_durations(text: str, seconds: int) -> None:
    assert parse_every(text) == timedelta(seconds=seconds)


def test_a_grace_period_may_be_zero_but_not_negative() -> None:
    assert parse_every("0s", option="--grace", allow_zero=True) == timedelta(0)
    with pytest.raises(ConfigError, match="--grace 'a while': give a duration"):
        parse_every("a while", option="--grace", allow_zero=True)


@pytest.mark.parametrize("text", ["0s", "soon", "-5m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ConfigError, match="positive duration"):
        parse_every(text)


def test_trigger_needs_exactly_one_of_every_and_cron() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        make_trigger()
    with pytest.raises(ConfigError, match="exactly one"):
        make_trigger("5m", "* * * * *")
    with pytest.raises(ConfigError, match="five-field"):
        make_trigger(cron="every tuesday")
    assert "cron" in str(make_trigger(cron="*/15 * * * *"))


def test_overlapping_triggers_give_one_run_and_one_skip(tmp_path: Path) -> None:
    release, started = threading.Event(), threading.Event()

    def slow_job(_stop_file: Path) -> None:
        started.set()
        release.wait(10)

    job = LockedJob(slow_job, tmp_path / "reindex.lock")
    first = threading.Thread(target=job)
    first.start()
    assert started.wait(10)
    assert job() is False  # the second trigger fires while the first run holds the lock
    release.set()
    first.join(10)
    assert (job.runs, job.skips) == (1, 1)
    assert job() is True  # and the lock is free again afterwards


def test_a_run_in_another_process_holding_the_lock_means_skip(tmp_path: Path) -> None:
    ran: list[int] = []
    job = LockedJob(lambda _stop_file: ran.append(1), tmp_path / "reindex.lock")
    with FileLock(str(tmp_path / "reindex.lock")):  # e.g. a cron-started `ragship reindex`
        assert job() is False
    assert ran == [] and job.skips == 1


def test_a_failing_run_does_not_stop_the_schedule(tmp_path: Path) -> None:
    def broken(_stop_file: Path) -> None:
        raise RuntimeError("store down")

    job = LockedJob(broken, tmp_path / "reindex.lock")
    assert job() is True and job() is True
    assert job.failures == 2


def test_a_closed_job_starts_no_new_run(tmp_path: Path) -> None:
    ran: list[int] = []
    job = LockedJob(lambda _stop_file: ran.append(1), tmp_path / "reindex.lock")
    job.close()
    assert job() is False and ran == [] and job.idle.is_set()
    assert not FileLock(str(tmp_path / "reindex.lock")).is_locked  # the lock was given back


def test_a_stop_request_reaches_the_run_in_progress_and_is_counted(tmp_path: Path) -> None:
    asked, seen = threading.Event(), threading.Event()

    def batches(stop_file: Path) -> bool:
        asked.set()
        for _ in range(12_000):  # one "batch" per step (a bound, not a timing); stops between batches
            if stop_file.exists():
                seen.set()
                return False
            threading.Event().wait(0.01)
        return True

    job = LockedJob(batches, tmp_path / "reindex.lock")
    job.request_stop()  # nothing runs yet: no stop file is left behind for the next run
    assert not job.stop_file.exists()
    run = threading.Thread(target=job)
    run.start()
    assert asked.wait(10)
    job.request_stop()
    run.join(300)
    assert seen.is_set() and (job.runs, job.stopped_early, job.failures) == (1, 1, 0)
    assert not job.stop_file.exists()  # cleared for the next run
