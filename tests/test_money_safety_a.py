"""Regressions for issue 9 items 1, 2, 3, 9, 11, 12, 13, issue 8's `not_sent` rule, and fixed-point venue
amounts: each test failed on the code before its fix. Real sim over sockets and real SQLite; a venue call is
replaced by a stand-in only for what the sim cannot be made to do on cue (a trade history that lags, a
refused TCP connection, a storage failure of one row)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pmbot.errors import InputError, StoreError
from pmbot.executor.engine import DRY_RUN_PREFIX, Executor, buy_fee_reserve
from pmbot.executor.intents import OrderIntent
from pmbot.polymarket.models import BookLevel, FeeSchedule, MarketParams, OrderBook, UserTrade
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.signing import buy_spend, marketable_buy_terms
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store import open_store
from pmbot.store.models import OrderStatus, OrderType, Query, Side
from tests.services import redis_server
from tests.test_executor import Rig, best_ask, intent, settings_for
from tests.test_order_cmds import KEY, invoke

D = Decimal


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def sk(key: str, dry_run: bool) -> str:
    """The key an intent is stored under: dry-run keys live in their own space (issue 9 #7)."""
    return DRY_RUN_PREFIX + key if dry_run else key


def _trades_of(rig: Rig, key: str, *, dry_run: bool) -> list[Any]:
    return [t.fill for t in rig.store.list_trades(Query(dry_run=dry_run)) if t.fill.order_key == key]


def _ask_level(sim: SimServer) -> tuple[Decimal, Decimal]:
    raw = sim.book(sim.current_market()["token_ids"][0])
    assert raw is not None
    top = raw["asks"][-1]
    return D(top["price"]), D(top["size"])


# ------------------------------------------------------------------ 1. what a marketable BUY of N shares is


async def test_marketable_buy_is_gated_on_what_it_can_really_spend(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    """BUY FOK 10 @ 0.95 with the ask at 0.55 and max_total_exposure 9.60: the old gate reserved 9.53 (fee at
    0.95) and approved; live then spent 9.50 on 17.27 shares plus a 0.30 fee (exposure 9.80 > 9.60)."""
    ask, _ = _ask_level(sim)
    assert ask <= D("0.60")
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__MAX_TOTAL_EXPOSURE="9.60"))
    try:
        for dry_run in (True, False):
            ex = (await r.executor(dry_run=dry_run)).executor
            res = await ex.submit(intent(sim, f"fok-{dry_run}", price="0.95", size="10", order_type=OrderType.FOK))
            assert res.status is OrderStatus.REJECTED and res.code == "max_total_exposure", res
            assert ex.risk.exposure().total == 0
        assert sim.received_orders() == []
    finally:
        await r.close()


async def test_marketable_buy_dry_run_predicts_live_and_stays_within_the_limit(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    ask, depth = _ask_level(sim)
    spend = buy_spend(D(10), D("0.95"))
    shares = (spend / ask).quantize(D("0.01"), ROUND_DOWN)
    assert depth >= shares  # one level: the venue and the paper exchange see the same book
    limit = D("10.20")
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__MAX_TOTAL_EXPOSURE=str(limit)))
    try:
        got = {}
        for dry_run in (True, False):  # paper first: it does not take the sim's liquidity
            ex = (await r.executor(dry_run=dry_run)).executor
            res = await ex.submit(intent(sim, f"fok-{dry_run}", price="0.95", size="10", order_type=OrderType.FOK))
            assert res.status is OrderStatus.FILLED, res
            (fill,) = _trades_of(r, res.key, dry_run=dry_run)
            got[dry_run] = (res.filled_size, res.avg_price, fill.fee)
            e = ex.risk.exposure()
            assert e.total <= limit and e.total == shares * ask + fill.fee
        # the same shares, price and fee in dry-run and live (the old paper exchange bought 10 shares)
        assert got[True] == got[False] and got[False][0] == shares and got[False][1] == ask
        (sent,) = sim.received_orders()
        assert int(sent["order"]["makerAmount"]) == int(spend * 1_000_000)  # signed: spend 9.50 USDC
    finally:
        await r.close()


