"""Tiny benchmark harness: each benchmark returns Results; the runner prints a table and writes JSON."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass


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
