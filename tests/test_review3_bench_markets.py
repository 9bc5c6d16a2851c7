"""Review of bench/sim_process.py `open_markets(lasting_s=…)` (3cb9e2c): at no wall-clock time may the
executor benchmark find no market (`open_markets(lasting_s=MARKET_LASTING_S)[0]`: IndexError). The sim lists
the window in progress and the three after it (and a standing monthly market), so the next window always has
its whole 15 minutes; checked across a window, the sim stepped a minute at a time with the wall clock read
as the sim's. Without `lasting_s` nothing is filtered by the wall clock (a sim started in the past: `--start`)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench import sim_process
from bench.bench_executor import MARKET_LASTING_S
from pmbot.sim.testing import SimServer


def _process(sim: SimServer) -> Any:
    proc: Any = sim_process.SimProcess.__new__(sim_process.SimProcess)
    proc.get = lambda path: sim.state() if path == "/_sim/state" else None
    return proc


def test_a_market_that_lasts_is_there_at_every_point_of_a_window(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    proc = _process(sim)
    monkeypatch.setattr(sim_process, "time", SimpleNamespace(time=sim.now))  # its wall clock only
    seen = []
    for _ in range(16):  # one minute at a time across a whole 15-minute window
        markets = proc.open_markets(lasting_s=MARKET_LASTING_S)
        assert markets, sim.now()
        first = markets[0]
        assert first["end"] - sim.now() >= MARKET_LASTING_S
        assert first["token_ids"] and sim.book(first["token_ids"][0]) is not None
        seen.append(first["slug"])
        sim.advance(60)
    assert len(set(seen)) >= 2  # it moved on to the next window when the current one got too short


def test_without_lasting_s_the_wall_clock_filters_nothing(sim: SimServer) -> None:
    proc = _process(sim)
    assert proc.open_markets() == [m for m in sim.state()["markets"] if not m["closed"]]
    assert any(m["slug"].startswith("btc-updown-15m") for m in proc.open_markets())
