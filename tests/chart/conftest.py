"""The Helm chart's offline checks: `helm lint`, `helm template`, and `kubeconform -strict` against pinned
Kubernetes, KEDA and ServiceMonitor schemas. The tools and schemas come from `make k8s-tools` (.tools/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_helpers import CHART, NAMESPACE, RELEASE, SCHEMA_FILE, TOOLS, Result, Tools, run, values_args


@pytest.fixture(scope="session")
def tools() -> Tools:
    found = Tools(
        helm=TOOLS / "bin" / "helm",
        kubeconform=TOOLS / "bin" / "kubeconform",
        schema_dirs=tuple(sorted(p for p in (TOOLS / "schemas").glob("*") if p.is_dir())),
    )
    sources = {d.name.rsplit("-", 1)[0] for d in found.schema_dirs}
    missing = [str(p) for p in (found.helm, found.kubeconform) if not p.exists()]
    missing += [f"schemas of {s}" for s in ("kubernetes", "keda", "prometheus-operator") if s not in sources]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run `make k8s-tools` (Go and the module proxy needed once)")
    return found


@pytest.fixture
def helm_template(tools: Tools, tmp_path: Path) -> Callable[..., Result]:
    """`helm template` of the chart with value files from tests/chart/values and extra values."""

    def _template(*files: str, values: dict[str, Any] | None = None) -> Result:
        return run(
            [
                *(
                    tools.helm,
                    "template",
                    RELEASE,
                    CHART,
                    "--namespace",
                    NAMESPACE,
                    "--kube-version",
                    tools.kube_version,
                ),
                *values_args(list(files), values, tmp_path),
            ]
        )

    return _template


@pytest.fixture
def render(helm_template: Callable[..., Result]) -> Callable[..., list[dict[str, Any]]]:
    """The rendered objects (helm must succeed)."""

    def _render(*files: str, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        result = helm_template(*files, values=values)
        assert result.returncode == 0, result.output
        return [doc for doc in yaml.safe_load_all(result.output) if doc]

    return _render


@pytest.fixture
def kubeconform(tools: Tools) -> Callable[[str], tuple[Result, list[dict[str, Any]]]]:
    """Validate manifests strictly: unknown fields and wrong types fail, and so does a kind without a schema."""

    def _validate(manifests: str) -> tuple[Result, list[dict[str, Any]]]:
        argv: list[str | Path] = [tools.kubeconform, "-strict", "-verbose", "-output", "json"]
        for schema_dir in tools.schema_dirs:
            argv += ["-schema-location", f"{schema_dir}/{SCHEMA_FILE}"]
        result = run(argv, stdin=manifests)
        return result, json.loads(result.output)["resources"] if result.output.startswith("{") else []

    return _validate
