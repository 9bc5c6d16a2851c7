"""The executor against `pmbot sim` over real sockets, with a real SQLite store: idempotency,
write-ahead, risk, paper fills, live orders, faults and restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.config import Settings, load_settings
from pmbot.executor.engine import ExecutorClosedError
from pmbot.executor.factory import ExecutorHandle, build_executor
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.polymarket.factory import Venue, build_venue
from pmbot.polymarket.http import RetryPolicy
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.base import Store
from pmbot.store.models import OrderStatus, OrderType, Query, Side

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.02)


def settings_for(sim: SimServer, db_url: str, **extra: str) -> Settings:
    env = {
        **sim.env(),
        "PMBOT_PRIVATE_KEY": KEY,
        "PMBOT_DATABASE_URL": db_url,
        "PMBOT_EXECUTOR__ORDERS_PER_MINUTE": "600000",
        "PMBOT_RISK__MAX_OPEN_ORDERS": "5000",
        "PMBOT_RISK__MAX_ORDER_NOTIONAL": "100000",
        "PMBOT_RISK__MAX_TOTAL_EXPOSURE": "100000",
        "PMBOT_RISK__MAX_POSITION_PER_MARKET": "100000",
        # off here: these tests move the sim clock past the venue's 10 s heartbeat deadline on purpose
        # (tests/test_heartbeats.py turns it on)
        "PMBOT_EXECUTOR__HEARTBEAT": "false",
        **extra,
    }
    return load_settings(env_file=None, environ=env).settings


class Rig:
    """A venue + store + executor factory on one sim; `restart()` builds a fresh executor on the same store."""

    def __init__(self, sim: SimServer, tmp: Path, settings: Settings) -> None:
        self.sim, self.tmp, self.settings = sim, tmp, settings
        self.store: Store = open_store(settings.database_url, clock=sim.now)  # one clock for records and executor
        self.venue: Venue = build_venue(settings, clock=sim.now, retry=FAST, timeout=2.0)
        self.handles: list[ExecutorHandle] = []

    async def executor(self, *, dry_run: bool, paper_wallet: str | None = None) -> ExecutorHandle:
        """`paper_wallet`: a dry-run process with a paper wallet of its own (settings executor.paper_wallet);
        two dry-run processes cannot hold one paper wallet at once."""
        settings = self.settings
        if paper_wallet is not None:
            update = {"paper_wallet": paper_wallet}
            settings = settings.model_copy(update={"executor": settings.executor.model_copy(update=update)})
        h = await build_executor(
            settings, self.store, self.venue, dry_run=dry_run, lock_dir=self.tmp / "locks", clock=self.sim.now
        )
        await h.executor.start()
        self.handles.append(h)
        return h

    async def close(self) -> None:
        for h in self.handles:
            await h.close()
        await self.venue.aclose()
        self.store.close()


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def intent(
    sim: SimServer,
    n: int | str,
    *,
    side: Side = Side.BUY,
    price: str = "0.05",
    size: str = "10",
    order_type: OrderType = OrderType.GTC,
    token: int = 0,
    strategy: str = "test",
) -> OrderIntent:
    m = sim.current_market()
    return OrderIntent(
        key=intent_key(strategy, m["condition_id"], n),
        strategy=strategy,
        token_id=m["token_ids"][token],
        condition_id=m["condition_id"],
        side=side,
        price=Decimal(price),
        size=Decimal(size),
        order_type=order_type,
        signal_ms=int(sim.now() * 1000),
        meta={"market": m["slug"], "outcome": "Up" if token == 0 else "Down"},
    )


def best_ask(sim: SimServer, token: int = 0) -> Decimal:
    book = sim.book(sim.current_market()["token_ids"][token])
    assert book is not None
    return Decimal(book["asks"][-1]["price"])


# ------------------------------------------------------------------------------------------ dry-run


async def test_dry_run_fok_fills_against_the_sim_book(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    ask = best_ask(rig.sim)
    res = await ex.submit(intent(rig.sim, 1, price=str(ask), order_type=OrderType.FOK))
    assert res.status is OrderStatus.FILLED and res.filled_size == 10 and res.dry_run
    fee = (Decimal(10) * Decimal("0.07") * ask * (1 - ask)).quantize(Decimal("0.00001"))
    assert res.avg_price == ask and res.fees == fee
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.dry_run and rec.status is OrderStatus.FILLED
    assert [e.status for e in rig.store.order_events(res.key)] == [OrderStatus.PENDING, OrderStatus.FILLED]
    (trade,) = rig.store.list_trades(Query(dry_run=True))
    assert trade.fill.trade_id.startswith("paper:") and trade.fill.price == ask
    pos = rig.store.get_position("test", rec.token_id, dry_run=True)
    assert pos is not None and pos.size == 10
    assert rig.sim.received_orders() == []  # dry-run never touches the venue's order endpoint


async def test_a_thousand_concurrent_duplicates_make_one_order(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    same = intent(rig.sim, "dup", price=str(best_ask(rig.sim)), order_type=OrderType.FOK, size="5")
    results = await asyncio.gather(*(ex.submit(same) for _ in range(1000)))
    assert sum(not r.duplicate for r in results) == 1
    assert {r.status for r in results} == {OrderStatus.FILLED}
    assert len(rig.store.list_orders()) == 1 and len(rig.store.list_trades()) == 1


async def test_risk_rejections_are_stored_with_their_reason(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__MAX_ORDER_NOTIONAL="1"))
    try:
        ex = (await r.executor(dry_run=True)).executor
        res = await ex.submit(intent(sim, 1, price="0.50", size="10"))
        assert res.status is OrderStatus.REJECTED and res.code == "max_order_notional"
        rec = r.store.get_order(res.key)
        assert rec is not None and rec.status is OrderStatus.REJECTED and "5.00 USDC > limit 1" in (rec.error or "")
        sell = await ex.submit(intent(sim, 2, side=Side.SELL, price="0.50", size="10"))
        assert sell.code == "no_position"
        assert ex.metrics.snapshot()["rejects"] == {"max_order_notional": 1, "no_position": 1}
    finally:
        await r.close()


async def test_kill_switch_survives_a_restart(rig: Rig) -> None:
    h = await rig.executor(dry_run=True)
    h.executor.risk.trip("operator said stop")
    await h.close()
    rig.handles.remove(h)
    again = (await rig.executor(dry_run=True)).executor
    res = await again.submit(intent(rig.sim, 9))
    assert res.status is OrderStatus.REJECTED and res.code == "kill_switch"
    again.risk.resume()
    assert (await again.submit(intent(rig.sim, 10))).status is OrderStatus.LIVE


async def test_restart_never_resends_a_known_key(rig: Rig) -> None:
    h = await rig.executor(dry_run=True)
    first = await h.executor.submit(intent(rig.sim, 7, price="0.02"))
    assert first.status is OrderStatus.LIVE  # resting on the paper book
    await h.close()
    rig.handles.remove(h)
    ex = (await rig.executor(dry_run=True)).executor
    rec = rig.store.get_order(first.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED  # paper books do not survive a restart
    again = await ex.submit(intent(rig.sim, 7, price="0.02"))
    assert again.duplicate and again.status is OrderStatus.CANCELLED
    assert len(rig.store.list_orders()) == 1


async def test_resting_paper_order_fills_when_the_book_crosses(rig: Rig) -> None:
    from pmbot.polymarket.models import BookLevel, OrderBook

    ex = (await rig.executor(dry_run=True)).executor
    res = await ex.submit(intent(rig.sim, 3, price="0.20", size="10"))
    assert res.status is OrderStatus.LIVE
    token = rig.sim.current_market()["token_ids"][0]
    bids, asks = (BookLevel(Decimal("0.10"), Decimal(50)),), (BookLevel(Decimal("0.19"), Decimal(50)),)
    crossing = OrderBook(token, "", bids, asks, 2**40)
    assert await ex.on_book(crossing) == 1
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size == 10


async def test_closed_executor_records_late_intents_as_not_sent(rig: Rig) -> None:
    h = await rig.executor(dry_run=True)
    await h.close()
    rig.handles.remove(h)
    late = await h.executor.submit(intent(rig.sim, 99))
    assert late.status is OrderStatus.NOT_SENT and late.code == "shutting_down"  # a later run may send it
    rec = rig.store.get_order(late.key)
    assert rec is not None and rec.status is OrderStatus.NOT_SENT
    assert ExecutorClosedError.default_hint


# --------------------------------------------------------------------------------------------- live


async def test_live_gtc_rests_fok_fills_and_fills_are_recorded(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    rest = await ex.submit(intent(rig.sim, 1, price="0.03"))
    assert rest.status is OrderStatus.LIVE and not rest.dry_run and rest.venue_order_id
    events = [e.status for e in rig.store.order_events(rest.key)]
    assert events == [OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.LIVE]
    ask = best_ask(rig.sim)
    fok = await ex.submit(intent(rig.sim, 2, price=str(ask), order_type=OrderType.FOK))
    assert fok.status is OrderStatus.FILLED and fok.filled_size == 10
    trades = rig.store.list_trades(Query(dry_run=False))
    assert trades and sum(t.fill.size for t in trades) == 10 and all(not t.fill.dry_run for t in trades)
    cancelled = await ex.cancel(rest.key)
    assert cancelled.status is OrderStatus.CANCELLED
    assert len(rig.sim.received_orders()) == 2 and rig.sim.open_orders() == []


async def test_live_duplicates_reach_the_venue_once(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    same = intent(rig.sim, "x", price="0.02")
    results = await asyncio.gather(*(ex.submit(same) for _ in range(200)))
    assert sum(not r.duplicate for r in results) == 1
    assert len(rig.sim.received_orders()) == 1


async def test_venue_refusals_and_rate_limits_are_not_retried(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(rate_limit=1, retry_after=1, rate_limit_path="/order")
    limited = await ex.submit(intent(rig.sim, 1, price="0.02"))
    assert limited.status is OrderStatus.NOT_SENT and limited.code == "venue_429"  # not taken: retryable
    rig.sim.clear_faults()
    huge = intent(rig.sim, 2, price=str(best_ask(rig.sim)), size="100000", order_type=OrderType.FOK)
    refused = await ex.submit(huge)
    assert refused.status is OrderStatus.REJECTED and "FOK" in (refused.reason or "")
    # the 429'd POST was never processed and not retried; the FOK reached the venue once and was refused
    assert [o["orderType"] for o in rig.sim.received_orders()] == ["FOK"]


async def test_lost_answers_are_unknown_then_reconciled_without_resending(rig: Rig) -> None:
    h = await rig.executor(dry_run=False)
    rig.sim.set_faults(drop_order_responses=1)
    placed = await h.executor.submit(intent(rig.sim, 1, price="0.02"))
    assert placed.status is OrderStatus.UNKNOWN
    rig.sim.clear_faults()
    rig.sim.set_faults(server_error=1, server_error_path="/order")
    failed = await h.executor.submit(intent(rig.sim, 2, price="0.02"))
    assert failed.status is OrderStatus.UNKNOWN
    rig.sim.clear_faults()
    # right away, "not at the venue" could still be a request in its pipeline: stay unknown
    assert await h.executor.reconcile() == {"live": 1, "unknown": 1}
    rig.sim.advance(h.executor.unknown_grace_s + 1)
    report = await h.executor.reconcile()
    assert report == {"live": 1, "rejected": 1}
    got = rig.store.get_order(placed.key)
    assert got is not None and got.status is OrderStatus.LIVE  # it was on the book all along
    gone = rig.store.get_order(failed.key)
    assert gone is not None and gone.status is OrderStatus.REJECTED and "never placed" in (gone.error or "")
    again = await h.executor.submit(intent(rig.sim, 1, price="0.02"))
    assert again.duplicate
    assert len(rig.sim.received_orders()) == 1  # one order placed, none re-sent


async def test_second_live_engine_on_one_wallet_refuses(rig: Rig) -> None:
    from pmbot.executor.lock import WalletLockedError

    await rig.executor(dry_run=False)
    with pytest.raises(WalletLockedError):
        await rig.executor(dry_run=False)


async def test_fleet_claims_in_redis_stop_cross_process_duplicates(
    sim: SimServer, tmp_path: Path, redis_url: str
) -> None:
    # Two executors, two databases (as two hosts would have), one Redis: one of them sends.
    rigs = [
        Rig(sim, tmp_path / str(i), settings_for(sim, f"sqlite:///{tmp_path}/db{i}.db", PMBOT_REDIS_URL=redis_url))
        for i in range(2)
    ]
    try:
        exs = [(await r.executor(dry_run=True)).executor for r in rigs]
        same = intent(sim, "fleet", price="0.02")
        a, b = await asyncio.gather(exs[0].submit(same), exs[1].submit(same))
        assert sorted([a.duplicate, b.duplicate]) == [False, True]
    finally:
        for r in rigs:
            await r.close()


async def test_submit_before_start_is_refused(rig: Rig) -> None:
    from pmbot.errors import PmbotError

    h = await build_executor(
        rig.settings, rig.store, rig.venue, dry_run=True, lock_dir=rig.tmp / "l", clock=rig.sim.now
    )
    rig.handles.append(h)
    with pytest.raises(PmbotError, match="not started"):
        await h.executor.submit(intent(rig.sim, 1))
    assert rig.store.list_orders() == []


async def test_resting_paper_orders_fill_from_the_live_market_stream(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    m = rig.sim.current_market()
    token = m["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    bid = Decimal(raw["bids"][-1]["price"])
    resting = await ex.submit(intent(rig.sim, "rest", price=str(bid), size="5"))  # joins the best bid
    assert resting.status is OrderStatus.LIVE
    stream = rig.venue.market_stream([token])
    pump = asyncio.create_task(ex.follow_books(stream))
    try:
        for _ in range(120):  # the seeded market drifts; sooner or later the ask comes down to our bid
            rig.sim.advance(5)
            await asyncio.sleep(0.02)
            rec = rig.store.get_order(resting.key)
            if rec is not None and rec.status is OrderStatus.FILLED:
                break
        rec = rig.store.get_order(resting.key)
        assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size == 5
        (trade,) = rig.store.list_trades(Query(dry_run=True))
        assert trade.fill.liquidity == "maker" and trade.fill.price == bid and trade.fill.fee == 0
    finally:
        await stream.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def test_redis_wallet_lease_keeps_a_second_engine_out(redis_url: str) -> None:
    import redis.asyncio as aioredis

    from pmbot.executor.lock import RedisWalletLock, WalletLockedError

    client = aioredis.Redis.from_url(redis_url)
    try:
        first = RedisWalletLock(client, "0xABC", ttl_s=0.3)
        await first.acquire()
        second = RedisWalletLock(client, "0xabc", ttl_s=0.3)
        with pytest.raises(WalletLockedError, match="via Redis"):
            await second.acquire()
        await asyncio.sleep(0.5)  # renewed every ttl/3: still held after the TTL has passed
        assert not first.is_lost()
        with pytest.raises(WalletLockedError):
            await second.acquire()
        await first.release()
        await second.acquire()
        await second.release()
    finally:
        await client.aclose()


async def test_live_resting_order_filled_later_is_recorded_from_the_user_channel(rig: Rig) -> None:
    from pmbot.sim.testing import HARDHAT_KEYS, SimTrader

    ex = (await rig.executor(dry_run=False)).executor
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = Decimal(raw["bids"][-1]["price"]) + Decimal("0.01")  # the new best bid, inside the spread
    resting = await ex.submit(intent(rig.sim, "maker", price=str(price), size="5"))
    assert resting.status is OrderStatus.LIVE
    stream = rig.venue.user_stream()
    pump = asyncio.create_task(ex.follow_user(stream))
    other = SimTrader(rig.sim, HARDHAT_KEYS[1])
    rig.sim.fund(other.address, shares={token: 5})  # the venue sells only shares the wallet holds
    try:
        async with asyncio.timeout(10):
            while not stream.connected:  # subscribed (and authenticated) before the trade happens
                await asyncio.sleep(0.01)
        hit = await asyncio.to_thread(other.post_order, token, "SELL", price, Decimal(5))
        assert hit.status_code == 200, hit.text
        for _ in range(100):
            await asyncio.sleep(0.03)
            rec = rig.store.get_order(resting.key)
            if rec is not None and rec.status is OrderStatus.FILLED:
                break
        rec = rig.store.get_order(resting.key)
        assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size == 5
        (trade,) = rig.store.list_trades(Query(dry_run=False))
        assert trade.fill.liquidity == "maker" and trade.fill.price == price and trade.fill.order_key == resting.key
        assert ex.risk.held(token) == 5
    finally:
        other.close()
        await stream.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)


async def test_background_reconciler_settles_unknown_orders(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    ex.unknown_grace_s = 0
    rig.sim.set_faults(drop_order_responses=1)
    lost = await ex.submit(intent(rig.sim, "lost", price="0.02"))
    assert lost.status is OrderStatus.UNKNOWN
    rig.sim.clear_faults()
    task = asyncio.create_task(ex.run_reconciler(every_s=0.02))
    try:
        async with asyncio.timeout(10):
            while (rec := rig.store.get_order(lost.key)) is not None and rec.status is OrderStatus.UNKNOWN:
                await asyncio.sleep(0.02)
        assert rec is not None and rec.status is OrderStatus.LIVE
        assert len(rig.sim.received_orders()) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_a_marketable_order_is_not_sent_rather_than_held_seconds_for_the_budget(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    """Review: with the orders/min budget exhausted, copies' FAKs waited 2–26 s and then filled against a
    book (even a market) that had moved on. A FOK/FAK now waits at most `marketable_max_wait_s`."""
    settings = settings_for(sim, db_url, PMBOT_EXECUTOR__ORDERS_PER_MINUTE="5")  # burst 1, then one per 12 s
    r = Rig(sim, tmp_path, settings)
    try:
        ex = (await r.executor(dry_run=True)).executor
        assert ex.marketable_max_wait_s == 2.0
        first = await ex.submit(intent(sim, 1, price="0.99", size="5", order_type=OrderType.FAK))
        assert first.status is OrderStatus.FILLED
        second = await ex.submit(intent(sim, 2, price="0.99", size="5", order_type=OrderType.FAK))
        assert (second.status, second.code) == (OrderStatus.NOT_SENT, "budget")
        assert "budget" in (second.reason or "") and "not executed" in (second.reason or "")
        [rec] = [o for o in r.store.list_orders() if o.key == second.key]
        assert rec.status is OrderStatus.NOT_SENT and rec.filled_size == 0
    finally:
        await r.close()