def test_marketable_buy_fee_allowance_bounds_every_fill_price() -> None:
    params = MarketParams("t", tick_size=D("0.01"), neg_risk=False, fees=FeeSchedule(rate=D("0.07")))
    size, limit = D(10), D("0.95")
    allowance = buy_fee_reserve(Side.BUY, OrderType.FOK, size, limit, params)
    spend = buy_spend(size, limit)
    prices = [D(n) / 100 for n in range(1, 96)]
    worst = max(params.fees.fee((spend / x).quantize(D("0.01"), ROUND_DOWN), x) for x in prices)
    assert worst <= allowance
    # A resting BUY never buys more than its size: its fee at the limit is still its bound.
    assert buy_fee_reserve(Side.BUY, OrderType.GTC, size, limit, params) == params.fees.fee(size, limit)
    squared = MarketParams("t", tick_size=D("0.01"), neg_risk=False, fees=FeeSchedule(rate=D("0.25"), exponent=2))
    bound2 = buy_fee_reserve(Side.BUY, OrderType.FAK, size, limit, squared)
    spend_fees = (squared.fees.fee(spend / (D(n) / 100), D(n) / 100) for n in range(1, 96))
    assert max(spend_fees) <= bound2


def test_the_live_prompt_says_what_a_marketable_buy_spends(sim_env: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{Path.cwd() / 'p.db'}")
    token = sim_env.current_market()["token_ids"][0]
    code, out = invoke("order", "buy", token, "--price", "0.95", "--size", "10", "--type", "FOK", "--live", stdin="n\n")
    assert code != 0 and sim_env.received_orders() == []
    expected = marketable_buy_terms("BUY", "FOK", D(10), D("0.95"))
    assert expected is not None and "spending up to 9.50 USDC" in expected and "more at better prices" in expected
    assert expected in " ".join(out.split())
    assert "10 shares of" not in out  # the old prompt promised shares the venue does not cap


# ------------------------------------------------------------------ 2. status and size from what matched


async def test_filled_fok_is_filled_with_the_size_the_venue_matched(rig: Rig) -> None:
    """FOK 5.5 @ the ask: signed as 3.02 USDC (cents), matched for 5.49 shares; was stored `cancelled`."""
    ask, _ = _ask_level(rig.sim)
    size = D("5.5")
    expected = (buy_spend(size, ask) / ask).quantize(D("0.01"), ROUND_DOWN)
    assert expected < size
    for dry_run in (False, True):
        ex = (await rig.executor(dry_run=dry_run)).executor
        res = await ex.submit(intent(rig.sim, f"fok55-{dry_run}", price=str(ask), size="5.5", order_type=OrderType.FOK))
        assert res.status is OrderStatus.FILLED and res.filled_size == expected, res
        rec = rig.store.get_order(res.key)
        assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size == expected
        assert sum(f.size for f in _trades_of(rig, res.key, dry_run=dry_run)) == expected
        assert res.key not in ex.risk.open_keys()


async def test_a_partly_matched_fak_buy_is_cancelled_with_its_part_in_every_path(rig: Rig) -> None:
    """FAK BUY 2000 at the ask: only the top level is there. Paper, the POST answer and reconcile (after a
    lost answer, where the venue says MATCHED) all end `cancelled` with what matched."""
    ask, depth = _ask_level(rig.sim)
    paper = (await rig.executor(dry_run=True)).executor
    live = (await rig.executor(dry_run=False)).executor
    live.unknown_grace_s = 0
    got = {}
    for path, ex in (("paper", paper), ("answer", live), ("reconcile", live)):
        if path == "reconcile":
            rig.sim.advance(1)  # the market maker re-quotes the level the answer path took
            rig.sim.set_faults(drop_order_responses=1)
        res = await ex.submit(intent(rig.sim, f"fak-{path}", price=str(ask), size="2000", order_type=OrderType.FAK))
        rig.sim.clear_faults()
        if path == "reconcile":
            assert res.status is OrderStatus.UNKNOWN
            await ex.reconcile()
        rec = rig.store.get_order(res.key)
        assert rec is not None
        got[path] = (rec.status, rec.filled_size)
    assert got["paper"] == got["answer"] == (OrderStatus.CANCELLED, depth), got
    assert got["reconcile"][0] is OrderStatus.CANCELLED and got["reconcile"][1] > 0, got  # was: filled


# ------------------------------------------------------------------ 3. reconcile waits for the trades


async def _fill_resting(rig: Rig, token: str, price: Decimal, size: Decimal) -> None:
    other = SimTrader(rig.sim, HARDHAT_KEYS[1])
    rig.sim.fund(other.address, shares={token: size})  # the venue sells only shares the wallet holds
    try:
        hit = await asyncio.to_thread(other.post_order, token, "SELL", price, size)
        assert hit.status_code == 200, hit.text
    finally:
        other.close()


def _lagging_history(ex: Executor, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The venue's trade history does not show recent matches yet (while lag[0] is True)."""
    assert ex.trading is not None
    original = ex.trading.trades
    lag = [True]

    async def trades(**kw: Any) -> list[UserTrade]:
        rows = await original(**kw)
        return [] if lag[0] else rows

    monkeypatch.setattr(ex.trading, "trades", trades)
    return lag


async def test_reconcile_does_not_close_a_matched_order_before_its_trades_are_visible(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    ex.unknown_grace_s = 0
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = D(raw["bids"][-1]["price"]) + D("0.01")
    resting = await ex.submit(intent(rig.sim, "matched-later", price=str(price), size="5"))
    assert resting.status is OrderStatus.LIVE
    await _fill_resting(rig, token, price, D(5))  # fully matched at the venue; we have not heard
    lag = _lagging_history(ex, monkeypatch)
    await ex.reconcile()
    rec = rig.store.get_order(resting.key)
    assert rec is not None and not rec.status.is_final, rec  # was: filled, with no trade ever recorded
    assert resting.key in ex.risk.open_keys()
    lag[0] = False
    await ex.reconcile()
    rec = rig.store.get_order(resting.key)
    assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size == 5
    assert sum(f.size for f in _trades_of(rig, resting.key, dry_run=False)) == 5
    assert ex.risk.held(token) == 5


async def test_cancel_does_not_close_an_order_before_its_trades_are_visible(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    ex.unknown_grace_s = 0
    token = rig.sim.current_market()["token_ids"][0]
    raw = rig.sim.book(token)
    assert raw is not None
    price = D(raw["bids"][-1]["price"]) + D("0.01")
    resting = await ex.submit(intent(rig.sim, "part-then-cancel", price=str(price), size="10"))
    await _fill_resting(rig, token, price, D(5))
    lag = _lagging_history(ex, monkeypatch)
    after = await ex.cancel(resting.key)
    assert after.status is OrderStatus.UNKNOWN, after  # was: cancelled, filled 5, no trade recorded
    lag[0] = False
    await ex.reconcile()
    rec = rig.store.get_order(resting.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED and rec.filled_size == 5
    assert sum(f.size for f in _trades_of(rig, resting.key, dry_run=False)) == 5
    assert ex.risk.held(token) == 5 and resting.key not in ex.risk.open_keys()


# ------------------------------------------------------------------ issue 8: never sent means retryable


@pytest.mark.parametrize("dry_run", [True, False])
async def test_an_intent_that_never_reached_the_venue_can_be_retried_under_its_key(rig: Rig, dry_run: bool) -> None:
    ex = (await rig.executor(dry_run=dry_run)).executor
    it = intent(rig.sim, "outage", price="0.02", token=1)  # a token whose parameters are not cached yet
    rig.sim.set_faults(server_error=50, server_error_path="/book")  # the venue is down for the fetch
    first = await ex.submit(it)
    assert first.status is OrderStatus.NOT_SENT and first.code == "no_market", first
    rec = rig.store.get_order(sk(it.key, dry_run))
    assert rec is not None and rec.status is OrderStatus.NOT_SENT
    rig.sim.clear_faults()
    again, twice = await asyncio.gather(ex.submit(it), ex.submit(it))  # the strategy signals again (twice)
    assert not again.duplicate and again.status is OrderStatus.LIVE, again  # was: "already known: not sent"
    assert twice.duplicate and twice.status is OrderStatus.LIVE
    assert len(rig.sim.received_orders()) == (0 if dry_run else 1)
    rec = rig.store.get_order(sk(it.key, dry_run))
    assert rec is not None and rec.status is OrderStatus.LIVE
    events = [e.status for e in rig.store.order_events(sk(it.key, dry_run))]
    # stored not_sent, then the retry written ahead like any intent, then sent
    assert events[:2] == [OrderStatus.NOT_SENT, OrderStatus.PENDING] and events[-1] is OrderStatus.LIVE


async def test_a_refused_connection_at_send_time_is_not_sent_too(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcome must not depend on when the outage began: parameters cached, then the venue refuses
    connections when the order is posted. Was: unknown, then `rejected: never placed` (key burned)."""
    ex = (await rig.executor(dry_run=False)).executor
    it = intent(rig.sim, "down-at-post", price="0.02")
    await ex.params.get(it.token_id)
    assert ex.trading is not None
    client = ex.trading.http._client
    original = client.send

    async def refused(request: httpx.Request, **kw: Any) -> httpx.Response:
        if request.method == "POST":
            raise httpx.ConnectError("connection refused")
        return await original(request, **kw)

    monkeypatch.setattr(client, "send", refused)
    poster = ex.trading.poster
    if poster is not None:  # the lean POST path (pmbot.polymarket.fastpost): a real refused connection
        await poster.aclose()
        poster._closed = False
        with socket.socket() as s:  # a port nothing listens on
            s.bind(("127.0.0.1", 0))
            real_port, poster.port = poster.port, s.getsockname()[1]
    first = await ex.submit(it)
    assert first.status is OrderStatus.NOT_SENT, first
    assert rig.sim.received_orders() == []
    monkeypatch.setattr(client, "send", original)
    if poster is not None:
        poster.port = real_port
    again = await ex.submit(it)
    assert again.status is OrderStatus.LIVE and len(rig.sim.received_orders()) == 1


async def test_a_never_sent_record_is_taken_over_by_one_retry_only(rig: Rig) -> None:
    """Two executors (processes) on one database retry the same never-sent key at once: one executes it.

    Dry-run: two live engines of one wallet cannot run at once (the per-wallet lock), but any number of
    dry-run processes may share a database, each with its own paper wallet."""
    ex1 = (await rig.executor(dry_run=True)).executor
    it = intent(rig.sim, "race", price="0.02", token=1)
    rig.sim.set_faults(server_error=50, server_error_path="/book")
    assert (await ex1.submit(it)).status is OrderStatus.NOT_SENT
    rig.sim.clear_faults()
    other = Rig(rig.sim, rig.tmp / "b", rig.settings)  # its own venue client and store connection
    try:
        ex2 = (await other.executor(dry_run=True, paper_wallet="b")).executor
        a, b = await asyncio.gather(ex1.submit(it), ex2.submit(it))
        assert sorted([a.duplicate, b.duplicate]) == [False, True]
        events = [e.status for e in rig.store.order_events(sk(it.key, True))]
        assert events.count(OrderStatus.PENDING) == 1  # taken over once, not twice
    finally:
        await other.close()


async def test_risk_and_venue_rejections_stay_final(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    too_big = intent(rig.sim, "huge", price=str(best_ask(rig.sim)), size="100000", order_type=OrderType.FOK)
    refused = await ex.submit(too_big)  # the venue kills it: not filled
    assert refused.status is OrderStatus.REJECTED
    again = await ex.submit(too_big)
    assert again.duplicate and again.status is OrderStatus.REJECTED
    assert len(rig.sim.received_orders()) == 1


async def test_old_never_sent_rejections_become_not_sent(tmp_path: Path) -> None:
    import sqlite3

    from pmbot.store.models import OrderRecord

    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = open_store(url)
    base = OrderRecord(key="", strategy="s", token_id="1", side=Side.BUY, price=D("0.5"), size=D(5),
                       order_type=OrderType.GTC, dry_run=False)  # fmt: skip
    for key, error in [("a", "market parameters unavailable: 500"), ("b", "max_total_exposure: over"),
                       ("c", "orders/min budget (50) exhausted: not sent"), ("d", "invalid order")]:  # fmt: skip
        store.insert_order(replace(base, key=key, status=OrderStatus.REJECTED, error=error))
    store.close()
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("DELETE FROM schema_migrations WHERE name = '0004_not_sent'")
    conn.commit()
    conn.close()
    store = open_store(url)
    got = {k: store.get_order(k).status for k in "abcd"}  # type: ignore[union-attr]
    store.close()
    assert got == {"a": OrderStatus.NOT_SENT, "b": OrderStatus.REJECTED, "c": OrderStatus.NOT_SENT,
                   "d": OrderStatus.REJECTED}  # fmt: skip


# ------------------------------------------------------------------ 9. one bad intent fails alone


async def test_an_unstorable_intent_fails_alone_and_leaks_nothing(rig: Rig) -> None:
    """A size with 7 decimals passed the gate, then failed the batch's write-ahead insert: every intent of the
    batch raised, reservations stayed held, and retrying the good one was refused as duplicate_key."""
    ex = (await rig.executor(dry_run=False)).executor
    good = intent(rig.sim, "good", price="0.02")
    bad = intent(rig.sim, "bad", price="0.02", size="10.0000001")
    outcomes = await asyncio.gather(ex.submit(good), ex.submit(bad), return_exceptions=True)
    assert not isinstance(outcomes[0], BaseException) and outcomes[0].status is OrderStatus.LIVE, outcomes[0]
    assert isinstance(outcomes[1], InputError) and "6 decimals" in outcomes[1].message
    assert rig.store.get_order(bad.key) is None and ex.risk.open_keys() == {good.key}
    assert len(rig.sim.received_orders()) == 1


async def test_a_storage_failure_of_one_row_fails_only_its_intent(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    its = [intent(rig.sim, f"b{n}", price=str(best_ask(rig.sim)), order_type=OrderType.FOK) for n in range(3)]
    original = rig.store.insert_order
    broken = {sk(its[1].key, True)}

    def insert(order: Any) -> bool:
        if order.key in broken:
            raise StoreError("disk I/O error")  # a stand-in: SQLite failing this one write
        return original(order)

    monkeypatch.setattr(rig.store, "insert_order", insert)
    outcomes = await asyncio.gather(*(ex.submit(i) for i in its), return_exceptions=True)
    assert isinstance(outcomes[1], StoreError)
    assert [o.status for o in outcomes if not isinstance(o, BaseException)] == [OrderStatus.FILLED] * 2
    assert ex.risk.open_keys() == frozenset()  # nothing reserved for the one that failed
    broken.clear()
    retry = await ex.submit(its[1])  # not refused as duplicate_key: nothing of it was stored or kept
    assert retry.status is OrderStatus.FILLED and not retry.duplicate


# ------------------------------------------------------------------ 11. fees of fills found after a restart


async def test_taker_fee_of_a_fill_found_after_a_restart_is_recorded(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    cfg = settings_for(sim, db_url)
    first = Rig(sim, tmp_path, cfg)
    ask, _ = _ask_level(sim)
    it = intent(sim, "lost-answer", price=str(ask), order_type=OrderType.FOK)
    try:
        ex = (await first.executor(dry_run=False)).executor
        sim.set_faults(drop_order_responses=1)
        res = await ex.submit(it)
        assert res.status is OrderStatus.UNKNOWN
        sim.clear_faults()
    finally:
        await first.close()
    second = Rig(sim, tmp_path, cfg)  # a new process: empty market-parameter cache
    try:
        ex = (await second.executor(dry_run=False)).executor
        ex.unknown_grace_s = 0
        await ex.reconcile()
        rec = second.store.get_order(it.key)
        assert rec is not None and rec.status is OrderStatus.FILLED
        (fill,) = _trades_of(second, it.key, dry_run=False)
        assert fill.fee == FeeSchedule(rate=D("0.07")).fee(fill.size, fill.price) and fill.fee > 0  # was 0
    finally:
        await second.close()


async def test_a_reopened_buy_keeps_its_fee_allowance_after_a_restart(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    cfg = settings_for(sim, db_url)
    first = Rig(sim, tmp_path, cfg)
    it = intent(sim, "resting", price="0.05", size="10")
    try:
        ex = (await first.executor(dry_run=False)).executor
        assert (await ex.submit(it)).status is OrderStatus.LIVE
        before = ex.risk.exposure().open_buys
    finally:
        await first.close()
    second = Rig(sim, tmp_path, cfg)
    try:
        ex = (await second.executor(dry_run=False)).executor
        fee = FeeSchedule(rate=D("0.07")).fee(D(10), D("0.05"))
        assert fee > 0 and ex.risk.exposure().open_buys == before == D("0.5") + fee  # was 0.50: no fee allowance
    finally:
        await second.close()


# ------------------------------------------------------------------ 12. a paper fill in the middle of a batch


async def test_a_book_crossing_during_a_paper_batch_is_neither_lost_nor_overwritten(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    token = rig.sim.current_market()["token_ids"][0]
    resting = intent(rig.sim, "rest", price="0.05", size="10")
    later = intent(rig.sim, "later", price="0.05", size="10")
    assert ex.books is not None
    source = ex.books
    calls = 0

    class CrossingMidBatch:
        """Book reads for the batch; during the second one, the market crosses the first order."""

        async def book(self, token_id: str) -> OrderBook:
            nonlocal calls
            calls += 1
            snap = await source.book(token_id)
            if calls == 2:
                crossed = OrderBook(token_id=token, market=snap.market, bids=(), timestamp_ms=snap.timestamp_ms + 1,
                                    asks=(BookLevel(D("0.05"), D(10)),), hash="crossed")  # fmt: skip
                await ex.on_book(crossed)
            return snap

    ex.books = CrossingMidBatch()
    outcomes = await asyncio.gather(ex.submit(resting), ex.submit(later), return_exceptions=True)
    assert not any(isinstance(o, BaseException) for o in outcomes), outcomes
    for key in (resting.key, later.key):
        rec = rig.store.get_order(sk(key, True))
        assert rec is not None
        stored = sum((f.size for f in _trades_of(rig, sk(key, True), dry_run=True)), D(0))
        assert rec.filled_size == stored, (rec, stored)  # the record and its trades agree
    # the resting order still rests on the paper book and fills on the next crossing book
    crossed = OrderBook(token_id=token, market="m", bids=(), asks=(BookLevel(D("0.05"), D(10)),),
                        timestamp_ms=10**13, hash="again")  # fmt: skip
    assert await ex.on_book(crossed) >= 1
    rec = rig.store.get_order(sk(resting.key, True))
    stored = sum((f.size for f in _trades_of(rig, sk(resting.key, True), dry_run=True)), D(0))
    assert rec is not None and rec.filled_size == stored and stored > 0


# ------------------------------------------------------------------ 13. Redis dying mid-run


@pytest.mark.parametrize("dry_run", [True, False])
async def test_redis_dying_mid_run_falls_back_to_the_local_budget(
    sim: SimServer, tmp_path: Path, db_url: str, dry_run: bool
) -> None:
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as server:
        r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_REDIS_URL=server.url))
        try:
            ex = (await r.executor(dry_run=dry_run)).executor
            server.stop()  # Redis dies while the executor runs
            ask = best_ask(sim)
            its = [intent(sim, f"r{n}", price=str(ask), size="5", order_type=OrderType.FOK) for n in range(2)]
            results = await ex.submit_many(its)
            assert [x.status for x in results] == [OrderStatus.FILLED] * 2, results
            assert all(_trades_of(r, sk(i.key, dry_run), dry_run=dry_run) for i in its)
            assert not [o for o in r.store.list_orders() if not o.status.is_final]
            assert ex.risk.open_keys() == frozenset()
        finally:
            await r.close()


# ------------------------------------------------------------------ venue amounts in fixed-point form


def test_fixed_point_amounts_under_one_unit_are_not_read_as_whole_shares() -> None:
    # SELL 5 shares at 0.10 in the OpenAPI's fixed-point form: making 5 shares, taking 0.50 USDC
    ack = rest.order_ack({"success": True, "orderID": "0x1", "status": "matched", "makingAmount": "5000000",
                          "takingAmount": "500000"})  # fmt: skip
    assert (ack.making_amount, ack.taking_amount) == (D(5), D("0.5"))  # was 5 and 500 000
    row = {"id": "0x1", "status": "LIVE", "side": "BUY", "price": "0.5", "original_size": "20000000",
           "size_matched": "500000"}  # fmt: skip
    o = rest.open_order(row)
    assert (o.original_size, o.size_matched) == (D(20), D("0.5"))  # was 20 and 500 000 matched
    decimal = rest.open_order({**row, "original_size": "20", "size_matched": "5"})
    assert (decimal.original_size, decimal.size_matched) == (D(20), D(5))


def test_intent_amounts_must_be_storable() -> None:
    from pmbot.executor.intents import validate_intent

    base = dict(key="k", strategy="s", token_id="1", condition_id="c", side=Side.BUY, order_type=OrderType.GTC,
                signal_ms=0)  # fmt: skip
    with pytest.raises(InputError):
        validate_intent(OrderIntent(price=D("0.5"), size=D("1.0000001"), **base))  # type: ignore[arg-type]
    with pytest.raises(InputError):
        validate_intent(OrderIntent(price=D("0.5000001"), size=D(5), **base))  # type: ignore[arg-type]
    validate_intent(OrderIntent(price=D("0.5"), size=D("5.000000"), **base))  # type: ignore[arg-type]


# ------------------------------------------------------------------ the executor as a state machine


class ExecutorMachine(RuleBasedStateMachine):
    """A dry-run executor on a real SQLite file, fed batches of intents of which some fail to store
    (a stand-in for a failing write), books that cross its resting orders, and cancels.

    Invariants: the gate reserves exactly the store's open orders; every order's filled size is the sum
    of its stored trades; the caps hold; a failed intent left nothing behind and can be sent again."""

    TOKEN = "7001"
    PARAMS = MarketParams(TOKEN, tick_size=D("0.01"), neg_risk=False, fees=FeeSchedule(rate=D("0.07")))
    CAP = D(60)

    def __init__(self) -> None:
        super().__init__()
        import tempfile

        from pmbot.config import RiskSettings
        from pmbot.executor.budget import LocalBudget
        from pmbot.executor.paper import PaperExchange
        from pmbot.executor.risk import RiskGate
        from pmbot.polymarket.params import MarketParamsCache

        self.loop = asyncio.new_event_loop()
        self.dir = tempfile.mkdtemp()
        self.now = 1_795_000_000.0
        self.store = open_store(f"sqlite:///{self.dir}/m.db", clock=lambda: self.now)
        self.broken: set[str] = set()
        original = self.store.insert_order

        def insert(order: Any) -> bool:
            if order.key in self.broken:
                raise StoreError("disk I/O error")
            return original(order)

        self.store.insert_order = insert  # type: ignore[method-assign]
        params = MarketParamsCache(None)  # type: ignore[arg-type]
        params.put(self.PARAMS)
        self.book = self._book(1, asks=[("0.60", "40"), ("0.55", "20")], bids=[("0.45", "20"), ("0.40", "40")])
        machine = self

        class Books:
            async def book(self, token_id: str) -> OrderBook:
                await asyncio.sleep(0)  # a real await: other work of the loop may run here
                return machine.book

        self.ex = Executor(
            store=self.store,
            risk=RiskGate(RiskSettings(max_total_exposure=self.CAP, max_open_orders=50), lambda: self.now),
            budget=LocalBudget(10**6, clock=lambda: self.now),
            params=params,
            dry_run=True,
            paper=PaperExchange(D(1000), clock=lambda: self.now),
            books=Books(),
            clock=lambda: self.now,
        )
        self.loop.run_until_complete(self.ex.start())
        self.n = 0
        self.failed: list[OrderIntent] = []

    def _book(self, ts: int, *, asks: list[tuple[str, str]], bids: list[tuple[str, str]]) -> OrderBook:
        return OrderBook(
            token_id=self.TOKEN, market="c", timestamp_ms=ts, hash=f"h{ts}",
            asks=tuple(BookLevel(D(p), D(s)) for p, s in asks), bids=tuple(BookLevel(D(p), D(s)) for p, s in bids),
        )  # fmt: skip

    def _intent(self, price: Decimal, size: Decimal, kind: OrderType) -> OrderIntent:
        self.n += 1
        return OrderIntent(
            key=f"{DRY_RUN_PREFIX}m{self.n}", strategy="m", token_id=self.TOKEN, condition_id="c", side=Side.BUY,
            price=price, size=size, order_type=kind, signal_ms=0,
        )  # fmt: skip

    @rule(
        orders=st.lists(
            st.tuples(
                st.integers(40, 70).map(lambda n: D(n) / 100),
                st.integers(500, 2000).map(lambda n: D(n) / 100),
                st.sampled_from([OrderType.GTC, OrderType.FOK, OrderType.FAK]),
                st.booleans(),  # this one's write fails
            ),
            min_size=1,
            max_size=6,
        )
    )
    def batch(self, orders: list[tuple[Decimal, Decimal, OrderType, bool]]) -> None:
        its = [(self._intent(p, s, k), bad) for p, s, k, bad in orders]
        self.broken |= {i.key for i, bad in its if bad}

        async def run() -> list[Any]:
            return await asyncio.gather(*(self.ex.submit(i) for i, _ in its), return_exceptions=True)

        outcomes = self.loop.run_until_complete(run())
        for (i, bad), out in zip(its, outcomes, strict=True):
            if bad:  # fails alone: nothing stored, nothing reserved
                assert isinstance(out, StoreError), out
                assert self.store.get_order(i.key) is None and i.key not in self.ex.risk.open_keys()
                self.failed.append(i)
            else:
                assert not isinstance(out, BaseException), out
                assert self.store.get_order(i.key) is not None

    @precondition(lambda self: self.failed)
    @rule()
    def retry_failed(self) -> None:
        i = self.failed.pop(0)
        self.broken.discard(i.key)
        res = self.loop.run_until_complete(self.ex.submit(i))
        assert not res.duplicate and res.code != "duplicate_key", res
        assert self.store.get_order(i.key) is not None

    @rule(ask=st.integers(40, 70).map(lambda n: D(n) / 100), size=st.integers(1, 30).map(D))
    def market_moves(self, ask: Decimal, size: Decimal) -> None:
        ts = self.book.timestamp_ms + 1
        self.book = self._book(ts, asks=[("0.70", "40"), (str(ask), str(size))], bids=[("0.30", "20")])
        self.loop.run_until_complete(self.ex.on_book(self.book))

    @precondition(lambda self: self.ex.risk.open_keys())
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.ex.risk.open_keys())))
        self.loop.run_until_complete(self.ex.cancel(key))

    @invariant()
    def gate_reserves_exactly_the_open_orders(self) -> None:
        open_ = {o.key for o in self.store.list_orders() if not o.status.is_final}
        assert set(self.ex.risk.open_keys()) == open_
        assert self.ex.risk.exposure().total <= self.CAP

    @invariant()
    def filled_sizes_are_the_stored_trades(self) -> None:
        trades: dict[str, Decimal] = {}
        for t in self.store.list_trades():
            key = t.fill.order_key or ""
            trades[key] = trades.get(key, D(0)) + t.fill.size
        for o in self.store.list_orders():
            assert o.filled_size == trades.get(o.key, D(0)), o

    def teardown(self) -> None:
        self.loop.run_until_complete(self.ex.close())
        self.loop.close()
        self.store.close()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


ExecutorMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=12, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestExecutorMachine = ExecutorMachine.TestCase


def test_pmbot_order_retried_after_an_outage_is_placed(sim_env: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 8's run: venue briefly down, `pmbot order … --key K` stored `rejected`, and the retry with the
    same key answered "already known: not sent again"."""
    import json

    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{Path.cwd() / 'o.db'}")
    m = sim_env.current_market()
    token = m["token_ids"][1]
    args = ("order", "buy", token, "--price", "0.02", "--size", "5", "--key", "K", "--json")
    # the book answers; the market's fee schedule (part of its parameters) does not
    sim_env.set_faults(server_error=100, server_error_path=f"/clob-markets/{m['condition_id']}")
    code, out = invoke(*args)
    assert "{" in out, (code, out)
    view = json.loads(out[out.index("{") :])
    assert view["status"] == "not_sent" and not view["duplicate"], out
    sim_env.clear_faults()
    code, out = invoke(*args)
    view = json.loads(out[out.index("{") :])
    assert code == 0 and not view["duplicate"] and view["status"] in ("live", "cancelled"), out
