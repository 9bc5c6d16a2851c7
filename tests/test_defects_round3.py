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
from tests.test_money_safety_b import best_bid

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


# ------------------------------------------------------------ 1. positions per paper wallet


async def test_a_restart_of_the_same_paper_wallet_sees_its_shares_another_wallet_does_not(rig: Rig) -> None:
    """The same database + dry-run + paper wallet name is the same paper wallet across restarts: its
    shares (paper exchange and gate) and its cash come back. Another name is another, empty wallet."""
    sim = rig.sim
    first = await rig.executor(dry_run=True)
    ask = best_ask(sim)
    bought = await first.executor.submit(intent(sim, "b", price=str(ask), size="10", order_type=OrderType.FOK))
    assert bought.status is OrderStatus.FILLED
    assert first.executor.paper is not None
    cash = first.executor.paper.balance
    token = sim.current_market()["token_ids"][0]
    await first.close()
    rig.handles.remove(first)

    other = (await rig.executor(dry_run=True, paper_wallet="other")).executor
    assert other.wallet == "paper:other" and other.paper is not None
    assert other.paper.shares(token) == 0 and other.risk.held(token) == 0
    assert other.paper.balance == rig.settings.executor.dry_run_balance
    bid = best_bid(sim)
    refused = await other.submit(intent(sim, "o", side=Side.SELL, price=str(bid), size="10", order_type=OrderType.FAK))
    assert refused.status is OrderStatus.REJECTED and refused.code == "no_position"

    again = (await rig.executor(dry_run=True)).executor  # the same set-up restarted (beside "other")
    assert again.wallet == "paper:default" and again.paper is not None
    assert again.paper.shares(token) == 10 and again.risk.held(token, "test") == 10
    assert again.paper.balance == cash
    sold = await again.submit(intent(sim, "s", side=Side.SELL, price=str(bid), size="10", order_type=OrderType.FAK))
    assert sold.status is OrderStatus.FILLED and sold.filled_size == 10
    pos = rig.store.get_position("test", token, dry_run=True)  # the default paper wallet's
    assert pos is not None and pos.size == 0 and pos.wallet == "paper:default"
    assert rig.store.get_position("test", token, dry_run=True, wallet="paper:other") is None
    trades = rig.store.list_trades(Query(dry_run=True))
    assert {t.fill.wallet for t in trades} == {"paper:default"}


async def test_two_paper_wallets_positions_are_kept_apart_and_both_paid(rig: Rig) -> None:
    """Two dry-run processes (two paper wallets) buy the same token for the same strategy: two positions,
    each its own process's to sell; a resolution pays each once (the default wallet's redeem id unchanged)."""
    sim = rig.sim
    a = (await rig.executor(dry_run=True)).executor
    b = (await rig.executor(dry_run=True, paper_wallet="b")).executor
    ask = best_ask(sim)
    for ex, n, size in ((a, "a", "10"), (b, "b", "6")):
        res = await ex.submit(intent(sim, n, price=str(ask), size=size, order_type=OrderType.FOK))
        assert res.status is OrderStatus.FILLED
    m = sim.current_market()
    token = m["token_ids"][0]
    held = {p.wallet: p.size for p in rig.store.list_positions(Query(dry_run=True))}
    assert held == {"paper:default": 10, "paper:b": 6}
    assert {p.wallet: p.size for p in rig.store.list_positions(Query(dry_run=True, wallet="paper:b"))} == {"paper:b": 6}
    (st,) = rig.store.stats(Query(dry_run=True))  # the reports sum a strategy's wallets
    assert st.open_positions == 2 and st.trades == 2
    settled = a.apply_resolution(pmbot.settle.Resolution(m["condition_id"], token, tuple(m["token_ids"]), "test"))
    ids = sorted(s.trade_id for s in settled)
    assert ids == sorted([f"redeem:test:{token}:1", f"redeem:test:{token}:1:paper:b"])
    assert a.apply_resolution(pmbot.settle.Resolution(m["condition_id"], token, tuple(m["token_ids"]), "t")) == []
    assert {p.wallet: p.state for p in rig.store.list_positions(Query(dry_run=True))} == {
        "paper:default": PositionState.RESOLVED,
        "paper:b": PositionState.RESOLVED,
    }


