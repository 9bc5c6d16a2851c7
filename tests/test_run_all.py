"""`pmbot run-all`: the host (one executor, one market hub, supervised units) against `pmbot sim` over
real sockets, supervision (restart with backoff, stopped after N crashes, the others untouched), pause /
resume through the control channel, status, the market hub's sharding, config and bad input."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.app import App
from pmbot.cli import main
from pmbot.runner.host import Host, HostOptions
from pmbot.runner.supervisor import SupervisorPolicy
from pmbot.runner.units import SnipeUnit
from pmbot.sim.testing import SimServer
from pmbot.strategies.snipe import SnipeStrategy


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def opts(**kw: Any) -> HostOptions:
    base: dict[str, Any] = dict(tick_s=0.02, rediscover_s=0.5, status_interval_s=0.2, snapshot_interval_s=3600,
                                settle_every_s=3600,
                                policy=SupervisorPolicy(max_crashes=3, window_s=60, backoff_s=0.05, backoff_max_s=0.2))
    base.update(kw)
    return HostOptions(**base)


async def drive(sim: SimServer, host: Host, until: float, *, step: float = 1.0) -> None:
    while sim.now() < until:
        await asyncio.to_thread(sim.advance, step)
        await asyncio.sleep(0.01)


def snipe(name: str, token: str) -> SnipeUnit:
    return SnipeUnit(name, SnipeStrategy.validate_config({}), token_ids=(token,))


def test_two_snipers_share_one_executor_and_one_market_connection(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)
    units = [snipe("snipe-a", cur["token_ids"][0]), snipe("snipe-b", cur["token_ids"][1])]
    host = Host(app, units, dry_run=True, options=opts())

    async def go() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop=stop))
        await asyncio.wait_for(host.ready.wait(), 10)
        await asyncio.sleep(0.5)
        await drive(sim, host, cur["end"] + 5)
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.wait_for(task, 15)

    asyncio.run(go())
    assert host.hub is not None and len(host.hub.shards) == 1  # both tokens on one connection
    ma, mb = units[0].totals(), units[1].totals()
    # the same market (both tokens belong to it), two instances: each enters once, under its own key
    assert (ma.signals, ma.fills, mb.signals, mb.fills) == (1, 1, 1, 1)
    assert ma.wins + ma.losses == 1 and mb.wins + mb.losses == 1  # resolved on the shared channel
    store = app.store
    orders = store.list_orders()
    assert len(orders) == 2 and all(o.dry_run for o in orders)
    assert {o.strategy for o in orders} == {"snipe-a", "snipe-b"}
    assert {o.wallet for o in orders} == {host.handle.executor.wallet}
    procs = [p for p in (store.get_state("runtime:processes") or {})["processes"].values()]
    assert procs and procs[0]["state"] == "stopped"
    logs = store.list_execution_logs(event="metrics_snapshot")
    assert any((e.metadata or {}).get("kind") == "final" for e in logs)
    app.close()
