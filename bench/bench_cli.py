"""CLI start-up: `pmbot --help` must stay fast (heavy libraries and settings are imported lazily)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Result, median

RUNS = 20
GOAL_MS = 250


def _pmbot() -> list[str]:
    """The installed console script, as an operator runs it; `python -m pmbot` if there is none."""
    script = Path(sys.executable).parent / "pmbot"
    if script.exists():
        return [str(script)]
    found = shutil.which("pmbot")
    return [found] if found else [sys.executable, "-m", "pmbot"]


def _wall_ms(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, check=True)
    return (time.perf_counter() - t) * 1000


def run() -> list[Result]:
    cmd = [*_pmbot(), "--help"]
    _wall_ms(cmd)  # warm the page cache: the first run after an install reads every file from disk
    runs = [_wall_ms(cmd) for _ in range(RUNS)]
    peer = [_wall_ms([sys.executable, "-c", "import web3, polymarket"]) for _ in range(3)]
    value = round(median(runs))
    return [
        Result(
            "cli: pmbot --help wall time",
            value,
            "ms",
            f"median ≤ {GOAL_MS} ms; no web3/clob/settings imports",
            value <= GOAL_MS,
            peer=round(median(peer)),
            note=f"median of {RUNS} runs of `pmbot --help` (min {min(runs):.0f}, max {max(runs):.0f} ms); "
            "peer: a process that merely imports web3 + polymarket (polymarket-client, the official SDK)",
        ),
    ]
