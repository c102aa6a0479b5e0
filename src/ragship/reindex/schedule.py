"""A long-running scheduler for reindex jobs: APScheduler triggers, a file lock against overlap, clean SIGTERM."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from filelock import FileLock, Timeout

from ragship.errors import ConfigError

logger = logging.getLogger("ragship.schedule")

_DURATION = re.compile(r"^\s*(\d+)\s*(s|sec|m|min|h|d)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_every(text: str, option: str = "--every", allow_zero: bool = False) -> timedelta:
    """``30s``, ``15m``, ``2h``, ``1d`` (or an ISO 8601 duration such as ``PT15M``) as a timedelta.

    :param option: The command-line option the text came from, named in the error.
    :param allow_zero: Accept ``0s`` (a grace period may be none).
    """
    match = _DURATION.match(text)
    seconds: int | None
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    else:
        from pydantic import TypeAdapter, ValidationError

        try:
            seconds = int(TypeAdapter(timedelta).validate_python(text).total_seconds())
        except ValidationError:
            seconds = None
    if seconds is None or seconds < 0 or (seconds == 0 and not allow_zero):
        kind = "a duration" if allow_zero else "a positive duration"
        raise ConfigError(f"{option} {text!r}: give {kind} such as 30s, 15m, 2h or 1d.")
    return timedelta(seconds=seconds)


def make_trigger(every: str | None = None, cron: str | None = None) -> Any:
    """An APScheduler trigger from exactly one of ``every`` and a five-field ``cron`` expression."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if (every is None) == (cron is None):
        raise ConfigError("Give exactly one of --every DURATION or --cron EXPR.")
    if every is not None:
        return IntervalTrigger(seconds=int(parse_every(every).total_seconds()))
    try:
        return CronTrigger.from_crontab(cron or "")
    except ValueError as e:
        raise ConfigError(f"--cron {cron!r} is not a five-field crontab expression ({e}), e.g. '*/15 * * * *'.") from e


class LockedJob:
    """Runs a job only when no other run holds the lock (same process or another one, e.g. cron).

    A trigger that fires while a run is still going is skipped and logged, never queued. Once
    :meth:`close` was called no new run starts, and :meth:`request_stop` asks the run in progress to stop
    at its next safe point (for a reindex: before its next batch; what it committed stays).

    :param job: The work. It is given the stop file (see :attr:`stop_file`) and returns ``False`` when it
        stopped early because that file appeared. Exceptions are logged and the scheduler keeps going.
    :param lock_path: The lock file shared by everything that runs this job.
    """

    def __init__(self, job: Callable[[Path], bool | None], lock_path: Path) -> None:
        self.job = job
        self.lock_path = lock_path
        self.stop_file = lock_path.with_name(lock_path.name + ".stop")
        self.runs = 0
        self.skips = 0
        self.failures = 0
        self.stopped_early = 0
        self.idle = threading.Event()
        self.idle.set()
        self._closed = False
        self._state = threading.Lock()
        lock_path.parent.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Start no new run from now on (a trigger already firing is turned away too)."""
        with self._state:
            self._closed = True

    def request_stop(self) -> None:
        """Ask the run in progress, if any, to stop at its next safe point."""
        with self._state:
            if not self.idle.is_set():
                self.stop_file.touch()

    def __call__(self) -> bool:
        """Run once if the lock is free and the job is not closed; returns whether it ran."""
        lock = FileLock(str(self.lock_path), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            self.skips += 1
            logger.warning("reindex skipped: the previous run still holds %s", self.lock_path)
            return False
        with self._state:
            if self._closed:
                lock.release()
                return False
            self.idle.clear()
            self.stop_file.unlink(missing_ok=True)  # a request left by a run that ended meanwhile
        try:
            self.runs += 1
            logger.info("reindex run %d started", self.runs)
            if self.job(self.stop_file) is False:
                self.stopped_early += 1
                logger.warning("reindex run %d stopped early on request; the next run resumes it", self.runs)
            else:
                logger.info("reindex run %d finished", self.runs)
        except Exception as e:  # one failed run must not stop the schedule
            self.failures += 1
            logger.error("reindex run %d failed: %s", self.runs, e)
        finally:
            with self._state:
                self.stop_file.unlink(missing_ok=True)
                lock.release()
                self.idle.set()
        return True


def run_schedule(job: LockedJob, trigger: Any, run_now: bool = False, grace: timedelta = timedelta(0)) -> None:
    """Block, firing ``job`` on ``trigger`` until SIGTERM or SIGINT.

    On the signal no new run starts; a run in progress gets ``grace`` to finish, after which it is asked to
    stop before its next batch (it commits what it did, and the next run resumes from there). A second
    signal exits at once.
    """
    from apscheduler.schedulers.blocking import BlockingScheduler

    scheduler = BlockingScheduler(job_defaults={"coalesce": True, "misfire_grace_time": 60})
    # max_instances > 1 so an overlapping trigger reaches LockedJob, which logs the skip itself.
    first = {"next_run_time": _now()} if run_now else {}  # None would mean "paused" to APScheduler
    scheduler.add_job(job, trigger, id="reindex", max_instances=4, **first)
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if stopping.is_set():
            raise SystemExit(128 + signum)  # a second signal: stop now (the sync is resumable)
        stopping.set()
        job.close()
        logger.info(
            "%s received: no new runs; a run in progress has %ds to finish",
            signal.Signals(signum).name,
            grace.total_seconds(),
        )
        scheduler.shutdown(wait=False)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        logger.info("scheduler started: %s (lock %s)", trigger, job.lock_path)
        scheduler.start()
        if not job.idle.wait(grace.total_seconds()):
            logger.warning("grace period over: asking the run in progress to stop before its next batch")
            job.request_stop()
            job.idle.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    logger.info(
        "scheduler stopped after %d runs, %d skipped, %d failed, %d stopped early",
        job.runs,
        job.skips,
        job.failures,
        job.stopped_early,
    )


def _now() -> Any:
    from datetime import datetime

    return datetime.now().astimezone()
