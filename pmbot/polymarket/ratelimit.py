"""Client-side rate limits per endpoint family, sized from Polymarket's documented limits.

Polymarket throttles through Cloudflare on sliding windows (docs: api-reference/rate-limits); going
over means queued or 429'd requests exactly when speed matters, so we stay under the documented
numbers times a safety fraction, over ANY window: each limit is a moving window (a log of the last
`requests` admission times), the model the venue itself uses. Order endpoints have two limits (burst
per 10 s and sustained per 10 min) and a request must fit both. A 429's Retry-After pauses the family.

(A token bucket that starts full and refills at requests/window admits up to twice the limit in its
first window: 5 599 POST /order in 10 s against 3 500 documented. The moving window cannot.)

Why hand-written rather than `limits` (whose moving window is the same algorithm): its in-memory storage
reads the wall clock (`time.time()`, which steps with NTP: after a step back a full window stays full
for as long as the step, and tests cannot inject a clock), inserts at the front of a list (O(window)
per hit, measured 17 µs at 300 k entries, i.e. one minute at 5 000 orders/s, vs 0.56 µs for this
deque) and runs a timer thread every 10 ms. The fleet-wide budget, where several processes must share
one window, does use `limits`' Redis storage (pmbot/executor/budget.py).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

from pmbot.errors import RateLimitedError

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Limit:
    requests: int
    per_seconds: float


_10S = 10.0
_10MIN = 600.0

# Documented limits (docs.polymarket.com/api-reference/rate-limits, as of 2026-11). The family name
# is "<api> <METHOD> <path>" or "<api> general"; every request also counts against its api's general.
POLYMARKET_LIMITS: dict[str, tuple[Limit, ...]] = {
    "clob general": (Limit(9000, _10S),),
    "clob GET /book": (Limit(1500, _10S),),
    "clob POST /books": (Limit(500, _10S),),
    "clob GET /price": (Limit(1500, _10S),),
    "clob GET /midpoint": (Limit(1500, _10S),),
    "clob GET /tick-size": (Limit(200, _10S),),
    "clob GET /neg-risk": (Limit(200, _10S),),
    "clob GET /data/orders": (Limit(500, _10S),),
    "clob GET /data/trades": (Limit(500, _10S),),
    "clob auth": (Limit(100, _10S),),
    "clob POST /order": (Limit(3500, _10S), Limit(36000, _10MIN)),
    "clob DELETE /order": (Limit(3000, _10S), Limit(30000, _10MIN)),
    "clob POST /orders": (Limit(1000, _10S), Limit(15000, _10MIN)),
    "clob DELETE /orders": (Limit(1000, _10S), Limit(15000, _10MIN)),
    "clob DELETE /cancel-all": (Limit(250, _10S), Limit(6000, _10MIN)),
    "clob DELETE /cancel-market-orders": (Limit(1000, _10S), Limit(1500, _10MIN)),
    "gamma general": (Limit(4000, _10S),),
    "gamma GET /markets": (Limit(300, _10S),),
    "gamma GET /events": (Limit(500, _10S),),
    "gamma GET /public-search": (Limit(350, _10S),),
    "data general": (Limit(1000, _10S),),
    "data GET /trades": (Limit(200, _10S),),
    "data GET /positions": (Limit(150, _10S),),
}


def family_of(api: str, method: str, path: str) -> str | None:
    """The specific family a request belongs to, if it has its own limit."""
    if api == "clob" and path.startswith("/auth/"):
        return "clob auth"
    if api == "gamma":
        for prefix in ("/markets", "/events"):
            if path.startswith(prefix):
                return f"gamma GET {prefix}"
    name = f"{api} {method.upper()} {path}"
    return name if name in POLYMARKET_LIMITS else None


class TokenBucket:
    """`capacity` tokens refilled continuously at capacity/per_seconds per second."""

    __slots__ = ("_clock", "capacity", "rate", "stamp", "tokens")

    def __init__(self, limit: Limit, clock: Clock, fraction: Decimal | float = 1) -> None:
        self.capacity = max(1.0, limit.requests * float(fraction))
        self.rate = self.capacity / limit.per_seconds
        self.tokens = self.capacity
        self._clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_time(self, n: float = 1) -> float:
        """Seconds until n tokens are available (0 if now)."""
        self._refill()
        short = n - self.tokens
        return 0.0 if short <= 0 else short / self.rate

    def take(self, n: float = 1) -> None:
        self._refill()
        self.tokens -= n


class MovingWindow:
    """At most `capacity` admissions in any `per_seconds` window (floor of limit x fraction, at least 1).

    The log keeps one timestamp per admission still inside the window, oldest first: a check pops what
    has left the window and compares the count; O(1) amortised per admission."""

    __slots__ = ("_clock", "_log", "capacity", "per_seconds")

    def __init__(self, limit: Limit, clock: Clock, fraction: Decimal | float = 1) -> None:
        self.capacity = max(1, int(Decimal(limit.requests) * Decimal(str(fraction))))
        self.per_seconds = float(limit.per_seconds)
        self._clock = clock
        self._log: deque[float] = deque()

    def wait_time(self) -> float:
        """Seconds until one more admission fits the window (0 if now)."""
        now = self._clock()
        log, start = self._log, now - self.per_seconds
        while log and log[0] <= start:  # an admission at t counts in (t - window, t]: gone at t + window
            log.popleft()
        if len(log) < self.capacity:
            return 0.0
        return max(log[len(log) - self.capacity] + self.per_seconds - now, 1e-6)

    def take(self) -> None:
        self._log.append(self._clock())


class RateLimiter:
    """All windows for one venue. `acquire` waits (up to `max_wait`) until every bucket that applies
    has a token, then takes one from each; a longer wait raises RateLimitedError instead of silently
    stalling a trading decision."""

    def __init__(
        self,
        *,
        clock: Clock,
        sleep: Sleep = asyncio.sleep,
        fraction: Decimal | float = Decimal("0.8"),
        limits: dict[str, tuple[Limit, ...]] | None = None,
        max_wait: float = 30.0,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.max_wait = max_wait
        self._buckets = {
            name: tuple(MovingWindow(lim, clock, fraction) for lim in lims)
            for name, lims in (limits if limits is not None else POLYMARKET_LIMITS).items()
        }
        self._paused_until: dict[str, float] = {}
        self.waits = 0  # how often a caller had to wait: a metric, and a hint to lower the rate

    def buckets_for(self, api: str, method: str, path: str) -> tuple[str, ...]:
        names = [f"{api} general"]
        fam = family_of(api, method, path)
        if fam:
            names.append(fam)
        return tuple(n for n in names if n in self._buckets)

    async def acquire(self, api: str, method: str, path: str, *, max_wait: float | None = None) -> None:
        names = self.buckets_for(api, method, path)
        limit = self.max_wait if max_wait is None else max_wait
        waited = 0.0
        while True:
            now = self._clock()
            wait = max((self._paused_until.get(n, 0.0) - now for n in names), default=0.0)
            for name in names:
                for bucket in self._buckets[name]:
                    wait = max(wait, bucket.wait_time())
            if wait <= 0:
                for name in names:
                    for bucket in self._buckets[name]:
                        bucket.take()
                return
            if waited + wait > limit:
                raise RateLimitedError(
                    f"rate limit for {names[-1]}: would wait {wait:.1f}s more", retry_after=wait, status=None
                )
            self.waits += 1
            waited += wait
            await self._sleep(wait)

    def pause(self, api: str, method: str, path: str, seconds: float) -> None:
        """The venue said 429 Retry-After: hold every request of that family until then."""
        until = self._clock() + max(0.0, seconds)
        for name in self.buckets_for(api, method, path)[-1:]:
            self._paused_until[name] = max(self._paused_until.get(name, 0.0), until)


def parse_retry_after(raw: object) -> float | None:
    """Retry-After (or the body's retry_after_seconds) as seconds ≥ 0; None when absent or unreadable
    (an HTTP date, NaN, garbage): the caller then uses its own pause."""
    try:
        value = float(raw) if isinstance(raw, str | int | float) and raw != "" else None
    except (ValueError, OverflowError):
        return None
    if value is None or value != value:  # NaN
        return None
    return max(0.0, value)
