"""A document's access groups at indexing: a mark in the document wins, then the settings' path rules.

Marks: a Markdown (or HTML) front matter field ``access: [finance, hr]`` (or ``access: finance``), an HTML
``<meta name="access" content="finance,hr">``, a JSONL record's ``access`` field. Path rules map a glob on
the source name to groups (``reports/finance/**`` -> ``[finance]``); the first matching glob wins.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import yaml

from ragship.errors import ConversionError

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_HTML_META = re.compile(r"<meta\s+name=[\"']access[\"']\s+content=[\"']([^\"']*)[\"']", re.IGNORECASE)
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")

Rules = Mapping[str, Sequence[str]]


def groups_of(value: Any, where: str) -> list[str]:
    """Group names from a mark's value (a list, or a comma-separated string), sorted and checked.

    :raises ConversionError: for a value that is no list of names, naming ``where``.
    """
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list) or not all(isinstance(g, str) and _GROUP.match(g) for g in value):
        raise ConversionError(
            f"{where}: 'access' must be a list of group names (letters, digits, _.:@-), got {value!r}."
        )
    return sorted(set(value))


def front_matter_access(text: str, where: str) -> list[str] | None:
    """The groups a Markdown/HTML front matter (or an HTML access meta tag) names; None when it names none."""
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            data = yaml.safe_load(match.group(1))
        except yaml.YAMLError as e:
            raise ConversionError(f"{where}: the front matter is not valid YAML ({e}).") from e
        if isinstance(data, dict) and "access" in data:
            return groups_of(data["access"], where)
    meta = _HTML_META.search(text[:20_000])
    return groups_of(meta.group(1), where) if meta else None


def rule_access(source: str, rules: Rules) -> list[str] | None:
    """The groups of the first path rule whose glob matches ``source``; None when none does."""
    for pattern, groups in rules.items():
        if fnmatchcase(source, pattern):
            return groups_of(list(groups), f"access rule {pattern!r}")
    return None


def rules_fingerprint(source: str, rules: Rules) -> str:
    """What the path rules decide for ``source``, as a short digest ("" when no rule matches).

    Folded into the source's manifest entry, so changing a rule re-indexes exactly the files it moves.
    """
    groups = rule_access(source, rules)
    if groups is None:
        return ""
    return hashlib.sha256(json.dumps(groups).encode()).hexdigest()[:12]


def declared_groups(source: str, data: bytes, rules: Rules) -> set[str]:
    """Every group a document to index would be marked for (front matter, JSONL records, else path rules).

    The submit route checks these against the submitter's groups before the document reaches the queue.
    """
    suffix = source.rsplit(".", 1)[-1].lower() if "." in source else ""
    text = data.decode("utf-8", errors="replace") if suffix in {"md", "markdown", "html", "htm", "jsonl"} else ""
    found: set[str] = set()
    marked: list[str] | None = None
    if suffix in {"md", "markdown", "html", "htm"}:
        marked = front_matter_access(text, source)
    elif suffix == "jsonl":
        for line_no, line in enumerate(text.splitlines(), start=1):
            try:
                record = json.loads(line) if line.strip() else None
            except json.JSONDecodeError:
                continue  # the converter reports it; it indexes nothing
            if isinstance(record, dict) and "access" in record:
                found.update(groups_of(record["access"], f"{source}:{line_no}"))
    by_rule = rule_access(source, rules)
    found.update(marked if marked is not None else by_rule or [])
    if suffix == "jsonl" and by_rule:
        found.update(by_rule)
    return found
