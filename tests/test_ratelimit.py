"""Rate limits: documented limits x safety fraction as moving windows, both windows for order endpoints,
Retry-After."""

from __future__ import annotations

import pytest

from pmbot.errors import RateLimitedError
from pmbot.polymarket.ratelimit import POLYMARKET_LIMITS, Limit, RateLimiter, TokenBucket, family_of


class Time:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_families() -> None:
    assert family_of("clob", "POST", "/order") == "clob POST /order"
    assert family_of("clob", "GET", "/auth/derive-api-key") == "clob auth"
    assert family_of("gamma", "GET", "/markets/slug/x") == "gamma GET /markets"
    assert family_of("clob", "GET", "/unknown") is None
    assert POLYMARKET_LIMITS["clob POST /order"] == (Limit(3500, 10), Limit(36000, 600))


def test_bucket_refills_continuously() -> None:
    t = Time()
    bucket = TokenBucket(Limit(10, 10), t, fraction=1)
    for _ in range(10):
        assert bucket.wait_time() == 0
        bucket.take()
    assert bucket.wait_time() == pytest.approx(1.0)
    t.now += 0.5
    assert bucket.wait_time() == pytest.approx(0.5)


async def test_burst_then_waits_at_the_safety_fraction() -> None:
    t = Time()
    limiter = RateLimiter(clock=t, sleep=t.sleep, fraction=0.5, limits={"clob general": (Limit(20, 10),)})
    for _ in range(10):  # 20 x 0.5
        await limiter.acquire("clob", "GET", "/book")
    assert t.slept == []
    await limiter.acquire("clob", "GET", "/book")
    # a moving window: the 11th waits for the first to leave the 10 s window (a bucket let it in after 1 s)
    assert t.slept == [pytest.approx(10.0)] and limiter.waits == 1


async def test_sustained_window_binds_after_the_burst() -> None:
    t = Time()
    limits = {"clob POST /order": (Limit(10, 10), Limit(12, 600))}
    limiter = RateLimiter(clock=t, sleep=t.sleep, fraction=1, limits=limits, max_wait=1000)
    for _ in range(12):
        await limiter.acquire("clob", "POST", "/order")
    # 10 in the first 10 s, 2 more once those left the 10 s window; the 13th waits for the 10-minute window
    assert sum(t.slept) == pytest.approx(10.0)
    before = t.now
    await limiter.acquire("clob", "POST", "/order")
    assert t.now - before == pytest.approx(590.0)


async def test_retry_after_pauses_the_family_and_long_waits_raise() -> None:
    t = Time()
    limiter = RateLimiter(clock=t, sleep=t.sleep, fraction=1, max_wait=5)
    limiter.pause("clob", "POST", "/order", 3)
    await limiter.acquire("clob", "GET", "/book")  # other families are not paused
    assert t.slept == []
    await limiter.acquire("clob", "POST", "/order")
    assert t.slept == [pytest.approx(3.0)]
    limiter.pause("clob", "POST", "/order", 60)
    with pytest.raises(RateLimitedError):
        await limiter.acquire("clob", "POST", "/order")
