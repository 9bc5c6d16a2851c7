"""Adversarial review of today's merge: reverse_fill, the risk gate's view, the paper wallet lock."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any

import pytest

from pmbot.store.models import Position, PositionState, Query, Side
from tests.test_defects_round3 import rig  # noqa: F401  (the fixture)


def test_a_buy_reversed_after_its_market_resolved_leaves_no_payout(store: Any) -> None:
    """snipe buys right before resolution; a trade FAILS minutes after its match (RETRYING first), i.e.
    after the resolution was applied. The payout of shares never held must not stay in the PnL."""
    from tests.test_store_contract import fill

    assert store.record_fill(replace(fill(1, Side.BUY, "0.90", "10", dry_run=False), order_key="k"))
    paid = store.settle_token("tok-up", D(1), ts=1_795_000_050_000)
    assert [t.fill.trade_id for t in paid] == ["redeem:snipe:tok-up:0"]
    assert store.reverse_fill("t1", ts=1_795_000_100_000) is not None
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None
    # the shares never arrived: nothing to redeem, no profit
    assert pos.redeemable == 0, pos
    assert pos.realized_pnl == 0, pos
    (st,) = store.stats(Query(dry_run=False))
    assert st.realized_pnl == 0, st


def test_the_gate_restored_shares_of_a_failed_closing_sell_after_a_restart() -> None:
    """At start the gate loads OPEN positions only; check_failed_trades then reverses a SELL that had
    closed the position: the store has the shares back, the gate (exposure, holdings) must too."""
    from pmbot.config import Settings
    from pmbot.executor.risk import RiskGate

    gate = RiskGate(Settings().risk, clock=lambda: 1_795_000_000.0)
    closed = Position(
        strategy="snipe", token_id="tok-up", dry_run=False, size=D(0), cost=D(0), realized_pnl=D("2"),
        state=PositionState.CLOSED, condition_id="0xcond",
    )  # fmt: skip
    gate.load_positions([closed])
    undone = gate.on_fill_reverted(
        token_id="tok-up", strategy="snipe", side=Side.SELL, size=D(10), notional=D(7), fee=D(0),
        realized=D(2), ts_ms=1_795_000_000_000,
    )  # fmt: skip
    assert undone == D(-2)  # today's PnL loses the SELL's profit (else the daily loss limit is loosened)
    assert gate.exposure().positions == D(5)  # the shares (and their cost) are held again


# Two dry-run processes on one PostgreSQL database (two hosts, or two spellings of its URL) holding one
# paper wallet: the file lock alone could not see it; the database holds it now (PostgresStore.hold_lock),
# tested in tests/test_paper_wallet_pg.py with two executors on the real server.


def test_the_gate_takes_back_the_payout_profit_of_a_buy_reversed_after_resolution() -> None:
    """The store's reversal of a BUY whose market already paid out takes the payout's profit back
    (realized −1.00); the gate's holding is gone since the resolution, but today's PnL must lose it too."""
    from pmbot.config import Settings
    from pmbot.executor.risk import RiskGate

    gate = RiskGate(Settings().risk, clock=lambda: 1_795_000_000.0)
    undone = gate.on_fill_reverted(
        token_id="tok-up", strategy="snipe", side=Side.BUY, size=D(10), notional=D(9), fee=D(0),
        realized=D(1), ts_ms=1_795_000_000_000,
    )  # fmt: skip
    assert undone == D(-1)
    assert gate.exposure().positions == 0


@pytest.mark.parametrize("order", [("t1", "t2"), ("t2", "t1")])
def test_reversing_every_fill_of_a_position_leaves_it_empty_whatever_the_order(
    store: Any, order: tuple[str, str]
) -> None:
    """A BUY whose trade FAILS, and the SELL of those shares (a copier's exit, a snipe take-profit) that
    then FAILS too (the shares never arrived): both taken back must leave nothing, as if neither happened."""
    from tests.test_store_contract import fill

    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False))
    assert store.record_fill(fill(2, Side.SELL, "0.60", "5", dry_run=False))
    for t in order:
        assert store.reverse_fill(t, ts=1_795_000_100_000) is not None
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None
    assert (pos.size, pos.cost, pos.realized_pnl) == (D(0), D(0), D(0)), pos


async def test_after_a_restart_a_failed_closing_sell_gives_the_gate_its_shares_back(rig: Any) -> None:  # noqa: F811
    """Engine level: a live SELL that closed the position FAILS while the engine is down. start() loads
    OPEN positions only, then check_failed_trades takes the SELL back: the store holds the shares again,
    the gate must too (exposure, what may be sold)."""
    from pmbot.store.models import OrderStatus, OrderType
    from tests.test_executor import best_ask, intent
    from tests.test_money_safety_b import best_bid

    sim = rig.sim
    first = await rig.executor(dry_run=False)
    ex = first.executor
    token = sim.current_market()["token_ids"][0]
    buy = await ex.submit(intent(sim, "b", price=str(best_ask(sim)), size="10", order_type=OrderType.FOK))
    assert buy.status is OrderStatus.FILLED
    sim.advance(3)  # the BUY is mined
    held = ex.risk.held(token)
    assert held > 0
    sim.set_faults(trade_fail=1)
    sell = await ex.submit(
        intent(sim, "s", side=Side.SELL, price=str(best_bid(sim)), size=str(held), order_type=OrderType.FAK)
    )
    assert sell.filled_size == held, sell
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == 0 and pos.state is PositionState.CLOSED
    await first.close()
    rig.handles.remove(first)
    sim.advance(3)  # the SELL FAILED while nothing listens
    second = (await rig.executor(dry_run=False)).executor
    assert second.metrics.fills_reverted == 1
    pos = rig.store.get_position("test", token, dry_run=False)
    assert pos is not None and pos.size == held  # the store: the shares are back
    assert second.risk.held(token) == held  # the gate: they are not


def test_stats_of_a_window_that_holds_only_the_reversal_count_no_negative_trade(store: Any) -> None:
    """A fill of yesterday whose trade FAILED is taken back today (the reversal is stamped `now`):
    today's stats must not show -1 trades and negative volume / fees."""
    from tests.test_store_contract import fill

    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", fee="0.1", dry_run=False, ts=1_795_000_000_000))
    assert store.reverse_fill("t1", ts=1_795_100_000_000) is not None
    stats = store.stats(Query(dry_run=False, since=1_795_050_000_000))
    assert all(s.trades >= 0 and s.volume >= 0 and s.fees >= 0 for s in stats), stats
