"""Backtest throughput: the real sniper, runner and dry-run executor (paper exchange) over the built-in
btc-15m scenario. Goals (issue 14): ≥ 50 000 market events/s through the strategy and paper exchange;
a 24 h scenario in ≤ 60 s (from its file: read, parse, replay)."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from bench.harness import Result
from pmbot.config import Settings
from pmbot.runner.backtest import prepare, run_backtest
from pmbot.runner.core import DecisionLog
from pmbot.sim.generate import write_btc_15m
from pmbot.sim.scenario_file import read_scenario
from pmbot.strategies.snipe import SnipeStrategy

HOURS = 24


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="pmbot-bench-bt-") as tmp:
        path = Path(tmp) / "btc-24h.jsonl"
        t = time.perf_counter()
        write_btc_15m(path, HOURS)
        generated = time.perf_counter() - t
        t = time.perf_counter()
        scenario = read_scenario(path)
        read_s = time.perf_counter() - t
        t = time.perf_counter()
        prepared = prepare(scenario)
        parse_s = time.perf_counter() - t
        log = DecisionLog(None, mode="backtest", run_id="bench")
        t = time.perf_counter()
        res = asyncio.run(
            run_backtest(
                scenario,
                lambda v: SnipeStrategy(v, {}),
                Settings(),
                run_id="bench",
                params={},
                decisions=log,
                prepared=prepared,
            )
        )
        replay_s = time.perf_counter() - t
    total = read_s + parse_s + replay_s
    rate = res.events / replay_s
    note = f"{res.events} events, {res.summary['trades']} trades, pnl {res.summary['pnl']}"
    return [
        Result("backtest replay (strategy + paper)", round(rate), "events/s", ">= 50000", rate >= 50_000, note=note),
        Result(
            "backtest 24h btc-15m from file",
            round(total, 1),
            "s",
            "<= 60",
            total <= 60,
            note=f"read {read_s:.1f} s, parse {parse_s:.1f} s, replay {replay_s:.1f} s",
        ),
        Result("btc-15m 24h scenario generation (offline)", round(generated, 1), "s", "", None),
    ]
