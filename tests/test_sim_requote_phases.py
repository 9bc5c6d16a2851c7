"""The sim's market maker in real time: each market requotes once a second at its own phase of the second
(not every book at the second's start, which sent the whole second's book traffic as one burst). Manual
clocks (the tests' and the benchmarks' stepping) keep every requote at the second's start."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from pmbot.sim.clock import SimClock
from pmbot.sim.factory import make_venue
from pmbot.sim.scenario import make_market, window_start
from pmbot.sim.venue import Venue, _phase

START = 1_795_000_000.0  # 400 s into a window: the current market has an opening price


def realtime_venue(seed: int = 7) -> tuple[Venue, list[float]]:
    """A real-time venue whose wall clock is a list cell the test moves (no sleeping)."""
    wall = [0.0]
    v = Venue(seed=seed, clock=SimClock(START, wall=lambda: wall[0]), rng=random.Random(seed))
    v.start_btc_15m()
    ws = window_start(int(START))
    for i in range(5):  # more markets of the current window (as the run-all benchmark adds 199)
        m = make_market(10_000 + i, ws, "v2")
        assert v.path is not None
        m.open_price = v.path.chainlink_at(m.start_ts)
        v.add_market(m)
    return v, wall


def record_requotes(v: Venue) -> list[tuple[str, float]]:
    seen: list[tuple[str, float]] = []
    requote = v._requote

    def spy(m: Any, s: int) -> None:
        seen.append((m.condition_id, v.now()))
        requote(m, s)

    v._requote = spy  # type: ignore[method-assign]
    return seen


def quoted_each_second(v: Venue) -> list[Any]:
    """The markets requoted every second (upcoming windows are quoted every 10 s only)."""
    return [m for m in v.open_markets(v.clock.now()) if m.open_price is not None]


def test_each_market_requotes_once_a_second_at_its_own_phase() -> None:
    v, wall = realtime_venue()
    seen = record_requotes(v)
    markets = quoted_each_second(v)
    assert len(markets) == 6
    for i in range(1, 301):  # 3 s in 10 ms ticks
        wall[0] = i / 100
        v.step_to(v.clock.now())
    per_market = Counter(cid for cid, t in seen if START + 1 <= t < START + 3)
    assert {m.condition_id: per_market[m.condition_id] for m in markets} == {m.condition_id: 2 for m in markets}
    for cid, t in seen:
        m = v.market_by_cid(cid)
        assert m is not None
        assert abs((t - int(t)) - _phase(m)) < 1e-6, "a requote runs at its market's phase of the second"
    assert len({round(_phase(m), 3) for m in markets}) == len(markets), "the markets' phases differ"
    times = [t for _, t in seen]
    assert times == sorted(times)


def test_requotes_are_not_run_before_their_moment() -> None:
    v, wall = realtime_venue()
    seen = record_requotes(v)
    markets = quoted_each_second(v)
    wall[0] = 1.0  # the second START+1 has begun: none of its requotes is due before its phase
    v.step_to(v.clock.now())
    assert all(t <= START + 1.0 for _, t in seen)
    first = min(_phase(m) for m in markets)
    assert v.next_due() == START + 1 + first
    wall[0] = 1.0 + first
    v.step_to(v.clock.now())
    assert seen[-1][1] == START + 1 + first


def test_catching_up_runs_every_seconds_requotes_in_order() -> None:
    v, wall = realtime_venue()
    seen = record_requotes(v)
    markets = quoted_each_second(v)
    wall[0] = 3.999  # one step over nearly 4 s (a blocked loop): seconds 1–3, each market in each second
    v.step_to(v.clock.now())
    counts = Counter((cid, int(t)) for cid, t in seen)
    for m in markets:
        for s in (1, 2, 3):
            assert counts[(m.condition_id, int(START) + s)] == 1
    assert [t for _, t in seen] == sorted(t for _, t in seen)
    assert v.t_done == int(START) + 3


def test_a_market_closed_mid_second_is_not_requoted() -> None:
    v, wall = realtime_venue()
    seen = record_requotes(v)
    wall[0] = 1.0
    v.step_to(v.clock.now())
    m = max(quoted_each_second(v), key=_phase)
    m.closed = True
    wall[0] = 1.999
    v.step_to(v.clock.now())
    assert m.condition_id not in {cid for cid, t in seen if t >= START + 1}


def test_manual_clock_requotes_every_book_at_the_seconds_start() -> None:
    v = make_venue(seed=7, start=START, manual=True)
    assert not v.phased_requotes
    seen = record_requotes(v)
    v.advance(2)
    assert seen and all(t == int(t) for _, t in seen)
    assert v.next_due() == START + 3
