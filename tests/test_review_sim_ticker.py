"""Review of the sim's real-time ticker (it sleeps until `Venue.next_due()`): a venue with nothing phased
to do must not make it wake every millisecond."""

from __future__ import annotations

import random

from pmbot.sim.clock import SimClock
from pmbot.sim.replay import Replay
from pmbot.sim.scenario_file import RecordedEvent, RecordedScenario
from pmbot.sim.venue import Venue

START = 1_795_000_000.0


def _wait_after(v: Venue, wall: list[float], seconds: float) -> float:
    """What the ticker would sleep (sim seconds, before its 1 ms floor) after the wall moved `seconds`."""
    wall[0] = seconds
    v.step_to(v.clock.now())
    return v.next_due() - v.clock.now()


def test_a_replay_does_not_make_the_ticker_wake_every_millisecond() -> None:
    """A replayed scenario never advances `t_done` (its events go out by their own stamps): `next_due()` was
    `t_done + 1`, in the past one second in, so the ticker slept its 1 ms floor (1000 wake-ups a second,
    each a step) for the rest of the replay instead of TICK_SECONDS."""
    wall = [0.0]
    v = Venue(seed=1, clock=SimClock(START, wall=lambda: wall[0]), rng=random.Random(1))
    events = [RecordedEvent(int((START + 30) * 1000), "rtds", {"topic": "crypto_prices", "type": "update"})]
    Replay(v, RecordedScenario(created_ms=int(START * 1000), markets=[], events=events)).install()
    assert _wait_after(v, wall, 0.5) > 0
    assert _wait_after(v, wall, 5.0) > 0, "nothing is due: the ticker must not spin at its floor"


def test_a_venue_without_a_price_path_does_not_make_the_ticker_spin() -> None:
    """The same for a venue that was never given a scenario (no price path: `step_to` does nothing)."""
    wall = [0.0]
    v = Venue(seed=1, clock=SimClock(START, wall=lambda: wall[0]), rng=random.Random(1))
    assert _wait_after(v, wall, 5.0) > 0
