"""Per-principal limits: a token bucket of requests per minute, and requests in flight at once.

Counted in this process (each replica enforces its own share); refusals are :class:`RateLimitedError`
(429 with Retry-After).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ragship.errors import RateLimitedError


class PrincipalLimits:
    """Limits for every principal, keyed by name.

    :param per_minute: Requests per period (the bucket refills continuously; bursts up to this); 0: none.
    :param concurrent: Requests in flight at once; 0: none.
    :param period_s: The period ``per_minute`` counts over (60; 3600 for the hourly submission cap).
    :param what: What is counted, for the refusal's message.
    """

    def __init__(
        self, per_minute: int, concurrent: int, period_s: float = 60.0, what: str = "requests per minute"
    ) -> None:
        self.per_minute = per_minute
        self.concurrent = concurrent
        self.period_s = period_s
        self.what = what
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._in_flight: dict[str, int] = {}

    def _take(self, name: str) -> None:
        if not self.per_minute:
            return
        now = time.monotonic()
        rate = self.per_minute / self.period_s
        tokens, at = self._buckets.get(name, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - at) * rate)
        if tokens < 1:
            self._buckets[name] = (tokens, now)
            wait = math.ceil((1 - tokens) / rate)
            raise RateLimitedError(
                f"Principal {name!r} is over its {self.per_minute} {self.what}; retry in {wait} s.", wait
            )
        self._buckets[name] = (tokens - 1, now)

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        """Hold one request of ``name`` for the block.

        :raises RateLimitedError: when it is over its rate or has too many requests in flight.
        """
        with self._lock:
            if self.concurrent and self._in_flight.get(name, 0) >= self.concurrent:
                raise RateLimitedError(
                    f"Principal {name!r} already has {self.concurrent} requests in flight; retry in 1 s.", 1
                )
            self._take(name)
            self._in_flight[name] = self._in_flight.get(name, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight[name] -= 1
