"""Per-principal limits kept in a real Redis: two replicas draw from one bucket and one in-flight count."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ragship.errors import RateLimitedError
from ragship.local.redis_server import LocalRedis
from ragship.serving.shared_limits import shared_limits
from ragship.settings import Settings, load_settings

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    home: Path = tmp_path_factory.mktemp("shared-limits")
    redis = LocalRedis(load_settings().local_redis, home=home)
    url = redis.start(port=0)
    try:
        yield load_settings(
            home=home,
            queue={"url": url, "namespace": "limits-test"},
            serving={"rate_per_minute": 3, "max_concurrent_per_principal": 2, "shared_limits": True},
        )
    finally:
        redis.remove()


def test_two_replicas_share_one_bucket_per_principal(settings: Settings) -> None:
    a, b = shared_limits(settings), shared_limits(settings)
    for replica in (a, b, a):
        with replica.request("alice"):
            pass
    with pytest.raises(RateLimitedError, match="3 requests per minute") as refused, b.request("alice"):
        pass
    assert refused.value.retry_after_s == 20
    with b.request("bob"):  # another principal has its own bucket
        pass


def test_in_flight_requests_count_across_replicas(settings: Settings) -> None:
    a, b = shared_limits(settings), shared_limits(settings)
    with a.request("carol"), b.request("carol"), pytest.raises(RateLimitedError, match="in flight"):
        a.request("carol").__enter__()
    # released on the way out: the count is back to zero (the bucket still has one token)
    assert int(a.client.get(a._key("carol", "inflight"))) == 0


def test_an_unreachable_redis_lets_requests_through(settings: Settings) -> None:
    down = settings.model_copy(update={"queue": settings.queue.model_copy(update={"url": "redis://127.0.0.1:1/0"})})
    with shared_limits(down).request("dave"):
        pass
