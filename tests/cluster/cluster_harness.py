"""A real Kubernetes control plane for the cluster test, without a kubelet: etcd, kube-apiserver,
kube-controller-manager, KEDA's operator and metrics adapter, and a Redis for the queue.

Addresses: etcd, the controller-manager and Redis listen on loopback; everything else that needs an
address other than loopback gets one from a network namespace this harness creates (a veth pair on a
private /30): the apiserver and Redis listen on the host end, KEDA's operator and adapter run inside the
namespace, and the adapter's Endpoints name the namespace end (an Endpoints address cannot be loopback).
:meth:`ControlPlane.stop` kills every process and deletes the namespace, veth pair included.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml
from cluster_kube import ClusterError, Kube, kubeconfig, wait_for
from cluster_netns import NetNs
from cluster_pki import Pki, make_pki

from ragship.local.process import free_port

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "deploy" / "cluster" / "build.py"
# The chart under test: the project's own, unless RAGSHIP_TEST_CHART names another (a chart in progress).
CHART = Path(os.environ.get("RAGSHIP_TEST_CHART") or REPO / "deploy" / "helm" / "ragship")
# Where the timeline and the start-up times land (git ignores .scratch).
RESULTS = REPO / ".scratch" / "test-cluster"


@dataclass
class ControlPlane:
    """Start with :meth:`start`, always :meth:`stop` (a pytest finalizer does)."""

    bins: dict[str, str]
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    netns: NetNs | None = None
    kube: Kube | None = None
    kubeconfig: Path | None = None
    redis_port: int = 0
    redis_password: str = field(default_factory=lambda: secrets.token_hex(12), repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.log(name)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else "(no log)"

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        """Start ``name`` in its own process group, logging to ``logs/NAME.log``."""
        self.log(name).parent.mkdir(parents=True, exist_ok=True)
        with self.log(name).open("wb") as out:
            self.procs[name] = subprocess.Popen(
                args,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def check_alive(self) -> None:
        """Raise with its log tail when a started process has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ClusterError(f"{name} exited with {proc.returncode}:\n{self.tail(name)}")

    def wait(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        start = time.monotonic()

        def alive_and(check: Callable[[], bool] = check) -> bool:
            self.check_alive()
            return check()

        wait_for(what, alive_and, timeout_s)
        self.timings[what] = round(time.monotonic() - start, 1)

    def start(self) -> None:
        self.netns = NetNs.create()
        pki = make_pki(self.workdir / "pki", (self.netns.host_ip, self.netns.ns_ip))
        self._start_etcd()
        self._start_apiserver(pki)
        self._start_controller_manager()
        self._start_redis()
        self._start_keda(pki)

    def _start_etcd(self) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self.spawn(
            "etcd",
            [
                self.bins["etcd"],
                "--name=default",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                f"--initial-cluster=default=http://127.0.0.1:{peer}",
                "--quota-backend-bytes=1073741824",
            ],
            env={"ETCD_UNSUPPORTED_ARCH": "", "ETCD_LOG_LEVEL": "warn"},
        )
        self.wait("etcd", lambda: httpx.get(f"{self.etcd_url}/health", timeout=2).json()["health"] == "true", 30)

    def _start_apiserver(self, pki: Pki) -> None:
        assert self.netns is not None
        port = free_port()
        host = self.netns.host_ip
        self.spawn(
            "kube-apiserver",
            [
                self.bins["kube-apiserver"],
                f"--etcd-servers={self.etcd_url}",
                f"--bind-address={host}",
                f"--advertise-address={host}",
                f"--secure-port={port}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.213.128.0/24",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                # The aggregation layer: the apiserver proxies external.metrics.k8s.io to KEDA's adapter,
                # by its Endpoints address (there is no kube-proxy to route a Service's cluster IP).
                "--enable-aggregator-routing=true",
                f"--requestheader-client-ca-file={pki.ca}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.front_proxy_cert}",
                f"--proxy-client-key-file={pki.front_proxy_key}",
                "--allow-privileged=true",
                "--profiling=false",
                "--endpoint-reconciler-type=none",
            ],
        )
        self.kube = Kube(f"https://{host}:{port}", pki)
        self.kubeconfig = self.workdir / "kubeconfig"
        self.kubeconfig.write_text(kubeconfig(self.kube.server, pki))
        self.kubeconfig.chmod(0o600)
        kube = self.kube
        self.wait("kube-apiserver", lambda: kube.client.get("/readyz").status_code == 200, 120)

    def _start_controller_manager(self) -> None:
        assert self.kube is not None and self.kubeconfig is not None
        pki = self.kube.pki
        self.spawn(
            "kube-controller-manager",
            [
                self.bins["kube-controller-manager"],
                f"--kubeconfig={self.kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={free_port()}",
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                "--controllers=" + ",".join(CONTROLLERS),
                f"--service-account-private-key-file={pki.sa_key}",
                f"--root-ca-file={pki.ca}",
                # The HPA decides every 5 s instead of 15 s: the test watches its decisions.
                "--horizontal-pod-autoscaler-sync-period=5s",
            ],
        )
        kube = self.kube
        self.wait(
            "serviceaccount default/default",
            lambda: kube.status("/api/v1/namespaces/default/serviceaccounts/default") == 200,
            90,
        )

    def _start_redis(self) -> None:
        assert self.netns is not None
        self.redis_port = free_port()
        conf = self.workdir / "redis.conf"
        conf.write_text(
            f'bind 127.0.0.1 {self.netns.host_ip}\nport {self.redis_port}\nprotected-mode no\nsave ""\n'
            f"appendonly no\ndir {self.workdir}\ndaemonize no\nrequirepass {self.redis_password}\n"
        )
        self.spawn("redis", [shutil.which("redis-server") or "redis-server", str(conf)])
        self.wait("redis", lambda: self.redis_cli("PING") == "PONG", 20)

    def redis_cli(self, *args: str) -> str:
        """One Redis command through ``redis-cli`` (the test reads and writes the queue list with it)."""
        out = subprocess.run(
            ["redis-cli", "-p", str(self.redis_port), "--no-auth-warning", "-a", self.redis_password, *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        )
        return out.stdout.strip()

    def _start_keda(self, pki: Pki) -> None:
        assert self.kube is not None and self.kubeconfig is not None and self.netns is not None
        kube, netns = self.kube, self.netns
        for crd in sorted(Path(self.bins["keda-crds"]).glob("*.yaml")):
            kube.apply(yaml.safe_load(crd.read_text()))
        served = lambda: kube.status("/apis/keda.sh/v1alpha1/scaledobjects") == 200  # noqa: E731
        self.wait("KEDA's CRDs served", served, 30)
        certs = self.workdir / "keda-certs"
        certs.mkdir(exist_ok=True)
        for source, target in ((pki.ca, "ca.crt"), (pki.serving_cert, "tls.crt"), (pki.serving_key, "tls.key")):
            shutil.copy(source, certs / target)
        env = {
            "WATCH_NAMESPACE": "",
            "POD_NAMESPACE": "keda",
            "KEDA_CLUSTER_OBJECT_NAMESPACE": "keda",
            "KUBECONFIG": str(self.kubeconfig),
        }
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "keda"}})
        self.spawn(
            "keda-operator",
            netns.exec(
                [
                    self.bins["keda-operator"],
                    f"--kubeconfig={self.kubeconfig}",
                    "--leader-elect=false",
                    "--metrics-bind-address=0",
                    "--health-probe-bind-address=127.0.0.1:18081",
                    "--metrics-service-bind-address=127.0.0.1:9666",
                    f"--cert-dir={certs}",
                    "--enable-cert-rotation=false",
                    "--enable-webhook-patching=false",
                    "--zap-log-level=info",
                ]
            ),
            env=env,
        )
        adapter_port = 6443
        self.spawn(
            "keda-adapter",
            netns.exec(
                [
                    self.bins["keda-adapter"],
                    f"--kubeconfig={self.kubeconfig}",
                    f"--authentication-kubeconfig={self.kubeconfig}",
                    f"--authorization-kubeconfig={self.kubeconfig}",
                    f"--lister-kubeconfig={self.kubeconfig}",
                    f"--bind-address={netns.ns_ip}",
                    f"--secure-port={adapter_port}",
                    f"--tls-cert-file={pki.serving_cert}",
                    f"--tls-private-key-file={pki.serving_key}",
                    f"--cert-dir={certs}",
                    "--metrics-service-address=127.0.0.1:9666",
                    "--port=18082",
                    "--v=2",
                ]
            ),
            env=env,
        )
        ca_bundle = base64.b64encode(pki.ca.read_bytes()).decode()
        svc = {"namespace": "keda", "name": "keda-metrics-apiserver"}
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": svc,
                "spec": {"ports": [{"name": "https", "port": 443, "targetPort": adapter_port}]},
            }
        )
        kube.apply(
            {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": svc,
                "subsets": [{"addresses": [{"ip": netns.ns_ip}], "ports": [{"name": "https", "port": adapter_port}]}],
            }
        )
        kube.apply(
            {
                "apiVersion": "apiregistration.k8s.io/v1",
                "kind": "APIService",
                "metadata": {"name": "v1beta1.external.metrics.k8s.io"},
                "spec": {
                    "service": {**svc, "port": 443},
                    "group": "external.metrics.k8s.io",
                    "version": "v1beta1",
                    "caBundle": ca_bundle,
                    "groupPriorityMinimum": 100,
                    "versionPriority": 100,
                },
            }
        )
        self.wait(
            "external.metrics.k8s.io served by the KEDA adapter",
            lambda: kube.status("/apis/external.metrics.k8s.io/v1beta1") == 200,
            120,
        )

    def stop(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL), then delete the network namespace."""
        if self.kube is not None:
            self.kube.close()
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if self.netns is not None:
            self.netns.delete()


# What the test needs from the controller-manager: Deployments make ReplicaSets make (Pending) Pods, the
# HPAs, and the bookkeeping of namespaces, service accounts, endpoints and garbage.
CONTROLLERS = (
    "deployment-controller",
    "replicaset-controller",
    "horizontal-pod-autoscaler-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "root-ca-certificate-publisher-controller",
    "garbage-collector-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
)


@contextlib.contextmanager
def control_plane(bins: dict[str, str], workdir: Path) -> Iterator[ControlPlane]:
    """A started :class:`ControlPlane`, stopped (namespace deleted) however the block ends."""
    plane = ControlPlane(bins, workdir)
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
