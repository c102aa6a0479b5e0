"""JSON schemas for ``kubeconform -strict``, written offline from pinned sources (``make k8s-tools``).

Two sources, one output layout (``{kind}{-group}-{version}.json``, kubeconform's ``.ResourceKind`` and
``.KindSuffix``), so one ``-schema-location`` template finds both:

``kubernetes VERSION OUT``
    Kubernetes' own kinds from the ``kubernetes-validate`` package (its ``-strict`` variant already
    says ``additionalProperties: false``). Its files point into a shared ``/api/_definitions.json`` by
    absolute URL, which kubeconform would try to fetch; each file is written standalone instead, with
    the definitions it reaches under ``$defs``.

``crds OUT PATH...``
    CustomResourceDefinitions (files, or folders of them such as KEDA's ``config/crd/bases``): each
    version's ``openAPIV3Schema`` becomes a schema that also rejects unknown fields, except where the CRD says
    ``x-kubernetes-preserve-unknown-fields``. The API server prunes unknown fields of a CRD silently;
    rejecting them here is what catches a misspelt ``pollingInterval``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

DEFS_URL = "/api/_definitions.json#/$defs/"
LOCAL_DEFS = "#/$defs/"


def _walk_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk_refs(item)


def _reached_defs(root: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The definitions ``root`` reaches, directly or through other definitions."""
    reached: dict[str, Any] = {}
    todo = list(_walk_refs(root))
    while todo:
        ref = todo.pop()
        name = ref.rsplit("/", 1)[-1]
        if name in reached or name not in defs:
            continue
        reached[name] = defs[name]
        todo.extend(_walk_refs(defs[name]))
    return reached


def _localise(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: (v.replace(DEFS_URL, LOCAL_DEFS) if k == "$ref" and isinstance(v, str) else _localise(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_localise(v) for v in node]
    return node


def kubernetes_schemas(version: str, out: Path) -> int:
    """Write every top-level kind of Kubernetes ``version`` (e.g. 1.32.0) standalone; return the count."""
    source = files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}-local-strict"
    if not source.is_dir():
        raise SystemExit(f"kubernetes-validate ships no schemas for Kubernetes {version}; pick another version")
    defs = json.loads((source / "_definitions.json").read_text())["$defs"]
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for entry in source.iterdir():
        if entry.name.startswith("_") or entry.name == "all.json":
            continue
        schema = json.loads(entry.read_text())
        # Only kinds one can apply (they carry apiVersion and kind), not their parts (deploymentspec-...).
        if not {"apiVersion", "kind"} <= set(schema.get("properties", {})):
            continue
        schema.pop("$id", None)
        schema["$defs"] = _reached_defs(schema, defs)
        (out / entry.name).write_text(json.dumps(_localise(schema)))
        written += 1
    return written


def strict_crd_schema(node: Any) -> Any:
    """An openAPIV3Schema as a JSON schema that rejects unknown fields and knows int-or-string."""
    if isinstance(node, list):
        return [strict_crd_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    schema = {k: strict_crd_schema(v) for k, v in node.items()}
    if schema.pop("x-kubernetes-int-or-string", False):
        schema.pop("type", None)
        schema["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if schema.pop("nullable", False) and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not preserve:
        schema["additionalProperties"] = False
    return schema


def crd_schemas(paths: list[Path], out: Path) -> list[str]:
    """Write one schema per CRD and version found in ``paths`` (files or folders); return the file names."""
    out.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    found = [p for path in paths for p in (sorted(path.glob("*.yaml")) if path.is_dir() else [path])]
    for path in found:
        for crd in yaml.safe_load_all(path.read_text()):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            kind, group = spec["names"]["kind"].lower(), spec["group"].split(".")[0]
            for version in spec["versions"]:
                schema = strict_crd_schema(version["schema"]["openAPIV3Schema"])
                # metadata is the API server's ObjectMeta, which a CRD leaves open; name it at least.
                schema.setdefault("properties", {})["metadata"] = {"type": "object"}
                schema["properties"]["apiVersion"] = {"enum": [f"{spec['group']}/{version['name']}"]}
                schema["properties"]["kind"] = {"enum": [spec["names"]["kind"]]}
                schema["additionalProperties"] = False
                name = f"{kind}-{group}-{version['name']}.json"
                (out / name).write_text(json.dumps(schema, indent=1))
                names.append(name)
    if not names:
        raise SystemExit(f"no CustomResourceDefinition found in {', '.join(map(str, paths))}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="source", required=True)
    k8s = sub.add_parser("kubernetes", help="Kubernetes kinds from kubernetes-validate")
    k8s.add_argument("version", help="Kubernetes version, e.g. 1.32.0")
    k8s.add_argument("out", type=Path)
    crds = sub.add_parser("crds", help="CRD YAML files or folders (e.g. KEDA's config/crd/bases)")
    crds.add_argument("out", type=Path)
    crds.add_argument("paths", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.source == "kubernetes":
        if not re.fullmatch(r"\d+\.\d+\.\d+", args.version):
            parser.error("version looks like 1.32.0")
        count = kubernetes_schemas(args.version, args.out)
        print(f"{count} Kubernetes {args.version} schemas in {args.out}")
    else:
        names = crd_schemas(args.paths, args.out)
        print(f"{len(names)} CRD schemas in {args.out}: {', '.join(names)}")


if __name__ == "__main__":
    main()
