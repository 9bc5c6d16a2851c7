"""Market resolution reaches the risk gate and the paper wallet (issue 9 #5), against `pmbot sim`.

Was: nothing called `on_resolution` / `resolve_token` / paper `redeem`: a losing resolved position stayed
open at cost, today's realized loss stayed 0, the kill switch never tripped and the cost still counted
as exposure."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import pytest

from pmbot.executor.engine import Executor
from pmbot.polymarket.models import MarketResolved
from pmbot.settle import Resolution, check_and_settle
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus, OrderType, PositionState, Query
from tests.test_executor import Rig, best_ask, intent, settings_for

D = Decimal


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    # a daily loss limit a single lost 10-share position breaks
    r = Rig(sim, tmp_path, settings_for(sim, db_url, PMBOT_RISK__DAILY_LOSS_LIMIT="3"))
    yield r
    await r.close()


async def _buy(rig: Rig, ex: Executor, n: str, token: int) -> Decimal:
    ask = best_ask(rig.sim, token)
    res = await ex.submit(intent(rig.sim, n, price=str(ask), size="10", order_type=OrderType.FOK, token=token))
    assert res.status is OrderStatus.FILLED, res
    return ask


def _resolution(sim: SimServer, winner: int) -> Resolution:
    m = sim.current_market()
    return Resolution(m["condition_id"], m["token_ids"][winner], tuple(m["token_ids"]), "test")


async def test_a_losing_resolution_realizes_the_loss_frees_exposure_and_trips_the_kill_switch(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    await _buy(rig, ex, "up", token=0)
    held = ex.risk.exposure()
    assert held.positions > 0 and held.realized_today == 0
    balance = ex.paper.balance if ex.paper is not None else None

    settled = ex.apply_resolution(_resolution(rig.sim, winner=1))  # Down wins: our Up shares pay 0

    assert [s.payout for s in settled] == [D(0)]
    loss = settled[0].realized_pnl
    assert loss < -3
    after = ex.risk.exposure()
    assert after.positions == 0  # the cost no longer counts as exposure
    assert after.realized_today == loss  # today's realized loss includes it
    assert ex.risk.kill_switch.tripped  # -loss > daily_loss_limit 3
    (pos,) = rig.store.list_positions(Query(dry_run=True))
    assert pos.state is PositionState.RESOLVED and pos.size == 0
    assert ex.paper is not None and ex.paper.balance == balance  # nothing paid for a loser
    # the trip is in the shared state: a new process (another paper wallet's) starts tripped
    again = (await rig.executor(dry_run=True, paper_wallet="other")).executor
    assert again.risk.kill_switch.tripped and again.risk.exposure().realized_today == loss


async def test_a_winning_resolution_pays_the_paper_wallet_once(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    ask = await _buy(rig, ex, "down", token=1)
    assert ex.paper is not None
    balance = ex.paper.balance
    first = ex.apply_resolution(_resolution(rig.sim, winner=1))
    second = ex.apply_resolution(_resolution(rig.sim, winner=1))  # learnt again (the channel, then a poll)
    assert len(first) == 1 and second == []
    assert ex.paper.balance == balance + 10  # 10 shares x 1
    assert first[0].realized_pnl > 0 and first[0].realized_pnl < 10 * (1 - ask)  # minus the fee
    assert ex.risk.exposure().realized_today == first[0].realized_pnl  # counted once
    assert not ex.risk.kill_switch.tripped


async def test_resting_paper_orders_of_a_resolved_market_are_cancelled(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=True)).executor
    res = await ex.submit(intent(rig.sim, "rest", price="0.02", size="10"))
    assert res.status is OrderStatus.LIVE
    ex.apply_resolution(_resolution(rig.sim, winner=0))
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.status is OrderStatus.CANCELLED
    assert ex.risk.open_keys() == frozenset() and ex.risk.exposure().open_buys == 0


async def test_a_payout_recorded_by_pmbot_settle_counts_once_and_reaches_a_running_engine(rig: Rig) -> None:
    """`pmbot settle` (another process, no engine) records the payout and merges the loss into the shared
    risk state; the running engine then drops its holding without counting the loss a second time."""
    ex = (await rig.executor(dry_run=True)).executor
    await _buy(rig, ex, "up", token=0)
    m = rig.sim.current_market()
    rig.sim.advance(m["end"] - rig.sim.now() + 2)  # the window ends and the sim resolves it
    resolved = next(x for x in rig.sim.markets() if x["condition_id"] == m["condition_id"])
    up_won = resolved["winner"] == "Up"

    result = await check_and_settle(rig.store, rig.venue, rig.sim.now, risk_limits=rig.settings.risk)
    (st,) = result.settlements
    state = rig.store.get_state("risk:dry-run")
    assert state is not None and D(state["realized_today"]) == st.realized_pnl

    settled = await ex.settle_resolved(rig.venue)  # the engine's own poll finds the same resolution
    assert settled == []  # already recorded: nothing new, nothing counted again
    assert ex.risk.exposure().positions == 0
    ex._save_risk_state(force=True)  # adopt the shared state now (a running engine does within ~1 s)
    assert ex.risk.exposure().realized_today == st.realized_pnl
    assert ex.risk.kill_switch.tripped is (not up_won)  # a lost 10-share position breaks the limit of 3


async def test_market_resolved_on_the_market_channel_is_applied(rig: Rig) -> None:
    """`follow_books` applies the market channel's `market_resolved` at once."""
    ex = (await rig.executor(dry_run=True)).executor
    await _buy(rig, ex, "up", token=0)
    m = rig.sim.current_market()

    class OneEvent:
        books: ClassVar[dict[str, object]] = {}

        def __aiter__(self) -> AsyncIterator[object]:
            async def gen() -> AsyncIterator[object]:
                yield MarketResolved(m["condition_id"], m["token_ids"][1], "Down", 0, tuple(m["token_ids"]))

            return gen()

    await ex.follow_books(OneEvent())  # type: ignore[arg-type]
    (pos,) = rig.store.list_positions(Query(dry_run=True))
    assert pos.state is PositionState.RESOLVED and ex.risk.kill_switch.tripped
