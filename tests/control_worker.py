"""A stand-in for `pmbot run-all`'s control loop in a process of its own (tests/test_control.py).

It runs the strategies named on the command line (doing nothing but beating), applies pause/resume
from `ControlChannel.watch`, publishes its status every 0.2 s and prints one JSON line per command
applied: {"action": "pause", "strategy": "snipe", "at": epoch_s}. SIGTERM: close the channel, exit 0.

    python -m tests.control_worker --db sqlite:///x.db --strategies snipe,copy
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time

from pmbot.control import Command, ControlChannel, StrategyStatus
from pmbot.store import open_store


async def main(db: str, names: list[str]) -> None:
    store = open_store(db)
    channel = ControlChannel(store, names, mode="dry-run")
    state = {n: "running" for n in names}
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

    def apply(commands: list[Command]) -> None:
        for c in commands:
            state[c.strategy] = "paused" if c.action == "pause" else "running"
            print(json.dumps({"action": c.action, "strategy": c.strategy, "at": time.time()}), flush=True)

    async def beat() -> None:
        while not stop.is_set():
            now = int(time.time() * 1000)
            channel.publish_status(
                {n: StrategyStatus(state[n], heartbeat_ms=now) for n in names},
                streams={"market": now - 1500, "user": None},
                kill_switch={"tripped": False, "reason": ""},
                open_orders=3,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)

    print(json.dumps({"ready": True}), flush=True)
    await asyncio.gather(channel.watch(apply, stop=stop), beat())
    channel.close()
    store.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--strategies", required=True)
    args = p.parse_args()
    asyncio.run(main(args.db, args.strategies.split(",")))
    sys.exit(0)
