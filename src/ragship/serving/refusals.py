"""Refused requests: counted on ``/metrics`` by reason, and logged as one JSON line each.

The line names the reason, the route, the status and the principal when it is known; it never holds the
key, the token or a hash of either (the refusal's message is left out: it is for the caller).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

# Its own handler, writing the bare JSON object: log shippers parse each line as it comes, whatever format
# BentoML gives the root logger. Not propagated, so the line is not written twice.
logger = logging.getLogger("ragship.serving.refusals")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


class _Refusals:
    """``ragship_auth_refusals_total{reason}``, made on first use (after BentoML sets up its registry)."""

    _counter: Any = None

    def count(self, reason: str) -> None:
        if self._counter is None:
            from prometheus_client import Counter

            type(self)._counter = Counter(
                "ragship_auth_refusals", "Requests refused by the access guard, by reason.", ["reason"]
            )
        self._counter.labels(reason=reason).inc()


REFUSALS = _Refusals()


def record_refusal(reason: str, *, method: str, route: str, status: int, principal: str | None) -> None:
    """Count one refusal and log it as a JSON line (no label or field per secret, no label per principal).

    :param reason: ``no_credentials``, ``bad_credentials``, ``scope``, ``rate`` or ``submission_cap``.
    :param principal: The principal's name, or None when the credentials did not say who it is.
    """
    REFUSALS.count(reason)
    line = {
        "ts": round(time.time(), 3),
        "event": "refusal",
        "reason": reason,
        "method": method,
        "route": route,
        "status": status,
        "principal": principal,
    }
    logger.warning(json.dumps(line, separators=(",", ":")))
