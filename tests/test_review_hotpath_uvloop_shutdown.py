"""Review of the hot path (issue 13): tests/test_run_all_shutdown.py's live bursts stopped by SIGTERM,
SIGKILL and a second signal, with the worker on uvloop, as `pmbot run-all` now runs (`base.run_trading`).

tests/run_all_worker.py calls `asyncio.run`, i.e. asyncio's own loop; here a wrapper around the same
interpreter runs it on `pmbot.event_loop.loop_factory("uvloop")` (and says so in a marker file, so the
test knows the loop it ran on), and the same assertions hold: every intent final, exit 0 (130 for the
second signal) without a traceback, nothing sent without its record, a restart re-sends nothing."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import tests.test_run_all_shutdown as shutdown
from pmbot.sim.testing import SimServer

_RUNNER = """\
import asyncio, os, runpy, sys
from pmbot.event_loop import loop_factory

def run(main, **_):
    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as r:
        with open(os.environ["REVIEW_LOOP_MARK"], "a") as f:
            f.write(type(r.get_loop()).__module__ + "\\n")
        return r.run(main)

asyncio.run = run
assert sys.argv[1] == "-m"
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


@pytest.fixture
def on_uvloop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    runner = tmp_path / "uv_runner.py"
    runner.write_text(_RUNNER)
    wrapper = tmp_path / "python-uvloop"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{runner}" "$@"\n')
    wrapper.chmod(0o755)
    mark = tmp_path / "loops.txt"
    monkeypatch.setenv("REVIEW_LOOP_MARK", str(mark))
    monkeypatch.setattr(sys, "executable", str(wrapper))  # what `spawn` starts
    return mark


def _ran_on_uvloop(mark: Path, runs: int) -> None:
    assert mark.read_text().split() == ["uvloop"] * runs


async def test_sigterm_mid_burst_on_uvloop(sim: SimServer, db_url: str, tmp_path: Path, on_uvloop: Path) -> None:
    await shutdown.test_sigterm_mid_burst_leaves_every_intent_final_and_a_restart_resends_nothing(sim, db_url, tmp_path)
    _ran_on_uvloop(on_uvloop, 2)


async def test_sigkill_mid_burst_on_uvloop(sim: SimServer, db_url: str, tmp_path: Path, on_uvloop: Path) -> None:
    await shutdown.test_sigkill_mid_burst_then_the_restart_reconciles(sim, db_url, tmp_path)
    _ran_on_uvloop(on_uvloop, 2)


async def test_a_second_signal_on_uvloop(sim: SimServer, db_url: str, tmp_path: Path, on_uvloop: Path) -> None:
    await shutdown.test_a_second_signal_exits_at_once_and_loses_no_record(sim, db_url, tmp_path)
    _ran_on_uvloop(on_uvloop, 2)
