"""Build (once) the binaries of the test control plane: kube-apiserver and kube-controller-manager from
the ``k8s.io/kubernetes`` Go module, the KEDA operator and metrics adapter from ``github.com/kedacore/keda/v2``,
and helm; install Debian's etcd when it is missing.

Every version is pinned in ``VERSIONS`` below, the one place. Binaries land in
``<cache>/<component>-<version>/bin`` with a stamp file, so a second run finds them and builds nothing.
The cache is ``/var/cache/ragship/k8s`` as root (like the Elasticsearch nodes), else
``$XDG_CACHE_HOME/ragship/k8s``; ``RAGSHIP_CLUSTER_CACHE`` overrides it.

Usage::

    python deploy/cluster/build.py            # build what is missing, print the paths as JSON
    python deploy/cluster/build.py --print    # print the paths only (fails when something is missing)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# The one place the versions live (the Makefile reads the helm and KEDA pins from here).
# Kubernetes v1.32 is within KEDA v2.17's supported range (1.30-1.32).
VERSIONS = {
    "kubernetes": "v1.32.13",  # kube-apiserver, kube-controller-manager
    "staging": "v0.32.13",  # k8s.io/api, client-go, ... released with kubernetes v1.32.13
    "keda": "v2.17.2",  # operator, metrics adapter, CRDs
    "helm": "v3.17.3",  # built by `make k8s-tools` (the Makefile reads this pin)
    "etcd": "3.4",  # Debian's etcd-server (bookworm: 3.4.23); only the major.minor is checked
}
# Staging modules whose v0.32.13 the module proxy does not serve ("403 This module version is not
# available"): the nearest patch release it does serve. sample-apiserver is only named in the module graph.
STAGING_OVERRIDES = {"k8s.io/endpointslice": "v0.32.12", "k8s.io/sample-apiserver": "v0.32.2"}
GOPROXY = os.environ.get("GOPROXY", "https://proxy.golang.org")
GO = shutil.which("go") or "/usr/local/go/bin/go"


def cache_root() -> Path:
    """Where built binaries are kept between runs."""
    if os.environ.get("RAGSHIP_CLUSTER_CACHE"):
        return Path(os.environ["RAGSHIP_CLUSTER_CACHE"])
    if os.geteuid() == 0:
        return Path("/var/cache/ragship/k8s")
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragship" / "k8s"


def log(msg: str) -> None:
    """Progress on stderr (stdout carries the JSON result)."""
    print(f"[cluster-build] {msg}", file=sys.stderr, flush=True)


def go(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Run the Go tool niced (the machine's CPU is shared), failing loudly with its output."""
    full_env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local", **(env or {})}
    result = subprocess.run(["nice", "-n", "10", GO, *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"go {' '.join(args)} failed in {cwd}:\n{result.stdout}\n{result.stderr}")


def stamped(bin_dir: Path, names: list[str], version: str) -> bool:
    """Whether ``bin_dir`` holds every binary of ``names`` built at ``version``."""
    stamp = bin_dir / ".stamp"
    return stamp.exists() and stamp.read_text().strip() == version and all((bin_dir / n).exists() for n in names)


def stamp(bin_dir: Path, version: str, timings: dict[str, float]) -> None:
    (bin_dir / ".stamp").write_text(version + "\n")
    (bin_dir / "build-times.json").write_text(json.dumps(timings, indent=2) + "\n")


def kubernetes_go_mod(version: str) -> str:
    """``k8s.io/kubernetes``'s own go.mod at ``version`` (from the module proxy)."""
    with urllib.request.urlopen(f"{GOPROXY}/k8s.io/kubernetes/@v/{version}.mod", timeout=60) as reply:
        return str(reply.read().decode())


def build_kubernetes() -> Path:
    """kube-apiserver and kube-controller-manager, from a throwaway wrapper module: it requires
    k8s.io/kubernetes and replaces each staging module (``./staging/...`` in kubernetes' go.mod, which
    ``go install pkg@version`` refuses) with its release of the same Kubernetes version."""
    version, staging = VERSIONS["kubernetes"], VERSIONS["staging"]
    home = cache_root() / f"kubernetes-{version}"
    bin_dir = home / "bin"
    names = ["kube-apiserver", "kube-controller-manager"]
    if stamped(bin_dir, names, version):
        return bin_dir
    src = home / "src"
    src.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    modules = [
        line.split()[0]
        for line in kubernetes_go_mod(version).splitlines()
        if "=> ./staging/" in line and line.split()[0] not in ("k8s.io/sample-cli-plugin", "k8s.io/sample-controller")
    ]
    replaces = "\n".join(f"\t{m} => {m} {STAGING_OVERRIDES.get(m, staging)}" for m in modules)
    (src / "go.mod").write_text(
        f"module ragship.local/k8sbuild\n\ngo 1.23\n\nrequire k8s.io/kubernetes {version}\n\nreplace (\n{replaces}\n)\n"
    )
    (src / "go.sum").touch()
    timings: dict[str, float] = {}
    start = time.monotonic()
    log(f"resolving k8s.io/kubernetes {version} (downloads the module graph)")
    go(["get", *(f"k8s.io/kubernetes/cmd/{n}@{version}" for n in names)], src)
    timings["download"] = round(time.monotonic() - start, 1)
    # Stamp the version the way kubernetes' own build does, so the apiserver reports v1.32.x (helm checks
    # charts' kubeVersion against it; KEDA checks its supported range).
    minor = version.split(".")[1]
    ldflags = " ".join(
        f"-X {pkg}.{key}={value}"
        for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
        for key, value in (("gitVersion", version), ("gitMajor", "1"), ("gitMinor", minor), ("gitTreeState", "clean"))
    )
    for name in names:
        start = time.monotonic()
        log(f"building {name} {version}")
        go(
            [
                "build",
                "-trimpath",
                "-ldflags",
                f"-s -w {ldflags}",
                "-o",
                str(bin_dir / name),
                f"k8s.io/kubernetes/cmd/{name}",
            ],
            src,
        )
        timings[name] = round(time.monotonic() - start, 1)
        log(f"{name}: {timings[name]}s")
    stamp(bin_dir, version, timings)
    return bin_dir


def build_keda() -> Path:
    """KEDA's operator and metrics adapter, built inside a writable copy of the module (so its own go.mod,
    with its replace directives, is the main module), and its CRDs."""
    version = VERSIONS["keda"]
    home = cache_root() / f"keda-{version}"
    bin_dir = home / "bin"
    names = ["keda-operator", "keda-adapter"]
    if stamped(bin_dir, names, version) and (home / "crds").is_dir():
        return bin_dir
    bin_dir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.monotonic()
    log(f"downloading github.com/kedacore/keda/v2 {version}")
    result = subprocess.run(
        [GO, "mod", "download", "-json", f"github.com/kedacore/keda/v2@{version}"],
        capture_output=True,
        text=True,
        cwd=home,
        env={**os.environ, "GOFLAGS": "-mod=mod", "GO111MODULE": "on"},
    )
    if result.returncode != 0:
        raise SystemExit(f"go mod download keda failed:\n{result.stdout}\n{result.stderr}")
    module_dir = Path(json.loads(result.stdout)["Dir"])
    src = home / "src"
    if not (src / "go.mod").exists():
        shutil.rmtree(src, ignore_errors=True)
        shutil.copytree(module_dir, src)
        subprocess.run(["chmod", "-R", "u+w", str(src)], check=True)
    shutil.rmtree(home / "crds", ignore_errors=True)
    shutil.copytree(src / "config" / "crd" / "bases", home / "crds")
    go(["mod", "download"], src)
    timings["download"] = round(time.monotonic() - start, 1)
    ldflags = f"-s -w -X github.com/kedacore/keda/v2/version.Version={version.lstrip('v')}"
    for name, main in (("keda-operator", "./cmd/operator"), ("keda-adapter", "./cmd/adapter")):
        start = time.monotonic()
        log(f"building {name} {version}")
        go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(bin_dir / name), main], src)
        timings[name] = round(time.monotonic() - start, 1)
        log(f"{name}: {timings[name]}s")
    stamp(bin_dir, version, timings)
    return bin_dir