def _old_sqlite(path: Path) -> None:
    """A SQLite database as it was before 0011_paper_wallets: a dry-run and a live position of one token."""
    import sqlite3

    from sqlite_utils import Database

    from pmbot.store import migrations

    db = Database(sqlite3.connect(str(path), isolation_level=None))
    db.conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in migrations.MIGRATIONS:
        if name == "0011_paper_wallets":
            break
        fn(db)
        db.conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    db.close()


def _old_pg(url: str) -> None:
    import psycopg

    from pmbot.store import pg_migrations

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(b"CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        for name, step in pg_migrations.MIGRATIONS:
            if name == "0011_paper_wallets":
                break
            if callable(step):
                step(conn)
            elif step.strip():
                conn.execute(step.encode())
            conn.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (name,))


def _old_rows(url: str) -> None:
    """Two positions and their trades written the way the old code wrote them (no wallet columns)."""
    cols = (
        "strategy, token_id, dry_run, condition_id, market, outcome, size_micro, cost_micro, realized_pnl_micro,"
        " state, mark_price_micro, opened_at, updated_at"
    )
    tcols = (
        "trade_id, kind, strategy, token_id, side, price_micro, size_micro, notional_micro, fee_micro,"
        " realized_pnl_micro, dry_run, ts"
    )
    pos = [("s", "tok", d, "c", "", "", 10_000_000, 5_000_000, 0, "open", 500_000, 1, 1) for d in (1, 0)]
    trades = [(f"t{d}", "fill", "s", "tok", "BUY", 500_000, 10_000_000, 5_000_000, 0, 0, d, 1) for d in (1, 0)]
    if url.startswith("sqlite"):
        import sqlite3

        c = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        c.executemany(f"INSERT INTO positions ({cols}) VALUES ({', '.join('?' * 13)})", pos)  # noqa: S608
        c.executemany(f"INSERT INTO trades ({tcols}) VALUES ({', '.join('?' * 12)})", trades)  # noqa: S608
        c.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(
            b"CREATE TABLE IF NOT EXISTS trades_y1970m01 PARTITION OF trades FOR VALUES FROM (0) TO (2678400000)"
        )
        cur.executemany(f"INSERT INTO positions ({cols}) VALUES ({', '.join(['%s'] * 13)})".encode(), pos)  # noqa: S608
        cur.executemany(f"INSERT INTO trades ({tcols}) VALUES ({', '.join(['%s'] * 12)})".encode(), trades)  # noqa: S608


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.services)])
def test_migration_0011_gives_old_dry_run_positions_to_the_default_paper_wallet(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """After the upgrade, a dry-run set-up with the default paper wallet sees its positions (and is paid
    once under the payout ids of before); live positions stay wallet ''; another wallet's fills are a
    position of their own."""
    from pmbot.executor.factory import paper_balance
    from pmbot.store import open_store
    from pmbot.store.models import Fill

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        _old_sqlite(tmp_path / "old.db")
    else:
        url = request.getfixturevalue("pg_empty_url")
        _old_pg(url)
    _old_rows(url)
    store = open_store(url)
    try:
        dry = store.get_position("s", "tok", dry_run=True)
        live = store.get_position("s", "tok", dry_run=False)
        assert dry is not None and dry.wallet == "paper:default" and dry.size == 10
        assert live is not None and live.wallet == "" and live.size == 10
        assert {t.fill.wallet for t in store.list_trades(Query(dry_run=True))} == {"paper:default"}
        assert {t.fill.wallet for t in store.list_trades(Query(dry_run=False))} == {""}
        assert paper_balance(store, D(100), "paper:default") == (D(95), {"tok": D(10)})
        assert paper_balance(store, D(100), "paper:b") == (D(100), {})
        fill = Fill("tb", "s", "tok", Side.BUY, D("0.5"), D(4), dry_run=True, ts=2, wallet="paper:b")
        assert store.record_fill(fill) and not store.record_fill(fill)
        b = store.get_position("s", "tok", dry_run=True, wallet="paper:b")
        assert b is not None and b.size == 4
        assert store.get_position("s", "tok", dry_run=True).size == 10  # type: ignore[union-attr]
        paid = store.settle_token("tok", D(1), ts=3)
        assert sorted(t.fill.trade_id for t in paid) == ["redeem:s:tok:0", "redeem:s:tok:1", "redeem:s:tok:1:paper:b"]
        assert store.settle_token("tok", D(1), ts=4) == []
    finally:
        store.close()


# ------------------------------------------------ 3. a fill whose trade FAILED at the venue is taken back


def test_a_reversed_buy_leaves_the_position_as_before_once(store: Any) -> None:
    """Every backend: a BUY reversed leaves no shares, no cost, no PnL, in the stats too; twice is once."""
    from tests.test_store_contract import fill

    assert store.record_fill(replace(fill(1, Side.BUY, "0.40", "10", fee="0.1", dry_run=False), order_key="k"))
    assert store.record_fill(replace(fill(2, Side.BUY, "0.60", "10", fee="0.2", dry_run=False), order_key="k"))
    rev = store.reverse_fill("t2", ts=1_795_000_100_000, reason="trade FAILED at the venue")
    assert rev is not None and rev.fill.kind.value == "reversal" and rev.fill.trade_id == "revert:t2"
    assert rev.notional == D(-6) and rev.fill.fee == D("-0.2") and rev.realized_pnl == 0
    assert rev.fill.metadata == {
        "reverses": "t2",
        "reason": "trade FAILED at the venue",
        "reverted_at": 1_795_000_100_000,
    }
    assert rev.fill.ts == fill(2, Side.BUY, "0.60", "10").ts  # stamped with its fill's time
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and (pos.size, pos.cost, pos.realized_pnl) == (D(10), D("4.1"), D(0))
    assert [f.trade_id for f in store.fills_of_order("k")] == ["t1"]  # what the order filled, after all
    assert store.reverse_fill("t2", ts=1_795_000_200_000) is None  # FAILED seen again: nothing more
    assert store.reverse_fill("nope", ts=1_795_000_200_000) is None
    (st,) = store.stats(Query(dry_run=False))
    assert (st.trades, st.volume, st.fees, st.realized_pnl) == (1, D(4), D("0.1"), D(0))
    assert store.reverse_fill("t1", ts=1_795_000_300_000) is not None
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and (pos.size, pos.cost, pos.state) == (D(0), D(0), PositionState.CLOSED)
    kinds = [t.fill.kind.value for t in store.list_trades(Query(dry_run=False))]
    assert sorted(kinds) == ["fill", "fill", "reversal", "reversal"]
    assert store.fills_of_order("k") == []


def test_a_reversed_sell_gives_the_shares_and_their_cost_back_and_undoes_its_pnl(store: Any) -> None:
    from tests.test_store_contract import fill

    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False))
    assert store.record_fill(fill(2, Side.SELL, "0.70", "4", fee="0.05", dry_run=False))
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and pos.size == 6 and pos.realized_pnl == D("0.75")
    rev = store.reverse_fill("t2", ts=1_795_000_100_000)
    assert rev is not None and rev.realized_pnl == D("-0.75")
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and (pos.size, pos.cost, pos.realized_pnl, pos.state) == (
        D(10),
        D(5),
        D(0),
        PositionState.OPEN,
    )


