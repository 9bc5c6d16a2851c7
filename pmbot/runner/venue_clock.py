"""The venue's clock, as seen from here: what time it is where the markets end.

A market ends at the venue's time, not ours. Against Polymarket that is (almost) the wall clock; against an
accelerated `pmbot sim serve --speed 10` it runs ten times faster from wherever the sim started. The runner,
its view and the executor read `VenueClock` instead of the wall clock, so the same strategy code enters on
time against both.

    clock = VenueClock(venue.clob.server_time)   # fetch: async () -> venue epoch seconds (GET /time)
    task = await clock.start()                   # one sample now, then a sample every `every_s` (faster
                                                 # at first) until task.cancel(); a fresh clock is the wall
    clock()                                      # venue epoch seconds now, a drop-in for time.time
    clock.observe(msg_ts_ms)                     # a market-channel message's own timestamp

How it estimates: each `GET /time` sample (sent at wall s, answered at wall r, value t in whole seconds, as
the venue answers) says the venue's time was in [t, t + 1) at some instant in [s, r]. At rate 1 that bounds
the offset venue − wall to (t − r, t + 1 − s); the bounds of recent samples are intersected. If they agree
(the venue runs at our pace, as Polymarket does) the offset is 0 when the bounds allow it (the wall clock
itself whenever the venue does not contradict it, never a second of quantization noise), else their middle. If they
do not agree, the venue runs at another rate (an accelerated sim): offset and rate come from a least-squares
line through the samples' centres, extrapolated between samples. A message timestamp is a lower bound
(the venue had reached it when it sent the message): it moves the estimate forward, within the samples'
own uncertainty, never past it. The time returned never goes backwards by noise (only when a sample
shows the estimate more than a second ahead, or the venue's clock itself went back: a restarted sim).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ClockSample", "VenueClock"]

log = logging.getLogger("pmbot.runner")

_MS_THRESHOLD = 100_000_000_000  # a /time answer above this is milliseconds (a venue might switch to them)
_JUMP_BACK_S = 1.0  # a refit that moves the clock back by more than this is followed (else: held, never back)


@dataclass(frozen=True, slots=True)
class ClockSample:
    sent: float  # wall seconds when the request left
    received: float  # wall seconds when the answer came
    venue: float  # the venue's answer, epoch seconds
    resolution: float  # the answer's granularity: 1.0 for whole seconds


class VenueClock:
    """The venue's time in epoch seconds (`clock()`), estimated from `GET /time` samples and message
    timestamps, extrapolated between them. Without any sample it is the wall clock.

    `fetch` is an async callable returning the venue's epoch time (seconds; milliseconds are detected);
    `wall` the local clock (`time.time`, or a test's); `every_s` the sampling period once settled (the
    first samples come faster, so that a rate other than 1 is known within about a second); `keep` how
    many samples the estimate uses; `rate_tolerance` how far from 1 a fitted rate may be and still be
    taken as 1 (the venue at our pace)."""

    def __init__(
        self,
        fetch: Callable[[], Awaitable[float]] | None = None,
        *,
        wall: Callable[[], float] = time.time,
        every_s: float = 5.0,
        keep: int = 12,
        rate_tolerance: float = 0.02,
    ) -> None:
        self._fetch = fetch
        self._wall = wall
        self.every_s = every_s
        self.rate_tolerance = rate_tolerance
        self._samples: deque[ClockSample] = deque(maxlen=keep)
        # the estimate: venue(w) = base + rate × (w − anchor) + lead; lead ≤ slack (message timestamps)
        self.rate = 1.0
        self._anchor = 0.0
        self._base = 0.0  # with rate 1 and anchor 0: base is the offset venue − wall
        self._slack = 0.0  # how far ahead of the estimate a message may move it (the samples' uncertainty)
        self._lead = 0.0
        self._last = float("-inf")  # the last value returned: time never goes back
        self.failures = 0

    # ------------------------------------------------------------------ reading

    def __call__(self) -> float:
        now = self._estimate(self._wall())
        if now < self._last:
            return self._last
        self._last = now
        return now

    def now_ms(self) -> int:
        return int(self() * 1000)

    @property
    def offset(self) -> float:
        """Venue minus wall, seconds, now."""
        w = self._wall()
        return self._estimate(w) - w

    @property
    def samples(self) -> int:
        return len(self._samples)

    def _estimate(self, w: float) -> float:
        return self._base + self.rate * (w - self._anchor) + self._lead

    # ------------------------------------------------------------------ feeding

    def observe(self, venue_ms: int) -> None:
        """A timestamp the venue put on a message just received: its time had reached it. Moves the
        estimate forward (never more than the samples' uncertainty), never back."""
        w = self._wall()
        behind = venue_ms / 1000 - (self._base + self.rate * (w - self._anchor))
        if behind > self._lead and self._samples:
            self._lead = min(behind, self._slack)

    def add_sample(self, sent: float, received: float, venue: float, *, resolution: float | None = None) -> None:
        """One `GET /time` answer: `venue` (epoch seconds, or milliseconds) answered between wall `sent`
        and `received`. Refits the estimate."""
        if venue > _MS_THRESHOLD:
            venue, res = venue / 1000, 0.001
        else:
            res = 1.0 if float(venue).is_integer() else 0.001
        if resolution is not None:
            res = resolution
        if received < sent:
            sent, received = received, sent
        last = self._samples[-1] if self._samples else None
        if last is not None and venue + res < last.venue:
            self._samples.clear()  # the venue's clock went back (a restarted sim): the old samples are void
        self._samples.append(ClockSample(sent, received, venue, res))
        before = self._estimate(received)
        self._refit()
        if self._estimate(received) < before - _JUMP_BACK_S:
            self._last = float("-inf")  # a real correction, not noise: follow it back

    async def sync(self) -> bool:
        """Take one sample now. False (and the estimate unchanged) when the venue did not answer."""
        if self._fetch is None:
            return False
        sent = self._wall()
        try:
            venue = float(await self._fetch())
        except Exception as e:  # the clock keeps extrapolating; a strategy must not stop for a lost sample
            self.failures += 1
            log.warning("venue clock: GET /time failed (%s); extrapolating", e)
            return False
        self.add_sample(sent, self._wall(), venue)
        return True

    async def start(self) -> asyncio.Task[None]:
        """One sample now (so that what follows reads the venue's time), then `run()` as a task: cancel it
        when done (run_session does both)."""
        await self.sync()
        return asyncio.get_running_loop().create_task(self.run(), name="venue-clock")

    async def run(self) -> None:
        """Sample until cancelled: four quick samples (rate known within about a second), then every `every_s`."""
        for pause in (0.25, 0.25, 0.5):
            await self.sync()
            await asyncio.sleep(pause)
        while True:
            await self.sync()
            await asyncio.sleep(self.every_s)

    # ------------------------------------------------------------------ fitting

    def _refit(self) -> None:
        samples = list(self._samples)
        lo, hi = _bounds(samples)
        if lo > hi and len(samples) >= 3:
            if _bounds(samples[:-1])[0] <= _bounds(samples[:-1])[1]:
                # The newest answer alone disagrees with every earlier one: a glitch or a step of the venue's
                # clock (a restarted sim). Keep the estimate until the next answer tells which.
                return
            odd = _odd_one_out(samples)
            if odd is None:
                odd_regime = _older_regime(samples)
                if odd_regime:  # two regimes at rate 1 (a step): the newer one holds
                    for _ in range(odd_regime):
                        self._samples.popleft()
            else:  # one earlier answer disagrees with all the others, before and after it: a glitch
                del self._samples[odd]
            samples = list(self._samples)
            lo, hi = _bounds(samples)
        if lo <= hi:  # the venue at our pace: offset 0 when the bounds allow it, else their middle
            self.rate, self._anchor, self._base = 1.0, 0.0, 0.0 if lo <= 0.0 <= hi else (lo + hi) / 2
            self._slack = max(0.0, hi - self._base)
            self._lead = 0.0
            return
        rate, anchor, base, spread = _fit(samples)
        if abs(rate - 1.0) <= self.rate_tolerance:
            # the bounds disagree only by noise at our pace (a slow answer): rate 1, the newest sample decides
            newest = samples[-1]
            self.rate, self._anchor = 1.0, 0.0
            self._base = newest.venue + newest.resolution / 2 - (newest.sent + newest.received) / 2
            self._slack = newest.resolution / 2
        else:
            self.rate, self._anchor, self._base = rate, anchor, base
            self._slack = max(spread, samples[-1].resolution / 2)
            # at the fitted rate each sample bounds the venue's time at the anchor, as at rate 1: where the
            # bounds agree their middle is tighter than the line (a rate slightly off makes them disagree)
            lo = max(s.venue - rate * (s.received - anchor) for s in samples)
            hi = min(s.venue + s.resolution - rate * (s.sent - anchor) for s in samples)
            if lo <= hi:
                self._base = (lo + hi) / 2
                self._slack = hi - self._base
        self._lead = 0.0


def _bounds(samples: list[ClockSample]) -> tuple[float, float]:
    """At rate 1, the offset venue − wall that every sample allows: (t − received, t + resolution − sent)."""
    lo = max(s.venue - s.received for s in samples)
    hi = min(s.venue + s.resolution - s.sent for s in samples)
    return lo, hi


def _agree(samples: list[ClockSample]) -> bool:
    lo, hi = _bounds(samples)
    return lo <= hi


def _odd_one_out(samples: list[ClockSample]) -> int | None:
    """The index of the one sample (not the newest) without which all the others agree at rate 1."""
    for i in range(len(samples) - 1):
        if _agree(samples[:i] + samples[i + 1 :]):
            return i
    return None


def _older_regime(samples: list[ClockSample]) -> int:
    """How many of the oldest samples to drop so that the newer ones (two or more) agree at rate 1, when
    the dropped ones agree among themselves too (a step between two rate-1 regimes); 0 if that is not it."""
    for k in range(1, len(samples) - 1):
        if _agree(samples[k:]) and _agree(samples[:k]):
            return k
    return 0


def _fit(samples: list[ClockSample]) -> tuple[float, float, float, float]:
    """Least squares through the samples' centres: (rate, anchor wall, venue at anchor, largest residual)."""
    xs = [(s.sent + s.received) / 2 for s in samples]
    ys = [s.venue + s.resolution / 2 for s in samples]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if n < 2 or var <= 1e-12:
        return 1.0, xs[-1], ys[-1], samples[-1].resolution / 2
    rate = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var
    if rate <= 0:  # the venue's clock went back (a restarted sim): start again from the newest sample
        return 1.0, xs[-1], ys[-1], samples[-1].resolution / 2
    spread = max(abs(y - (my + rate * (x - mx))) for x, y in zip(xs, ys, strict=True))
    return rate, mx, my, spread
