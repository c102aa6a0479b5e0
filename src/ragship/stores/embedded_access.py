"""The embedded store's access condition: which chunks a caller's groups may read, inside the SQL query."""

from __future__ import annotations

from typing import Any

from ragship.access.scope import ACCESS_META, AccessScope


def access_sql(access: AccessScope | None) -> tuple[str, list[Any]]:
    """The SQL condition (`` AND ...`` on the chunk row ``d``) that keeps only what ``access`` may read."""
    if access is None or access.groups is None:
        return "", []
    groups = sorted(access.groups)
    # The groups are a JSON array in the chunk's meta; json_each reads it inside the query, so filtering
    # happens before ranking cuts the candidates, never after.
    clauses = []
    if groups:
        marks = ", ".join("?" * len(groups))
        clauses.append(f"EXISTS (SELECT 1 FROM json_each(d.meta, '$.{ACCESS_META}') WHERE value IN ({marks}))")
    if access.include_unmarked:
        clauses.append(f"coalesce(json_array_length(d.meta, '$.{ACCESS_META}'), 0) = 0")
    return (f" AND ({' OR '.join(clauses)})" if clauses else " AND 0"), list(groups)
