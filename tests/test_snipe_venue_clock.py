"""`pmbot snipe --auto` follows the venue's clock: against `pmbot sim serve --speed 10` (both the real
executables, real sockets, a real SQLite file) it enters a market within bounded wall time.

The sim starts 120 sim-seconds before a window's end, an hour ahead of the wall clock: a runner counting
wall seconds would see that market "ending in an hour" and never enter; one on the venue's clock is in the
entry window (the last 60 s) about 6 wall seconds in."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.store import open_store
from pmbot.store.models import Query
from pmbot.strategies.snipe import ARM_LEAD_S

PMBOT = Path(sys.executable).with_name("pmbot")
WINDOW_S = 900


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(XDG_DATA_HOME=str(home / "xdg"), PMBOT_DATABASE_URL=f"sqlite:///{home / 'pmbot.db'}", COLUMNS="120")
    env.update(extra)
    return env


@pytest.fixture
def fast_sim(tmp_path: Path) -> Iterator[tuple[dict[str, str], float]]:
    """`pmbot sim serve --speed 10`, started 120 sim-s before a window ends, an hour past the wall clock."""
    start = (int(time.time()) // WINDOW_S + 4) * WINDOW_S + WINDOW_S - 120
    proc = subprocess.Popen(
        [str(PMBOT), "sim", "serve", "--port", "0", "--speed", "10", "--start", str(start)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        urls: dict[str, str] = {}
        for line in proc.stdout:
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").strip().partition("=")
                urls[key] = value
            if "(Ctrl-C to stop)" in line:
                break
        assert "PMBOT_CLOB_URL" in urls, proc.stderr.read() if proc.stderr else ""
        yield urls, float(start)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_snipe_auto_enters_a_market_of_a_10x_sim_within_bounded_wall_time(
    tmp_path: Path, fast_sim: tuple[dict[str, str], float]
) -> None:
    urls, start = fast_sim
    home = tmp_path / "home"
    home.mkdir()
    began = time.monotonic()
    out = subprocess.run(
        [str(PMBOT), "snipe", "--auto", "--series", "btc-updown-15m", "--no-live", "--json", "--duration", "16s"],
        cwd=home,
        env=_env(home, **urls),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    took = time.monotonic() - began
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["mode"] == "dry-run" and summary["entries"] >= 1, (summary, out.stderr[-3000:])
    assert took < 45  # bounded: the --duration plus start-up, not the hour a wall-clock runner would wait
    (order, *_) = summary["orders"]
    assert order["status"] == "filled" and order["key"].startswith("snipe-")
    # the entry was made inside the window, on the venue's (sim's) clock
    store = open_store(f"sqlite:///{home / 'pmbot.db'}")
    try:
        (entry, *_) = [d for d in store.list_decisions(mode="dry-run") if d.kind == "signal"]
        end_s = start + 120
        assert end_s - 60 <= entry.ts / 1000 < end_s - 2, (entry.ts, end_s)
        orders = {o.key: o for o in store.list_orders(query=Query(dry_run=True))}
        filled = orders[f"dry-run:{order['key']}"]
        # pre-armed ahead of the window (the executor stamps venue time too), fired inside it
        assert end_s - 60 - ARM_LEAD_S <= filled.created_at / 1000 < entry.ts / 1000
        assert filled.status.value == "filled"
        assert {o.status.value for k, o in orders.items() if k != filled.key} <= {"not_sent"}  # the other side
    finally:
        store.close()
