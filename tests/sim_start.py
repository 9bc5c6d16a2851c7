"""Where a manual sim's clock starts, for tests whose CLI children read the wall clock.

`SimServer(start=time.time(), manual=True)` puts the sim wherever the wall clock is in its 15-minute
window: with 2 s left, the "current" market ends during the test (or the CLI, on the wall clock, sees it
end), and the test passes or fails by the minute it ran. Use one of these instead."""

from __future__ import annotations

import time

WINDOW_S = 900


def mid_window(offset_s: float = 120.0) -> float:
    """A start `offset_s` into the wall clock's current window: the sim's own position is fixed (its
    current market has 900 − offset_s seconds left), its time within a window of the real now."""
    return (time.time() // WINDOW_S) * WINDOW_S + offset_s


def now_with_time_left(min_left_s: float = 45.0) -> float:
    """The real now, for tests that compare the sim's markets with the wall clock (`markets
    --closing-within`): when the wall clock's window has less than `min_left_s` left, this waits for the
    next one, so the current market still has that long left by both clocks."""
    left = WINDOW_S - time.time() % WINDOW_S
    if left < min_left_s:
        time.sleep(left + 1.0)
    return time.time()
