"""Tiny benchmark harness: each benchmark returns Results; the runner prints a table and writes JSON."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    value: float
    unit: str
    goal: str
    passed: bool | None = None  # None: no goal to pass
    peer: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.value == 0:
            return None
        return round(self.peer / self.value, 2)


Benchmark = Callable[[], list[Result]]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def run_pmbot(main: Coroutine[Any, Any, T]) -> T:
    """Run pmbot's side of a benchmark on the event loop its trading commands use (pmbot.event_loop,
    `event_loop = "auto"`: uvloop when installed; PMBOT_EVENT_LOOP=asyncio for a comparison run). Peers
    run on asyncio's own loop (`asyncio.run`), as their users run them, unless a row says otherwise."""
    from pmbot import event_loop

    return event_loop.run(main, pmbot_loop())


def pmbot_loop() -> str:
    """The loop `run_pmbot` runs on, by name (PMBOT_EVENT_LOOP, default "auto")."""
    import os

    return os.environ.get("PMBOT_EVENT_LOOP", "auto")
