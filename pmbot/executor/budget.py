"""Our own orders-per-minute ceiling, on top of the venue's limits.

One process: a local token bucket. A fleet (several pmbot processes on one wallet): the same bucket
kept in Redis and updated atomically by a Lua script that reads Redis's own clock, so N processes
draw from one budget and no process's clock skew can mint extra tokens.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from pmbot.errors import RateLimitedError
from pmbot.polymarket.ratelimit import Limit, TokenBucket

if TYPE_CHECKING:
    import redis.asyncio as aioredis

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
        # capacity `burst`, refilled at per_minute / 60 s
        self._bucket = TokenBucket(Limit(burst, 60.0 * burst / per_minute), clock)
        self._sleep = sleep

    async def acquire(self, max_wait: float = 60.0) -> float:
        waited = 0.0
        while True:
            wait = self._bucket.wait_time()
            if wait <= 0:
                self._bucket.take()
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


class RedisBudget:
    """The fleet-wide bucket for one wallet: `pmbot:budget:<wallet>`."""

    def __init__(self, client: aioredis.Redis, wallet: str, per_minute: int, *, sleep: Sleep = asyncio.sleep) -> None:
        self.per_minute = per_minute
        self._client = client
        self._key = f"pmbot:budget:{wallet.lower()}"
        self._capacity = burst_for(per_minute)
        self._rate_per_ms = per_minute / 60_000.0
        self._script = client.register_script(_TAKE)
        self._sleep = sleep

    async def acquire(self, max_wait: float = 60.0) -> float:
        waited = 0.0
        while True:
            wait_ms = int(await self._script(keys=[self._key], args=[self._capacity, repr(self._rate_per_ms)]))
            if wait_ms <= 0:
                return waited
            wait = wait_ms / 1000
            if waited + wait > max_wait:
                raise RateLimitedError(
                    f"fleet orders/min budget ({self.per_minute}) exhausted", retry_after=wait, status=None
                )
            waited += wait
            await self._sleep(wait)
