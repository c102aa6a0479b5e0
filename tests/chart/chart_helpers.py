"""What the chart tests share besides fixtures: paths, pins, running the tools, reading rendered objects.

A module of its own, since test files cannot import from ``conftest`` (every test folder has one)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "ragship"
VALUES = Path(__file__).resolve().parent / "values"
TOOLS = REPO / ".tools"
RELEASE, NAMESPACE = "rel", "ragship"
# kubeconform's names for a kind's schema file: deployment-apps-v1.json, scaledobject-keda-v1alpha1.json.
SCHEMA_FILE = "{{ .ResourceKind }}{{ .KindSuffix }}.json"


@dataclass(frozen=True)
class Tools:
    helm: Path
    kubeconform: Path
    schema_dirs: tuple[Path, ...]

    @property
    def kube_version(self) -> str:
        """The Kubernetes version of the schemas (Makefile K8S_SCHEMA_VERSION): helm renders for the same one."""
        [kubernetes] = [d for d in self.schema_dirs if d.name.startswith("kubernetes-")]
        return kubernetes.name.removeprefix("kubernetes-")


@dataclass
class Result:
    returncode: int
    output: str


def run(argv: list[str | Path], stdin: str | None = None) -> Result:
    done = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, text=True, timeout=120)
    return Result(done.returncode, done.stdout + done.stderr)


def values_args(files: list[str], values: dict[str, Any] | None, tmp_path: Path) -> list[str | Path]:
    args: list[str | Path] = []
    for name in files:
        args += ["-f", VALUES / f"{name}.yaml"]
    if values:
        extra = tmp_path / "values.yaml"
        extra.write_text(yaml.safe_dump(values))
        args += ["-f", extra]
    return args


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]


def one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name}, found {[o['metadata']['name'] for o in find(objects, kind)]}"
    return found[0]


def container(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"][0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]
