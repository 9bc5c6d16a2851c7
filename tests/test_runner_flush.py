"""LiveFeed's decision log writes: about once a second, but while an armed order waits for its trigger at
most every `flush_hot_every_s` (the commit's fsync would delay the entry); nothing is lost meanwhile."""

from __future__ import annotations

from typing import Any

import pytest

from pmbot.runner import live
from pmbot.runner.live import LiveFeed, Targets


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Runner:
    def __init__(self) -> None:
        self.armed: dict[str, object] = {}
        self.pending = 0
        self.written = 0
        self.fail = False

    def flush_decisions(self) -> None:
        if self.fail:
            raise OSError("disk full")
        self.written += self.pending
        self.pending = 0


def feed(runner: Runner) -> LiveFeed:
    none: Any = None
    f = LiveFeed(none, runner, none, none, Targets())  # type: ignore[arg-type]
    f.gc = None
    return f


def test_decisions_wait_while_an_armed_order_may_fire_but_never_longer_than_the_hot_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mono = Mono()
    monkeypatch.setattr(live.time, "monotonic", mono)
    runner = Runner()
    f = feed(runner)
    f.flush_hot_every_s = 10.0
    runner.pending = 3
    mono.t += 1
    assert f.flush_step() and runner.written == 3  # nothing armed: every step writes

    runner.armed["k"] = object()  # an entry may fire any moment
    runner.pending = 2
    for _ in range(9):
        mono.t += 1
        assert not f.flush_step()
    assert runner.written == 3 and runner.pending == 2  # kept, not dropped
    mono.t += 1
    assert f.flush_step() and runner.written == 5  # overdue: written even while hot

    runner.pending = 1
    mono.t += 1
    assert not f.flush_step()
    runner.armed.clear()  # fired or retired: quiet again, written at the next step
    mono.t += 1
    assert f.flush_step() and runner.written == 6


def test_a_failed_write_keeps_the_decisions_and_is_tried_again_at_the_next_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mono = Mono()
    monkeypatch.setattr(live.time, "monotonic", mono)
    runner = Runner()
    f = feed(runner)
    runner.pending, runner.fail = 4, True
    mono.t += 1
    assert not f.flush_step()
    runner.armed["k"] = object()
    runner.fail = False
    mono.t += 1
    assert not f.flush_step()  # hot, and no write has worked since the feed started 2 s ago
    mono.t += f.flush_hot_every_s
    assert f.flush_step() and runner.written == 4
