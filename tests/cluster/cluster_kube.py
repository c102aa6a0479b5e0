"""A small client of the test control plane's apiserver over HTTPS (no kubernetes package), the
kubeconfig the other components and helm use, and polling with a deadline."""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml
from cluster_pki import Pki

from ragship.local.process import poll


class ClusterError(RuntimeError):
    """The control plane did not come up; the message carries the log tail of the part that failed."""


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a short command, raising with its output on failure."""
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        raise ClusterError(f"{' '.join(args)} failed ({result.returncode}): {result.stdout}{result.stderr}")
    return result


@dataclass
class Kube:
    """A small client of the apiserver over HTTPS with the admin certificate (no kubernetes package)."""

    server: str
    pki: Pki
    _client: httpx.Client | None = field(default=None, repr=False)
    _resources: dict[str, dict[str, tuple[str, bool]]] = field(default_factory=dict, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            # An SSL context: httpx 0.28 does not send a client certificate given as ``cert=`` with a CA path.
            context = ssl.create_default_context(cafile=str(self.pki.ca))
            context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
            self._client = httpx.Client(base_url=self.server, verify=context, timeout=30)
        return self._client

    def get(self, path: str, **params: str) -> dict[str, Any]:
        reply = self.client.get(path, params=params)
        reply.raise_for_status()
        return dict(reply.json())

    def status(self, path: str) -> int:
        return self.client.get(path).status_code

    def path(self, obj: dict[str, Any]) -> str:
        """The REST path of ``obj``, its resource name found by discovery."""
        group_version = obj["apiVersion"]
        prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
        if prefix not in self._resources:
            listing = self.get(prefix)["resources"]
            self._resources[prefix] = {r["kind"]: (r["name"], r["namespaced"]) for r in listing if "/" not in r["name"]}
        resource, namespaced = self._resources[prefix][obj["kind"]]
        meta = obj["metadata"]
        ns = f"/namespaces/{meta['namespace']}" if namespaced else ""
        return f"{prefix}{ns}/{resource}/{meta['name']}"

    def apply(self, obj: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
        """Server-side apply of one object (the apiserver validates it against its schema)."""
        params = {"fieldManager": "ragship-cluster-test", "force": "true"}
        if dry_run:
            params["dryRun"] = "All"
        reply = self.client.patch(
            self.path(obj),
            params=params,
            content=json.dumps(obj),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if reply.status_code >= 300:
            raise ClusterError(f"apply {obj['kind']}/{obj['metadata']['name']}: {reply.status_code} {reply.text}")
        return dict(reply.json())

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def wait_for(what: str, check: Callable[[], bool], timeout_s: float, poll_s: float = 0.5) -> None:
    """Poll ``check`` until it holds (an API error counts as not yet), or raise naming ``what``."""

    def holds() -> bool:
        with contextlib.suppress(httpx.HTTPError, OSError):
            return check()
        return False

    if not poll(holds, timeout_s, poll_s):
        raise ClusterError(f"timed out after {timeout_s:.0f}s waiting for {what}")


def kubeconfig(server: str, pki: Pki) -> str:
    """A kubeconfig for the admin certificate (helm, the controller-manager and KEDA use it)."""
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": server, "certificate-authority": str(pki.ca)}}],
            "users": [
                {"name": "admin", "user": {"client-certificate": str(pki.admin_cert), "client-key": str(pki.admin_key)}}
            ],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
            "current-context": "test",
        }
    )
