"""Servers that ragship starts on this machine (Elasticsearch nodes, Redis): free ports, pid files,
liveness, stopping, and log tails. One place, so every local server is stopped and reported the same way."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie counts as gone: it still answers ``kill(pid, 0)``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def running_pid(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` when that process still runs, else None."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def stop_process(pid_file: Path, timeout_s: float, poll_s: float = 0.1) -> bool:
    """SIGTERM the process of ``pid_file`` (servers flush their data on it), SIGKILL it after
    ``timeout_s``, and remove the pid file. False when it was not running."""
    pid = running_pid(pid_file)
    if pid is None:
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pid_file.unlink(missing_ok=True)
        return False
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(poll_s)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def log_tail(*candidates: Path, lines: int = 50) -> str:
    """The last ``lines`` lines of the first of ``candidates`` that exists."""
    for path in candidates:
        if path.exists():
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return "(no log yet)"


def stop_groups(procs: Iterable[subprocess.Popen[bytes]], timeout_s: float = 60) -> None:
    """SIGTERM the process groups of ``procs`` (started with ``start_new_session=True``: a worker and
    the children it forks), wait for each, and SIGKILL a group that outlives ``timeout_s``."""
    procs = list(procs)
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
