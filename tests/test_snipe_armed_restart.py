"""Issue 14 §2, the runner's side: a live sniping run (child process, real SQLite file, `pmbot sim` over real
sockets) pre-arms both sides, fires the entry and is SIGKILLed right after the POST /order was written.
The restart reconciles the fired order by its hash, settles the never-sent one, and nothing is sent twice.

This module is also the worker: `python -m tests.test_snipe_armed_restart worker --token ID`."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pmbot.app import App
from pmbot.runner.session import TargetSpec, run_session
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import OrderStatus, Query
from pmbot.strategies.snipe import SnipeStrategy
from tests.test_executor import KEY, Rig, settings_for

REPO = Path(__file__).resolve().parents[1]


async def _worker(args: argparse.Namespace) -> None:
    from pmbot.polymarket import fastpost

    write = fastpost._Conn.send

    def send_then_die(conn: fastpost._Conn, data: bytes) -> asyncio.Future[fastpost.Answer]:
        waiter = write(conn, data)  # the request is in the kernel's hands: it reaches the venue
        if data.startswith(b"POST /order"):
            os.kill(os.getpid(), signal.SIGKILL)  # before a byte of the answer is read
        return waiter

    fastpost._Conn.send = send_then_die  # type: ignore[method-assign,assignment]
    app = App()  # the wall clock: the run follows the (manual) sim's clock through GET /time
    try:
        await run_session(
            app,
            lambda v: SnipeStrategy(v, {}),
            TargetSpec(token_id=args.token),
            dry_run=False,
            duration_s=args.duration,
            stop=asyncio.Event(),
            tick_s=0.02,
        )
    finally:
        app.close()
    print("survived", flush=True)


def _restart_run(sim: SimServer, token: str, seconds: int) -> Any:
    """The same sniping run again, in process, in the same window (the operator restarted it)."""
    app = App(clock=sim.now)

    async def drive() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_session(
                app, lambda v: SnipeStrategy(v, {}), TargetSpec(token_id=token), dry_run=False,
                duration_s=None, stop=stop, tick_s=0.02,
            )
        )  # fmt: skip
        for _ in range(seconds):
            await asyncio.sleep(0.3)
            await asyncio.to_thread(sim.advance, 1)
        await asyncio.sleep(0.3)
        stop.set()
        return await task

    try:
        return asyncio.run(drive())
    finally:
        app.close()


def test_sigkill_right_after_an_armed_entry_was_sent_then_restart(
    sim: SimServer, tmp_path: Path, db_url: str, monkeypatch: Any
) -> None:
    from tests.test_executor_reliability import eventually, live_restart

    cur = sim.current_market()
    up = cur["token_ids"][0]
    sim.advance(cur["end"] - sim.now() - 40)  # 40 s left: inside the entry window
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env())
    env.update({"PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)})
    env.update({"HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "xdg")})  # its own wallet lock
    cmd = [sys.executable, "-m", "tests.test_snipe_armed_restart", "worker", "--token", up, "--duration", "40"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(30):  # the sim's time moves (fresh Chainlink prices) until the worker is killed
            if proc.poll() is not None:
                break
            time.sleep(0.3)
            sim.advance(1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, out, err[-3000:])
    asyncio.run(eventually(lambda: len(sim.received_orders()) == 1, "the sim to take the order it was sent"))

    store = open_store(db_url)
    left = store.list_orders(query=Query(dry_run=False))
    store.close()
    # What the crash left: both sides armed (signed, hash recorded), one of them fired. A plain submit
    # would have left `pending`: the entry went out on the pre-armed path.
    assert sorted(o.status.value for o in left) == ["armed", "armed"], left
    assert all(o.venue_order_id for o in left)
    fired_hash = sim.received_orders()[0]
    fired = next(o for o in left if o.token_id == up)

    monkeypatch.setenv("HOME", str(tmp_path))

    async def reconcile() -> dict[str, int]:
        rig = Rig(sim, tmp_path, settings_for(sim, db_url))
        try:
            _, report = await live_restart(rig)
            return report
        finally:
            await rig.close()

    report = asyncio.run(reconcile())
    assert sum(report.values()) == 2 and report.get("rejected") == 1, report  # the unsent side: never placed
    store = open_store(db_url)
    after = {o.key: o for o in store.list_orders(query=Query(dry_run=False))}
    store.close()
    assert after[fired.key].status in (OrderStatus.FILLED, OrderStatus.LIVE), after[fired.key]
    assert after[fired.key].venue_order_id == fired.venue_order_id
    assert fired_hash is not None

    # the operator starts the run again in the same window: the same keys, answered from the records
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    for k, v in sim.env().items():
        monkeypatch.setenv(k, v)
    again = _restart_run(sim, up, 3)
    assert again.runner is not None and len(again.runner.sent) == 1  # it signals the entry again ...
    for sent in again.runner.sent.values():
        assert sent.result is not None and sent.result.duplicate, sent  # ... answered from the record
    assert len(sim.received_orders()) == 1  # nothing sent twice


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["worker"])
    parser.add_argument("--token", required=True)
    parser.add_argument("--duration", type=float, default=40.0)
    asyncio.run(_worker(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
