"""The Store contract. Every backend (SQLite, SQLite+Redis, later PostgreSQL) must pass all of it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pmbot.errors import InputError, StoreError
from pmbot.store.base import Store
from pmbot.store.models import (
    ExecutionLog,
    Fill,
    Learning,
    OrderRecord,
    OrderStatus,
    OrderType,
    PositionState,
    Query,
    Reflection,
    Side,
    TradeKind,
)

T0 = 1_795_000_000_000


def fill(
    n: int,
    side: Side = Side.BUY,
    price: str = "0.50",
    size: str = "10",
    *,
    strategy: str = "snipe",
    token: str = "tok-up",
    dry_run: bool = True,
    fee: str = "0",
    ts: int | None = None,
) -> Fill:
    return Fill(
        trade_id=f"t{n}",
        strategy=strategy,
        token_id=token,
        condition_id="0xcond",
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        dry_run=dry_run,
        ts=T0 + n * 1000 if ts is None else ts,
        market="BTC up or down 12:00",
        outcome="Up",
    )


def order(key: str = "k1", **kw: object) -> OrderRecord:
    base: dict[str, object] = dict(
        key=key,
        strategy="snipe",
        token_id="tok-up",
        side=Side.BUY,
        price=D("0.97"),
        size=D("10"),
        order_type=OrderType.FOK,
        dry_run=True,
        condition_id="0xcond",
    )
    base.update(kw)
    return OrderRecord(**base)  # type: ignore[arg-type]


def test_store_satisfies_protocol(store: Store) -> None:
    assert isinstance(store, Store)


# ------------------------------------------------------------------ orders


def test_order_write_ahead_and_lifecycle(store: Store, clock) -> None:
    assert store.insert_order(order("k1")) is True
    got = store.get_order("k1")
    assert got is not None and got.status is OrderStatus.PENDING and got.price == D("0.97")
    assert got.created_at == int(clock.now * 1000)

    clock.advance(1)
    store.update_order("k1", OrderStatus.SUBMITTED)
    store.update_order("k1", OrderStatus.LIVE, venue_order_id="0xabc")
    store.update_order("k1", OrderStatus.PARTIALLY_FILLED, filled_size=D("4"))
    final = store.update_order("k1", OrderStatus.FILLED, filled_size=D("10"))
    assert final.venue_order_id == "0xabc" and final.filled_size == D("10")
    assert [e.status for e in store.order_events("k1")] == [
        OrderStatus.PENDING,
        OrderStatus.SUBMITTED,
        OrderStatus.LIVE,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.FILLED,
    ]


def test_duplicate_key_is_refused_and_changes_nothing(store: Store) -> None:
    assert store.insert_order(order("dup", price=D("0.5")))
    assert store.insert_order(order("dup", price=D("0.9"))) is False
    got = store.get_order("dup")
    assert got is not None and got.price == D("0.5")
    assert len(store.order_events("dup")) == 1


def test_final_state_is_final(store: Store) -> None:
    store.insert_order(order("f"))
    store.update_order("f", OrderStatus.REJECTED, error="max order notional 50 exceeded")
    events = len(store.order_events("f"))
    with pytest.raises(StoreError, match="already rejected; cannot become live"):
        store.update_order("f", OrderStatus.LIVE)
    with pytest.raises(StoreError, match="already rejected"):
        store.set_order_status("f", OrderStatus.FILLED, filled_size=D(1))
    got = store.get_order("f")
    assert got is not None and got.status is OrderStatus.REJECTED and got.error == "max order notional 50 exceeded"
    assert got.filled_size == 0 and len(store.order_events("f")) == events  # a refused move writes nothing
    store.set_order_status("f", OrderStatus.REJECTED, detail="again")  # the same final status may be set again
    assert len(store.order_events("f")) == events + 1


def test_update_unknown_order_raises(store: Store) -> None:
    with pytest.raises(StoreError, match="no order with key 'nope'"):
        store.update_order("nope", OrderStatus.LIVE)
    with pytest.raises(StoreError, match="no order"):
        store.set_order_status("nope", OrderStatus.LIVE)


def test_list_orders_by_status_and_mode(store: Store) -> None:
    store.insert_order(order("a"))
    store.insert_order(order("b", dry_run=False))
    store.insert_order(order("c"))
    store.update_order("c", OrderStatus.UNKNOWN)
    non_final = [s for s in OrderStatus if not s.is_final]
    assert {o.key for o in store.list_orders(statuses=non_final)} == {"a", "b", "c"}
    assert {o.key for o in store.list_orders(statuses=[OrderStatus.UNKNOWN])} == {"c"}
    assert {o.key for o in store.list_orders(query=Query(dry_run=False))} == {"b"}
    assert store.list_orders(statuses=[]) == []


@pytest.mark.parametrize(
    ("field", "value"), [("price", D("1.5")), ("price", D("0")), ("size", D("-1")), ("size", D("0.0000001"))]
)
def test_bad_order_writes_nothing(store: Store, field: str, value: D) -> None:
    with pytest.raises(InputError):
        store.insert_order(order("bad", **{field: value}))
    assert store.get_order("bad") is None


# ------------------------------------------------------- fills & positions


def test_buy_then_sell_realizes_average_cost_pnl(store: Store) -> None:
    assert store.record_fill(fill(1, Side.BUY, "0.40", "10"))
    assert store.record_fill(fill(2, Side.BUY, "0.60", "10"))
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None
    assert (pos.size, pos.cost, pos.avg_price, pos.state) == (D(20), D("10"), D("0.5"), PositionState.OPEN)

    store.record_fill(fill(3, Side.SELL, "0.80", "5"))
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.size == D(15) and pos.cost == D("7.5") and pos.realized_pnl == D("1.5")
    assert pos.mark_price == D("0.8") and pos.unrealized_pnl == D("4.5")

    store.record_fill(fill(4, Side.SELL, "0.30", "15"))
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.size == 0 and pos.cost == 0 and pos.state is PositionState.CLOSED
    assert pos.realized_pnl == D("1.5") + D("4.5") - D("7.5")


def test_fees_count_against_pnl(store: Store) -> None:
    store.record_fill(fill(1, Side.BUY, "0.50", "10", fee="0.10"))
    store.record_fill(fill(2, Side.SELL, "0.60", "10", fee="0.12"))
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.realized_pnl == D("6") - D("0.12") - D("5.10")


def test_same_trade_twice_is_recorded_once(store: Store) -> None:
    assert store.record_fill(fill(1)) is True
    assert store.record_fill(fill(1)) is False
    assert store.record_fills([fill(1), fill(2), fill(2)]) == 1
    assert len(store.list_trades()) == 2
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.size == D(20)


def test_dry_run_and_live_are_separate(store: Store) -> None:
    store.record_fill(fill(1, dry_run=True))
    store.record_fill(fill(2, dry_run=False, price="0.70"))
    paper = store.get_position("snipe", "tok-up", True)
    live = store.get_position("snipe", "tok-up", False)
    assert paper is not None and live is not None and paper.avg_price == D("0.5") and live.avg_price == D("0.7")
    assert {t.fill.trade_id for t in store.list_trades(Query(dry_run=False))} == {"t2"}


def test_bad_fill_in_batch_writes_nothing(store: Store) -> None:
    bad = fill(2, price="1.01")
    with pytest.raises(InputError):
        store.record_fills([fill(1), bad])
    assert store.list_trades() == []
    assert store.get_position("snipe", "tok-up", True) is None


def test_oversell_realizes_proceeds_and_never_goes_short(store: Store) -> None:
    store.record_fill(fill(1, Side.BUY, "0.5", "10"))
    store.record_fill(fill(2, Side.SELL, "0.6", "12"))
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.size == 0 and pos.realized_pnl == D("7.2") - D("5")


def test_resolution_redeems_open_positions(store: Store) -> None:
    store.record_fill(fill(1, Side.BUY, "0.97", "10", token="up"))
    store.record_fill(fill(2, Side.BUY, "0.05", "10", token="down"))
    assert store.resolve_token("up", D(1)) == 1
    assert store.resolve_token("down", D(0)) == 1
    assert store.resolve_token("up", D(1)) == 0  # idempotent
    up, down = store.get_position("snipe", "up", True), store.get_position("snipe", "down", True)
    assert up is not None and up.state is PositionState.RESOLVED and up.realized_pnl == D("0.3")
    assert down is not None and down.state is PositionState.RESOLVED and down.realized_pnl == D("-0.5")
    kinds = {t.fill.trade_id: t.fill.kind for t in store.list_trades()}
    assert kinds["redeem:snipe:up:1"] is TradeKind.REDEEM


def test_marks_update_unrealized(store: Store) -> None:
    store.record_fill(fill(1, Side.BUY, "0.50", "10"))
    assert store.get_position("snipe", "tok-up", True) is not None  # warm any cache
    assert store.set_marks({"tok-up": D("0.9")}) == 1
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.mark_price == D("0.9") and pos.unrealized_pnl == D("4")


def test_cached_reads_see_every_write(store: Store) -> None:
    store.record_fill(fill(1, Side.BUY, "0.5", "10"))
    for n in range(2, 6):
        assert store.get_position("snipe", "tok-up", True) is not None
        store.record_fill(fill(n, Side.BUY, "0.5", "10"))
        pos = store.get_position("snipe", "tok-up", True)
        assert pos is not None and pos.size == D(10 * n)
    assert store.get_position("snipe", "never", True) is None


def test_filters_and_limits(store: Store) -> None:
    store.record_fills(
        [
            fill(1, strategy="snipe"),
            fill(2, strategy="copy", token="t2"),
            fill(3, strategy="copy", token="t3", ts=T0 + 10_000_000),
        ]
    )
    store.record_fill(fill(4, Side.SELL, size="10", strategy="copy", token="t2"))
    assert {t.fill.trade_id for t in store.list_trades(Query(strategy="copy"))} == {"t2", "t3", "t4"}
    assert [t.fill.trade_id for t in store.list_trades(Query(limit=1))] == ["t3"]
    assert {t.fill.trade_id for t in store.list_trades(Query(since=T0 + 5_000_000))} == {"t3"}
    assert {p.token_id for p in store.list_positions(Query(state=PositionState.OPEN))} == {"tok-up", "t3"}
    assert {p.token_id for p in store.list_positions(Query(state=PositionState.CLOSED))} == {"t2"}
    assert {t.fill.trade_id for t in store.list_trades(Query(state=PositionState.CLOSED))} == {"t2", "t4"}


def test_stats_per_strategy_and_mode(store: Store) -> None:
    store.record_fills(
        [
            fill(1, Side.BUY, "0.50", "10", strategy="snipe", token="a"),
            fill(2, Side.SELL, "0.70", "10", strategy="snipe", token="a"),  # win +2
            fill(3, Side.BUY, "0.50", "10", strategy="snipe", token="b"),
            fill(4, Side.SELL, "0.40", "10", strategy="snipe", token="b"),  # loss -1
            fill(5, Side.BUY, "0.20", "10", strategy="snipe", token="c"),  # open, mark 0.2
            fill(6, Side.BUY, "0.50", "4", strategy="copy", token="a", dry_run=False),
        ]
    )
    store.set_marks({"c": D("0.35")})
    stats = {(s.strategy, s.dry_run): s for s in store.stats()}
    snipe = stats[("snipe", True)]
    assert (snipe.trades, snipe.volume, snipe.realized_pnl) == (5, D("23"), D("1"))
    assert snipe.unrealized_pnl == D("1.5") and snipe.open_positions == 1
    assert snipe.closed_positions == 2 and snipe.wins == 1 and snipe.win_rate == D("0.5")
    live = stats[("copy", False)]
    assert (live.trades, live.volume, live.win_rate) == (1, D("2"), None)
    assert [s.strategy for s in store.stats(Query(dry_run=False))] == ["copy"]
    assert store.stats(Query(strategy="nope")) == []


def test_money_is_exact(store: Store) -> None:
    # 3 x 0.1 is not 0.3 in floating point; here it must be.
    store.record_fills([fill(n, Side.BUY, "0.1", "1") for n in range(1, 4)])
    pos = store.get_position("snipe", "tok-up", True)
    assert pos is not None and pos.cost == D("0.3") and str(pos.cost.normalize()) == "0.3"


# ---------------------------------------------------------------- journal


def test_journal_tables(store: Store, clock) -> None:
    store.add_learning(
        Learning(
            "late flips are rare",
            "after t-10s the leader rarely flips",
            phase="snipe tuning",
            category="timing",
            code_snippet="if t < 10: enter()",
            impact="high",
            metadata={"n": 41},
        )
    )
    store.add_reflection(
        Reflection("2026-11-23", what_worked="mirrored 12 fills", what_failed="2 late", metrics={"pnl": "3.2"})
    )
    store.log_execution(
        ExecutionLog(
            "ack",
            "order accepted",
            strategy="snipe",
            order_key="k1",
            latency_ms=D("1.234"),
            metadata={"status": "live"},
        )
    )
    (lrn,) = store.list_learnings()
    assert (lrn.title, lrn.phase, lrn.category, lrn.code_snippet, lrn.impact) == (
        "late flips are rare",
        "snipe tuning",
        "timing",
        "if t < 10: enter()",
        "high",
    )
    assert lrn.metadata == {"n": 41} and lrn.id is not None and lrn.timestamp == int(clock.now * 1000)
    assert store.list_learnings(phase="other") == [] and store.list_learnings(category="timing") == [lrn]
    (ref,) = store.list_reflections(phase="2026-11-23")
    assert ref.what_worked == "mirrored 12 fills" and ref.what_failed == "2 late" and ref.metrics == {"pnl": "3.2"}
    (log,) = store.list_execution_logs()
    assert log.latency_ms == D("1.234") and log.order_key == "k1" and log.ts == int(clock.now * 1000)
    assert store.list_execution_logs(event="metrics") == [] and store.list_execution_logs(event="ack") == [log]


def test_journal_refuses_empty_entries(store: Store) -> None:
    with pytest.raises(InputError):
        store.add_learning(Learning("  "))
    with pytest.raises(InputError):
        store.add_reflection(Reflection("p1"))
    assert store.list_learnings() == [] and store.list_reflections() == []


def test_transaction_groups_writes_and_rolls_back_together(store: Store) -> None:
    with store.transaction():
        assert store.insert_order(order("tx-1"))
        assert store.insert_order(order("tx-2"))
    assert store.get_order("tx-1") is not None and store.get_order("tx-2") is not None

    def failing() -> None:
        with store.transaction():
            store.insert_order(order("tx-3"))
            store.update_order("tx-1", OrderStatus.LIVE)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing()
    assert store.get_order("tx-3") is None
    got = store.get_order("tx-1")
    assert got is not None and got.status is OrderStatus.PENDING


def test_named_state_round_trips(store: Store) -> None:
    assert store.get_state("risk") is None
    store.set_state("risk", {"tripped": True, "reason": "daily loss", "n": 1})
    store.set_state("risk", {"tripped": False})
    assert store.get_state("risk") == {"tripped": False}


def test_batch_lookup_and_status_without_read_back(store: Store) -> None:
    for k in ("b1", "b2"):
        store.insert_order(order(k))
    found = store.get_orders(["b2", "nope", "b1", "b2"])
    assert sorted(found) == ["b1", "b2"] and found["b1"].key == "b1"
    assert store.set_order_status("b1", OrderStatus.LIVE, venue_order_id="0xh") is None
    got = store.get_order("b1")
    assert got is not None and got.status is OrderStatus.LIVE and got.venue_order_id == "0xh"
    assert [e.status for e in store.order_events("b1")] == [OrderStatus.PENDING, OrderStatus.LIVE]


def test_decisions_backtests_and_an_orders_fills(store: Store) -> None:
    from pmbot.store.models import BacktestRun, DecisionRow

    rows = [
        DecisionRow(ts=1, strategy="snipe", kind="skip", reason="too_early", mode="dry-run", run_id="r1",
                    condition_id="c", detail={"seconds_left": "90"}),
        DecisionRow(ts=2, strategy="snipe", kind="signal", reason="entry", mode="live", run_id="r2",
                    intent_key="snipe-k"),
        DecisionRow(ts=3, strategy="snipe", kind="skip", reason="outside_band", mode="backtest", run_id="bt-1"),
    ]  # fmt: skip
    assert store.record_decisions(rows) == 3 and store.record_decisions([]) == 0
    default = store.list_decisions()
    assert [d.reason for d in default] == ["entry", "too_early"]  # newest first, never a backtest's
    assert default[1].detail == {"seconds_left": "90"} and default[0].intent_key == "snipe-k"
    assert [d.reason for d in store.list_decisions(mode="dry-run")] == ["too_early"]
    assert [d.mode for d in store.list_decisions(run_id="bt-1")] == ["backtest"]
    assert [d.ts for d in store.list_decisions(since=2, limit=1)] == [2]
    doc = {"run_id": "bt-1", "summary": {"pnl": "-9.0684"}, "trades": []}
    store.save_backtest(BacktestRun("bt-1", 10, "snipe", "file.jsonl", {"shares": "10"}, doc))
    store.save_backtest(BacktestRun("bt-2", 20, "snipe", "btc-15m", {}, {"run_id": "bt-2"}))
    got = store.get_backtest("bt-1")
    assert got is not None and got.result == doc and got.params == {"shares": "10"}
    assert store.get_backtest("nope") is None
    assert [r.run_id for r in store.list_backtests()] == ["bt-2", "bt-1"]
    assert [r.run_id for r in store.list_backtests(1)] == ["bt-2"]
    from dataclasses import replace

    store.record_fills(
        [replace(fill(1), order_key="k1"), replace(fill(2), order_key="k1"), replace(fill(3), order_key="k2")]
    )
    assert [f.trade_id for f in store.fills_of_order("k1")] == ["t1", "t2"]
    assert store.fills_of_order("none") == []