async def _live_buy_that_fails(rig: Rig, ex: Any, n: str = "fail") -> Any:
    """A live FOK BUY the venue matches (the fill is recorded at once) and whose trade then FAILS on
    chain (fault trade_fail: reverted when it would be mined, 2 s after the match)."""
    rig.sim.set_faults(trade_fail=1)
    res = await ex.submit(intent(rig.sim, n, price=str(best_ask(rig.sim)), size="10", order_type=OrderType.FOK))
    assert res.status is OrderStatus.FILLED and res.filled_size > 0, res
    return res


def _venue_trade_statuses(rig: Rig) -> list[str]:
    return [str(t["status"]).removeprefix("TRADE_STATUS_") for t in rig.sim.trades()]


async def test_a_trade_that_fails_after_its_fill_was_recorded_is_taken_back_from_the_user_channel(rig: Rig) -> None:
    """Was: the fill stayed (its order final, every later trade status ignored): the position and the gate
    kept 10 shares that never arrived, their cost counted as exposure."""
    sim = rig.sim
    ex = (await rig.executor(dry_run=False)).executor
    token = sim.current_market()["token_ids"][0]
    stream = rig.venue.user_stream()
    pump = asyncio.create_task(ex.follow_user(stream))
    try:
        async with asyncio.timeout(10):
            while not stream.connected:
                await asyncio.sleep(0.01)
        res = await _live_buy_that_fails(rig, ex)
        size = res.filled_size
        assert ex.risk.held(token) == size and ex.risk.exposure().positions > 0
        sim.advance(3)  # the trade is FAILED at the venue now, and the user channel says so
        assert "FAILED" in _venue_trade_statuses(rig)
        for _ in range(200):
            await asyncio.sleep(0.02)
            if ex.metrics.fills_reverted:
                break
        assert ex.metrics.fills_reverted == 1
    finally:
        await stream.close()
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == 0 and pos.cost == 0 and pos.realized_pnl == 0
    assert ex.risk.held(token) == 0 and ex.risk.exposure().positions == 0
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.filled_size == 0
    assert any("FAILED at the venue" in e.detail for e in rig.store.order_events(res.key))
    kinds = sorted(t.fill.kind.value for t in rig.store.list_trades(Query(dry_run=False)))
    assert kinds == ["fill", "reversal"]
    assert rig.store.fills_of_order(res.key) == []  # what the order filled: nothing, after all
    (st,) = rig.store.stats(Query(dry_run=False))
    assert st.trades == 0 and st.volume == 0 and st.fees == 0 and st.realized_pnl == 0
    assert [e.event for e in rig.store.list_execution_logs(event="reversal")] == ["reversal"]
    # FAILED seen again (the channel repeats it, then the history check): taken back once
    assert await ex.check_failed_trades() == 0
    assert ex.metrics.fills_reverted == 1 and ex.risk.held(token) == 0


