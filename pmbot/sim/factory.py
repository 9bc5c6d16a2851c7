"""Build a Venue for a scenario name or a recorded file."""

from __future__ import annotations

import random
from pathlib import Path

from pmbot.errors import InputError
from pmbot.sim import BUILTIN_SCENARIOS
from pmbot.sim.clock import SimClock
from pmbot.sim.faults import Faults
from pmbot.sim.venue import Venue


def make_venue(
    *,
    scenario: str | Path | None = None,
    seed: int,
    start: float,
    speed: float = 1.0,
    manual: bool = False,
    faults: Faults | None = None,
) -> Venue:
    """`scenario`: a built-in name ("btc-15m", the default) or a recorded JSONL file (replayed)."""
    name = str(scenario) if scenario is not None else "btc-15m"
    if name in BUILTIN_SCENARIOS:
        v = Venue(seed=seed, clock=SimClock(start, speed=speed, manual=manual), rng=random.Random(seed), faults=faults)
        v.start_btc_15m()
        return v
    path = Path(name)
    if not path.is_file():
        raise InputError(
            f"unknown scenario {name!r}", hint=f"use {', '.join(BUILTIN_SCENARIOS)} or a recorded .jsonl file"
        )
    from pmbot.sim.replay import Replay
    from pmbot.sim.scenario_file import read_scenario

    recorded = read_scenario(path)
    first = recorded.events[0].ts / 1000 if recorded.events else recorded.created_ms / 1000
    v = Venue(seed=seed, clock=SimClock(first, speed=speed, manual=manual), rng=random.Random(seed), faults=faults)
    Replay(v, recorded).install()
    return v
