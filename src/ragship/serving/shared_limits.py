"""Per-principal limits counted in the queue's Redis, so every replica draws from one bucket per principal.

Same contract as :class:`ragship.access.limits.PrincipalLimits` (a token bucket of requests per minute and
a count of requests in flight), kept in Redis by two small Lua scripts that read Redis's own clock, so
replicas with skewed clocks agree. Redis being unreachable must not take the API down with it: the
request is then let through and the outage logged (the in-process limits are the fallback of choice
when that is not acceptable: leave ``serving.shared_limits`` off).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ragship.errors import RateLimitedError
from ragship.settings import Settings

logger = logging.getLogger("ragship.serving.access")

# KEYS[1] bucket hash; ARGV: capacity, tokens per second, ttl. Returns -1 when a token was taken, else
# the seconds until one is back (rounded up).
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local cap, rate, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or cap
local at = tonumber(b[2]) or now
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local wait = -1
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], ttl)
return wait
"""
# KEYS[1] in-flight counter; ARGV: limit, ttl (heals counts left by a killed process). 1: admitted, 0: full.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
if n > tonumber(ARGV[1]) then redis.call('DECR', KEYS[1]) return 0 end
return 1
"""


class RedisLimits:
    """Limits for every principal, shared through Redis.

    :param client: A Redis client (the queue's, with short timeouts).
    :param prefix: Key prefix (the queue's namespace).
    :param per_minute: Requests per minute per principal; 0: none.
    :param concurrent: Requests in flight per principal across replicas; 0: none.
    """

    def __init__(self, client: Any, prefix: str, per_minute: int, concurrent: int) -> None:
        self.client = client
        self.prefix = prefix
        self.per_minute = per_minute
        self.concurrent = concurrent
        self._take = client.register_script(_TAKE)
        self._enter = client.register_script(_ENTER)

    def _key(self, name: str, kind: str) -> str:
        return f"{self.prefix}:limits:{hashlib.sha256(name.encode()).hexdigest()[:24]}:{kind}"

    @contextmanager
    def request(self, name: str) -> Iterator[None]:
        """Hold one request of ``name`` for the block.

        :raises RateLimitedError: over the rate, or with too many requests in flight on all replicas.
        """
        import redis

        entered = False
        try:
            if self.concurrent:
                entered = bool(self._enter(keys=[self._key(name, "inflight")], args=[self.concurrent, 600]))
                if not entered:
                    raise RateLimitedError(
                        f"Principal {name!r} already has {self.concurrent} requests in flight; retry in 1 s.", 1
                    )
            if self.per_minute:
                wait = int(
                    self._take(keys=[self._key(name, "bucket")], args=[self.per_minute, self.per_minute / 60, 120])
                )
                if wait >= 0:
                    raise RateLimitedError(
                        f"Principal {name!r} is over its {self.per_minute} requests per minute; retry in {wait} s.",
                        max(wait, 1),
                    )
        except RateLimitedError:
            if entered:
                self._leave(name)
            raise
        except redis.RedisError as e:
            logger.warning("shared limits unavailable, request let through: %s", type(e).__name__)
        try:
            yield
        finally:
            if entered:
                self._leave(name)

    def _leave(self, name: str) -> None:
        import redis

        try:
            self.client.decr(self._key(name, "inflight"))
        except redis.RedisError as e:
            logger.warning("shared limits unavailable, in-flight count left to expire: %s", type(e).__name__)


def shared_limits(settings: Settings) -> RedisLimits:
    """The Redis-backed limits of ``settings`` (the queue's Redis, short timeouts: a request never waits long)."""
    from ragship.queue.broker import redis_client

    queue = settings.queue.model_copy(update={"timeout_s": min(settings.queue.timeout_s, 0.5)})
    serving = settings.serving
    return RedisLimits(
        redis_client(queue), queue.namespace, serving.rate_per_minute, serving.max_concurrent_per_principal
    )
