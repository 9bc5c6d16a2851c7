"""`pmbot run-all` stopped by a signal in the middle of a 1 000-intent burst (tests/run_all_worker.py, a
process of its own, live against `pmbot sim`): SIGTERM → exit 0, every intent has a final state (resting
orders cancelled), a restart re-sends nothing; SIGKILL → the restart reconciles what was left open."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import OrderRecord, OrderStatus, Query
from tests.test_executor import KEY, Rig, intent, settings_for
from tests.test_executor_reliability import WORKER_LIMITS, eventually, venue_view

REPO = Path(__file__).resolve().parents[1]
COUNT = 1000


def spawn(sim: SimServer, db_url: str, tmp: Path, *extra: str) -> subprocess.Popen[str]:
    m = sim.current_market()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env())
    env.update(WORKER_LIMITS)
    env.update({
        "PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url, "PYTHONPATH": str(REPO),
        "PMBOT_EXECUTOR__HEARTBEAT": "false", "HOME": str(tmp / "home"), "XDG_DATA_HOME": str(tmp / "xdg"),
    })  # fmt: skip
    cmd = [sys.executable, "-m", "tests.run_all_worker", "--condition", m["condition_id"],
           "--tokens", ",".join(m["token_ids"]), "--count", str(COUNT), "--per-tick", "20",
           "--sim-now", repr(sim.now()), "--live", *extra]  # fmt: skip
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def finish(proc: subprocess.Popen[str], timeout: float = 90.0) -> tuple[int, str, str]:
    try:
        out, err = await asyncio.to_thread(proc.communicate, timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def orders(db_url: str) -> dict[str, OrderRecord]:
    store = open_store(db_url)
    try:
        return {r.key: r for r in store.list_orders(query=Query(dry_run=False))}
    finally:
        store.close()


def hashes_by_key(sim: SimServer) -> list[str]:
    return venue_view(sim).hashes


def assert_restart_resends_nothing(sim: SimServer, before: dict[str, OrderRecord], after: dict[str, OrderRecord],
                                   received_before: list[str]) -> None:  # fmt: skip
    """Every POST of the second run is an intent the first never sent (new, or stored not_sent); what the
    first run sent keeps its order hash."""
    received = hashes_by_key(sim)
    assert received[: len(received_before)] == received_before
    new = received[len(received_before) :]
    assert len(new) == len(set(new))
    by_hash = {r.venue_order_id: k for k, r in after.items() if r.venue_order_id}
    for h in new:
        key = by_hash.get(h)
        assert key is not None, "a POST the store does not know"
        assert key not in before or before[key].status is OrderStatus.NOT_SENT, f"{key} sent twice"
    for k, r in before.items():
        if r.status is not OrderStatus.NOT_SENT:
            assert after[k].venue_order_id == r.venue_order_id


def final_states(recs: dict[str, OrderRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in recs.values():
        out[r.status.value] = out.get(r.status.value, 0) + 1
    return out


async def test_sigterm_mid_burst_leaves_every_intent_final_and_a_restart_resends_nothing(
    sim: SimServer, db_url: str, tmp_path: Path
) -> None:
    sim.set_faults(latency_ms=10)  # slow enough that the signal lands mid-burst
    proc = spawn(sim, db_url, tmp_path)
    await eventually(lambda: len(sim.received_orders()) >= 150 or proc.poll() is not None, "the burst", 60)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    code, out, err = await finish(proc)
    assert code == 0, err
    assert "Traceback" not in err, err
    summary = json.loads(out.strip().splitlines()[-1])
    first = orders(db_url)
    assert 150 <= len(first) < COUNT  # interrupted in the middle
    assert all(r.status.is_final for r in first.values()), final_states(first)
    assert any(r.status is OrderStatus.CANCELLED for r in first.values())  # its resting orders were cancelled
    assert any(r.status is OrderStatus.FILLED for r in first.values())
    assert summary["strategies"][0]["intents"] == len(first)
    assert summary["shutdown_s"] is not None and summary["shutdown_s"] < 10
    assert not [o for o in sim.open_orders() if o.get("status") == "LIVE"]  # nothing left resting at the venue
    received = hashes_by_key(sim)
    assert len(received) == sum(1 for r in first.values() if r.status is not OrderStatus.NOT_SENT)
    sim.clear_faults()

    again = spawn(sim, db_url, tmp_path, "--duration", "4")
    code, out, err = await finish(again)
    assert code == 0, err
    second = orders(db_url)
    assert set(first) <= set(second)
    assert_restart_resends_nothing(sim, first, second, received)
    assert all(r.status.is_final for r in second.values()), final_states(second)


async def test_sigkill_mid_burst_then_the_restart_reconciles(sim: SimServer, db_url: str, tmp_path: Path) -> None:
    sim.set_faults(latency_ms=10)
    proc = spawn(sim, db_url, tmp_path)
    await eventually(lambda: len(sim.received_orders()) >= 150 or proc.poll() is not None, "the burst", 60)
    assert proc.poll() is None, proc.communicate()
    proc.kill()
    code, _, _ = await finish(proc)
    assert code == -signal.SIGKILL
    sim.clear_faults()
    left = orders(db_url)
    received = hashes_by_key(sim)
    again = spawn(sim, db_url, tmp_path, "--duration", "8")  # past the executor's 5 s grace for lost answers
    code, _out, err = await finish(again)
    assert code == 0, err
    after = orders(db_url)
    assert_restart_resends_nothing(sim, left, after, received)
    assert all(r.status.is_final for r in after.values()), final_states(after)  # reconciled, then cancelled
    assert not [o for o in sim.open_orders() if o.get("status") == "LIVE"]


async def test_a_second_signal_exits_at_once_and_loses_no_record(sim: SimServer, db_url: str, tmp_path: Path) -> None:
    sim.set_faults(latency_ms=10)
    proc = spawn(sim, db_url, tmp_path, "--slow-stop", "30")
    await eventually(lambda: len(sim.received_orders()) >= 100 or proc.poll() is not None, "the burst", 60)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.5)  # in the graceful shutdown (the unit takes 30 s to stop)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, _, err = await finish(proc)
    assert code == 130, err  # left at once, not through the graceful path
    assert "Traceback" not in err, err
    sim.clear_faults()
    left = orders(db_url)
    received = hashes_by_key(sim)
    # every POST the venue received is a stored order (written ahead): nothing sent was lost
    by_hash = {r.venue_order_id for r in left.values() if r.venue_order_id}
    assert set(received) <= by_hash
    again = spawn(sim, db_url, tmp_path, "--duration", "8")
    code, _, err = await finish(again)
    assert code == 0, err
    after = orders(db_url)
    assert_restart_resends_nothing(sim, left, after, received)
    assert all(r.status.is_final for r in after.values()), final_states(after)


# ------------------------------------------------- the shutdown's cancel sweep (Executor.cancel_resting)
#
# The flake behind these: the burst before a stop reads the market's trade history after every match, so
# the client's /data/trades window (400 / 10 s) is often full at the stop; the old sweep read that history
# once per resting order (16 at a time, DELETE then read), its reads waited ~5 s for the window, its 4 s
# deadline cancelled them, and orders the venue had cancelled stayed `live` in the store (past 16, they were
# not even cancelled). A paused /data/trades family (what a 429 Retry-After does) is that full window.


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


async def test_the_sweep_cancels_every_resting_order_while_trade_reads_are_held(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    placed = [await ex.submit(intent(rig.sim, n, price="0.02", size="5")) for n in range(20)]  # more than 16
    assert all(p.status is OrderStatus.LIVE for p in placed)
    rig.venue.limiter.pause("clob", "GET", "/data/trades", 20.0)  # every trade-history read waits 20 s
    sweep = await ex.cancel_resting(why="test stop", timeout_s=3.0)
    assert sorted(sweep.cancelled) == sorted(p.key for p in placed) and not sweep.open and not sweep.in_flight
    for p in placed:
        rec = rig.store.get_order(p.key)
        assert rec is not None and rec.status is OrderStatus.CANCELLED
    assert not [o for o in rig.sim.open_orders() if o.get("status") == "LIVE"]


async def test_a_swept_order_that_matched_is_left_unknown_not_live_until_its_trades_are_read(rig: Rig) -> None:
    from pmbot.sim.testing import HARDHAT_KEYS, SimTrader

    ex = (await rig.executor(dry_run=False)).executor
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = Decimal(raw["bids"][-1]["price"]) + Decimal("0.01")  # the best bid: a SELL of 5 fills half of it
    maker = await ex.submit(intent(rig.sim, "half", price=str(price), size="10"))
    idle = await ex.submit(intent(rig.sim, "idle", price="0.02", size="5"))
    other = SimTrader(rig.sim, HARDHAT_KEYS[1])
    rig.sim.fund(other.address, shares={token: 5})
    try:
        hit = await asyncio.to_thread(other.post_order, token, "SELL", price, Decimal(5))
        assert hit.status_code == 200, hit.text
    finally:
        other.close()
    rig.venue.limiter.pause("clob", "GET", "/data/trades", 2.5)  # held past the sweep's deadline
    sweep = await ex.cancel_resting(why="test stop", timeout_s=1.5)
    # its fill cannot be read before the deadline: unknown (the next start settles it), never `live`
    assert sweep.states == {maker.key: OrderStatus.UNKNOWN, idle.key: OrderStatus.CANCELLED}
    assert not [o for o in rig.sim.open_orders() if o.get("status") == "LIVE"]
    assert await ex.reconcile() == {"cancelled": 1}
    rec = rig.store.get_order(maker.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED and rec.filled_size == 5
    assert sum(t.fill.size for t in rig.store.list_trades(Query(dry_run=False))) == 5


async def test_the_sweep_waits_for_a_post_in_flight_and_cancels_it(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(latency_ms=400)  # the POST's answer arrives after the sweep began
    sending = asyncio.create_task(ex.submit(intent(rig.sim, "late", price="0.02", size="5")))
    while not ex._inflight:
        await asyncio.sleep(0.001)
    sweep = await ex.cancel_resting(why="test stop", timeout_s=5.0)
    rig.sim.clear_faults()
    answered = await sending
    assert answered.status is OrderStatus.LIVE  # what the POST's answer said; the sweep came after it
    assert sweep.states == {answered.key: OrderStatus.CANCELLED} and not sweep.in_flight
    rec = rig.store.get_order(answered.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED
    assert not [o for o in rig.sim.open_orders() if o.get("status") == "LIVE"]
