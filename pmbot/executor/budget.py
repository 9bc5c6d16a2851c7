"""Our own orders-per-minute ceiling, on top of the venue's limits.

`orders_per_minute = N` means at most N orders in ANY 60 s window, and at most a fifth of that at once:

- a moving window of N per 60 s is the limit itself (a log of admissions: exact over every window);
- a token bucket of N/5, refilled at N per minute, shapes bursts: a sniper gets a few orders at once at a
  window's close, and a steady stream flows at N/min instead of N at once then nothing for a minute.

Alone, the bucket (which starts full) admitted burst + N in the first minute (59 for N = 50); the window
is what makes the number a limit.

One process: both in memory. A fleet (several pmbot processes on one wallet): the bucket in Redis,
updated atomically by a Lua script that reads Redis's own clock, and the window through the `limits`
package's Redis moving window (an atomic Lua script over a list of admission times). `limits` stamps
admissions with each process's wall clock: fleet hosts must keep NTP time (a host whose clock jumps
forward can admit at most one extra window's worth before its own entries hold it back).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pmbot.errors import RateLimitedError
from pmbot.polymarket.ratelimit import Limit, MovingWindow, TokenBucket

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from limits.aio.strategies import MovingWindowRateLimiter

_WINDOW_S = 60
Sleep = Callable[[float], Awaitable[None]]


def burst_for(per_minute: int) -> int:
    """A sniper needs a few orders at once at a window's close; a fifth of a minute's budget."""
    return max(1, per_minute // 5)


class OrderBudget(Protocol):
    per_minute: int

    async def acquire(self, max_wait: float = 60.0) -> float:
        """Wait for one order's worth of budget; return the seconds waited."""
        ...


class LocalBudget:
    def __init__(self, per_minute: int, *, clock: Callable[[], float], sleep: Sleep = asyncio.sleep) -> None:
        self.per_minute = per_minute
        burst = burst_for(per_minute)
        # capacity `burst`, refilled at per_minute / 60 s; and the limit: per_minute in any 60 s
        self._bucket = TokenBucket(Limit(burst, 60.0 * burst / per_minute), clock)
        self._window = MovingWindow(Limit(per_minute, _WINDOW_S), clock)
        self._sleep = sleep

    async def acquire(self, max_wait: float = 60.0) -> float:
        waited = 0.0
        while True:
            wait = max(self._bucket.wait_time(), self._window.wait_time())
            if wait <= 0:
                self._bucket.take()
                self._window.take()
                return waited
            if waited + wait > max_wait:
                raise RateLimitedError(
                    f"orders/min budget ({self.per_minute}) exhausted", retry_after=wait, status=None
                )
            waited += wait
            await self._sleep(wait)


# KEYS[1] bucket hash; ARGV: capacity, refill per ms (tokens). Returns 0 when a token was taken, else
# the milliseconds until one is available. Redis TIME is the one clock every process shares.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1])
local stamp = tonumber(b[2])
if tokens == nil then tokens = cap; stamp = now end
if now > stamp then tokens = math.min(cap, tokens + (now - stamp) * rate); stamp = now end
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(stamp))
redis.call('PEXPIRE', KEYS[1], 3600000)
return wait
"""


def redis_window(client: aioredis.Redis, redis_url: str) -> MovingWindowRateLimiter:
    """`limits`' moving window on the fleet's Redis, over `client`'s connection pool (closed with it)."""
    from limits.aio.storage import RedisStorage
    from limits.aio.strategies import MovingWindowRateLimiter

    uri = redis_url if redis_url.startswith("async+") else "async+" + redis_url
    pool: Any = client.connection_pool  # limits types its options as scalars; redis-py takes the pool
    storage = RedisStorage(uri, implementation="redispy", connection_pool=pool)
    return MovingWindowRateLimiter(storage)


class RedisBudget:
    """The fleet-wide budget for one wallet: bucket `pmbot:budget:<wallet>`, window `limits`' key for
    `pmbot-budget/<wallet>`. The bucket is taken first: when it refuses (the usual case under load) no
    window entry is spent; when the window refuses (after a burst) the bucket token is lost, which only
    ever admits less."""

    def __init__(
        self,
        client: aioredis.Redis,
        wallet: str,
        per_minute: int,
        *,
        window: MovingWindowRateLimiter,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        from limits import RateLimitItemPerSecond

        self.per_minute = per_minute
        self._client = client
        self._key = f"pmbot:budget:{wallet.lower()}"
        self._capacity = burst_for(per_minute)
        self._rate_per_ms = per_minute / 60_000.0
        self._script = client.register_script(_TAKE)
        self._window = window
        self._item = RateLimitItemPerSecond(per_minute, _WINDOW_S, namespace="pmbot-budget")
        self._wallet = wallet.lower()
        self._sleep = sleep

    async def _window_wait(self) -> float:
        if await self._window.hit(self._item, self._wallet):
            return 0.0
        stats = await self._window.get_window_stats(self._item, self._wallet)
        return max(stats.reset_time - time.time(), 0.001)

    async def acquire(self, max_wait: float = 60.0) -> float:
        waited = 0.0
        while True:
            wait_ms = int(await self._script(keys=[self._key], args=[self._capacity, repr(self._rate_per_ms)]))
            wait = wait_ms / 1000 if wait_ms > 0 else await self._window_wait()
            if wait <= 0:
                return waited
            if waited + wait > max_wait:
                raise RateLimitedError(
                    f"fleet orders/min budget ({self.per_minute}) exhausted", retry_after=wait, status=None
                )
            waited += wait
            await self._sleep(wait)
