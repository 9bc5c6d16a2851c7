"""`pmbot record` records the sim's own streams into a scenario file that `pmbot sim` replays."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx

from pmbot.sim.scenario_file import read_scenario
from pmbot.sim.testing import SimServer
from tests.test_cli import run


def _mid_window() -> float:
    """A sim start 2 minutes into a 15-minute window: a recording of a few (accelerated) seconds stays
    inside one market, whatever the wall clock says (at 20x, 3 s are a simulated minute)."""
    return (time.time() // 900) * 900 + 120


def test_record_then_replay(tmp_path: Path) -> None:
    out = tmp_path / "rec.jsonl"
    # A running (not manual) sim at 20x: books requote and the whale trades while we record.
    with SimServer(seed=3, start=_mid_window(), manual=False, speed=20) as sim:
        current = sim.current_market()
        args = ("record", "--series", "btc-up-or-down-15m", "--markets", "1", "--out", str(out), "-d", "3s")
        result = run(*args, env=sim.env())
        assert result.returncode == 0, result.stderr
        assert "wrote" in result.stdout and current["slug"] in result.stderr
    scenario = read_scenario(out)
    assert [m["slug"] for m in scenario.markets] == [current["slug"]]
    sources = {e.source for e in scenario.events}
    assert sources == {"market", "rtds"}
    market_msgs = [e.data for e in scenario.events if e.source == "market"]
    flat = [m for d in market_msgs for m in (d if isinstance(d, list) else [d])]
    kinds = {m.get("event_type") for m in flat}
    assert "book" in kinds and "price_change" in kinds
    assert {m["asset_id"] for m in flat if m.get("event_type") == "book"} == set(current["token_ids"])
    stamps = [e.ts for e in scenario.events]
    assert stamps == sorted(stamps)

    # Replay it: the books the sim serves come from the recorded book + price_change messages.
    with SimServer(scenario=out, manual=True) as replay:
        replay.advance(10)
        token = current["token_ids"][0]
        book = httpx.get(f"{replay.url}/book", params={"token_id": token}, timeout=5).json()
        assert book["asset_id"] == token and book["bids"] and book["asks"]
        assert Decimal(book["bids"][-1]["price"]) < Decimal(book["asks"][-1]["price"])
        markets = httpx.get(f"{replay.url}/gamma/markets", params={"slug": current["slug"]}, timeout=5).json()
        assert [m["slug"] for m in markets] == [current["slug"]]


def test_record_bad_input_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "x.jsonl"
    r = run("record", "--out", str(out))
    assert r.returncode == 2 and "--token-id" in r.stderr and not out.exists()
    r = run("record", "--out", str(out), "--token-id", "abc")
    assert r.returncode == 2 and "not a token id" in r.stderr and not out.exists()
    out.write_text("keep me")
    r = run("record", "--out", str(out), "--series", "btc-up-or-down-15m")
    assert r.returncode == 2 and "already exists" in r.stderr and out.read_text() == "keep me"
    r = run("record", "--out", str(tmp_path / "nodir" / "x.jsonl"), "--series", "s")
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_record_unknown_token_is_one_line(tmp_path: Path) -> None:
    with SimServer(seed=3, start=time.time()) as sim:
        out = tmp_path / "rec.jsonl"
        r = run("record", "--out", str(out), "--token-id", "123", "-d", "1s", env=sim.env())
        assert r.returncode == 2 and "no market has token id 123" in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_record_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    import os
    import signal

    with SimServer(seed=3, start=_mid_window(), manual=False, speed=5) as sim:
        out = tmp_path / "rec.jsonl"
        env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")} | sim.env()
        proc = subprocess.Popen(
            [sys.executable, "-m", "pmbot", "record", "--series", "btc-up-or-down-15m", "--out", str(out), "--no-rtds"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 20
        # Wait until the recorder is subscribed to the market channel (its first snapshot is then on the
        # way): a recording stopped before any market message is a failed one (exit 2, no file).
        while time.time() < deadline and not sim.call(lambda v: any(c.assets for c in v.hub.market)):
            time.sleep(0.1)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    assert "wrote" in stdout and "Traceback" not in stderr
    assert {e.source for e in read_scenario(out).events} == {"market"}