async def test_a_trade_that_failed_while_the_engine_was_down_is_taken_back_at_start_once(rig: Rig) -> None:
    sim = rig.sim
    first = await rig.executor(dry_run=False)
    token = sim.current_market()["token_ids"][0]
    res = await _live_buy_that_fails(rig, first.executor)
    await first.close()
    rig.handles.remove(first)
    sim.advance(3)  # FAILED while nothing listens
    assert "FAILED" in _venue_trade_statuses(rig)
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == res.filled_size  # not known yet
    second = await rig.executor(dry_run=False)  # start() reads the trade history of its recent fills
    assert second.executor.metrics.fills_reverted == 1
    assert second.executor.risk.held(token) == 0 and second.executor.risk.exposure().positions == 0
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == 0 and pos.cost == 0
    await second.close()
    rig.handles.remove(second)
    third = (await rig.executor(dry_run=False)).executor  # and again after another restart: nothing more
    assert third.metrics.fills_reverted == 0 and third.risk.held(token) == 0
    assert sorted(t.fill.kind.value for t in rig.store.list_trades(Query(dry_run=False))) == ["fill", "reversal"]


async def test_the_reconciler_takes_back_a_failed_trade_the_user_channel_did_not_deliver(rig: Rig) -> None:
    """No user channel (dropped, say): the background reconciler reads the trade history of markets with
    recent fills and takes the FAILED one back; RETRYING (may still be mined) is left alone."""
    from pmbot.polymarket.models import UserTrade

    sim = rig.sim
    ex = (await rig.executor(dry_run=False)).executor
    token = sim.current_market()["token_ids"][0]
    res = await _live_buy_that_fails(rig, ex)
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.venue_order_id
    (fill,) = rig.store.fills_of_order(res.key)
    retrying = UserTrade(fill.trade_id, rec.venue_order_id, "", token, Side.BUY, fill.size, fill.price, "RETRYING",
                         None, "TAKER")  # fmt: skip
    assert ex.reverse_failed(retrying) == 0 and ex.risk.held(token) == fill.size
    sim.advance(3)
    ex.failed_check_every_s = 0
    task = asyncio.create_task(ex.run_reconciler(every_s=0.01))
    try:
        for _ in range(300):
            await asyncio.sleep(0.01)
            if ex.metrics.fills_reverted:
                break
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ex.metrics.fills_reverted == 1 and ex.risk.held(token) == 0
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == 0
    failed = replace(retrying, status="FAILED")
    assert ex.reverse_failed(failed) == 0  # and the channel's late FAILED changes nothing


