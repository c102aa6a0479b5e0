"""Servers that ragship starts on this machine (Elasticsearch nodes, Redis, RabbitMQ): free ports, pid files,
liveness, stopping, and log tails. One place, so every local server is stopped and reported the same way."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, TypeVar

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(check: Callable[[], T], timeout_s: float, every_s: float = 0.1) -> T | None:
    """The first truthy value ``check()`` returns within ``timeout_s`` (asked every ``every_s``), else None."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every_s)
    return None


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


@dataclass
class ServerStatus:
    """Whether a local server runs, and where (what `ragship queue status` reports)."""

    running: bool
    url: str | None
    pid: int | None
    data_dir: str

    def to_dict(self) -> dict[str, object]:
        """Plain-data form."""
        return dict(self.__dict__)


class LocalServer:
    """A server ragship runs on this machine, in its own directory under the ragship home: its pid, port
    and log files, how its port is chosen, and its removal. Subclasses start, wait for and stop it.

    :param home: The ragship home.
    :param name: The server's directory name; several named servers can run side by side on different ports.
    """

    kind: ClassVar[str]  # the directory under the home that holds every server of this kind
    pid_name: ClassVar[str] = "server.pid"
    log_name: ClassVar[str] = "server.log"

    def __init__(self, home: Path, name: str = "default") -> None:
        self.name = name
        self.dir = (home / self.kind / name).absolute()

    @property
    def pid_file(self) -> Path:
        return self.dir / self.pid_name

    @property
    def port_file(self) -> Path:
        return self.dir / "port"

    @property
    def log_file(self) -> Path:
        return self.dir / self.log_name

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the server; False when it was not running."""
        raise NotImplementedError

    def remove(self) -> None:
        """Stop the server and delete its directory (data included)."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _pid(self) -> int | None:
        return running_pid(self.pid_file)

    def _choose_port(self, requested: int | None, default: int) -> int:
        """The port to start on: the one asked for, else the previous run's, else ``default``; 0 picks a free one.
        The choice is recorded in the port file."""
        if requested is None and self.port_file.exists():
            requested = int(self.port_file.read_text().strip())
        chosen = (default if requested is None else requested) or free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port_file.write_text(str(chosen))
        return chosen


def find_executable(name: str, error: type[Exception], package: str, setting: str) -> str:
    """The path of executable ``name`` (a name on PATH or a path).

    :raises error: naming how to install it (``package`` from Debian) or where to point ``setting``.
    """
    found = shutil.which(name)
    if found is None:
        raise error(
            f"{name} not found: run `make system-deps` (or `apt-get install {package}`), or set {setting} to its path."
        )
    return found
