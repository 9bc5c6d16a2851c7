"""Three defects left by earlier reviews, each reproduced against real parts (SQLite files, `pmbot sim`
over real sockets) and kept as a regression test:

1. two dry-run processes on one database sold the same paper shares (the paper wallet and gate of each
   were seeded from every dry-run position): see tests/test_review_round2.py and the paper-wallet tests here;
2. an exception in `apply_resolution` ended `follow_books`;
3. a trade that turned FAILED at the venue after its fill was recorded was never taken back."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

import pmbot.settle
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus, OrderType, PositionState, Query, Side
from tests.test_executor import Rig, best_ask, intent, settings_for

D = Decimal


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def intent_in(
    sim: SimServer, m: dict[str, Any], n: str, *, price: Decimal, size: Decimal, side: Side = Side.BUY
) -> OrderIntent:
    """`intent` in market `m` (not necessarily the current one), a resting GTC on its Up token."""
    base = intent(sim, n, price=str(price), size=str(size), side=side)
    key = intent_key("test", m["condition_id"], n)
    return replace(base, key=key, token_id=m["token_ids"][0], condition_id=m["condition_id"])


# ------------------------------------------------------- 2. a bad resolution must not end follow_books


async def test_a_resolution_that_fails_to_apply_does_not_stop_book_following(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The market channel resolves the market we hold while recording its payout fails (the store busy,
    say): one log line, one count, and the executor keeps following books: a resting paper order in the
    next market still fills from the live stream afterwards, and the payout is recorded by the next poll."""
    sim = rig.sim
    ex = (await rig.executor(dry_run=True)).executor
    m1 = sim.current_market()
    bought = await ex.submit(intent(sim, "b", price=str(best_ask(sim)), size="10", order_type=OrderType.FOK))
    assert bought.status is OrderStatus.FILLED
    m2 = next(m for m in sim.markets() if m["start"] == m1["end"])
    up2 = m2["token_ids"][0]
    failures: list[str] = []
    real = pmbot.settle.record_settlements

    def failing_once(*a: Any, **kw: Any) -> Any:
        if not failures:
            failures.append("boom")
            raise RuntimeError("database is locked")
        return real(*a, **kw)

    monkeypatch.setattr(pmbot.settle, "record_settlements", failing_once)
    stream = rig.venue.market_stream([*m1["token_ids"], *m2["token_ids"]])
    pump = asyncio.create_task(ex.follow_books(stream))
    try:
        with caplog.at_level(logging.ERROR, logger="pmbot.executor"):
            for _ in range(200):  # until the sim ends the window and the channel says market_resolved
                sim.advance(5)
                await asyncio.sleep(0.01)
                if failures:
                    break
            for _ in range(50):
                await asyncio.sleep(0.01)
                if ex.metrics.resolution_errors:
                    break
        assert failures and ex.metrics.resolution_errors == 1
        assert ex.metrics.snapshot()["resolution_errors"] == 1
        lines = [r for r in caplog.records if "market_resolved" in r.getMessage()]
        assert len(lines) == 1 and "\n" not in lines[0].getMessage() and lines[0].exc_info is None
        assert m1["condition_id"] in lines[0].getMessage() and "database is locked" in lines[0].getMessage()
        assert not pump.done()  # was: the exception ended follow_books
        (pos,) = rig.store.list_positions(Query(dry_run=True))
        assert pos.state is PositionState.OPEN  # not recorded yet

        # the executor still follows books: a resting paper BUY at the next market's best bid fills
        raw = sim.book(up2)
        assert raw is not None
        bid = D(raw["bids"][-1]["price"]) + D("0.01")  # the new best bid: the next seller reaches it
        rest = await ex.submit(intent_in(sim, m2, "rest", price=bid, size=D(5)))
        assert rest.status is OrderStatus.LIVE, rest
        for _ in range(200):
            sim.advance(2)
            await asyncio.sleep(0.01)
            rec = rig.store.get_order(rest.key)
            if rec is not None and rec.status is OrderStatus.FILLED:
                break
        rec = rig.store.get_order(rest.key)
        assert rec is not None and rec.status is OrderStatus.FILLED, rec
    finally:
        await stream.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    # nothing is lost: the next poll (run_settler) records the payout once
    settled = await ex.settle_resolved(rig.venue)
    assert [s.token_id for s in settled] == [m1["token_ids"][0]]
    assert m1["condition_id"] not in ex.risk.exposure().per_market
    held = {p.token_id: p.state for p in rig.store.list_positions(Query(dry_run=True))}
    assert held == {m1["token_ids"][0]: PositionState.RESOLVED, up2: PositionState.OPEN}
