"""A local Elasticsearch node for development and tests: fetch, start, stop, health, logs.

The server comes from Maven Central (``org.elasticsearch.distribution.integ-test-zip``), fetched with
``mvn`` into a cache so later starts need no download. It runs single-node on 127.0.0.1 with a JDK
17-23 found on the machine, as an unprivileged user when ragship runs as root (Elasticsearch refuses
to run as root).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import zipfile
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path

from ragship.errors import RagshipError
from ragship.local.process import free_port, log_tail, running_pid, stop_process
from ragship.settings import LocalElasticsearchSettings

ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
SERVICE_USER = "ragship-es"
JDK_MIN, JDK_MAX = 17, 23  # ES 8 needs the SecurityManager, removed in JDK 24
JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/local/lib/jvm"), Path("/opt/java"))


class LocalElasticsearchError(RagshipError):
    """The local node could not be installed, started or stopped."""


@dataclass
class NodeStatus:
    """What `ragship es status` reports."""

    running: bool
    url: str | None
    pid: int | None
    health: str | None
    version: str
    node_dir: str

    def to_dict(self) -> dict[str, object]:
        """Plain-data form."""
        return dict(self.__dict__)


def _java_major(java_home: Path) -> int | None:
    release = java_home / "release"
    if not release.is_file():
        return None
    match = re.search(r'JAVA_VERSION="(\d+)', release.read_text(errors="replace"))
    return int(match.group(1)) if match else None


def find_java(preferred: Path | None = None) -> Path:
    """A JDK home of a version Elasticsearch 8 runs on (17-23).

    :raises LocalElasticsearchError: naming what was found and how to install a suitable JDK.
    """
    candidates: list[Path] = []
    if preferred:
        candidates.append(preferred)
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        if os.environ.get(var):
            candidates.append(Path(os.environ[var]))
    for root in JVM_ROOTS:
        if root.is_dir():
            candidates.extend(sorted(root.iterdir()))
    seen = []
    for home in candidates:
        major = _java_major(home)
        seen.append(f"{home} ({major or 'unknown'})")
        if major is not None and JDK_MIN <= major <= JDK_MAX and (home / "bin" / "java").exists():
            return home
    raise LocalElasticsearchError(
        f"No JDK {JDK_MIN}-{JDK_MAX} found (checked: {', '.join(seen) or 'nothing'}). Install one, e.g. "
        "`apt-get install openjdk-17-jre-headless`, or set RAGSHIP_LOCAL_ES__JAVA_HOME."
    )


@dataclass(frozen=True)
class ClusterMembership:
    """How a node joins a local multi-node cluster (see :mod:`ragship.local.es_cluster`)."""

    cluster_name: str
    transport_port: int
    seed_hosts: tuple[str, ...]  # 127.0.0.1:PORT of every node's transport
    initial_masters: tuple[str, ...]  # node names that bootstrap the cluster (only on its first start)


class LocalElasticsearch:
    """One local node under ``settings.home``: ``dist/`` caches the distribution, ``nodes/NAME`` holds
    config, data, logs and the pid file of one node.

    Usage::

        node = LocalElasticsearch(get_settings().local_es)
        url = node.start()
        ...
        node.stop()

    :param settings: Version, home, port, heap, JDK.
    :param name: Node directory name; several named nodes can run side by side on different ports.
    :param cluster: Join a multi-node cluster instead of running as a single-node one.
    """

    def __init__(
        self, settings: LocalElasticsearchSettings, name: str = "default", cluster: ClusterMembership | None = None
    ) -> None:
        self.settings = settings
        self.home = settings.home
        self.name = name
        self.cluster = cluster
        self.heap = settings.cluster_heap if cluster else settings.heap
        self.node_dir = self.home / "nodes" / name
        self.dist_dir = self.home / "dist" / f"elasticsearch-{settings.version}"

    # -- paths -----------------------------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.node_dir / "es.pid"

    @property
    def port_file(self) -> Path:
        return self.node_dir / "http.port"

    @property
    def log_file(self) -> Path:
        return self.node_dir / "logs" / f"{self.name}.log"

    @property
    def console_log(self) -> Path:
        return self.node_dir / "console.log"

    @property
    def url(self) -> str | None:
        """Base URL of the node, once started."""
        if not self.port_file.exists():
            return None
        return f"http://127.0.0.1:{self.port_file.read_text().strip()}"

    # -- install ---------------------------------------------------------------------------------
    def install(self) -> Path:
        """Fetch (once) and unpack the distribution; returns its directory."""
        if (self.dist_dir / "bin" / "elasticsearch").exists():
            return self.dist_dir
        mvn = shutil.which("mvn")
        if mvn is None:
            raise LocalElasticsearchError("Maven (mvn) is needed to fetch Elasticsearch: `apt-get install maven`.")
        download = self.home / "download"
        download.mkdir(parents=True, exist_ok=True)
        artifact = ARTIFACT.format(version=self.settings.version)
        result = subprocess.run(
            [mvn, "-q", "-B", DEPENDENCY_PLUGIN, f"-Dartifact={artifact}", f"-DoutputDirectory={download}"],
            capture_output=True,
            text=True,
            check=False,
        )
        archive = download / f"elasticsearch-{self.settings.version}.zip"
        if result.returncode != 0 or not archive.exists():
            tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
            raise LocalElasticsearchError(
                f"mvn could not fetch {artifact}; check the version and Maven Central access:\n" + "\n".join(tail)
            )
        staging = self.home / "dist" / f".unpack-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(staging)
        unpacked = staging / f"elasticsearch-{self.settings.version}"
        for script in (unpacked / "bin").iterdir():
            script.chmod(0o755)
        for helper in unpacked.glob("modules/*/platform/*/bin/*"):
            helper.chmod(0o755)
        shutil.rmtree(self.dist_dir, ignore_errors=True)
        unpacked.rename(self.dist_dir)  # atomic: a half-unpacked tree is never mistaken for an install
        shutil.rmtree(staging, ignore_errors=True)
        return self.dist_dir

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, port: int | None = None, password: str | None = None, wait: bool = True) -> str:
        """Start the node (or return the URL of this node if it already runs).

        :param port: HTTP port on 127.0.0.1; settings' port when None, a free one when 0.
        :param password: When given, security is on and user ``elastic`` has this password.
        :returns: The node's URL.
        """
        status = self.status()
        if status.running and status.url:
            return status.url
        dist = self.install()
        java = find_java(self.settings.java_home)
        http_port = self.settings.port if port is None else port
        http_port = http_port or free_port()
        self._write_config(dist, http_port, password, java)
        user = self._service_user()
        if user is not None:
            _chown_tree(self.node_dir, user)
        env = {
            **os.environ,
            "ES_JAVA_HOME": str(java),
            "ES_PATH_CONF": str(self.node_dir / "config"),
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
        }
        env.pop("JAVA_TOOL_OPTIONS", None)
        self.port_file.write_text(str(http_port))
        with self.console_log.open("wb") as console:
            subprocess.Popen(
                [str(dist / "bin" / "elasticsearch"), "-p", str(self.pid_file)],
                env=env,
                stdout=console,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # keeps running after this command ends
                user=user,
                cwd=self.node_dir,
            )
        url = f"http://127.0.0.1:{http_port}"
        if wait:
            self.wait_healthy(url, password)
        return url

    def wait_healthy(self, url: str, password: str | None = None) -> None:
        """Block until the cluster is yellow or green.

        :raises LocalElasticsearchError: after the timeout, with the end of the node's log.
        """
        deadline = time.monotonic() + self.settings.start_timeout_s
        while time.monotonic() < deadline:
            if _health(url, password) in {"green", "yellow"}:
                return
            if self._console_says_failed():
                break
            time.sleep(1)
        raise LocalElasticsearchError(
            f"Elasticsearch at {url} did not become healthy within {self.settings.start_timeout_s:.0f}s. "
            f"Log tail ({self.log_file}):\n{self.logs(40)}"
        )

    def stop(self, timeout_s: float = 60) -> bool:
        """Stop the node; returns False when it was not running."""
        return stop_process(self.pid_file, timeout_s, poll_s=0.5)

    def status(self) -> NodeStatus:
        """Whether the node runs, where, and its cluster health."""
        pid = self._pid()
        running = pid is not None
        url = self.url if running else None
        health = _health(url, self._password()) if url else None
        return NodeStatus(running, url, pid, health, self.settings.version, str(self.node_dir))

    def logs(self, lines: int = 50) -> str:
        """The last ``lines`` lines of the node log (console output if there is no log yet)."""
        return log_tail(self.log_file, self.console_log, lines=lines)

    def remove(self) -> None:
        """Stop the node and delete its directory (data included); the download cache stays."""
        self.stop()
        shutil.rmtree(self.node_dir, ignore_errors=True)

    # -- internals -------------------------------------------------------------------------------
    def _pid(self) -> int | None:
        return running_pid(self.pid_file)

    def _password(self) -> str | None:
        secret = self.node_dir / "config" / ".ragship-password"
        return secret.read_text().strip() if secret.exists() else None

    def _console_says_failed(self) -> bool:
        # The launcher exits early (and says so) on bad config or a missing JDK.
        text = self.console_log.read_text(errors="replace") if self.console_log.exists() else ""
        return "ERROR: Elasticsearch did not exit normally" in text or "could not find java" in text.lower()

    def _service_user(self) -> str | None:
        if os.geteuid() != 0:
            return None
        try:
            pwd.getpwnam(SERVICE_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
                check=True,
                capture_output=True,
            )
        # The service user must be able to traverse to the node directory and read the distribution.
        for parent in [self.home, *self.home.parents]:
            if parent == Path("/"):
                break
            mode = parent.stat().st_mode
            if not mode & 0o001:
                raise LocalElasticsearchError(
                    f"{parent} is not traversable by the unprivileged user {SERVICE_USER!r} that runs "
                    "Elasticsearch; set RAGSHIP_LOCAL_ES__HOME to a directory outside it (e.g. /var/cache/ragship)."
                )
        return SERVICE_USER

    def _discovery(self) -> list[str]:
        """Transport and discovery lines: single-node, or the cluster's seed hosts (and bootstrap masters on
        the first start only: a node with data has joined its cluster and must not bootstrap another)."""
        if self.cluster is None:
            return [f"transport.port: {free_port()}", "discovery.type: single-node"]
        data = self.node_dir / "data"
        first_start = not (data.is_dir() and any(data.iterdir()))
        masters = [f"cluster.initial_master_nodes: [{', '.join(self.cluster.initial_masters)}]"] if first_start else []
        return [
            f"transport.port: {self.cluster.transport_port}",
            f"discovery.seed_hosts: [{', '.join(self.cluster.seed_hosts)}]",
            *masters,
        ]

    def _write_config(self, dist: Path, http_port: int, password: str | None, java: Path) -> None:
        config = self.node_dir / "config"
        for sub in ("data", "logs"):
            (self.node_dir / sub).mkdir(parents=True, exist_ok=True)
        if not config.exists():
            shutil.copytree(dist / "config", config)
        # Security on only when a password is given: basic auth over plain HTTP on loopback.
        security = (
            [
                "xpack.security.enabled: true",
                "xpack.security.autoconfiguration.enabled: false",
                "xpack.security.http.ssl.enabled: false",
                "xpack.security.transport.ssl.enabled: false",
            ]
            if password
            else ["xpack.security.enabled: false"]
        )
        lines = [
            f"cluster.name: {self.cluster.cluster_name if self.cluster else f'ragship-{self.name}'}",
            f"node.name: {self.name}",
            f"path.data: {self.node_dir / 'data'}",
            f"path.logs: {self.node_dir / 'logs'}",
            "network.host: 127.0.0.1",
            f"http.port: {http_port}",
            *self._discovery(),
            # Small CI disks would otherwise turn indices read-only at the 95% watermark.
            "cluster.routing.allocation.disk.threshold_enabled: false",
            "action.destructive_requires_name: false",
            *security,
        ]
        (config / "elasticsearch.yml").write_text("\n".join(lines) + "\n")
        secret = config / ".ragship-password"
        if password:
            keystore_env = {**os.environ, "ES_JAVA_HOME": str(java), "ES_PATH_CONF": str(config)}
            tool = str(dist / "bin" / "elasticsearch-keystore")
            if not (config / "elasticsearch.keystore").exists():
                subprocess.run([tool, "create"], env=keystore_env, check=True, capture_output=True)
            subprocess.run(
                [tool, "add", "-x", "-f", "bootstrap.password"],
                env=keystore_env,
                input=password,
                text=True,
                check=True,
                capture_output=True,
            )
            secret.write_text(password)
            secret.chmod(0o600)
        else:
            secret.unlink(missing_ok=True)


def _health(url: str, password: str | None = None) -> str | None:
    request = urllib.request.Request(f"{url}/_cluster/health")
    if password:
        request.add_header("Authorization", "Basic " + b64encode(f"elastic:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return str(json.load(response).get("status"))
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _chown_tree(root: Path, user: str) -> None:
    uid = pwd.getpwnam(user).pw_uid
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, -1, follow_symlinks=False)
