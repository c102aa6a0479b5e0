"""A local RabbitMQ node for development and tests: start, stop, status (the job queue's other broker).

The node is Debian's ``rabbitmq-server`` (``make system-deps`` installs it), run as the current user
with everything private to ``<ragship home>/rabbitmq/<name>``: its node name (``ragship-<name>-<hash>@localhost``),
AMQP and distribution ports on 127.0.0.1, config, Erlang cookie (``HOME`` points there), data (mnesia) and
logs. Only the epmd daemon on port 4369 is shared with other Erlang nodes on the machine (it starts with
the first node and stays). No plugins are enabled. Production points ``RAGSHIP_QUEUE__URL`` at a managed
RabbitMQ cluster instead, where quorum queues replicate.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

from ragship.errors import RagshipError
from ragship.local.process import LocalServer, ServerStatus, find_executable, free_port, log_tail, stop_process
from ragship.settings import LocalRabbitmqSettings


class LocalRabbitmqError(RagshipError):
    """The local RabbitMQ node could not be started or stopped."""


class LocalRabbitmq(LocalServer):
    """One local node under ``home/rabbitmq/NAME``.

    Usage::

        node = LocalRabbitmq(get_settings().local_rabbitmq, home=get_settings().home)
        url = node.start(port=0)      # amqp://guest:guest@127.0.0.1:PORT/%2F
        ...
        node.stop()

    The ``guest`` user may only connect from loopback, which is where the node listens.

    :param settings: Port, server script, start timeout.
    :param home: The ragship home; the node's directory is below it.
    :param name: Node directory and name; several named nodes can run side by side on different ports.
    """

    kind = "rabbitmq"

    def __init__(self, settings: LocalRabbitmqSettings, home: Path, name: str = "default") -> None:
        super().__init__(home, name)
        self.settings = settings

    @property
    def node_name(self) -> str:
        """Unique per node directory: two ragship homes (two test sessions) can each run a node named "test"."""
        digest = hashlib.sha1(str(self.dir).encode()).hexdigest()[:8]
        return f"ragship-{self.name}-{digest}@localhost"

    @property
    def url(self) -> str | None:
        """``amqp://guest:guest@127.0.0.1:PORT/%2F`` once started."""
        if not self.port_file.exists():
            return None
        return f"amqp://guest:guest@127.0.0.1:{self.port_file.read_text().strip()}/%2F"

    def start(self, port: int | None = None, wait: bool = True) -> str:
        """Start the node (or return its URL if it already runs).

        :param port: AMQP port on 127.0.0.1; the settings' port when None, a free one when 0. A restart reuses
            the previous port unless one is given. The distribution port is another free one.
        :returns: The node's AMQP URL.
        :raises LocalRabbitmqError: when rabbitmq-server is missing or the node does not answer in time.
        """
        status = self.status()
        if status.running and status.url:
            return status.url
        server = find_executable(
            self.settings.server, LocalRabbitmqError, "rabbitmq-server", "RAGSHIP_LOCAL_RABBITMQ__SERVER"
        )
        chosen = self._choose_port(port, self.settings.port)
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{chosen}\nloopback_users.guest = true\n")
        (self.dir / "enabled_plugins").write_text("[].\n")
        env = {
            **os.environ,
            "HOME": str(self.dir),  # the Erlang cookie is created here: private to this node
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(chosen),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "data"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "beam.pid"),
        }
        with self.log_file.open("ab") as log:
            # The script traps SIGTERM and stops the node gracefully; its pid is the one we record.
            proc = subprocess.Popen(
                [server], env=env, cwd=self.dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.pid_file.write_text(str(proc.pid))
        url = f"amqp://guest:guest@127.0.0.1:{chosen}/%2F"
        if wait:
            self.wait_ready(chosen)
        return url

    def wait_ready(self, port: int) -> None:
        """Block until the node accepts AMQP connections on ``port``.

        :raises LocalRabbitmqError: after the timeout (or when the node exited), with the end of its log.
        """
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if self._pid() is None:
                break
            if _amqp_answers(port):
                return
            time.sleep(0.2)
        raise LocalRabbitmqError(
            f"RabbitMQ on port {port} did not answer within {self.settings.start_timeout_s:.0f}s (is the port taken? "
            f"pick another one). Log tail ({self.log_file}):\n{self.logs(20)}"
        )

    def stop(self, timeout_s: float = 60) -> bool:
        """Stop the node (SIGTERM: a graceful shutdown, queues are on disk); False when it was not running."""
        return stop_process(self.pid_file, timeout_s)

    def status(self) -> ServerStatus:
        """Whether the node runs, and where."""
        pid = self._pid()
        return ServerStatus(pid is not None, self.url if pid is not None else None, pid, str(self.dir / "data"))

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the node's log."""
        return log_tail(self.dir / "log" / f"{self.node_name}.log", self.log_file, lines=lines)


def _amqp_answers(port: int) -> bool:
    """Whether an AMQP 0-9-1 server answers on ``port`` (it replies Connection.Start to the protocol header)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"AMQP\x00\x00\x09\x01")
            conn.settimeout(2)
            return conn.recv(8)[:1] == b"\x01"  # a method frame
    except OSError:
        return False
