"""Prometheus metrics created on first use.

BentoML sets prometheus_client's multiprocess directory only after a service module is imported, so a metric
created at import would write to the wrong place; a holder makes its metrics when one is first read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class LazyMetrics:
    """Attribute access to the metrics ``make`` returns (name -> metric), made once, on first access."""

    def __init__(self, make: Callable[[], dict[str, Any]]) -> None:
        self._make = make
        self._made: dict[str, Any] | None = None
        self._lock = threading.Lock()  # two threads' first reads must not register a metric twice

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._made is None:
                self._made = self._make()
        try:
            return self._made[name]
        except KeyError:
            raise AttributeError(name) from None
