"""Metrics snapshots into execution_logs (pmbot.monitor) and `pmbot stats --history`, on a real executor."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from pmbot.cli import main
from pmbot.control import StrategyStatus
from pmbot.monitor import SNAPSHOT_EVENT, history, snapshot_loop, snapshot_metrics
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderType, Query
from tests.test_executor import Rig, best_ask, intent, settings_for


async def test_snapshots_then_history(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        started = int(sim.now() * 1000)
        ex = (await rig.executor(dry_run=True)).executor
        await ex.submit(intent(sim, 1, price=str(best_ask(sim)), order_type=OrderType.FOK, strategy="snipe"))
        await ex.submit(intent(sim, 2, price="0.05", strategy="snipe"))  # rests
        statuses = {"snipe": StrategyStatus("running", heartbeat_ms=started), "copy": "paused"}
        first = snapshot_metrics(
            rig.store, ex, statuses, started_ms=started, streams={"market": started}, clock=sim.now
        )
        (entry,) = rig.store.list_execution_logs(event=SNAPSHOT_EVENT)
        assert entry.id == first and entry.metadata["kind"] == "periodic"
        dry = entry.metadata["executors"]["dry-run"]
        assert dry["intents"] == 2 and dry["statuses"] == {"filled": 1, "live": 1}
        assert dry["exposure"]["open_orders"] == 1 and dry["kill_switch"]["tripped"] is False
        assert isinstance(dry["exposure"]["total"], str)  # exact text, never a float
        assert entry.metadata["strategies"]["copy"] == {"state": "paused"}
        (pnl,) = entry.metadata["pnl"]
        assert (pnl["strategy"], pnl["mode"], pnl["trades"]) == ("snipe", "dry-run", 1)

        stop = asyncio.Event()
        loop = asyncio.create_task(
            snapshot_loop(rig.store, lambda: [ex], lambda: {"snipe": "running"}, stop=stop, interval_s=0.05)
        )
        for _ in range(200):
            if len(rig.store.list_execution_logs(event=SNAPSHOT_EVENT)) >= 3:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(loop, 5)
        snapshot_metrics(rig.store, [ex], {"snipe": "stopped"}, started_ms=started, kind="final")
    finally:
        await rig.close()  # the executor's own stop record ("metrics") goes in too

    from pmbot.store import open_store

    store = open_store(db_url)
    try:
        rows = history(store)
        assert rows[0].kind in ("stop", "final") and {r.kind for r in rows} >= {"periodic", "final", "stop"}
        final = next(r for r in rows if r.kind == "final")
        assert final.mode == "dry-run" and final.intents == 2 and final.strategies == {"snipe": "stopped"}
        assert final.trades == 1 and final.exposure is not None
        assert len(history(store, Query(limit=2))) == 2
    finally:
        store.close()


def test_stats_history_cli(
    sim: SimServer, tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    async def run() -> None:
        rig = Rig(sim, tmp_path, settings_for(sim, db_url))
        try:
            ex = (await rig.executor(dry_run=True)).executor
            await ex.submit(intent(sim, 1, price="0.05", strategy="snipe"))
            snapshot_metrics(rig.store, ex, {"snipe": "running", "copy": "crashed"}, started_ms=0, clock=sim.now)
        finally:
            await rig.close()

    asyncio.run(run())
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    capsys.readouterr()
    assert main(["stats", "--history", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows][-1] == "periodic" and rows[-1]["strategies"]["copy"] == "crashed"
    assert main(["stats", "--history", "--live", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["stats", "--history"]) == 0
    out = capsys.readouterr().out
    assert "Metrics history" in out and "copy crashed" in out and "periodic" in out
    assert main(["stats", "--history", "--strategy", "snipe"]) == 2
    assert capsys.readouterr().err.startswith("error: --history")


def test_history_on_a_fresh_machine(db_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    assert main(["stats", "--history"]) == 0
    assert "No metrics snapshots yet" in capsys.readouterr().out
    assert not Path(db_url.removeprefix("sqlite:///")).exists()
