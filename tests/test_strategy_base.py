"""The Strategy base: config at start, lifecycle, error handling, pause, health, bookkeeping and metrics."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import Field

from pmbot.errors import ConfigError, InputError
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.polymarket.models import FeeSchedule, Market, MarketParams, Outcome
from pmbot.store.models import OrderStatus, OrderType, Side
from pmbot.strategies.base import Decision, DecisionKind, MarketInfo, Strategy, StrategyConfig, StrategyState
from pmbot.strategies.events import BookChanged, Event, MarketResolved, OrderFilled, OrderResult, TimerTick
from pmbot.strategies.memview import MemoryView
from tests.strategy_kit import CID, DOWN, UP, D, book, market

# ------------------------------------------------------------------------------- a toy strategy


class EchoConfig(StrategyConfig):
    size: Decimal = Field(Decimal(5), gt=0)
    price: Decimal = Field(Decimal("0.5"), gt=0, lt=1)
    fail_on: int = -1  # raise on the tick with this ts


class Echo(Strategy[EchoConfig]):
    """Buys `size` at `price` on every book change, with a key per book timestamp."""

    name = "echo"
    config_model = EchoConfig
    config_section = "echo"

    def __init__(self, view: MemoryView, config: Any = None, **kw: Any) -> None:
        super().__init__(view, config, **kw)
        self.seen: list[Event] = []
        self.stopped = False

    def on_event(self, event: Event) -> None:
        self.seen.append(event)
        if isinstance(event, TimerTick) and event.ts_ms == self.config.fail_on:
            self.submit(self._intent("doomed", event.ts_ms))
            raise ValueError("boom")
        if isinstance(event, BookChanged):
            self.signal("echo", ts_ms=event.ts_ms, token_id=event.token_id)
            self.submit(self._intent(str(event.ts_ms), event.ts_ms, event.token_id))

    def on_stop(self) -> None:
        self.stopped = True
        self.warn("bye", ts_ms=self.view.now_ms())

    def _intent(self, signal: str, ts: int, token: str = UP) -> OrderIntent:
        return OrderIntent(
            key=intent_key(self.name, CID, signal),
            strategy=self.name,
            token_id=token,
            condition_id=CID,
            side=Side.BUY,
            price=self.config.price,
            size=self.config.size,
            order_type=OrderType.FOK,
            signal_ms=ts,
        )


def started(config: Any = None, clock: Any = None) -> Echo:
    s = Echo(MemoryView([market()], clock=clock), config)
    s.start()
    return s


def buy_fill(
    key: str, fill_id: str, token: str, price: str, size: str, fee: str = "0", side: Side = Side.BUY
) -> OrderFilled:
    return OrderFilled(
        key=key, fill_id=fill_id, token_id=token, condition_id=CID, side=side, price=D(price), size=D(size),
        fee=D(fee), ts_ms=1,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ config


def test_config_is_validated_at_start_one_line_per_error() -> None:
    s = Echo(MemoryView(), {"size": "0", "price": "2", "colour": "red"})
    assert s.state is StrategyState.NEW
    with pytest.raises(ConfigError) as info:
        s.start()
    assert info.value.message.splitlines() == [
        "[echo] size: Input should be greater than 0 (got 0)",
        "[echo] price: Input should be less than 1 (got 2)",
        "[echo] colour: unknown key",
    ]
    assert s.state is StrategyState.NEW  # nothing started


def test_config_property_needs_start() -> None:
    s = Echo(MemoryView())
    with pytest.raises(RuntimeError, match="start"):
        _ = s.config
    s.start()
    assert s.config.size == 5


def test_config_accepts_a_model() -> None:
    s = started(EchoConfig(size=D(7)))
    assert s.config.size == 7


# --------------------------------------------------------------------------------------- lifecycle


def test_lifecycle_order_and_state() -> None:
    s = Echo(MemoryView([market()]))
    with pytest.raises(RuntimeError):
        s.handle(TimerTick(ts_ms=1))
    s.start()
    with pytest.raises(RuntimeError):
        s.start()
    out = s.handle(book(UP, 10, asks=[("0.5", "10")]))
    assert len(out.intents) == 1
    out = s.stop()
    assert s.stopped
    assert s.state is StrategyState.STOPPED
    assert [d.reason for d in out.decisions] == ["bye"]
    assert s.stop().intents == ()  # idempotent
    with pytest.raises(RuntimeError):
        s.handle(TimerTick(ts_ms=2))


def test_same_key_is_never_emitted_twice() -> None:
    s = started()
    first = s.handle(book(UP, 10, asks=[("0.5", "10")]))
    again = s.handle(book(UP, 10, asks=[("0.5", "10")]))  # same ts → same key
    assert len(first.intents) == 1
    assert again.intents == ()
    assert s.was_sent(first.intents[0].key)
    assert s.metrics.intents == 1


def test_invalid_intent_is_a_strategy_bug() -> None:
    s = started({"price": "0.5"})
    bad = OrderIntent(
        key="k", strategy="echo", token_id="", condition_id=CID, side=Side.BUY, price=D("0.5"), size=D(1),
        order_type=OrderType.FOK, signal_ms=1,
    )  # fmt: skip
    with pytest.raises(InputError):
        s.submit(bad)


def test_error_in_on_event_discards_the_call_records_it_and_pauses() -> None:
    s = started({"fail_on": 5})
    out = s.handle(TimerTick(ts_ms=5))
    assert out.intents == ()  # the intent queued before the exception never leaves
    (decision,) = out.decisions
    assert decision.kind is DecisionKind.ERROR
    assert decision.detail["error"] == "ValueError: boom"
    assert s.paused
    h = s.health()
    assert (h.errors, h.last_error) == (1, "ValueError: boom")
    assert h.paused_reason == "error: ValueError: boom"
    # Paused: signals become `paused` skips and no intent is emitted; resume restores.
    out = s.handle(book(UP, 6, asks=[("0.5", "10")]))
    assert out.intents == ()
    assert [d.reason for d in out.decisions if d.kind is DecisionKind.SKIP] == ["paused"]
    s.resume()
    assert len(s.handle(book(UP, 7, asks=[("0.5", "10")])).intents) == 1


def test_fills_are_booked_even_when_on_event_fails() -> None:
    class Fragile(Echo):
        def on_event(self, event: Event) -> None:
            raise RuntimeError("bug")

    s = Fragile(MemoryView([market()]))
    s.start()
    s.handle(buy_fill("k", "f1", UP, "0.9", "10"))
    s.handle(MarketResolved(condition_id=CID, winning_token_id=UP, ts_ms=2))
    assert (s.metrics.fills, s.metrics.wins, s.metrics.realized_pnl) == (1, 1, D("1.0"))
    assert s.metrics.errors == 2


def test_health_is_the_age_of_the_last_event_on_the_injected_clock() -> None:
    now = [1_000]
    s = started(clock=lambda: now[0])
    assert s.health().last_event_age_ms is None
    s.handle(TimerTick(ts_ms=1_000))
    now[0] = 4_500
    h = s.health()
    assert (h.name, h.state, h.paused, h.last_event_age_ms) == ("echo", StrategyState.RUNNING, False, 3_500)


def test_instance_name_overrides_the_class_name() -> None:
    s = Echo(MemoryView([market()]), name="echo-2")
    s.start()
    out = s.handle(book(UP, 10, asks=[("0.5", "10")]))
    assert out.intents[0].strategy == "echo-2"
    assert out.intents[0].key.startswith("echo-2-")  # two instances never share keys
    assert out.decisions[0].strategy == "echo-2"
    assert Echo.name == "echo"


# ------------------------------------------------------------------------------------------ metrics


def test_metrics_wins_losses_pnl_and_win_rate() -> None:
    s = started()
    assert s.metrics.win_rate is None
    s.handle(buy_fill("a", "f1", UP, "0.9", "10", fee="0.0065"))
    s.handle(buy_fill("a", "f1", UP, "0.9", "10", fee="0.0065"))  # duplicate delivery
    s.handle(buy_fill("b", "f2", DOWN, "0.05", "4"))
    s.handle(MarketResolved(condition_id=CID, winning_token_id=UP, ts_ms=9))
    m = s.metrics
    assert (m.fills, m.wins, m.losses) == (2, 1, 1)
    assert m.fees == D("0.0065")
    # Up: 10 − 9 − 0.0065 = 0.9935; Down: −0.2
    assert m.realized_pnl == D("0.7935")
    assert m.win_rate == D("0.5")


def test_resolution_of_another_market_books_nothing() -> None:
    s = started()
    s.handle(buy_fill("a", "f1", UP, "0.9", "10"))
    s.handle(MarketResolved(condition_id="0xother", winning_token_id="x", ts_ms=9))
    assert (s.metrics.wins, s.metrics.losses, s.metrics.realized_pnl) == (0, 0, 0)


def test_sells_realize_against_average_cost() -> None:
    s = started()
    s.handle(buy_fill("a", "f1", UP, "0.40", "10"))
    s.handle(buy_fill("a", "f2", UP, "0.60", "10"))
    s.handle(buy_fill("c", "f3", UP, "0.70", "5", fee="0.01", side=Side.SELL))  # basis 0.50 × 5
    assert s.metrics.realized_pnl == D("0.99")
    assert s.metrics.wins == 0  # still holding 15
    s.handle(buy_fill("c", "f4", UP, "0.30", "15", side=Side.SELL))  # basis 7.5, proceeds 4.5
    assert s.metrics.realized_pnl == D("0.99") - 3
    assert (s.metrics.wins, s.metrics.losses) == (0, 1)  # the round trip lost money overall


def test_rejected_results_are_counted() -> None:
    s = started()
    s.handle(OrderResult(key="a", status=OrderStatus.REJECTED, ts_ms=1, reason="max_order_notional"))
    s.handle(OrderResult(key="b", status=OrderStatus.FILLED, ts_ms=1, filled_size=D(1)))
    assert s.metrics.rejected == 1
    assert s.metrics.fills == 0  # results never book fills


def test_metrics_snapshot_is_read_only() -> None:
    s = started()
    s.handle(book(UP, 10, asks=[("0.5", "10")]))
    snap = s.metrics
    with pytest.raises(TypeError):
        snap.skips["x"] = 1  # type: ignore[index]
    assert snap.signals == 1


# ------------------------------------------------------------------------------------- market info


def test_market_info_from_the_adapters_market() -> None:
    m = Market(
        condition_id=CID, question="BTC up?", slug="btc", outcomes=(Outcome(UP, "Up"), Outcome(DOWN, "Down")),
        end_ms=10, start_ms=1, tick_size=None, fees=None,
    )  # fmt: skip
    with pytest.raises(InputError):
        MarketInfo.from_market(m)
    params = MarketParams(token_id=UP, tick_size=D("0.001"), neg_risk=False, fees=FeeSchedule(rate=D("0.072")))
    info = MarketInfo.from_market(m, params=params, description="text", resolution_source="src")
    assert (info.tick_size, info.fees.rate, info.end_ms, info.start_ms) == (D("0.001"), D("0.072"), 10, 1)
    assert info.outcome_of(DOWN) == "Down"
    assert info.token_ids == (UP, DOWN)
    assert info.description == "text"


def test_decision_detail_is_frozen() -> None:
    detail = {"a": "1"}
    d = Decision(kind=DecisionKind.SKIP, strategy="x", reason="r", ts_ms=1, detail=detail)
    detail["a"] = "2"
    assert d.detail["a"] == "1"
    with pytest.raises(TypeError):
        d.detail["b"] = "3"  # type: ignore[index]


def test_market_info_refuses_a_zero_tick() -> None:
    with pytest.raises(InputError, match="tick size"):
        market(tick_size=D(0))
