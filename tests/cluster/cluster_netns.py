"""The network namespace of the cluster test: every address other than loopback that the test uses
belongs to it (a veth pair on a private /30), and deleting it removes them."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from cluster_kube import ClusterError, run


@dataclass
class NetNs:
    """A network namespace joined to the host by a veth pair on ``10.213.<n>.0/30``."""

    name: str
    host_ip: str
    ns_ip: str
    host_if: str

    @classmethod
    def create(cls) -> NetNs:
        """A namespace named after this process, on the first /30 no interface of this host uses."""
        used = run(["ip", "-o", "-4", "addr", "show"]).stdout
        tag = f"{os.getpid() % 0xFFFF:04x}"
        for n in range(0, 256, 4):
            if f" 10.213.{n}." not in used:
                break
        else:
            raise ClusterError("no free 10.213.x.0/30 for the test's network namespace")
        netns = cls(f"ragship-ct-{tag}", f"10.213.{n}.1", f"10.213.{n}.2", f"rsct{tag}h")
        peer = f"rsct{tag}n"
        run(["ip", "netns", "add", netns.name])
        try:
            run(["ip", "link", "add", netns.host_if, "type", "veth", "peer", "name", peer])
            run(["ip", "link", "set", peer, "netns", netns.name])
            run(["ip", "addr", "add", f"{netns.host_ip}/30", "dev", netns.host_if])
            run(["ip", "link", "set", netns.host_if, "up"])
            run(netns.exec(["ip", "addr", "add", f"{netns.ns_ip}/30", "dev", peer]))
            run(netns.exec(["ip", "link", "set", peer, "up"]))
            run(netns.exec(["ip", "link", "set", "lo", "up"]))
        except ClusterError:
            netns.delete()
            raise
        return netns

    def exec(self, args: list[str]) -> list[str]:
        """``args`` run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *args]

    def delete(self) -> None:
        """Delete the namespace (its veth end goes with it, and the host end with the pair)."""
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
