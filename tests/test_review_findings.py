"""Regressions from a money-safety review: each test demonstrated one executor / venue-client bug that
could cost money or lose records (all fixed). Some replace a venue call with a stand-in for answers the
sim never gives (a "delayed" status, a garbled 200, maker entries with their own amounts)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.errors import VenueError
from pmbot.executor.lock import RedisWalletLock
from pmbot.polymarket import http as http_mod
from pmbot.polymarket import trading as trading_mod
from pmbot.polymarket.models import OpenOrder, OrderAck
from pmbot.polymarket.signing import SignedOrder
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store.models import OrderStatus, OrderType, Query, Side
from tests.test_executor import Rig, best_ask, intent, settings_for


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def _filled_in_store(rig: Rig, key: str) -> Decimal:
    return sum(
        (t.fill.size for t in rig.store.list_trades(Query(dry_run=False)) if t.fill.order_key == key), Decimal(0)
    )


# ------------------------------------------------------------------------------ risk after restart


async def test_restart_with_unreadable_venue_keeps_open_orders_reserved(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__MAX_TOTAL_EXPOSURE="0.9"))
    try:
        h = await r.executor(dry_run=False)
        first = await h.executor.submit(intent(sim, "rest", price="0.05", size="10"))  # ~0.53 USDC reserved
        assert first.status is OrderStatus.LIVE and first.venue_order_id
        await h.close()
        r.handles.remove(h)
        # the venue's order endpoint is down while the engine restarts (every retry of the read fails)
        sim.set_faults(server_error=10, server_error_path=f"/data/order/{first.venue_order_id}")
        ex = (await r.executor(dry_run=False)).executor
        sim.clear_faults()
        second = await ex.submit(intent(sim, "more", price="0.05", size="10"))  # another ~0.53 > 0.9 in total
        assert second.code == "max_total_exposure", second
        assert len(sim.received_orders()) == 1
    finally:
        await r.close()


# ------------------------------------------------------------------------------ venue answer mapping


async def test_unreadable_2xx_order_answer_is_unknown_not_rejected(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    original = http_mod._json

    def garbled(resp: Any, what: str) -> Any:
        if what.startswith("POST") and what.endswith("/order"):  # e.g. a proxy's HTML page, a truncated body
            raise VenueError(f"{what}: answer is not JSON ('<html>')", status=resp.status_code)
        return original(resp, what)

    monkeypatch.setattr(http_mod, "_json", garbled)
    original_loads = trading_mod.loads_venue

    def garbled_fast(data: Any, what: str) -> Any:  # the same on the lean POST path (pmbot.polymarket.fastpost)
        if what.startswith("POST") and what.endswith("/order"):
            raise VenueError(f"{what}: answer is not JSON ('<html>')")
        return original_loads(data, what)

    monkeypatch.setattr(trading_mod, "loads_venue", garbled_fast)
    res = await ex.submit(intent(rig.sim, "garbled", price="0.02"))
    assert len(rig.sim.open_orders()) == 1  # the venue took it
    assert res.status is OrderStatus.UNKNOWN, res  # not REJECTED: only reconcile can tell


async def test_delayed_order_that_ends_unmatched_is_closed(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None

    async def delayed(order: SignedOrder, order_type: Any, **_: Any) -> OrderAck:
        return OrderAck(True, order.order_hash, "delayed", None, None)

    monkeypatch.setattr(trading, "post_order", delayed)
    it = intent(rig.sim, "delayed", price=str(best_ask(rig.sim)), order_type=OrderType.FOK)
    res = await ex.submit(it)
    assert res.status is OrderStatus.SUBMITTED and res.venue_order_id

    async def unmatched(order_id: str) -> OpenOrder:
        return OpenOrder(
            order_id, "UNMATCHED", it.condition_id, it.token_id, Side.BUY, it.price, it.size, Decimal(0), "FOK", None
        )

    monkeypatch.setattr(trading, "order", unmatched)
    ex.unknown_grace_s = 0
    await ex.reconcile()
    rec = rig.store.get_order(res.key)
    assert rec is not None
    assert rec.status.is_final, rec.status
    assert res.key not in ex.risk.open_keys()


async def test_matched_answer_without_amounts_still_records_the_fills(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None
    original = trading.post_order

    async def no_amounts(order: SignedOrder, order_type: Any, **kw: Any) -> OrderAck:
        ack = await original(order, order_type, **kw)
        assert ack.status == "matched"
        return replace(ack, making_amount=None, taking_amount=None)

    monkeypatch.setattr(trading, "post_order", no_amounts)
    res = await ex.submit(intent(rig.sim, "fok", price=str(best_ask(rig.sim)), order_type=OrderType.FOK))
    ex.unknown_grace_s = 0
    await ex.reconcile()
    assert _filled_in_store(rig, res.key) == 10
    assert ex.risk.held(intent(rig.sim, "fok").token_id) == 10


# ------------------------------------------------------------------------------ fills


async def test_maker_fill_counts_only_our_matched_amount(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None
    it = intent(rig.sim, "maker", price="0.02", size="5")
    res = await ex.submit(it)
    assert res.status is OrderStatus.LIVE and res.venue_order_id
    ours = res.venue_order_id
    row = {
        "id": "trade-1",
        "taker_order_id": "0x" + "ab" * 32,
        "market": it.condition_id,
        "asset_id": it.token_id,
        "side": "SELL",
        "size": "50",  # the taker sold 50: 5 to us, 45 to someone else
        "price": "0.02",
        "status": "MATCHED",
        "match_time": str(int(rig.sim.now())),
        "trader_side": "MAKER",
        "maker_orders": [
            {"order_id": ours, "matched_amount": "5", "price": "0.02", "asset_id": it.token_id, "side": "BUY"},
            {"order_id": "0x" + "cd" * 32, "matched_amount": "45", "price": "0.02", "asset_id": it.token_id},
        ],
    }
    original_pages = trading._pages

    async def pages(path: str, params: dict[str, Any]) -> list[Any]:
        return [row] if path == "/data/trades" else await original_pages(path, params)

    async def matched(order_id: str) -> OpenOrder:
        return OpenOrder(
            order_id, "MATCHED", it.condition_id, it.token_id, Side.BUY, it.price, it.size, it.size, "GTC", None
        )

    monkeypatch.setattr(trading, "_pages", pages)
    monkeypatch.setattr(trading, "order", matched)
    await ex.reconcile()
    assert _filled_in_store(rig, res.key) == 5
    assert ex.risk.held(it.token_id) == 5


async def test_cancel_records_fills_made_before_the_cancel(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = Decimal(raw["bids"][-1]["price"]) + Decimal("0.01")  # the new best bid
    resting = await ex.submit(intent(rig.sim, "partial", price=str(price), size="10"))
    assert resting.status is OrderStatus.LIVE
    other = SimTrader(rig.sim, HARDHAT_KEYS[1])
    rig.sim.fund(other.address, shares={token: 5})  # the venue sells only shares the wallet holds
    try:
        hit = await asyncio.to_thread(other.post_order, token, "SELL", price, Decimal(5))
        assert hit.status_code == 200, hit.text
    finally:
        other.close()
    done = await ex.cancel(resting.key)  # no user channel running: the fill is known only to the venue
    assert done.status is OrderStatus.CANCELLED
    assert done.filled_size == 5
    assert _filled_in_store(rig, resting.key) == 5
    assert ex.risk.held(token) == 5


# ------------------------------------------------------------------------------ concurrency


async def test_reconciler_survives_a_cancel_racing_it(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None
    ex.unknown_grace_s = 0
    rig.sim.set_faults(drop_order_responses=1)
    lost = await ex.submit(intent(rig.sim, "race", price="0.02"))
    assert lost.status is OrderStatus.UNKNOWN
    rig.sim.clear_faults()

    original = trading.order
    entered, gate = asyncio.Event(), asyncio.Event()

    async def slow_order(order_id: str) -> OpenOrder | None:
        found = await original(order_id)  # LIVE, read before the cancel
        entered.set()
        await gate.wait()
        return found

    monkeypatch.setattr(trading, "order", slow_order)
    task = asyncio.create_task(ex.run_reconciler(every_s=0.01))
    try:
        async with asyncio.timeout(10):
            await entered.wait()
        # cancel() settles under the order's lock, so it waits for the reconcile in progress
        cancelling = asyncio.create_task(ex.cancel(lost.key))
        await asyncio.sleep(0.05)
        gate.set()
        cancelled = await cancelling
        assert cancelled.status is OrderStatus.CANCELLED
        await asyncio.sleep(0.2)
        assert not task.done(), task.exception() if task.done() else None
        rec = rig.store.get_order(lost.key)
        assert rec is not None and rec.status is OrderStatus.CANCELLED
        assert lost.key not in ex.risk.open_keys()
    finally:
        gate.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_background_reconciler_settles_a_sent_order_left_pending(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None
    original = trading.trades
    calls = {"n": 0}

    async def flaky(**kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise ValueError("unexpected trade row")  # not a VenueError
        return await original(**kw)

    monkeypatch.setattr(trading, "trades", flaky)
    it = intent(rig.sim, "sent", price=str(best_ask(rig.sim)), order_type=OrderType.FOK)
    with pytest.raises(ValueError, match="unexpected trade row"):
        await ex.submit(it)
    assert len(rig.sim.received_orders()) == 1  # it was sent and matched
    ex.unknown_grace_s = 0
    task = asyncio.create_task(ex.run_reconciler(every_s=0.01))
    try:
        await asyncio.sleep(0.3)
        rec = rig.store.get_order(it.key)
        assert rec is not None and rec.status is OrderStatus.FILLED, rec
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# ------------------------------------------------------------------------------ wallet lock


class _RedisDown:
    """Takes the lease, then every renewal fails (a network blip, a failover)."""

    async def set(self, *args: Any, **kwargs: Any) -> bool:
        return True

    async def get(self, key: str) -> None:
        return None

    async def eval(self, *args: Any) -> int:
        raise ConnectionError("redis unreachable")


async def test_wallet_lease_that_cannot_be_renewed_counts_as_lost() -> None:
    lock = RedisWalletLock(_RedisDown(), "0xabc", ttl_s=0.03)  # type: ignore[arg-type]
    await lock.acquire()
    try:
        await asyncio.sleep(0.15)  # several TTLs without a successful renewal: the lease is gone in Redis
        assert lock.is_lost()
    finally:
        await lock.release()


async def test_fill_reported_while_the_order_is_in_flight_is_not_lost(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    trading = ex.trading
    assert trading is not None
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = Decimal(raw["bids"][-1]["price"]) + Decimal("0.01")
    stream = rig.venue.user_stream()
    pump = asyncio.create_task(ex.follow_user(stream))
    other = SimTrader(rig.sim, HARDHAT_KEYS[1])
    rig.sim.fund(other.address, shares={token: 5})  # the venue sells only shares the wallet holds
    original = trading.post_order

    async def answer_arrives_late(order: SignedOrder, order_type: Any, **kw: Any) -> OrderAck:
        ack = await original(order, order_type, **kw)  # rests: "live"
        hit = await asyncio.to_thread(other.post_order, token, "SELL", price, Decimal(5))  # matched right away
        assert hit.status_code == 200, hit.text
        await asyncio.sleep(0.3)  # the user channel reports the trade before we read the POST answer
        return ack

    try:
        async with asyncio.timeout(10):
            while not stream.connected:
                await asyncio.sleep(0.01)
        monkeypatch.setattr(trading, "post_order", answer_arrives_late)
        res = await ex.submit(intent(rig.sim, "early", price=str(price), size="5"))
        assert res.status is OrderStatus.LIVE
        await asyncio.sleep(0.5)
        rec = rig.store.get_order(res.key)
        assert rec is not None and rec.status is OrderStatus.FILLED, rec
        assert _filled_in_store(rig, res.key) == 5
    finally:
        other.close()
        await stream.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
