"""Worker processes for tests/test_postgres.py: a fleet of pmbot processes sharing one PostgreSQL.

Run as `python -m tests.pg_workers fills URL WORKER N` or `… orders URL WORKER N REDIS_URL`; each prints
one JSON line. Separate processes (not threads): separate pools, separate sessions, as in a fleet.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal

from pmbot.store.models import Fill, OrderRecord, OrderType, Side

TOKENS = ("tok-a", "tok-b", "tok-c")
T0 = 1_795_000_000_000


def fleet_fill(worker: int, i: int) -> Fill:
    """The i-th fill of a worker: small BUYs and SELLs of shared tokens (never more sold than seeded)."""
    side = Side.SELL if i % 3 == 2 else Side.BUY
    return Fill(
        trade_id=f"w{worker}-{i}",
        strategy="fleet",
        token_id=TOKENS[(worker + i) % len(TOKENS)],
        side=side,
        price=Decimal("0.01") * (10 + (i * 7 + worker) % 80),
        size=Decimal(1 + i % 5),
        fee=Decimal("0.001") * (i % 4),
        dry_run=True,
        ts=T0 + i,
    )


def fleet_order(i: int) -> OrderRecord:
    return OrderRecord(
        key=f"intent-{i}",
        strategy="fleet",
        token_id=TOKENS[i % len(TOKENS)],
        side=Side.BUY,
        price=Decimal("0.5"),
        size=Decimal(10),
        order_type=OrderType.GTC,
        dry_run=False,
    )


def main(argv: list[str]) -> int:
    from pmbot.store import open_store

    mode, url, worker, n = argv[0], argv[1], int(argv[2]), int(argv[3])
    redis_url = argv[4] if len(argv) > 4 else None
    store = open_store(url, redis_url=redis_url)
    try:
        if mode == "fills":
            new = 0
            for i in range(n):
                if i % 10 == 9:  # some batches too, overlapping the single writes of others
                    new += store.record_fills([fleet_fill(worker, 10_000 + i * 4 + j) for j in range(4)])
                else:
                    new += int(store.record_fill(fleet_fill(worker, i)))
                store.get_position("fleet", TOKENS[i % len(TOKENS)], True)  # through the cache, if any
            print(json.dumps({"new": new}), flush=True)
        else:
            won = [i for i in range(n) if store.insert_order(fleet_order(i))]
            print(json.dumps({"won": won}), flush=True)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
