"""Sim time. Injected everywhere instead of time.time(): real-time × speed for demos, manual for tests."""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """now() = start + offset + speed × (wall elapsed), or start + offset when manual.

    Manual mode is what makes tests deterministic: time moves only on `advance`, never by itself.
    """

    def __init__(
        self, start: float, *, speed: float = 1.0, manual: bool = False, wall: Callable[[], float] = time.monotonic
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self.manual = manual
        self._wall = wall
        self._wall0 = wall()
        self._offset = 0.0

    def now(self) -> float:
        if self.manual:
            return self.start + self._offset
        return self.start + self._offset + self.speed * (self._wall() - self._wall0)

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._offset += seconds
