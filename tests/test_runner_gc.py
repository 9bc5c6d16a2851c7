"""GcPacer: while a feed runs, the cyclic collector runs between events on a schedule (not when an
allocation burst, e.g. a window opening, happens to cross a threshold), deferred while an entry may fire."""

from __future__ import annotations

import gc

import pytest

from pmbot.runner import live
from pmbot.runner.live import GcPacer


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_the_collector_runs_on_schedule_between_events_and_is_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    mono = Mono()
    monkeypatch.setattr(live.time, "monotonic", mono)
    assert gc.isenabled()
    pacer = GcPacer(middle_every_s=10, full_every_s=60, max_defer_s=30)
    pacer.begin()
    try:
        assert not gc.isenabled()  # no collection in the middle of an event burst
        mono.t += 1
        assert pacer.step(hot=False) == 0  # the young generation, every step
        mono.t += 10
        assert pacer.step(hot=False) == 1
        mono.t += 1
        assert pacer.step(hot=True) is None  # an armed order may fire any moment: wait
        mono.t += 60
        assert pacer.step(hot=True) == 0  # but never longer than max_defer_s, and then only the cheap one
        assert pacer.step(hot=False) == 2  # quiet again: the full collection that was due
        mono.t += 1
        assert pacer.step(hot=False) == 0
    finally:
        pacer.end()
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert GcPacer().step(hot=False) is None  # not begun: leaves Python's schedule alone


def test_feeds_share_one_collector_and_none_collects_while_another_is_hot(monkeypatch: pytest.MonkeyPatch) -> None:
    mono = Mono()
    monkeypatch.setattr(live.time, "monotonic", mono)
    pacer = GcPacer(max_defer_s=30)
    a, b = object(), object()
    pacer.begin()
    pacer.begin()
    try:
        mono.t += 1
        assert pacer.step(hot=True, source=a) is None
        assert pacer.step(hot=False, source=b) is None  # a's entry may fire: b does not collect either
        assert pacer.step(hot=False, source=a) == 0
        pacer.end(a)
        assert not gc.isenabled()  # b still runs
        mono.t += 1
        assert pacer.step(hot=False, source=b) == 0
    finally:
        pacer.end(b)
    assert gc.isenabled() and gc.get_freeze_count() == 0
    assert GcPacer.shared() is GcPacer.shared()
