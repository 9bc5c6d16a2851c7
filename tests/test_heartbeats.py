"""Order heartbeats (issue 10 item 7) against `pmbot sim` over real sockets: the venue's dead man's
switch (POST /v1/heartbeats; 10 s without a beat after the first one cancels every open order of the
API key), a live engine that beats from start-up, and a lost beat that stops new intents."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from pmbot.config import load_settings
from pmbot.polymarket.auth import l2_headers
from pmbot.polymarket.http import compact_json
from pmbot.polymarket.models import ApiCreds
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus
from tests.test_executor import KEY, Rig, intent, settings_for
from tests.test_executor_reliability import REPO, WORKER_LIMITS, eventually, market

BEAT = "/v1/heartbeats"


def armed_keys(sim: SimServer) -> set[str]:
    return sim.call(lambda v: set(v.heartbeats))


def own_open(sim: SimServer, address: str) -> int:
    """Open orders at the sim made by `address` (the sim's market maker has its own)."""
    return sum(o.maker_address.lower() == address.lower() for o in sim.call(lambda v: list(v.engine.live_orders())))


async def beat(sim: SimServer, creds: dict[str, str], address: str, heartbeat_id: str) -> httpx.Response:
    c = ApiCreds(api_key=creds["apiKey"], secret=creds["secret"], passphrase=creds["passphrase"])
    body = compact_json({"heartbeat_id": heartbeat_id})
    headers = l2_headers(address, c, "POST", BEAT, body, int(sim.now()))
    async with httpx.AsyncClient(base_url=sim.url) as client:
        return await client.post(BEAT, content=body, headers={**headers, "Content-Type": "application/json"})


async def test_sim_heartbeat_protocol_and_dead_mans_switch(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        ex = (await rig.executor(dry_run=False)).executor  # heartbeat off: we beat by hand
        res = await ex.submit(intent(sim, 1, price="0.05"))
        assert res.status is OrderStatus.LIVE
        oid = res.venue_order_id
        assert oid is not None
        sim.advance(30)  # never beaten: the switch is not armed, the order rests
        assert sim.call(lambda v: v.engine.orders[oid].status) == "LIVE"
        address = ex.wallet
        creds = sim.creds(address)
        first = await beat(sim, creds, address, "")
        assert first.status_code == 200, first.text
        next_id = first.json()["heartbeat_id"]
        assert isinstance(next_id, str) and next_id
        stale = await beat(sim, creds, address, "not-the-id")
        assert stale.status_code == 400
        assert stale.json() == {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": next_id}
        sim.advance(9)
        ok = await beat(sim, creds, address, next_id)  # in time: the deadline moves
        assert ok.status_code == 200
        sim.advance(9.5)
        assert sim.call(lambda v: v.engine.orders[oid].status) == "LIVE"
        sim.advance(0.5)  # 10 s since the last accepted beat
        assert sim.call(lambda v: v.engine.orders[oid].status) == "CANCELED"
        assert creds["apiKey"] not in armed_keys(sim)  # disarmed until the next first beat
    finally:
        await rig.close()


async def test_live_engine_beats_from_start_and_a_lost_beat_stops_new_intents(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    rig = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_EXECUTOR__HEARTBEAT="true"))
    try:
        h = await rig.executor(dry_run=False)
        ex = h.executor
        assert ex.heartbeat
        await eventually(lambda: ex.metrics.heartbeats >= 1, "the first beat at start-up")
        assert len(armed_keys(sim)) == 1
        ex.heartbeat_every_s = 0.02
        sim.set_faults(server_error=1_000_000, server_error_path=BEAT)
        await eventually(lambda: ex.heartbeat_lost, "a lost beat")
        assert ex.metrics.snapshot()["heartbeats_lost"] >= 1
        sent_before = len(sim.received_orders())
        refused = await ex.submit(intent(sim, 1, price="0.05"))
        assert refused.status is OrderStatus.NOT_SENT and refused.code == "heartbeat_lost"
        assert len(sim.received_orders()) == sent_before  # nothing reached the venue
        sim.clear_faults()
        await eventually(lambda: not ex.heartbeat_lost, "the heartbeat back")
        again = await ex.submit(intent(sim, 1, price="0.05"))  # the same key: not_sent is retried
        assert again.status is OrderStatus.LIVE and not again.duplicate
    finally:
        await rig.close()
    assert rig.handles[0].executor._heartbeat_task is None  # close() stopped the beater


async def test_an_engine_restarted_within_10s_resyncs_the_heartbeat_id(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    """The previous process beat 2 s ago: the venue refuses our first "" with the id it expects. pmbot
    beats again at once with that id instead of refusing every intent until the old session runs out
    (and the venue cancels the resting orders when it does)."""
    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        ex = (await rig.executor(dry_run=False)).executor  # heartbeat off: the "previous process" beats by hand
        creds = sim.creds(ex.wallet)
        first = await beat(sim, creds, ex.wallet, "")
        assert first.status_code == 200
        sim.advance(2)
        assert ex.trading is not None
        next_id = await ex.trading.heartbeat("")  # a fresh process knows no id
        assert isinstance(next_id, str) and next_id and next_id != first.json()["heartbeat_id"]
        again = await beat(sim, creds, ex.wallet, next_id)  # the id we kept is the venue's current one
        assert again.status_code == 200
    finally:
        await rig.close()


async def test_one_shot_executors_do_not_beat_by_default(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    from pmbot.executor.factory import build_executor

    env = {**sim.env(), "PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url}
    settings = load_settings(env_file=None, environ=env).settings
    assert settings.executor.heartbeat is None
    rig = Rig(sim, tmp_path, settings)
    try:
        one = await build_executor(
            settings, rig.store, rig.venue, dry_run=False, lock_dir=tmp_path / "l1", clock=sim.now, one_shot=True
        )
        assert not one.executor.heartbeat
        await one.close()
        long = await build_executor(
            settings, rig.store, rig.venue, dry_run=False, lock_dir=tmp_path / "l2", clock=sim.now
        )
        assert long.executor.heartbeat
        await long.close()
    finally:
        await rig.close()


async def test_sigkilled_live_engine_loses_its_resting_orders_10s_later(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    condition, tokens = market(sim)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env())
    env.update(WORKER_LIMITS)
    env.update({"PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)})
    cmd = [
        sys.executable, "-m", "tests.executor_worker", "--condition", condition, "--tokens", ",".join(tokens),
        "--count", "9", "--batch", "3", "--lock-dir", str(tmp_path / "locks"), "--sim-now", repr(sim.now()),
        "--heartbeat", "--hold",
    ]  # fmt: skip
    from eth_account import Account

    address = Account.from_key(KEY).address
    before = own_open(sim, address)
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = await asyncio.to_thread(proc.stdout.readline)
        held = json.loads(line)
        assert held["results"] == {"live": 9}, held
        assert own_open(sim, address) == before + 9
        assert len(armed_keys(sim)) == 1  # it beat
        proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    sim.advance(9)
    assert own_open(sim, address) == before + 9  # 9 s of sim time since its last beat: not yet
    sim.advance(6)
    assert own_open(sim, address) == before  # the venue's switch cancelled every resting order of the dead process
