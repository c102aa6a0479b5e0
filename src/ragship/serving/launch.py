"""Run `bentoml serve` as a child process and wait until it is ready (tests, benchmarks, scripts)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ragship.errors import RagshipError
from ragship.local.process import free_port

BENTOML = str(Path(sys.executable).parent / "bentoml")


def wait_ready(
    url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 300, ready_path: str = "/readyz"
) -> None:
    """Block until ``url`` + ``ready_path`` answers 200.

    :raises RagshipError: when the process exits or the timeout passes, with the end of its log.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RagshipError(f"`{proc.args!s}` exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{url}{ready_path}", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    raise RagshipError(f"{url} was not ready after {timeout_s:.0f}s:\n{_tail(log)}")


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM the process group (the server and its service workers), SIGKILL after ``timeout_s``."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@contextmanager
def serving(
    command: Sequence[str],
    *,
    env: dict[str, str],
    log: Path,
    cwd: Path,
    url: str,
    timeout_s: float = 300,
    ready_path: str = "/readyz",
) -> Iterator[str]:
    """Run ``command`` (a `bentoml serve ...`, `make run`, another HTTP server) until the block ends; yields
    ``url`` once ``ready_path`` answers 200."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            list(command), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_ready(url, proc, log, timeout_s, ready_path)
        yield url
    finally:
        stop(proc)


@contextmanager
def bentoml_serve(target: str, *, env: dict[str, str], log: Path, cwd: Path, timeout_s: float = 300) -> Iterator[str]:
    """`bentoml serve target` on a free loopback port; yields its URL once /readyz says 200."""
    port = free_port()
    command = [BENTOML, "serve", target, "--host", "127.0.0.1", "--port", str(port)]
    with serving(command, env=env, log=log, cwd=cwd, url=f"http://127.0.0.1:{port}", timeout_s=timeout_s) as url:
        yield url