def ensure_etcd() -> Path:
    """Debian's etcd server, installed with apt (as root) when missing."""
    found = shutil.which("etcd") or ("/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if found is None:
        if os.geteuid() != 0 or shutil.which("apt-get") is None:
            raise SystemExit("Needed: etcd (e.g. apt-get install etcd-server)")
        log("installing etcd-server from Debian")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "etcd-server"], check=True, env=env
        )
        found = shutil.which("etcd") or "/usr/bin/etcd"
    return Path(found)


def paths(build: bool) -> dict[str, str]:
    """Every binary the harness starts, building what is missing when ``build``."""
    if build:
        etcd = ensure_etcd()
        k8s, keda = build_kubernetes(), build_keda()
    else:
        etcd = Path(shutil.which("etcd") or "/usr/bin/etcd")
        root = cache_root()
        k8s = root / f"kubernetes-{VERSIONS['kubernetes']}" / "bin"
        keda = root / f"keda-{VERSIONS['keda']}" / "bin"
    found = {
        "etcd": etcd,
        "kube-apiserver": k8s / "kube-apiserver",
        "kube-controller-manager": k8s / "kube-controller-manager",
        "keda-operator": keda / "keda-operator",
        "keda-adapter": keda / "keda-adapter",
        "keda-crds": keda.parent / "crds",
        "helm": Path(__file__).resolve().parents[2] / ".tools" / "bin" / "helm",  # `make k8s-tools` builds it
    }
    missing = [str(p) for p in found.values() if not p.exists()]
    if missing:
        raise SystemExit(f"missing (run deploy/cluster/build.py): {', '.join(missing)}")
    return {k: str(v) for k, v in found.items()} | {"versions": json.dumps(VERSIONS)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--print", action="store_true", help="only print the paths; build nothing")
    args = parser.parse_args()
    print(json.dumps(paths(build=not args.print), indent=2))


if __name__ == "__main__":
    main()
