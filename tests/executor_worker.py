"""A live executor in a process of its own, driven by tests/test_executor_reliability.py.

It submits a burst of intents with deterministic keys (`burst_intent`, shared with the test) in
concurrent batches, and on SIGTERM shuts down the way an operator's `kill` should: stop taking
intents, let the ones in flight finish, store state, exit 0. SIGKILL tests use it too (no handler
can run then).

    python -m tests.executor_worker --condition 0x… --tokens T_UP,T_DOWN --count 1000 --batch 20 \\
        --lock-dir DIR --sim-now 1795000000

Settings come from the environment (the sim's PMBOT_* URLs, PMBOT_PRIVATE_KEY, PMBOT_DATABASE_URL and
high risk limits, all set by the test). When done it prints one JSON line on stdout:
{"submitted": n, "signal": bool, "results": {"<status>": count, ...}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path

from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.store.models import OrderType, Side

STRATEGY = "burst"
FOK_EVERY = 10  # every 10th intent of a burst is a FOK BUY that crosses the book


def burst_intent(i: int, condition_id: str, tokens: Sequence[str], signal_ms: int) -> OrderIntent:
    """The i-th intent of a burst. Same i, same key (and same order), in every process.

    Mostly GTC BUYs at 0.01–0.09 (they rest: the sim's bids are around 0.5), on both outcomes; every
    FOK_EVERY-th is a FOK BUY of the Up token with a worst price of 0.60 (the asks start at 0.55)."""
    if i % FOK_EVERY == FOK_EVERY - 1:
        token, price, size, order_type = tokens[0], Decimal("0.60"), Decimal(5 + i % 3), OrderType.FOK
    else:
        token = tokens[i % 2]
        price = Decimal("0.01") * (1 + i % 9)
        size, order_type = Decimal(5 + i % 17), OrderType.GTC
    return OrderIntent(
        key=intent_key(STRATEGY, condition_id, i),
        strategy=STRATEGY,
        token_id=token,
        condition_id=condition_id,
        side=Side.BUY,
        price=price,
        size=size,
        order_type=order_type,
        signal_ms=signal_ms,
        meta={"burst_index": str(i)},
    )


def _sim_clock(sim_now: float) -> Callable[[], float]:
    """The sim runs on a manual clock far from the wall clock: follow it, moving at real speed."""
    t0 = time.monotonic()
    return lambda: sim_now + (time.monotonic() - t0)


async def run(args: argparse.Namespace) -> dict[str, object]:
    from pmbot.config import load_settings
    from pmbot.executor.factory import build_executor
    from pmbot.polymarket.factory import build_venue
    from pmbot.polymarket.http import RetryPolicy
    from pmbot.store import open_store

    settings = load_settings(env_file=None).settings
    clock = _sim_clock(args.sim_now)
    store = open_store(settings.database_url, clock=clock)
    venue = build_venue(settings, clock=clock, retry=RetryPolicy(attempts=3, base=0.01, cap=0.02), timeout=5.0)
    handle = await build_executor(settings, store, venue, dry_run=False, lock_dir=Path(args.lock_dir), clock=clock)
    ex = handle.executor
    ex.heartbeat = args.heartbeat  # the burst tests run without the venue's dead man's switch
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    closing: list[asyncio.Task[None]] = []

    def on_sigterm() -> None:
        stopping.set()
        if not closing:  # graceful: refuse new intents, finish the ones in flight, store state
            closing.append(loop.create_task(handle.close()))

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    await ex.start()
    tokens = args.tokens.split(",")
    results: Counter[str] = Counter()
    submitted = 0
    for lo in range(0, args.count, args.batch):
        if stopping.is_set():
            break
        batch = [
            burst_intent(i, args.condition, tokens, int(clock() * 1000))
            for i in range(lo, min(lo + args.batch, args.count))
        ]
        # The same batch twice at once: a strategy re-emitting signals must not double anything.
        first, again = await asyncio.gather(ex.submit_many(batch), ex.submit_many(batch))
        submitted += len(batch)
        results.update(r.status.value for r in first)
        if any(not r.duplicate for r in again):
            raise AssertionError("a concurrent re-submission was executed a second time")
    if args.hold:  # keep beating with the orders resting, until a signal (the heartbeat test SIGKILLs)
        print(json.dumps({"holding": submitted, "results": dict(results)}), flush=True)
        await stopping.wait()
    if not closing:
        closing.append(loop.create_task(handle.close()))
    await closing[0]
    await venue.aclose()
    store.close()
    return {"submitted": submitted, "signal": stopping.is_set(), "results": dict(results)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--condition", required=True)
    parser.add_argument("--tokens", required=True, help="Up,Down token ids")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--lock-dir", required=True)
    parser.add_argument("--sim-now", type=float, required=True)
    parser.add_argument("--heartbeat", action="store_true", help="send order heartbeats (executor.heartbeat)")
    parser.add_argument("--hold", action="store_true", help="after the burst, stay up (beating) until a signal")
    summary = asyncio.run(run(parser.parse_args(argv)))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
