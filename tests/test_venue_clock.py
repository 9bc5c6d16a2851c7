"""VenueClock: the venue's time from `GET /time` samples (whole seconds) and message timestamps.

A fake wall clock and a fake venue (offset, rate, whole-second answers as Polymarket and the sim give),
so every expectation is exact arithmetic, no sleeping."""

from __future__ import annotations

import math

import pytest

from pmbot.runner.venue_clock import VenueClock


class Wall:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeVenue:
    """venue(w) = start + rate × (w − w0), answered as whole seconds after `rtt`/2."""

    def __init__(self, wall: Wall, *, start: float, rate: float, rtt: float = 0.002) -> None:
        self.wall, self.start, self.rate, self.rtt, self.w0 = wall, start, rate, rtt, wall.t

    def true(self, w: float | None = None) -> float:
        return self.start + self.rate * ((self.wall.t if w is None else w) - self.w0)

    def sample(self, clock: VenueClock) -> None:
        sent = self.wall.t
        value = math.floor(self.true(sent + self.rtt / 2))
        clock.add_sample(sent, sent + self.rtt, value)


def test_without_samples_it_is_the_wall_clock() -> None:
    wall = Wall()
    clock = VenueClock(wall=wall)
    assert clock() == wall.t and clock.rate == 1.0 and clock.offset == 0.0


def test_a_venue_at_our_pace_leaves_the_wall_clock_exactly() -> None:
    wall = Wall(1_800_000_000.37)
    venue = FakeVenue(wall, start=wall.t + 0.2, rate=1.0)  # 0.2 s ahead: inside a whole second's doubt
    clock = VenueClock(wall=wall)
    for _ in range(30):
        venue.sample(clock)
        wall.t += 1.7
    assert clock.rate == 1.0
    # 0 is inside every sample's bounds until they exclude it; then the bound closest to 0
    assert abs(clock() - venue.true()) <= 0.25
    exact = VenueClock(wall=wall)
    same = FakeVenue(wall, start=wall.t, rate=1.0)
    for _ in range(12):
        same.sample(exact)
        wall.t += 5.3
    assert exact() == wall.t  # the real venue, in sync with us: not a microsecond of quantization noise


def test_a_venue_clock_far_off_ours_is_followed_at_rate_one() -> None:
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t - 3600.0, rate=1.0)  # a sim started an hour back, at 1x
    clock = VenueClock(wall=wall)
    for _ in range(5):
        venue.sample(clock)
        wall.t += 2.1
    assert clock.rate == 1.0
    assert abs(clock() - venue.true()) < 1.0


@pytest.mark.parametrize("rate", [10.0, 3.0, 0.5, 60.0])
def test_an_accelerated_venue_is_extrapolated_between_samples(rate: float) -> None:
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t + 7200.0, rate=rate)
    clock = VenueClock(wall=wall)
    for dt in (0.25, 0.25, 0.5, 5, 5, 5, 5, 5, 5):
        venue.sample(clock)
        wall.t += dt
    assert clock.rate == pytest.approx(rate, rel=0.03)
    for _ in range(4):  # between samples: extrapolated, within the answers' own resolution
        wall.t += 1.0
        assert abs(clock() - venue.true()) < 1.0 + 0.03 * rate


def test_message_timestamps_move_it_forward_within_the_samples_doubt() -> None:
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t + 100.0, rate=10.0)
    clock = VenueClock(wall=wall)
    for dt in (0.25, 0.25, 0.5, 5, 5, 5):
        venue.sample(clock)
        wall.t += dt
    truth = venue.true()
    assert abs(clock() - truth) < 0.5
    wall.t += 0.05
    truth = venue.true()
    clock.observe(int(truth * 1000))  # a message stamped now: the clock is not behind it
    assert truth - 0.001 <= clock() < truth + 0.5
    clock.observe(int((truth + 3600) * 1000))  # a wild timestamp moves it no further than the doubt
    assert clock() - truth < 1.0


def test_it_never_goes_back_by_noise_but_follows_a_restarted_sim() -> None:
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t + 50.0, rate=10.0)
    clock = VenueClock(wall=wall)
    seen: list[float] = []
    for dt in (0.25, 0.25, 0.5, 5, 5, 5, 5, 5):
        venue.sample(clock)
        seen.append(clock())
        wall.t += dt
        seen.append(clock())
    assert seen == sorted(seen)
    restarted = FakeVenue(wall, start=wall.t - 10_000.0, rate=1.0)  # the sim restarted in the past
    restarted.sample(clock)
    assert abs(clock() - restarted.true()) < 1.0


def test_milliseconds_answers_are_recognised() -> None:
    wall = Wall()
    clock = VenueClock(wall=wall)
    clock.add_sample(wall.t, wall.t + 0.001, (wall.t - 30.0) * 1000)
    assert abs(clock() - (wall.t - 30.0)) < 0.01


async def test_sync_survives_a_venue_that_does_not_answer() -> None:
    wall = Wall()

    async def down() -> float:
        raise OSError("connection refused")

    clock = VenueClock(down, wall=wall)
    assert await clock.sync() is False and clock.failures == 1 and clock() == wall.t

    async def up() -> float:
        return float(int(wall.t) - 500)

    clock = VenueClock(up, wall=wall)
    assert await clock.sync() is True and abs(clock() - (wall.t - 500)) < 1.0


def test_one_wild_answer_is_ignored_not_fitted() -> None:
    """A sample paired with the wrong instant (a manual sim stepped mid-request, a glitch): held back, then
    dropped once the next answers agree with the earlier ones. The clock never takes a wild rate."""
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t, rate=1.0)
    clock = VenueClock(wall=wall)
    for _ in range(5):
        venue.sample(clock)
        wall.t += 5.0
    clock.add_sample(wall.t, wall.t + 0.001, math.floor(wall.t) + 835.0)  # 835 s off
    assert clock.rate == 1.0 and clock() == wall.t
    for _ in range(2):
        wall.t += 5.0
        venue.sample(clock)
        assert clock.rate == 1.0 and clock() == wall.t


def test_a_step_of_a_venue_at_our_pace_is_followed_at_rate_one() -> None:
    wall = Wall()
    venue = FakeVenue(wall, start=wall.t, rate=1.0)
    clock = VenueClock(wall=wall)
    for _ in range(5):
        venue.sample(clock)
        wall.t += 5.0
    stepped = FakeVenue(wall, start=wall.t + 600.0, rate=1.0)  # e.g. a sim restarted 10 minutes later
    for _ in range(3):
        stepped.sample(clock)
        wall.t += 5.0
    assert clock.rate == 1.0 and abs(clock() - stepped.true()) < 1.0


async def test_start_samples_at_once_then_keeps_sampling_until_cancelled() -> None:
    import asyncio

    wall = Wall()
    calls: list[float] = []

    async def fetch() -> float:
        calls.append(wall.t)
        return float(int(wall.t) + 3600)

    clock = VenueClock(fetch, wall=wall)
    task = await clock.start()
    assert len(calls) == 1 and abs(clock() - (wall.t + 3600)) < 1.0  # read right after start: venue time
    await asyncio.sleep(0.3)
    assert len(calls) >= 2
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