async def test_a_command_may_name_its_own_paper_wallet(rig: Rig) -> None:
    """build_executor(paper_wallet=…): a command with a name of its own (e.g. per copy target) runs beside
    the default paper wallet's process; the name is validated as the setting is."""
    from pmbot.executor.factory import build_executor

    a = (await rig.executor(dry_run=True)).executor
    h = await build_executor(
        rig.settings, rig.store, rig.venue, dry_run=True, lock_dir=rig.tmp / "locks", clock=rig.sim.now,
        paper_wallet="copy-x",
    )  # fmt: skip
    rig.handles.append(h)
    assert a.wallet == "paper:default" and h.executor.wallet == "paper:copy-x"
    with pytest.raises(ValueError, match="paper_wallet"):
        await build_executor(
            rig.settings, rig.store, rig.venue, dry_run=True, lock_dir=rig.tmp / "locks", clock=rig.sim.now,
            paper_wallet="../etc",
        )  # fmt: skip


def test_positions_report_shows_each_paper_wallet_and_stats_sum_them(
    sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`pmbot positions`: one row per paper wallet (a non-default one named in the mode column, `wallet`
    in --json), live rows apart; `pmbot stats` sums a strategy's wallets per mode."""
    import json

    from tests.test_settle_reports import buy, invoke, record

    for k, v in sim.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("COLUMNS", "200")
    token = sim.current_market()["token_ids"][0]
    record(
        db_url,
        buy(token, "0.50", "10", n=1),
        replace(buy(token, "0.50", "4", n=2), wallet="paper:b"),
        buy(token, "0.50", "3", n=3, dry_run=False),
    )
    code, out, err = invoke("positions", "--offline", "--json")
    assert code == 0, err
    got = sorted((p["mode"], p["wallet"], p["size"]) for p in json.loads(out))
    assert got == [("dry-run", "paper:b", "4"), ("dry-run", "paper:default", "10"), ("live", "", "3")]
    code, out, err = invoke("positions", "--offline")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "snipe" in line]
    assert len(rows) == 3 and sum("dry-run b" in r for r in rows) == 1 and sum("LIVE" in r for r in rows) == 1
    code, out, err = invoke("stats", "--offline", "--json")
    assert code == 0, err
    by_mode = {s["mode"]: s for s in json.loads(out)}
    assert by_mode["dry-run"]["open_positions"] == 2 and by_mode["live"]["open_positions"] == 1


def test_a_copier_is_seeded_with_its_own_paper_wallets_shares_only(tmp_path: Path) -> None:
    """Positions are per paper wallet: a dry-run copier restarted on paper wallet b must not count (and
    try to sell) shares that another process holds on the default wallet."""
    from pmbot.runner.copy_feed import CopyTarget
    from pmbot.runner.copy_session import CopyView, restore_state
    from pmbot.store import open_store
    from pmbot.store.models import Fill
    from pmbot.strategies.copy import CopyConfig, CopyStrategy

    wallet = "0x" + "ab" * 20
    target = CopyTarget(wallet=wallet, label="whale", config=CopyConfig(target=wallet))
    store = open_store(f"sqlite:///{tmp_path}/p.db")
    try:
        for n, (tok, w, size) in enumerate((("t1", "paper:default", 10), ("t2", "paper:b", 4))):
            fill = Fill(f"f{n}", target.strategy_name, tok, Side.BUY, Decimal("0.5"), Decimal(size), dry_run=True,
                        ts=1, wallet=w)  # fmt: skip
            assert store.record_fill(fill)
        for w, held in (("paper:b", ["t2"]), ("paper:default", ["t1"])):
            view = CopyView(clock=lambda: 1_000, balance=Decimal(100))
            strategy = CopyStrategy(view, target.config, name=target.strategy_name)
            restore_state(store, "dry-run", target, strategy, view, 1_000, wallet=w)
            assert view.held_tokens() == held, w
    finally:
        store.close()
