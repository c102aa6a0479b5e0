"""A local Redis server for development and tests: start, stop, status (the job queue's broker).

The server is Debian's ``redis-server`` (``make system-deps`` installs it). It listens on 127.0.0.1 only,
keeps an append-only file under ``<ragship home>/redis/<name>/data`` so queued jobs survive a restart,
never evicts keys (a job's payload must not vanish under memory pressure) and, when given a password,
requires it. Production points ``RAGSHIP_QUEUE__URL`` at a managed Redis instead.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from ragship.errors import RagshipError
from ragship.local.process import LocalServer, ServerStatus, find_executable, log_tail, stop_process
from ragship.settings import LocalRedisSettings


class LocalRedisError(RagshipError):
    """The local Redis server could not be started or stopped."""


class LocalRedis(LocalServer):
    """One local server under ``home/redis/NAME``: ``redis.conf``, ``data/`` (append-only file), the log
    and the pid file.

    Usage::

        server = LocalRedis(get_settings().local_redis, home=get_settings().home)
        url = server.start(port=0)
        ...
        server.stop()

    :param settings: Port, fsync policy, executable, start timeout.
    :param home: The ragship home; the server's directory is below it.
    :param name: Server directory name; several named servers can run side by side on different ports.
    """

    kind = "redis"
    pid_name = "redis.pid"
    log_name = "redis.log"

    def __init__(self, settings: LocalRedisSettings, home: Path, name: str = "default") -> None:
        super().__init__(home, name)
        self.settings = settings

    @property
    def url(self) -> str | None:
        """``redis://127.0.0.1:PORT/0`` once started (the password is never part of it)."""
        if not self.port_file.exists():
            return None
        return f"redis://127.0.0.1:{self.port_file.read_text().strip()}/0"

    def start(self, port: int | None = None, password: str | None = None, wait: bool = True) -> str:
        """Start the server (or return the URL of this server if it already runs).

        :param port: Port on 127.0.0.1; the settings' port when None, a free one when 0. A restart of a
            stopped server reuses its previous port unless one is given.
        :param password: When given, clients must send it (``RAGSHIP_QUEUE__PASSWORD``).
        :returns: The server's URL.
        :raises LocalRedisError: when redis-server is missing or does not answer in time.
        """
        status = self.status()
        if status.running and status.url:
            return status.url
        server = find_executable(self.settings.server, LocalRedisError, "redis-server", "RAGSHIP_LOCAL_REDIS__SERVER")
        chosen = self._choose_port(port, self.settings.port)
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        config = self.dir / "redis.conf"
        config.touch(mode=0o600)
        config.chmod(0o600)  # it holds the password when there is one
        config.write_text(self._config(chosen, password))
        secret = self.dir / ".password"
        if password:
            secret.touch(mode=0o600)
            secret.write_text(password)
        else:
            secret.unlink(missing_ok=True)
        result = subprocess.run([server, str(config)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LocalRedisError(f"redis-server failed to start: {(result.stdout + result.stderr).strip()}")
        url = f"redis://127.0.0.1:{chosen}/0"
        if wait:
            self.wait_ready(chosen, password)
        return url

    def _config(self, port: int, password: str | None) -> str:
        lines = [
            "bind 127.0.0.1",
            f"port {port}",
            "protected-mode yes",
            "daemonize yes",
            f"pidfile {self.pid_file}",
            f"logfile {self.log_file}",
            f"dir {self.dir / 'data'}",
            # Durability: every write goes to the append-only file, fsynced as configured.
            "appendonly yes",
            f"appendfsync {self.settings.appendfsync}",
            'save ""',
            # A queue must refuse writes when full rather than drop keys (job payloads, job state).
            "maxmemory-policy noeviction",
        ]
        if password:
            lines.append(f'requirepass "{password}"')
        return "\n".join(lines) + "\n"

    def wait_ready(self, port: int, password: str | None = None) -> None:
        """Block until this server (not another one on the port) answers and has loaded its append-only file.

        :raises LocalRedisError: after the timeout, with the end of the server's log.
        """
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            pid = self._pid()
            if pid is not None and _server_pid(port, password) == pid:
                return
            time.sleep(0.1)
        raise LocalRedisError(
            f"Redis on port {port} did not answer within {self.settings.start_timeout_s:.0f}s (is the port taken "
            f"by another server? pick one with --port). "
            f"Log tail ({self.log_file}):\n{self.logs(20)}"
        )

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the server (SIGTERM: it flushes the append-only file first); False when it was not running."""
        return stop_process(self.pid_file, timeout_s, poll_s=0.05)

    def status(self) -> ServerStatus:
        """Whether the server runs, and where."""
        pid = self._pid()
        return ServerStatus(pid is not None, self.url if pid is not None else None, pid, str(self.dir / "data"))

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the server log."""
        return log_tail(self.log_file, lines=lines)


def _server_pid(port: int, password: str | None) -> int | None:
    """The process id of the Redis answering on ``port`` (INFO over a raw RESP socket), None when none
    answers or it is still loading its data."""
    commands = [["AUTH", password]] if password else []
    commands.append(["INFO"])
    payload = b"".join(
        f"*{len(c)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n" for a in c)
        for c in commands
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(payload)
            reply = b""
            while b"process_id:" not in reply or b"loading:" not in reply or not reply.endswith(b"\r\n\r\n"):
                data = conn.recv(65536)
                if not data:
                    break
                reply += data
                if reply.startswith(b"-") or b"\r\n-" in reply:  # an error (wrong password, LOADING)
                    return None
    except OSError:
        return None
    info = dict(line.split(":", 1) for line in reply.decode(errors="replace").splitlines() if ":" in line)
    if info.get("loading", "1").strip() != "0" or "process_id" not in info:
        return None
    return int(info["process_id"])
