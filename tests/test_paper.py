from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_DOWN
from decimal import Decimal as D

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pmbot.executor.intents import OrderIntent
from pmbot.executor.paper import PaperExchange, PaperFill
from pmbot.polymarket.models import BookLevel, FeeSchedule, MarketParams, OrderBook
from pmbot.store.models import OrderStatus, OrderType, Side
from tests.conftest import FakeClock

TOKEN = "tok-up"
PARAMS = MarketParams(TOKEN, tick_size=D("0.01"), neg_risk=False)
FEE_PARAMS = MarketParams(TOKEN, tick_size=D("0.01"), neg_risk=False, fees=FeeSchedule(rate=D("0.07")))
T0 = 1_795_435_200.0


def book(
    asks: Sequence[tuple[str, str]] = (),
    bids: Sequence[tuple[str, str]] = (),
    ts: int = 1,
    token: str = TOKEN,
) -> OrderBook:
    """Levels best first, as OrderBook holds them."""
    return OrderBook(
        token_id=token,
        market="cond",
        bids=tuple(BookLevel(D(p), D(s)) for p, s in bids),
        asks=tuple(BookLevel(D(p), D(s)) for p, s in asks),
        timestamp_ms=ts,
        hash=f"h{ts}",
    )


_n = 0


def order(
    side: Side,
    price: str,
    size: str,
    order_type: OrderType = OrderType.GTC,
    *,
    key: str | None = None,
    post_only: bool = False,
    expiration_s: int = 0,
    token: str = TOKEN,
) -> OrderIntent:
    global _n
    _n += 1
    return OrderIntent(
        key=key or f"k{_n}",
        strategy="test",
        token_id=token,
        condition_id="cond",
        side=side,
        price=D(price),
        size=D(size),
        order_type=order_type,
        signal_ms=0,
        post_only=post_only,
        expiration_s=expiration_s,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def ex(clock: FakeClock) -> PaperExchange:
    return PaperExchange(D(1000), fees=False, clock=clock)


ASKS = [("0.50", "10"), ("0.52", "10"), ("0.55", "50")]
BIDS = [("0.48", "10"), ("0.46", "20"), ("0.40", "100")]


# ---------------------------------------------------------------------------------- level walking


def test_buy_walks_asks_level_by_level_at_each_level_price(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.53", "20", OrderType.FAK), book(ASKS, BIDS), PARAMS)
    # a FAK BUY of 20 at 0.53 spends up to 10.60 USDC; 10.20 of it is there
    assert r.status is OrderStatus.CANCELLED and r.reason is None and r.resting == 0
    assert [(f.price, f.size) for f in r.fills] == [(D("0.50"), D(10)), (D("0.52"), D(10))]
    assert r.notional == D("10.20") and r.avg_price == D("0.51") and r.filled_size == D(20)
    assert ex.balance == D("989.80") and ex.shares(TOKEN) == D(20)
    assert all(f.liquidity == "taker" and f.fee == 0 for f in r.fills)


def test_marketable_buy_spends_size_times_price_and_gets_more_shares_at_better_prices(ex: PaperExchange) -> None:
    # As the venue does (signing.buy_spend): a FOK BUY of 20 at 0.55 spends 11.00 USDC, in 0.01-share lots.
    r = ex.submit(order(Side.BUY, "0.55", "20", OrderType.FOK), book(ASKS, BIDS), PARAMS)
    assert r.status is OrderStatus.FILLED and r.resting == 0
    assert [(f.price, f.size) for f in r.fills] == [(D("0.50"), D(10)), (D("0.52"), D(10)), (D("0.55"), D("1.45"))]
    assert r.notional == D("10.9975") and r.filled_size == D("21.45")  # under a cent left unspent: complete
    assert ex.balance == D("989.0025") and ex.shares(TOKEN) == D("21.45")


def test_sell_walks_bids_down_to_the_limit(clock: FakeClock) -> None:
    ex = PaperExchange(D(0), fees=False, clock=clock, positions={TOKEN: D(40)})
    r = ex.submit(order(Side.SELL, "0.46", "25", OrderType.FAK), book(ASKS, BIDS), PARAMS)
    assert r.status is OrderStatus.FILLED
    assert [(f.price, f.size) for f in r.fills] == [(D("0.48"), D(10)), (D("0.46"), D(15))]
    assert r.avg_price == D("0.468")  # (4.80 + 6.90) / 25
    assert ex.balance == D("11.70") and ex.shares(TOKEN) == D(15)


def test_fok_is_all_or_nothing(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.52", "21", OrderType.FOK), book(ASKS), PARAMS)
    assert (r.status, r.code, r.fills) == (OrderStatus.REJECTED, "fok_not_filled", ())
    assert r.reason == "fok_not_filled: only 10.20 of 10.92 USDC could be spent at <= 0.52"
    assert ex.balance == D(1000) and ex.shares(TOKEN) == 0


def test_fak_fills_what_it_can_and_cancels_the_rest(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.52", "30", OrderType.FAK), book(ASKS), PARAMS)
    assert r.status is OrderStatus.CANCELLED and r.filled_size == D(20) and r.resting == 0
    assert ex.open_orders() == []
    r = ex.submit(order(Side.BUY, "0.49", "30", OrderType.FAK), book(ASKS, ts=2), PARAMS)
    assert (r.status, r.code) == (OrderStatus.REJECTED, "no_liquidity")
    assert r.reason == "no_liquidity: no asks at <= 0.49"


def test_gtc_fills_the_marketable_part_and_rests_the_rest(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.52", "30", key="g"), book(ASKS), PARAMS)
    assert r.status is OrderStatus.PARTIALLY_FILLED and r.filled_size == D(20) and r.resting == D(10)
    (resting,) = ex.open_orders()
    assert (resting.order_id, resting.status, resting.filled, resting.remaining) == (
        "paper-g",
        OrderStatus.PARTIALLY_FILLED,
        D(20),
        D(10),
    )
    assert ex.reserved == D("5.20") and ex.available == D(1000) - D("10.20") - D("5.20")
    r = ex.submit(order(Side.BUY, "0.45", "10"), book(ASKS), PARAMS)
    assert r.status is OrderStatus.LIVE and r.fills == () and r.resting == D(10)


def test_post_only_rejects_a_crossing_order(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.50", "10", post_only=True), book(ASKS), PARAMS)
    assert (r.status, r.code) == (OrderStatus.REJECTED, "post_only_cross")
    assert r.reason == "post_only_cross: BUY at 0.5 would cross the ask at 0.5"
    r = ex.submit(order(Side.BUY, "0.49", "10", post_only=True), book(ASKS), PARAMS)
    assert r.status is OrderStatus.LIVE


def test_tick_and_minimum_size(ex: PaperExchange) -> None:
    r = ex.submit(order(Side.BUY, "0.555", "10"), book(ASKS), PARAMS)
    assert r.reason == "tick_size: price 0.555 is not on the 0.01 tick"
    fine = MarketParams(TOKEN, tick_size=D("0.001"), neg_risk=False)
    assert ex.submit(order(Side.BUY, "0.555", "10"), book(ASKS), fine).status is OrderStatus.FILLED
    r = ex.submit(order(Side.BUY, "0.50", "4.99"), book(ASKS), PARAMS)
    assert (r.code, r.reason) == ("min_size", "min_size: 4.99 shares < minimum 5")
    r = ex.submit(order(Side.BUY, "1.5", "10"), book(ASKS), PARAMS)
    assert r.code == "invalid" and "price must be strictly between 0 and 1" in (r.reason or "")


def test_duplicate_submission_is_refused_not_refilled(ex: PaperExchange) -> None:
    i = order(Side.BUY, "0.50", "5", key="same")
    assert ex.submit(i, book(ASKS), PARAMS).status is OrderStatus.FILLED
    r = ex.submit(i, book(ASKS, ts=2), PARAMS)
    assert (r.status, r.code) == (OrderStatus.REJECTED, "duplicate_order") and ex.shares(TOKEN) == D(5)
    with pytest.raises(ValueError, match="book is for token"):
        ex.submit(order(Side.BUY, "0.50", "5"), book(ASKS, token="other"), PARAMS)


# ------------------------------------------------------------------------------------------ fees


def test_taker_fee_rounded_to_5dp(clock: FakeClock) -> None:
    ex = PaperExchange(D(100), fees=True, clock=clock)
    r = ex.submit(order(Side.BUY, "0.99", "10", OrderType.FOK), book([("0.99", "100")]), FEE_PARAMS)
    (f,) = r.fills
    assert f.fee == D("0.00693")  # 10 × 0.07 × 0.99 × 0.01
    assert ex.balance == D(100) - D("9.9") - D("0.00693")
    # A SELL pays its fee out of the proceeds.
    r = ex.submit(order(Side.SELL, "0.50", "10", OrderType.FOK), book(bids=[("0.50", "10")], ts=2), FEE_PARAMS)
    assert r.fees == D("0.17500") and ex.balance == D(100) - D("9.9") - D("0.00693") + D(5) - D("0.175")


def test_fees_off_and_makers_pay_none(clock: FakeClock) -> None:
    off = PaperExchange(D(100), fees=False, clock=clock)
    assert off.submit(order(Side.BUY, "0.5", "10"), book([("0.5", "10")]), FEE_PARAMS).fees == 0
    on = PaperExchange(D(100), fees=True, clock=clock)
    on.submit(order(Side.BUY, "0.40", "10"), book([("0.5", "10")]), FEE_PARAMS)
    fills = on.on_book(book([("0.39", "10")], ts=2))
    assert [(f.price, f.fee, f.liquidity) for f in fills] == [(D("0.40"), D(0), "maker")]
    assert on.balance == D(96)


# --------------------------------------------------------------------------------- balance & shares


def test_insufficient_balance_is_refused_never_resized(clock: FakeClock) -> None:
    ex = PaperExchange(D(10), fees=True, clock=clock)
    r = ex.submit(order(Side.BUY, "0.50", "20", OrderType.FOK), book([("0.50", "100")]), FEE_PARAMS)
    assert (r.status, r.code) == (OrderStatus.REJECTED, "insufficient_balance")  # 10 + 0.35 fee > 10
    assert r.reason == (
        "insufficient_balance: needs 10.35 USDC (fills, fees and resting reserve), 10 available"
        " (balance 10, 0 reserved by resting BUYs)"
    )
    assert ex.balance == D(10)
    # Resting BUYs reserve their cost: a second order cannot spend it.
    assert ex.submit(order(Side.BUY, "0.40", "20"), book([("0.50", "100")]), FEE_PARAMS).status is OrderStatus.LIVE
    assert ex.available == D(2)
    r = ex.submit(order(Side.BUY, "0.30", "10"), book([("0.50", "100")]), FEE_PARAMS)
    assert r.code == "insufficient_balance"
    (o,) = ex.open_orders()
    assert ex.cancel(o.order_id) is not None and ex.available == D(10)
    assert ex.cancel(o.order_id) is None and ex.cancel("nope") is None


def test_sell_needs_held_shares_and_resting_sells_reserve_them(clock: FakeClock) -> None:
    ex = PaperExchange(D(0), fees=False, clock=clock)
    r = ex.submit(order(Side.SELL, "0.40", "10"), book(bids=BIDS), PARAMS)
    assert (r.code, r.reason) == (
        "no_position",
        "no_position: SELL 10 shares > 0 held and not already offered; no shorting",
    )
    ex = PaperExchange(D(0), fees=False, clock=clock, positions={TOKEN: D(15)})
    assert ex.submit(order(Side.SELL, "0.60", "10"), book(bids=BIDS), PARAMS).status is OrderStatus.LIVE
    assert ex.free_shares(TOKEN) == D(5)
    assert ex.submit(order(Side.SELL, "0.60", "6"), book(bids=BIDS), PARAMS).code == "no_position"


# --------------------------------------------------------------------------------- resting orders


def test_resting_buy_fills_when_the_book_crosses_it(ex: PaperExchange, clock: FakeClock) -> None:
    r = ex.submit(order(Side.BUY, "0.45", "10", key="rest"), book(ASKS, BIDS, ts=1), PARAMS)
    assert r.status is OrderStatus.LIVE and ex.reserved == D("4.5")
    assert ex.on_book(book(ASKS, BIDS, ts=2)) == []  # not crossed
    clock.advance(1)
    fills = ex.on_book(book([("0.44", "6"), ("0.46", "100")], ts=3))
    assert fills == [
        PaperFill(
            trade_id="paper-rest:1", order_id="paper-rest", intent_key="rest", token_id=TOKEN, side=Side.BUY,
            price=D("0.45"), size=D(6), fee=D(0), ts_ms=int((T0 + 1) * 1000), liquidity="maker", remaining=D(4),
        )
    ]  # fmt: skip
    assert ex.reserved == D("1.8") and ex.balance == D(1000) - D("2.7")
    (f,) = ex.on_book(book([("0.45", "10")], ts=4))
    assert (f.trade_id, f.size, f.remaining) == ("paper-rest:2", D(4), D(0))
    assert ex.open_orders() == [] and ex.reserved == 0 and ex.balance == D("995.5") and ex.shares(TOKEN) == D(10)


def test_resting_sell_fills_when_bids_cross_it(clock: FakeClock) -> None:
    ex = PaperExchange(D(0), fees=True, clock=clock, positions={TOKEN: D(20)})
    ex.submit(order(Side.SELL, "0.60", "20"), book(ASKS, BIDS), FEE_PARAMS)
    fills = ex.on_book(book(bids=[("0.62", "5"), ("0.60", "5"), ("0.59", "100")], ts=2))
    assert [(f.price, f.size, f.fee) for f in fills] == [(D("0.60"), D(10), D(0))]
    assert ex.balance == D(6) and ex.shares(TOKEN) == D(10)


def test_resting_orders_share_crossing_liquidity_in_price_time_priority(ex: PaperExchange) -> None:
    ex.submit(order(Side.BUY, "0.40", "10", key="low"), book(ASKS), PARAMS)
    ex.submit(order(Side.BUY, "0.45", "10", key="high"), book(ASKS), PARAMS)
    ex.submit(order(Side.BUY, "0.45", "10", key="high2"), book(ASKS), PARAMS)
    fills = ex.on_book(book([("0.40", "15")], ts=2))
    assert [(f.intent_key, f.size) for f in fills] == [("high", D(10)), ("high2", D(5))]


def test_on_trade_fills_strictly_better_resting_orders(ex: PaperExchange) -> None:
    ex.submit(order(Side.BUY, "0.45", "10", key="b"), book(ASKS), PARAMS)
    assert ex.on_trade(TOKEN, D("0.45"), D(100)) == []  # same price: our queue place is unknown
    (f,) = ex.on_trade(TOKEN, D("0.44"), D(4))
    assert (f.price, f.size, f.liquidity) == (D("0.45"), D(4), "maker")
    assert ex.on_trade("other-token", D("0.01"), D(100)) == []


def test_gtd_orders_expire(ex: PaperExchange, clock: FakeClock) -> None:
    r = ex.submit(order(Side.BUY, "0.40", "10", OrderType.GTD, expiration_s=int(T0) - 1), book(ASKS), PARAMS)
    assert r.code == "expired"
    ex.submit(order(Side.BUY, "0.40", "10", OrderType.GTD, key="gtd", expiration_s=int(T0) + 60), book(ASKS), PARAMS)
    assert ex.expire_due() == []
    clock.advance(60)
    assert ex.on_book(book([("0.30", "100")], ts=2)) == []  # expired: never filled
    (o,) = ex.expire_due()
    assert (o.order_id, o.status) == ("paper-gtd", OrderStatus.EXPIRED) and ex.reserved == 0


def test_redeem_pays_out_and_cancels_the_markets_orders(clock: FakeClock) -> None:
    ex = PaperExchange(D(0), fees=False, clock=clock, positions={TOKEN: D(30)})
    ex.submit(order(Side.SELL, "0.90", "10", key="s"), book(ASKS, BIDS), PARAMS)
    credited, cancelled = ex.redeem(TOKEN, D(1))
    assert credited == D(30) and [o.order_id for o in cancelled] == ["paper-s"] and ex.balance == D(30)
    assert ex.shares(TOKEN) == 0 and ex.open_orders() == []


# ----------------------------------------------------------------------------- liquidity overlay


def test_same_snapshot_liquidity_is_taken_once(ex: PaperExchange) -> None:
    snap = book([("0.50", "15"), ("0.60", "100")], ts=1)
    assert ex.submit(order(Side.BUY, "0.50", "10", OrderType.FOK), snap, PARAMS).status is OrderStatus.FILLED
    r = ex.submit(order(Side.BUY, "0.50", "10", OrderType.FOK), snap, PARAMS)
    assert r.reason == "fok_not_filled: only 2.50 of 5.00 USDC could be spent at <= 0.5"
    assert ex.submit(order(Side.BUY, "0.50", "10", OrderType.FAK), snap, PARAMS).filled_size == D(5)
    assert ex.submit(order(Side.BUY, "0.50", "5", OrderType.FAK), snap, PARAMS).code == "no_liquidity"
    # A resting order placed against the same snapshot does not fill on it either.
    assert ex.submit(order(Side.BUY, "0.50", "5"), snap, PARAMS).status is OrderStatus.LIVE
    assert ex.on_book(snap) == []
    # An older snapshot arriving late does not give the liquidity back.
    assert ex.submit(order(Side.BUY, "0.50", "5", OrderType.FAK), book([("0.50", "15")], ts=0), PARAMS).code == (
        "no_liquidity"
    )
    # A newer snapshot does: the venue's book does not know about paper trades.
    newer = book([("0.50", "15"), ("0.60", "100")], ts=2)
    (f,) = ex.on_book(newer)  # the resting BUY takes 5 of the 15 first
    assert f.size == D(5)
    assert ex.submit(order(Side.BUY, "0.50", "10", OrderType.FOK), newer, PARAMS).status is OrderStatus.FILLED


def test_overlay_is_per_token_and_per_side(clock: FakeClock) -> None:
    ex = PaperExchange(D(1000), fees=False, clock=clock, positions={TOKEN: D(100)})
    snap = book([("0.50", "10")], [("0.48", "10")])
    other = book([("0.50", "10")], token="tok-down")
    assert ex.submit(order(Side.BUY, "0.50", "10", OrderType.FOK), snap, PARAMS).status is OrderStatus.FILLED
    assert ex.submit(order(Side.SELL, "0.48", "10", OrderType.FOK), snap, PARAMS).status is OrderStatus.FILLED
    down = MarketParams("tok-down", tick_size=D("0.01"), neg_risk=False)
    assert ex.submit(order(Side.BUY, "0.50", "10", OrderType.FOK, token="tok-down"), other, down).filled_size == 10


# ------------------------------------------------------------------------------------ property test


@st.composite
def books(draw: st.DrawFn, ts: int) -> OrderBook:
    mid = draw(st.integers(2, 98))
    ask_ticks = sorted(draw(st.sets(st.integers(mid, 99), max_size=5)))
    bid_ticks = sorted(draw(st.sets(st.integers(1, mid - 1), max_size=5)), reverse=True)
    level_sizes = st.integers(100, 5000).map(lambda n: D(n) / 100)
    return OrderBook(
        token_id=TOKEN,
        market="cond",
        asks=tuple(BookLevel(D(t) / 100, draw(level_sizes)) for t in ask_ticks),
        bids=tuple(BookLevel(D(t) / 100, draw(level_sizes)) for t in bid_ticks),
        timestamp_ms=ts,
        hash=str(ts),
    )


actions = st.lists(
    st.one_of(
        st.tuples(
            st.just("submit"),
            st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
            st.sampled_from(list(OrderType)),
            st.integers(-5, 5),  # limit price in ticks from the best opposite level: mostly near the touch
            st.integers(500, 6000).map(lambda n: D(n) / 100),
            st.booleans(),
            st.integers(1, 4),  # GTD lifetime, seconds (each new book is one second later)
        ),
        st.tuples(st.just("new_book")),
        st.tuples(st.just("cancel"), st.integers(0, 10)),
        st.tuples(st.just("trade"), st.integers(1, 99).map(lambda n: D(n) / 100), st.integers(1, 50).map(D)),
    ),
    min_size=5,
    max_size=40,
)


@dataclass
class Model:
    """What the exchange must hold, computed only from what it returned."""

    cash: D
    shares: D
    orders: dict[str, tuple[Side, D, D, int]] = field(default_factory=dict)  # id -> side, limit, left, expiry
    taken: dict[tuple[int, str, D], D] = field(default_factory=dict)  # taker fills per (snapshot, side, level)

    def account(self, fills: Sequence[PaperFill], limits: dict[str, tuple[Side, D, int]], ts: int, now: float) -> None:
        for f in fills:
            side, limit, expiry = limits[f.order_id]
            assert f.price <= limit if side is Side.BUY else f.price >= limit
            assert not expiry or expiry > now, "an expired GTD order filled"
            sign = -1 if side is Side.BUY else 1
            self.cash += sign * f.price * f.size - f.fee
            self.shares -= sign * f.size
            if f.liquidity == "taker":
                k = (ts, "ask" if side is Side.BUY else "bid", f.price)
                self.taken[k] = self.taken.get(k, D(0)) + f.size
            else:
                assert f.fee == 0 and f.price == limit
                event("maker fill")
                s, lim, left, exp = self.orders[f.order_id]
                assert f.size <= left and f.remaining == left - f.size
                if f.remaining:
                    self.orders[f.order_id] = (s, lim, f.remaining, exp)
                else:
                    del self.orders[f.order_id]

    def check(self, ex: PaperExchange, now: float) -> None:
        reserved = sum((lim * left for s, lim, left, _ in self.orders.values() if s is Side.BUY), D(0))
        offered = sum((left for s, _, left, _ in self.orders.values() if s is Side.SELL), D(0))
        assert {o.order_id for o in ex.open_orders()} == set(self.orders)
        assert all(not exp or exp > now for *_, exp in self.orders.values()), "expire_due left an expired order"
        assert ex.balance == self.cash and ex.shares(TOKEN) == self.shares
        assert ex.reserved == reserved and ex.free_shares(TOKEN) == self.shares - offered
        # The point of it all: never negative, reservations always covered, no shorting.
        assert self.cash >= reserved >= 0
        assert self.shares >= offered >= 0


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    start=st.integers(0, 10000).map(lambda n: D(n) / 100),
    held=st.integers(0, 100).map(D),
    seq=actions,
)
def test_balance_never_negative_and_cash_is_conserved(
    data: st.DataObject, start: D, held: D, seq: list[tuple[object, ...]]
) -> None:
    clock = FakeClock(T0)
    ex = PaperExchange(start, fees=True, clock=clock, positions={TOKEN: held})
    ts = 1
    snap = data.draw(books(ts))
    snapshots = {ts: snap}
    model = Model(start, held)
    limits: dict[str, tuple[Side, D, int]] = {}
    for n, action in enumerate(seq):
        if action[0] == "submit":
            _, side, kind, offset, size, post_only, life = action
            assert isinstance(side, Side) and isinstance(kind, OrderType) and isinstance(life, int)
            assert isinstance(offset, int) and isinstance(size, D)
            touch = snap.asks if side is Side.BUY else snap.bids
            ref = touch[0].price if touch else D("0.5")
            price = min(max(ref + D(offset if side is Side.BUY else -offset) / 100, D("0.01")), D("0.99"))
            expiry = int(clock()) + life if kind is OrderType.GTD else 0
            i = OrderIntent(
                key=f"p{n}", strategy="p", token_id=TOKEN, condition_id="cond", side=side, price=price, size=size,
                order_type=kind, signal_ms=0, post_only=bool(post_only) and kind in (OrderType.GTC, OrderType.GTD),
                expiration_s=expiry,
            )  # fmt: skip
            limits[f"paper-p{n}"] = (side, price, expiry)
            r = ex.submit(i, snap, FEE_PARAMS)
            event(f"{kind} {r.code or r.status}")
            if r.status is OrderStatus.REJECTED:
                assert r.fills == () and r.reason and r.code
            else:
                assert r.filled_size + r.resting == (size if kind in (OrderType.GTC, OrderType.GTD) else r.filled_size)
                if kind is OrderType.FOK and side is Side.SELL:
                    assert r.filled_size == size
                elif kind is OrderType.FOK:  # a marketable BUY spends size x price, to the cent
                    assert r.notional > (size * price).quantize(D("0.01"), ROUND_DOWN) - D("0.01")
            model.account(r.fills, limits, ts, clock())
            if r.resting:
                model.orders[r.order_id] = (side, price, r.resting, expiry)
        elif action[0] == "new_book":
            ts += 1
            clock.advance(1)
            for o in ex.expire_due():
                assert o.expiration_s <= clock()
                del model.orders[o.order_id]
            snap = snapshots[ts] = data.draw(books(ts))
            model.account(ex.on_book(snap), limits, ts, clock())
        elif action[0] == "cancel":
            open_ = ex.open_orders()
            if open_:
                assert isinstance(action[1], int)
                cancelled = ex.cancel(open_[action[1] % len(open_)].order_id)
                assert cancelled is not None
                del model.orders[cancelled.order_id]
        else:
            assert isinstance(action[1], D) and isinstance(action[2], D)
            model.account(ex.on_trade(TOKEN, action[1], action[2]), limits, ts, clock())
        model.check(ex, clock())
    # Liquidity taken from one snapshot never exceeds what that snapshot showed at that level.
    for (snap_ts, book_side, price), size in model.taken.items():
        levels = snapshots[snap_ts].asks if book_side == "ask" else snapshots[snap_ts].bids
        assert size <= next(lv.size for lv in levels if lv.price == price)


def test_marketable_orders_need_one_dollar_not_five_shares(ex: PaperExchange) -> None:
    """The venue's minimums: $1 for FOK/FAK, the market's minimum shares only for an order that can rest.
    A copy of a small whale fill (3.46 shares at 0.991, $3.42) was refused here as < 5 shares."""
    r = ex.submit(order(Side.BUY, "0.50", "3", OrderType.FAK), book(ASKS), PARAMS)
    assert (r.status, r.filled_size) == (OrderStatus.FILLED, D(3))
    r = ex.submit(order(Side.BUY, "0.50", "1.9", OrderType.FAK), book(ASKS), PARAMS)  # spends $0.95
    assert (r.code, r.reason) == ("min_size", "min_size: FAK BUY of 0.95 USDC < minimum 1 USDC for a marketable order")
    r = ex.submit(order(Side.SELL, "0.48", "2", OrderType.FOK), book(ASKS, BIDS), PARAMS)  # $0.96
    assert r.code == "min_size" and "FOK SELL of 0.96 USDC" in (r.reason or "")
    r = ex.submit(order(Side.BUY, "0.49", "4", OrderType.GTC), book(ASKS), PARAMS)  # would rest: shares rule
    assert (r.code, r.reason) == ("min_size", "min_size: 4 shares < minimum 5")
