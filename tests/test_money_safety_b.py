"""Regressions for issue 9, part B (items 4, 6, 7, 8, 10, 14, 15 and four suspected defects): each test
reproduces one defect of the order path as it was, against real parts (SQLite files, redis-server, `pmbot
sim` over real sockets), and passes with the fix. The rules decided are in README's "Orders" section."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from pmbot.cli import main
from pmbot.config import RiskSettings
from pmbot.executor.budget import LocalBudget, RedisBudget, redis_window
from pmbot.executor.engine import DRY_RUN_PREFIX, Executor
from pmbot.executor.factory import build_executor
from pmbot.executor.lock import RedisWalletLock
from pmbot.executor.paper import PaperExchange
from pmbot.executor.risk import RiskGate
from pmbot.polymarket.factory import build_venue
from pmbot.polymarket.models import BookLevel, MarketParams, OrderBook
from pmbot.polymarket.ratelimit import POLYMARKET_LIMITS, RateLimiter
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store import open_store
from pmbot.store.models import OrderStatus, OrderType, Query, Side
from pmbot.store.sqlite import SQLiteStore
from tests.conftest import FakeClock
from tests.test_executor import FAST, Rig, best_ask, intent, settings_for
from tests.test_paper import order


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


def best_bid(sim: SimServer, token: int = 0) -> Decimal:
    book = sim.book(sim.current_market()["token_ids"][token])
    assert book is not None
    return Decimal(book["bids"][-1]["price"])


def with_paper_wallet(settings: Any, name: str) -> Any:
    """`settings` with another paper wallet (settings `executor.paper_wallet`): another dry-run process."""
    return settings.model_copy(update={"executor": settings.executor.model_copy(update={"paper_wallet": name})})


async def handle(
    r: Rig,
    *,
    dry_run: bool,
    settings: Any = None,
    venue: Any = None,
    store: Any = None,
    grace: float = 5.0,
    paper_wallet: str | None = None,
) -> Executor:
    """A started executor like Rig.executor(), optionally on other settings (another wallet), or with a
    paper wallet of its own (a second dry-run process running beside the first)."""
    settings = settings or r.settings
    if paper_wallet is not None:
        settings = with_paper_wallet(settings, paper_wallet)
    h = await build_executor(
        settings,
        store or r.store,
        venue or r.venue,
        dry_run=dry_run,
        lock_dir=r.tmp / "locks",
        clock=r.sim.now,
    )
    r.handles.append(h)
    h.executor.unknown_grace_s = grace
    await h.executor.start()
    return h.executor


async def stop(r: Rig, ex: Executor) -> None:
    h = next(h for h in r.handles if h.executor is ex)
    await h.close()
    r.handles.remove(h)


def crossing_book(sim: SimServer, token_id: str, ask: Decimal, size: Decimal, ts_ms: int) -> OrderBook:
    m = sim.current_market()
    return OrderBook(token_id, m["condition_id"], (), (BookLevel(ask, size),), ts_ms, hash=f"h{ts_ms}")


# ------------------------------------------------------------------- 4. orders carry their wallet


async def test_another_wallets_engine_never_touches_our_live_orders(rig: Rig, db_url: str) -> None:
    sim = rig.sim
    a = await handle(rig, dry_run=False)
    top = best_bid(sim) + Decimal("0.01")  # the new best bid: a taker's SELL reaches it first
    rest = await a.submit(intent(sim, "a-rest", price=str(top), size="10"))
    assert rest.status is OrderStatus.LIVE
    other = settings_for(sim, db_url, PMBOT_PRIVATE_KEY=HARDHAT_KEYS[1])
    venue_b = build_venue(other, clock=sim.now, retry=FAST, timeout=2.0)
    store_b = open_store(db_url, clock=sim.now)  # another process on the same database
    try:
        # grace 0: B would settle an order the venue does not know at once (the sim's clock does not move)
        b = await handle(rig, dry_run=False, settings=other, venue=venue_b, store=store_b, grace=0)
        rec = rig.store.get_order(rest.key)
        assert rec is not None and rec.status is OrderStatus.LIVE, rec  # was: rejected, "never placed"
        assert b.wallet != a.wallet and rec.wallet == a.wallet
        assert rest.key not in b.risk.open_keys()
        with pytest.raises(Exception, match="belongs to wallet"):
            await b.cancel(rest.key)
        await stop(rig, b)
    finally:
        await venue_b.aclose()
        store_b.close()
    # A's order fills later: A's reconciliation records the fill and its gate counts the position.
    token = sim.current_market()["token_ids"][0]
    taker = SimTrader(sim, HARDHAT_KEYS[2])
    sim.fund(taker.address, shares={token: 5})  # the venue sells only shares the wallet holds
    try:
        hit = taker.post_order(token, "SELL", top, Decimal(5))
        assert hit.status_code == 200, hit.text
    finally:
        taker.close()
    await a.reconcile()
    rec = rig.store.get_order(rest.key)
    assert rec is not None and rec.status is OrderStatus.PARTIALLY_FILLED and rec.filled_size == 5
    assert a.risk.held(token) == 5


# ------------------------------------------------------------------- 6. shared kill switch


async def _trip_by_loss(sim: SimServer, ex: Executor, tag: str) -> None:
    """Buy at the ask and sell at the bid: the spread and the fees are a realized loss."""
    ask, bid = best_ask(sim), best_bid(sim)
    bought = await ex.submit(intent(sim, f"{tag}-b", price=str(ask), size="10", order_type=OrderType.FOK))
    assert bought.status is OrderStatus.FILLED, bought
    sold = await ex.submit(intent(sim, f"{tag}-s", side=Side.SELL, price=str(bid), size="10", order_type=OrderType.FOK))
    assert sold.status is OrderStatus.FILLED, sold
    assert ex.risk.kill_switch.tripped


async def test_a_closing_process_never_resets_another_ones_tripped_kill_switch(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__DAILY_LOSS_LIMIT="0.01"))
    try:
        b = await handle(r, dry_run=True, paper_wallet="b")  # started before A trips, closes after
        a = await handle(r, dry_run=True)
        await _trip_by_loss(sim, a, "a")
        await stop(r, a)
        await stop(r, b)  # was: wrote its own copy, tripped: false
        assert (r.store.get_state("risk:dry-run") or {}).get("tripped") is True
        c = await handle(r, dry_run=True, paper_wallet="c")
        res = await c.submit(intent(sim, "c-buy", price="0.05", size="10"))
        assert res.status is OrderStatus.REJECTED and res.code == "daily_loss_limit", res
    finally:
        await r.close()


def test_realized_losses_of_two_processes_add_up(db_url: str, clock: FakeClock) -> None:
    limits = RiskSettings.model_validate({"daily_loss_limit": "1"})
    store_a, store_b = SQLiteStore(db_url.removeprefix("sqlite:///"), clock=clock), open_store(db_url, clock=clock)
    try:
        gates = [RiskGate(limits, clock), RiskGate(limits, clock)]
        for gate, store in zip(gates, (store_a, store_b), strict=True):
            store.update_state("risk:live", gate.merge_state)  # both start from the same (empty) state
        for gate, store in zip(gates, (store_a, store_b), strict=True):
            gate.on_fill(
                token_id="t", condition_id="m", side=Side.BUY, size=Decimal(10), price=Decimal("0.5"), strategy="s"
            )
            # each loses 0.60: under the limit alone, over it together
            gate.on_fill(
                token_id="t", condition_id="m", side=Side.SELL, size=Decimal(10), price=Decimal("0.44"), strategy="s"
            )
            assert not gate.kill_switch.tripped
            store.update_state("risk:live", gate.merge_state)
        state = store_a.get_state("risk:live")
        assert state is not None and Decimal(state["realized_today"]) == Decimal("-1.2") and state["tripped"] is True
        assert gates[1].kill_switch.tripped  # the second merge saw the first's loss
        store_a.update_state("risk:live", gates[0].merge_state)
        assert gates[0].kill_switch.tripped  # and the first adopts the trip at its next merge
    finally:
        store_a.close()
        store_b.close()


def invoke(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        old, sys.stdin = sys.stdin, io.StringIO("")
        try:
            code = main(list(args))
        finally:
            sys.stdin = old
    return code, out.getvalue()


@pytest.fixture
def cli_env(sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in settings_env(sim, db_url).items():
        monkeypatch.setenv(k, v)


def settings_env(sim: SimServer, db_url: str) -> dict[str, str]:
    return {**sim.env(), "PMBOT_DATABASE_URL": db_url, "PMBOT_PRIVATE_KEY": HARDHAT_KEYS[0]}


async def test_pmbot_resume_reaches_a_running_engine(
    sim: SimServer, tmp_path: Path, db_url: str, cli_env: None
) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__DAILY_LOSS_LIMIT="0.01"))
    try:
        a = await handle(r, dry_run=True)
        await _trip_by_loss(sim, a, "a")
        code, out = invoke("resume", "--mode", "dry-run")  # another process, while A runs
        assert code == 0, out
        a.risk_sync_s = 0  # (default: re-read at most once a second before a batch's risk checks)
        res = await a.submit(intent(sim, "after-resume", price="0.05", size="10"))
        assert res.status is OrderStatus.LIVE, res  # was: rejected by A's own stale copy of the switch
        await stop(r, a)
        assert (r.store.get_state("risk:dry-run") or {}).get("tripped") is False  # and A's close keeps it so
    finally:
        await r.close()


async def test_kill_switch_trip_cancels_resting_buys(sim: SimServer, tmp_path: Path, db_url: str) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__DAILY_LOSS_LIMIT="0.01"))
    try:
        a = await handle(r, dry_run=True)
        resting = await a.submit(intent(sim, "rest", price="0.05", size="10"))
        assert resting.status is OrderStatus.LIVE
        await _trip_by_loss(sim, a, "a")
        rec = r.store.get_order(resting.key)
        assert rec is not None and rec.status is OrderStatus.CANCELLED, rec  # was: kept resting (and buying)
        assert a.paper is not None and a.paper.open_orders() == []
        assert resting.key not in a.risk.open_keys()
    finally:
        await r.close()


async def test_live_resting_buys_are_cancelled_at_the_venue_when_the_switch_trips(rig: Rig) -> None:
    ex = await handle(rig, dry_run=False)
    resting = await ex.submit(intent(rig.sim, "rest", price="0.05", size="10"))
    assert resting.status is OrderStatus.LIVE and len(rig.sim.open_orders()) == 1
    ex.risk.trip("operator stop")  # a manual trip; a daily-loss trip takes the same path
    ex._save_risk_state()
    while ex._tasks:  # the venue cancel runs as a task
        await next(iter(ex._tasks))
    rec = rig.store.get_order(resting.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED, rec
    assert rig.sim.open_orders() == [] and resting.key not in ex.risk.open_keys()


async def test_another_processes_trip_stops_our_resting_buys_before_they_fill(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__DAILY_LOSS_LIMIT="0.01"))
    try:
        a = await handle(r, dry_run=True)
        resting = await a.submit(intent(sim, "rest", price="0.05", size="10"))
        b = await handle(r, dry_run=True, paper_wallet="b")
        await _trip_by_loss(sim, b, "b")
        a.risk_sync_s = 0
        token = sim.current_market()["token_ids"][0]
        ts = int(sim.now() * 1000) + 1
        assert await a.on_book(crossing_book(sim, token, Decimal("0.05"), Decimal(10), ts)) == 0  # was: bought 10
        rec = r.store.get_order(resting.key)
        assert rec is not None and rec.status is OrderStatus.CANCELLED and rec.filled_size == 0, rec
        assert a.risk.kill_switch.tripped
    finally:
        await r.close()


# ------------------------------------------------------------------- 7. keys per mode


async def test_a_dry_run_key_does_not_stop_the_same_key_live(rig: Rig) -> None:
    sim = rig.sim
    same = intent(sim, "k1", price="0.05", size="10")
    dry = await (await rig.executor(dry_run=True)).executor.submit(same)
    assert dry.status is OrderStatus.LIVE and dry.dry_run
    live_ex = await handle(rig, dry_run=False)
    live = await live_ex.submit(same)
    assert not live.duplicate and not live.dry_run and live.status is OrderStatus.LIVE, live  # was: the dry-run record
    assert len(sim.received_orders()) == 1
    assert dry.key == DRY_RUN_PREFIX + same.key and live.key == same.key  # two records, one per mode
    again = await live_ex.submit(same)
    assert again.duplicate and not again.dry_run  # a duplicate is always one of the asked-for mode
    with pytest.raises(Exception, match="dry-run key"):
        await live_ex.submit(intent(sim, "k1", price="0.05", size="10").__class__(**{**_fields(same), "key": dry.key}))


def _fields(i: Any) -> dict[str, Any]:
    return {f: getattr(i, f) for f in i.__dataclass_fields__}


def test_cli_dry_run_then_live_with_one_key_sends_live(sim: SimServer, cli_env: None) -> None:
    token = sim.current_market()["token_ids"][0]
    args = ("order", "buy", token, "--price", "0.05", "--size", "5", "--key", "same", "--json")
    code, out = invoke(*args)
    assert code == 0 and json.loads(out)["mode"] == "dry-run", out
    code, out = invoke(*args, "--live", "--yes")
    view = json.loads(out)
    assert code == 0 and view["mode"] == "live" and view["duplicate"] is False, out  # was: duplicate, nothing sent
    assert len(sim.received_orders()) == 1


# ------------------------------------------------------------------- 8. which strategy a SELL reduces


async def test_a_sell_reduces_only_its_own_strategys_position(rig: Rig) -> None:
    sim = rig.sim
    ex = (await rig.executor(dry_run=True)).executor
    ask, bid = best_ask(sim), best_bid(sim)
    bought = await ex.submit(intent(sim, "b", price=str(ask), size="10", order_type=OrderType.FOK, strategy="snipe"))
    assert bought.status is OrderStatus.FILLED
    stranger = await ex.submit(
        intent(sim, "s", side=Side.SELL, price=str(bid), size="10", order_type=OrderType.FOK, strategy="manual")
    )
    assert stranger.status is OrderStatus.REJECTED and stranger.code == "no_position", stranger  # was: filled
    assert "other strategies hold 10" in (stranger.reason or "")
    token = sim.current_market()["token_ids"][0]
    assert rig.store.get_position("manual", token, dry_run=True) is None
    snipe = rig.store.get_position("snipe", token, dry_run=True)
    assert snipe is not None and snipe.size == 10
    own = await ex.submit(
        intent(sim, "s2", side=Side.SELL, price=str(bid), size="10", order_type=OrderType.FOK, strategy="snipe")
    )
    assert own.status is OrderStatus.FILLED
    snipe = rig.store.get_position("snipe", token, dry_run=True)
    assert snipe is not None and snipe.size == 0 and snipe.state.value == "closed"
    # After a restart the gate's positions are the store's, per strategy: the shares cannot sell again.
    await stop(rig, ex)
    again = await handle(rig, dry_run=True)
    assert again.risk.held(token, "snipe") == 0 and again.risk.held(token) == 0


# ------------------------------------------------------------------- 10. paper orders per process


async def test_a_second_dry_run_process_leaves_the_first_ones_paper_orders(rig: Rig, db_url: str) -> None:
    sim = rig.sim
    a = await handle(rig, dry_run=True)
    resting = await a.submit(intent(sim, "rest", price="0.05", size="10"))
    assert resting.status is OrderStatus.LIVE
    store_b = open_store(db_url, clock=sim.now)
    try:
        b = await handle(rig, dry_run=True, store=store_b, paper_wallet="b")
        rec = rig.store.get_order(resting.key)
        assert rec is not None and rec.status is OrderStatus.LIVE, rec  # was: cancelled by B's start
        with pytest.raises(Exception, match="belongs to dry-run process"):
            await b.cancel(resting.key)
        await stop(rig, b)
    finally:
        store_b.close()
    token = sim.current_market()["token_ids"][0]
    ts = int(sim.now() * 1000) + 1
    assert await a.on_book(crossing_book(sim, token, Decimal("0.05"), Decimal(10), ts)) == 1  # was: StoreError
    rec = rig.store.get_order(resting.key)
    assert rec is not None and rec.status is OrderStatus.FILLED
    # A process that dies leaves its resting orders to the next one to start: another paper wallet's
    # process, or the same wallet's next run.
    more = await a.submit(intent(sim, "rest2", price="0.05", size="10"))
    for release in next(h for h in rig.handles if h.executor is a)._cleanup:  # a crash: the OS drops its locks
        release()
    c = await handle(rig, dry_run=True, paper_wallet="c")
    assert c.wallet == "paper:c" != a.wallet
    rec = rig.store.get_order(more.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED
    a_again = await handle(rig, dry_run=True)
    assert a_again.wallet == a.wallet == "paper:default"


async def test_gtd_paper_orders_expire(rig: Rig) -> None:
    sim = rig.sim
    ex = (await rig.executor(dry_run=True)).executor
    m = sim.current_market()
    gtd = intent(sim, "gtd", price="0.05", size="10", order_type=OrderType.GTD)
    gtd = gtd.__class__(**{**_fields(gtd), "expiration_s": int(sim.now()) + 30})
    res = await ex.submit(gtd)
    assert res.status is OrderStatus.LIVE
    sim.advance(31)
    later = int(sim.now() * 1000)
    await ex.on_book(crossing_book(sim, m["token_ids"][0], Decimal("0.04"), Decimal(10), later))
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.status is OrderStatus.EXPIRED, rec  # was: live forever, reserving
    assert ex.paper is not None and ex.paper.open_orders() == [] and res.key not in ex.risk.open_keys()


# ------------------------------------------------------------------- 14. paper liquidity per market


def test_paper_takes_a_markets_liquidity_once_across_both_outcomes() -> None:
    up, down = "up-token", "down-token"
    params = {t: MarketParams(t, Decimal("0.01"), False) for t in (up, down)}
    paper = PaperExchange(Decimal(100), fees=False, clock=lambda: 1_795_000_000.0, positions={up: Decimal(20)})
    # The venue shows one resting BUY Up @ 0.40 x 20 in both books: as the Up bid and as the Down ask @ 0.60.
    up_book = OrderBook(up, "m", (BookLevel(Decimal("0.40"), Decimal(20)),), (), 1, hash="u1")
    down_book = OrderBook(down, "m", (), (BookLevel(Decimal("0.60"), Decimal(20)),), 1, hash="d1")
    sold = paper.submit(order(Side.SELL, "0.40", "20", OrderType.FOK, token=up), up_book, params[up])
    assert sold.status is OrderStatus.FILLED
    bought = paper.submit(order(Side.BUY, "0.60", "20", OrderType.FAK, token=down), down_book, params[down])
    assert bought.status is OrderStatus.REJECTED and bought.filled_size == 0, bought  # was: filled 20 again
    # A newer Up book is the venue's news about that order: its liquidity is there again (the usual
    # approximation), in both books.
    newer = OrderBook(up, "m", (BookLevel(Decimal("0.40"), Decimal(20)),), (), 2, hash="u2")
    paper.on_book(newer)
    again = paper.submit(order(Side.BUY, "0.60", "5", OrderType.FAK, token=down), down_book, params[down])
    assert again.filled_size == 5


# ------------------------------------------------------------------- 15. limits over any window


class Ticker:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 1e-6)  # a real sleep always moves time (a float wait of 1e-16 would not)


async def test_post_order_limit_holds_in_the_first_window() -> None:
    t = Ticker()
    limiter = RateLimiter(clock=t, sleep=t.sleep, fraction=Decimal("0.8"), max_wait=0.0)
    admitted = 0
    while t.now < 1010.0:  # a flood for 10 s: every request that is admitted without waiting
        try:
            await limiter.acquire("clob", "POST", "/order")
            admitted += 1
        except Exception:
            t.now += 0.001
    documented = POLYMARKET_LIMITS["clob POST /order"][0].requests
    assert admitted == int(documented * 0.8), admitted  # was: 5 599 (x 0.8) — a full bucket plus its refill


async def test_orders_per_minute_holds_over_every_minute() -> None:
    t = Ticker()
    budget = LocalBudget(50, clock=t, sleep=t.sleep)
    stamps: list[float] = []
    while t.now < 1000.0 + 300:
        await budget.acquire(max_wait=3600)
        stamps.append(t.now)
    assert sum(s < 1060.0 for s in stamps) == 50  # was: 59 (the burst of 10 plus 49 refilled)
    for i, s in enumerate(stamps):  # any 60 s window holds at most 50
        assert sum(s <= x < s + 60 for x in stamps[i:]) <= 50
    in_five_minutes = sum(x < 1300.0 for x in stamps)
    assert 5 * 50 - 10 <= in_five_minutes <= 5 * 50  # and the budget is still there: ~50 a minute sustained
    assert stamps[9] == stamps[0]  # a fifth of it at once, for a sniper's burst


@pytest.mark.services
async def test_fleet_budget_window_is_shared_through_redis(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        per_minute = 50
        procs = [RedisBudget(client, "0xw", per_minute, window=redis_window(client, redis_url)) for _ in range(4)]
        # Another process used the whole minute's budget in a burst window ago (e.g. its bucket was bigger).
        window = redis_window(client, redis_url)
        from limits import RateLimitItemPerSecond

        item = RateLimitItemPerSecond(per_minute, 60, namespace="pmbot-budget")
        for _ in range(per_minute):
            assert await window.hit(item, "0xw")
        for p in procs:  # every bucket is full, but the fleet's window is not: nothing may go
            with pytest.raises(Exception, match="budget"):
                await p.acquire(max_wait=0)
    finally:
        await client.aclose()


# ------------------------------------------------------------------- also: max_open_orders, lease


def test_max_open_orders_never_blocks_a_reducing_sell() -> None:
    from tests.test_risk import hold, limits
    from tests.test_risk import intent as risk_intent

    gate = RiskGate(limits(max_open_orders=1), FakeClock())
    hold(gate, "m1", "0.50", "10")
    assert gate.reserve(risk_intent("b", "0.10", "10")).ok  # one open BUY: the cap is reached
    assert not gate.check(risk_intent("b2", "0.10", "10")).ok
    sell = gate.reserve(risk_intent("s", "0.60", "10", side=Side.SELL))
    assert sell.ok, sell  # was: max_open_orders, against the README


@pytest.mark.services
async def test_redis_lease_is_lost_when_it_may_have_lapsed(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    clock = FakeClock(100.0)
    lease = RedisWalletLock(client, "0xw", ttl_s=15, clock=clock)
    try:
        await lease.acquire()
        assert not lease.is_lost()
        # The process stalls (or Redis is unreachable): no renew since the SET was sent. From 15 s after it,
        # another engine can take the wallet; we stop sending a margin before that, not after a timeout.
        clock.advance(14)
        assert lease.is_lost()  # was: not lost until the renew task noticed (up to ttl + Redis timeout later)
    finally:
        await lease.release()
        await client.aclose()


# ------------------------------------------------------------------- executor state machine: modes, strategies


class ExecutorModesMachine(RuleBasedStateMachine):
    """A dry-run and a live executor on one database and one sim, restarted at will: keys of one mode never
    answer for the other, each mode's keys execute once, and a SELL is approved exactly when its own strategy
    holds the shares (the gate, the paper wallet and the store's per-strategy positions agree)."""

    sim: SimServer | None = None  # one sim for every example (each gets its own database)

    def __init__(self) -> None:
        super().__init__()
        if ExecutorModesMachine.sim is None:
            ExecutorModesMachine.sim = SimServer(seed=11, manual=True).start()
        self.s = ExecutorModesMachine.sim
        self.tmp = Path(tempfile.mkdtemp(prefix="pmbot-modes-"))
        self.loop = asyncio.new_event_loop()
        self.rig = Rig(self.s, self.tmp, settings_for(self.s, f"sqlite:///{self.tmp / 'pmbot.db'}"))
        self.ex = {mode: self.run(handle(self.rig, dry_run=mode)) for mode in (True, False)}
        self.sent_before = len(self.s.received_orders())
        self.tag = self.tmp.name  # keys unique to this example: the sim outlives it
        self.seen: set[tuple[bool, str]] = set()  # (live, key) submitted by submit_resting
        self.rest_keys: set[str] = set()
        self.held: dict[str, Decimal] = {}  # dry-run shares per strategy (one token)
        self.resolved = False  # the market resolved (issue 9 #5): nothing more is bought or sold in it

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def _intent(self, n: str, strategy: str, **kw: Any) -> Any:
        return intent(self.s, f"{self.tag}-{n}", strategy=strategy, **kw)

    @rule(live=st.booleans(), n=st.integers(0, 3), strategy=st.sampled_from(["snipe", "copy"]))
    def submit_resting(self, live: bool, n: int, strategy: str) -> None:
        i = self._intent(f"rest{n}", strategy, price="0.02", size="5")
        res = self.run(self.ex[not live].submit(i))
        assert res.dry_run is (not live)
        assert res.duplicate == ((live, i.key) in self.seen), res
        if not res.duplicate:
            assert res.status is OrderStatus.LIVE, res
        self.seen.add((live, i.key))
        self.rest_keys.add(i.key)

    @precondition(lambda self: not self.resolved)
    @rule(n=st.integers(0, 5), strategy=st.sampled_from(["snipe", "copy"]))
    def dry_buy(self, n: int, strategy: str) -> None:
        i = self._intent(
            f"buy{n}-{strategy}", strategy, price=str(best_ask(self.s)), size="5", order_type=OrderType.FOK
        )
        res = self.run(self.ex[True].submit(i))
        if not res.duplicate and res.status is OrderStatus.FILLED:
            self.held[strategy] = self.held.get(strategy, Decimal(0)) + res.filled_size

    @precondition(lambda self: not self.resolved)
    @rule(n=st.integers(0, 5), strategy=st.sampled_from(["snipe", "copy"]))
    def dry_sell(self, n: int, strategy: str) -> None:
        i = self._intent(f"sell{n}-{strategy}", strategy, side=Side.SELL, price=str(best_bid(self.s)), size="5")
        i = i.__class__(**{**_fields(i), "order_type": OrderType.FOK})
        res = self.run(self.ex[True].submit(i))
        if res.duplicate:
            return
        own = self.held.get(strategy, Decimal(0))
        others = sum(self.held.values(), Decimal(0)) - own
        event(
            f"sell: own {'>=' if own >= 5 else '<'} 5, others {'hold' if others else 'none'}: {res.code or res.status}"
        )
        if own < 5:
            assert res.code == "no_position", res  # whatever the other strategy holds
        else:
            assert res.code != "no_position", res
            if res.status is OrderStatus.FILLED:
                self.held[strategy] = own - res.filled_size

    @precondition(lambda self: not self.resolved)
    @rule(won=st.booleans(), twice=st.booleans())
    def resolve(self, won: bool, twice: bool) -> None:
        """The market resolves (learnt by the dry-run engine, maybe twice: the channel, then a poll): every
        strategy's shares are paid once, the gate holds nothing more, and today's realized PnL of the gate
        is the store's, exactly."""
        from pmbot.settle import Resolution

        m = self.s.current_market()
        winner = m["token_ids"][0 if won else 1]
        r = Resolution(m["condition_id"], winner, tuple(m["token_ids"]), "test")
        ex = self.ex[True]
        first = ex.apply_resolution(r)
        assert len(first) == sum(1 for v in self.held.values() if v > 0)
        if twice:
            assert ex.apply_resolution(r) == []
        event(f"resolved {'won' if won else 'lost'} with {len(first)} position(s)")
        self.held = {k: Decimal(0) for k in self.held}
        self.resolved = True
        assert ex.risk.exposure().positions == 0
        realized = sum((p.realized_pnl for p in self.rig.store.list_positions(Query(dry_run=True))), Decimal(0))
        assert ex.risk.exposure().realized_today == realized

    @rule(live=st.booleans())
    def restart(self, live: bool) -> None:
        self.run(stop(self.rig, self.ex[not live]))
        self.ex[not live] = self.run(handle(self.rig, dry_run=not live))

    @invariant()
    def one_record_per_key_and_mode(self) -> None:
        rows = self.rig.store.list_orders()
        for r in rows:
            assert r.key.startswith(DRY_RUN_PREFIX) == r.dry_run
        bare = [(not r.dry_run, r.key.removeprefix(DRY_RUN_PREFIX)) for r in rows]
        resting = {(live, k) for live, k in bare if k in self.rest_keys}
        assert resting == self.seen
        live_sent = sum(1 for live, _ in self.seen if live)
        assert len(self.s.received_orders()) - self.sent_before == live_sent  # dry-run never reaches the venue

    @invariant()
    def positions_per_strategy_agree(self) -> None:
        token = self.s.current_market()["token_ids"][0]
        for strategy in ("snipe", "copy"):
            pos = self.rig.store.get_position(strategy, token, dry_run=True)
            assert (pos.size if pos is not None else Decimal(0)) == self.held.get(strategy, Decimal(0))
            assert self.ex[True].risk.held(token, strategy) == self.held.get(strategy, Decimal(0))

    def teardown(self) -> None:
        self.run(self.rig.close())
        self.loop.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


ExecutorModesMachine.TestCase.settings = settings(
    max_examples=10, stateful_step_count=15, deadline=None, suppress_health_check=list(HealthCheck)
)
TestExecutorModes = ExecutorModesMachine.TestCase


@pytest.fixture(scope="module", autouse=True)
def _stop_machine_sim() -> Iterator[None]:
    yield
    if ExecutorModesMachine.sim is not None:
        ExecutorModesMachine.sim.stop()
        ExecutorModesMachine.sim = None


def test_migration_moves_old_dry_run_keys_into_their_space(tmp_path: Path) -> None:
    """A database from before: dry-run keys bare, no wallets. After opening, its dry-run records are under
    `dry-run:` (orders, events, trades alike) and a live record with the same key can be written."""
    import sqlite3

    from sqlite_utils import Database

    from pmbot.store import migrations
    from pmbot.store.models import Fill, OrderRecord

    path = tmp_path / "old.db"
    db = Database(sqlite3.connect(str(path), isolation_level=None))
    old = [m for m in migrations.MIGRATIONS if m[0] in ("0001_initial", "0002_state")]
    db.conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in old:
        fn(db)
        db.conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    row = {
        "strategy": "t", "token_id": "1", "condition_id": "", "side": "BUY", "price_micro": 500_000,
        "size_micro": 10_000_000, "order_type": "GTC", "status": "filled", "filled_size_micro": 10_000_000,
        "created_at": 1, "updated_at": 1, "metadata": "{}",
    }  # fmt: skip
    db["orders"].insert({**row, "key": "k", "dry_run": 1})
    db["order_events"].insert({"order_key": "k", "status": "filled", "ts": 1, "detail": ""})
    db.close()
    store = SQLiteStore(path)
    try:
        (rec,) = store.list_orders()
        assert rec.key == "dry-run:k" and rec.dry_run and rec.wallet == ""
        assert [e.status for e in store.order_events("dry-run:k")] == [OrderStatus.FILLED]
        live = OrderRecord("k", "t", "1", Side.BUY, Decimal("0.5"), Decimal(10), OrderType.GTC, dry_run=False)
        assert store.insert_order(live)  # the live space is free
        fill = Fill("tr", "t", "1", Side.BUY, Decimal("0.5"), Decimal(10), dry_run=True, ts=1, order_key="dry-run:k")
        assert store.record_fill(fill)
    finally:
        store.close()
