"""The two-group corpus of the access tests: each group's documents hold a marker word no other has.

``finance`` documents say ZORBLAX (marked four ways: front matter, an HTML meta tag, a JSONL record, a path
rule); ``hr`` documents say QUINTESSA; the handbook is unmarked (public under the default).
"""

from __future__ import annotations

import json
from pathlib import Path

FINANCE_MARKER = "zorblax"
HR_MARKER = "quintessa"
# Rules match the whole source name as stored and cited (here an absolute path): hence the leading "*".
RULES = {"*/reports/finance/*": ["finance"]}
FINANCE_NAMES = ("reports/finance/q3.md", "finance-notes.md", "ledger.html", "Q3 zorblax margins", "Ledger zorblax")

FILES = {
    "reports/finance/q3.md": "# Q3 zorblax margins\n\nThe zorblax margin rose by nine points in the third quarter.\n",
    "finance-notes.md": "---\naccess: [finance]\n---\n# Budget notes\n\n"
    "The zorblax budget covers travel and payroll.\n",
    "ledger.html": '<html><head><title>Ledger zorblax</title><meta name="access" content="finance"></head>'
    "<body><p>The zorblax ledger balances every budget line.</p></body></html>",
    "hr/leave.md": "---\naccess: [hr]\n---\n# Leave policy\n\nThe quintessa leave policy grants budget days off.\n",
    "staff.jsonl": json.dumps(
        {"text": "The zorblax payroll tally of the budget.", "title": "Tally", "access": ["finance"]}
    )
    + "\n"
    + json.dumps({"text": "The quintessa onboarding checklist and budget.", "title": "Onboarding", "access": "hr"})
    + "\n",
    "handbook.md": "# Handbook\n\nEveryone reads the handbook; the budget section explains expenses.\n",
}


def write_corpus(root: Path) -> Path:
    """Write the corpus under ``root/corpus`` and return that folder."""
    corpus = root / "corpus"
    for name, text in FILES.items():
        path = corpus / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return corpus


def leaks(body: bytes | str) -> list[str]:
    """The finance marker or names found in a response body (empty: nothing of finance's leaked)."""
    text = (body.decode() if isinstance(body, bytes) else body).lower()
    return [name for name in (FINANCE_MARKER, *(n.lower() for n in FINANCE_NAMES)) if name in text]
