"""`pmbot run-all` in a process of its own with a burst strategy, driven by tests/test_run_all_shutdown.py.

It runs the command's own run function (`pmbot.commands.run_all_cmd._main`: signal handlers, log files,
the host, the shutdown) with one unit, `burst`, whose strategy emits `--count` intents with deterministic
keys, `--per-tick` per timer tick (so a restart emits the same keys again). Most are FOK BUYs that cross
the book (they fill or are killed), every `REST_EVERY`-th a GTC BUY far under the book (it rests).

    python -m tests.run_all_worker --condition 0x… --tokens UP,DOWN --count 1000 --per-tick 20 \\
        --sim-now 1795000000 [--live] [--duration 30]

Settings come from the environment (the sim's PMBOT_* URLs, PMBOT_DATABASE_URL, limits, the key). It prints
one JSON line when ready ({"ready": true}) and the run's summary as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.store.models import OrderType, Side
from pmbot.strategies.base import Strategy, StrategyConfig
from pmbot.strategies.events import Event, TimerTick

NAME = "burst"
REST_EVERY = 10


def burst_intent(i: int, condition_id: str, tokens: Sequence[str], signal_ms: int) -> OrderIntent:
    if i % REST_EVERY == 0:
        token, price, size, order_type = tokens[i % 2], Decimal("0.01") * (1 + i % 9), Decimal(5), OrderType.GTC
    else:
        token, price, size, order_type = tokens[0], Decimal("0.60"), Decimal(5 + i % 3), OrderType.FOK
    return OrderIntent(
        key=intent_key(NAME, condition_id, i),
        strategy=NAME,
        token_id=token,
        condition_id=condition_id,
        side=Side.BUY,
        price=price,
        size=size,
        order_type=order_type,
        signal_ms=signal_ms,
    )


class BurstStrategy(Strategy[StrategyConfig]):
    name = NAME

    def __init__(self, view: Any, *, condition: str, tokens: Sequence[str], count: int, per_tick: int) -> None:
        super().__init__(view, {}, name=NAME)
        self.condition, self.tokens, self.count, self.per_tick = condition, list(tokens), count, per_tick
        self.next = 0

    def on_event(self, event: Event) -> None:
        if not isinstance(event, TimerTick) or self.next >= self.count:
            return
        for i in range(self.next, min(self.count, self.next + self.per_tick)):
            self.submit(burst_intent(i, self.condition, self.tokens, event.ts_ms))
        self.next += self.per_tick


def burst_unit(args: argparse.Namespace) -> Any:
    from pmbot.runner.units import _UnitBase
    from pmbot.strategies.memview import MemoryView

    class BurstUnit(_UnitBase):
        kind = "burst"

        async def run(self, ctx: Any, stop: asyncio.Event) -> None:
            view = MemoryView(clock=ctx.now_ms)
            strategy = BurstStrategy(view, condition=args.condition, tokens=args.tokens.split(","),
                                     count=args.count, per_tick=args.per_tick)  # fmt: skip
            runner = self._runner(ctx, strategy, view)
            await runner.start()
            print(json.dumps({"ready": True}), flush=True)
            try:
                while not stop.is_set():
                    await runner.tick(ctx.now_ms())
                    await asyncio.sleep(0.005)
            finally:
                if args.slow_stop:  # a unit slow to stop: a second signal lands during the shutdown
                    await asyncio.sleep(args.slow_stop)
                await runner.stop()
                self._finished()

    return BurstUnit(NAME)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from pmbot.app import App
    from pmbot.commands import run_all_cmd
    from pmbot.runner.host import HostOptions
    from tests.executor_worker import _sim_clock

    app = App(clock=_sim_clock(args.sim_now))
    try:
        options = HostOptions(cancel_on_shutdown=not args.leave, tick_s=0.05, status_interval_s=0.2,
                              snapshot_interval_s=3600, settle_every_s=3600)  # fmt: skip
        return await run_all_cmd._main(
            app, [burst_unit(args)], dry_run=not args.live, duration_s=args.duration, dashboard=False, port=None,
            host_addr="127.0.0.1", log_format="text", console_logs=False, options=options,
        )  # fmt: skip
    finally:
        app.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--condition", required=True)
    parser.add_argument("--tokens", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--per-tick", type=int, default=20)
    parser.add_argument("--sim-now", type=float, required=True)
    parser.add_argument("--live", action="store_true")
    parser.add_argument("--leave", action="store_true", help="leave resting orders at shutdown")
    parser.add_argument("--duration", type=float, default=None)
    parser.add_argument("--slow-stop", type=float, default=0.0, help="the unit takes this long to stop")
    summary = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(summary, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
