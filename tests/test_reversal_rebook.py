"""reverse_fill rebuilds the position from its remaining trades (ledger.rebook): exact whatever traded
since the fill, with the trades' realized PnL still adding up to the position's, on every backend."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from typing import Any

from pmbot.store import ledger
from pmbot.store.models import PositionState, Query, Side
from tests.test_store_contract import T0, fill


def _realized_of_trades(store: Any, dry_run: bool) -> D:
    return sum((t.realized_pnl for t in store.list_trades(Query(dry_run=dry_run))), D(0))


def test_one_of_two_buys_reversed_after_the_payout_keeps_the_other_ones(store: Any) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False))
    assert store.record_fill(fill(2, Side.BUY, "0.60", "10", dry_run=False))
    store.settle_token("tok-up", D(1), ts=T0 + 50_000)
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and pos.redeemable == D(20) and pos.realized_pnl == D(9)
    rev = store.reverse_fill("t2", ts=T0 + 100_000)
    assert rev is not None and rev.realized_pnl == D(-4)  # the payout of t2's 10 shares (10 - 6)
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None
    assert (pos.size, pos.cost, pos.realized_pnl, pos.state) == (D(0), D(0), D(5), PositionState.RESOLVED)
    assert pos.redeemable == D(10)  # t1's 10 shares at 1
    assert _realized_of_trades(store, False) == pos.realized_pnl
    (st,) = store.stats(Query(dry_run=False))
    assert (st.trades, st.volume, st.realized_pnl, st.redeemable) == (1, D(5), D(5), D(10))
    assert store.reverse_fill("t2", ts=T0 + 200_000) is None  # once
    assert store.get_position("snipe", "tok-up", False) == pos


def test_a_buy_reversed_after_the_payout_was_collected_owes_nothing_more(store: Any) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False))
    store.settle_token("tok-up", D(1), ts=T0 + 50_000)
    assert store.mark_redeemed("tok-up", ts=T0 + 60_000) == 1
    assert store.reverse_fill("t1", ts=T0 + 100_000) is not None
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None and pos.redeemable == 0 and pos.realized_pnl == 0 and pos.size == 0


def test_a_paper_buy_reversed_after_a_losing_resolution(store: Any) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.40", "10", fee="0.1"))
    store.settle_token("tok-up", D(0), ts=T0 + 50_000)
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.realized_pnl == D("-4.1")
    rev = store.reverse_fill("t1", ts=T0 + 100_000)
    assert rev is not None and rev.realized_pnl == D("4.1")
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and (pos.size, pos.cost, pos.realized_pnl) == (D(0), D(0), D(0))
    assert _realized_of_trades(store, True) == 0


def test_a_sell_reversed_after_the_position_was_bought_again(store: Any) -> None:
    """BUY 10 @0.50, SELL 10 @0.70 (closed), BUY 10 @0.80; the SELL FAILED: 20 shares at cost 13."""
    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False))
    assert store.record_fill(fill(2, Side.SELL, "0.70", "10", dry_run=False))
    assert store.record_fill(fill(3, Side.BUY, "0.80", "10", dry_run=False))
    rev = store.reverse_fill("t2", ts=T0 + 100_000)
    assert rev is not None and rev.realized_pnl == D(-2)
    pos = store.get_position("snipe", "tok-up", False)
    assert pos is not None
    assert (pos.size, pos.cost, pos.realized_pnl, pos.state) == (D(20), D(13), D(0), PositionState.OPEN)


def test_reversals_of_other_positions_and_wallets_are_left_alone(store: Any) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.50", "10"))
    assert store.record_fill(replace(fill(2, Side.BUY, "0.60", "4"), wallet="paper:b"))
    assert store.record_fill(fill(3, Side.BUY, "0.70", "5", token="tok-down"))
    assert store.reverse_fill("t2", ts=T0 + 100_000) is not None
    a = store.get_position("snipe", "tok-up", True)
    b = store.get_position("snipe", "tok-up", True, wallet="paper:b")
    c = store.get_position("snipe", "tok-down", True)
    assert a is not None and (a.size, a.cost) == (D(10), D(5))
    assert b is not None and (b.size, b.cost, b.state) == (D(0), D(0), PositionState.CLOSED)
    assert c is not None and (c.size, c.cost) == (D(5), D("3.5"))


def test_a_stats_window_holds_a_sell_and_its_reversal_or_neither(store: Any) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.50", "10", dry_run=False, ts=T0))
    assert store.record_fill(fill(2, Side.SELL, "0.70", "10", fee="0.1", dry_run=False, ts=T0 + 10_000))
    rev = store.reverse_fill("t2", ts=T0 + 500_000)
    assert rev is not None and rev.fill.ts == T0 + 10_000 and rev.fill.metadata["reverted_at"] == T0 + 500_000
    (later,) = store.stats(Query(dry_run=False, since=T0 + 5_000))
    assert (later.trades, later.volume, later.fees, later.realized_pnl) == (0, D(0), D(0), D(0))
    (whole,) = store.stats(Query(dry_run=False))
    assert (whole.trades, whole.volume, whole.realized_pnl) == (1, D(5), D(0))


def test_rebook_is_the_fold_of_the_remaining_trades() -> None:
    """The pure part: reversal rows take their fills out; a payout redeems only what is held then."""

    def row(trade_id: str, kind: str, side: str, price: int, size: int, notional: int = 0) -> dict[str, Any]:
        return {
            "trade_id": trade_id, "kind": kind, "side": side, "price_micro": price, "size_micro": size,
            "fee_micro": 0, "notional_micro": notional, "dry_run": 0,
        }  # fmt: skip

    history = [
        row("a", "fill", "BUY", 500_000, 10_000_000),
        row("b", "fill", "BUY", 600_000, 10_000_000),
        row("revert:a", "reversal", "BUY", 500_000, 10_000_000),
        row("r", "redeem", "SELL", 1_000_000, 20_000_000, 20_000_000),
    ]
    book, unowed = ledger.rebook(history, "b")
    assert (book.size, book.cost, book.realized, book.state) == (0, 0, 0, PositionState.RESOLVED)
    assert unowed == 20_000_000
    book, unowed = ledger.rebook(history, "none")
    assert (book.size, book.realized, unowed) == (0, 4_000_000, 10_000_000)
