"""Orders, matching, fees and trades. All money is Decimal; nothing here knows the wire format.

Matching runs on the market's canonical (Up-terms) book: a BUY of Down at q is a SELL of Up at 1−q,
so it can fill against Up bids (the CLOB's mint/merge matching). Price-time priority; at one price,
real resting orders go before the market maker's synthetic size (which is re-quoted every second).

Sizing follows the CLOB: GTC/GTD and SELL orders are sized in shares; FOK/FAK BUY orders spend
`makerAmount` USDC with `makerAmount / takerAmount` as the worst price.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any, Protocol, Self, cast

from pmbot.sim import ids
from pmbot.sim.book import BUY, ONE, SELL, ZERO, OutcomeBook
from pmbot.sim.markets import SimMarket

SHARE_Q = Decimal("0.01")
FEE_Q = Decimal("0.00001")  # "Fees are rounded to 5 decimal places. The smallest fee charged is 0.00001"

FOK_MSG = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_MSG = "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."
POST_ONLY_MSG = "invalid post-only order: order crosses book"

LIVE, MATCHED, CANCELED, RESOLVED_CANCEL = "LIVE", "MATCHED", "CANCELED", "CANCELED_MARKET_RESOLVED"


# The venue's minimum for a marketable order, in USDC (the sim models the venue apart from pmbot's own rules).
MIN_MARKETABLE_USDC = Decimal(1)


class OrderRejectedError(Exception):
    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(eq=False)
class Order:
    id: str
    market: SimMarket
    index: int  # outcome index of token_id
    side: str  # BUY / SELL of its own token
    price: Decimal  # limit price of its own token
    original_size: Decimal  # shares
    order_type: str  # GTC GTD FOK FAK
    owner: str  # API key (synthetic for the whale and the market maker)
    maker_address: str  # funder (order.maker)
    created_at: int
    expiration: int = 0
    budget: Decimal | None = None  # USDC to spend (FOK/FAK BUY)
    post_only: bool = False
    remaining: Decimal = ZERO
    size_matched: Decimal = ZERO
    status: str = LIVE
    trade_ids: list[str] = field(default_factory=list)
    is_user: bool = True  # placed through POST /order with an API key

    @property
    def token_id(self) -> str:
        return self.market.token_ids[self.index]

    @property
    def canonical_side(self) -> str:
        if self.index == 0:
            return self.side
        return SELL if self.side == BUY else BUY

    @property
    def canonical_price(self) -> Decimal:
        return self.price if self.index == 0 else ONE - self.price


@dataclass(eq=False)
class Trade:
    id: str
    taker: Order
    maker: Order
    size: Decimal
    price: Decimal  # in the taker's token
    maker_price: Decimal  # in the maker's token
    fee: Decimal  # taker fee, USDC
    fee_rate_bps: int
    match_time: int
    tx_hash: str
    status: str = "MATCHED"
    last_update: int = 0
    block: int = 0
    # The venue reports one trade per taker order and price level, carrying every maker order it
    # matched (recording ws_user_trade_maker_many_makers_2024.json: 6 maker_orders, sizes summing to the
    # trade's). `group` holds this trade's per-maker fills, shared by all of them; the first one's id is
    # the public trade id.
    group: list[Trade] = field(default_factory=list)

    @property
    def market(self) -> SimMarket:
        return self.taker.market

    @property
    def head(self) -> Trade:
        return self.group[0] if self.group else self

    @property
    def public_id(self) -> str:
        return self.head.id

    @property
    def group_size(self) -> Decimal:
        return sum((g.size for g in self.head.group), ZERO) if self.group else self.size

    @property
    def group_fee(self) -> Decimal:
        return sum((g.fee for g in self.head.group), ZERO) if self.group else self.fee


class EngineListener(Protocol):
    def on_order(self, order: Order, kind: str) -> None: ...  # PLACEMENT / UPDATE / CANCELLATION
    def on_trade(self, trade: Trade) -> None: ...  # one maker fill
    def on_match(self, group: list[Trade]) -> None: ...  # one public trade: a taker order at one price
    def on_book_change(self, market: SimMarket) -> None: ...


def taker_fee(m: SimMarket, shares: Decimal, price: Decimal) -> Decimal:
    """fee = shares × rate × (p(1−p))^exponent, rounded to 5 dp, at least 0.00001 when charged."""
    if not m.fees_enabled or m.fee_rate == 0:
        return ZERO
    fee = (shares * m.fee_rate * (price * (ONE - price)) ** m.fee_exponent).quantize(FEE_Q, ROUND_HALF_UP)
    return max(fee, FEE_Q)


@dataclass
class _Fill:
    maker: Order | None  # None = the market maker's synthetic size
    canonical_price: Decimal
    shares: Decimal


class OrderIndex(dict[str, Order]):
    """Every order the engine has seen, by id, with its user orders also kept apart, so that the live ones
    (what a balance check adds up on every POST /order) are found without scanning the whole history: the
    history only grows (cancelled and filled orders stay readable by id), and a scan of it made each order
    of a long run slower than the one before. A user order that stops being live is dropped from the side
    index at the next `live_user()`; none becomes live again (a cancel, a fill or a kill is final)."""

    def __init__(self) -> None:
        super().__init__()
        self._user: dict[str, Order] = {}

    def __setitem__(self, key: str, order: Order) -> None:
        pruned = key in self and key not in self._user  # replaced in place: it keeps its place in the history
        super().__setitem__(key, order)
        if not order.is_user:
            self._user.pop(key, None)
        elif pruned:
            self._user = {k: o for k, o in self.items() if o.is_user and o.status == LIVE}
        else:
            self._user[key] = order

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._user.pop(key, None)

    # dict's own methods that add or remove without __setitem__/__delitem__: kept in step too
    def pop(self, key: str, *default: Any) -> Any:
        self._user.pop(key, None)
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Order]:
        key, order = super().popitem()
        self._user.pop(key, None)
        return key, order

    def clear(self) -> None:
        super().clear()
        self._user.clear()

    def update(self, *args: Any, **kwargs: Order) -> None:
        for key, order in dict(*args, **kwargs).items():
            self[key] = order

    def setdefault(self, key: str, default: Order) -> Order:
        if key not in self:
            self[key] = default
        return self[key]

    def __ior__(self, other: Any) -> Self:  # type: ignore[override,misc]
        self.update(other)
        return self

    def live_user(self) -> list[Order]:
        """The user orders that are LIVE, in the order they were added."""
        done = [k for k, o in self._user.items() if o.status != LIVE]
        for k in done:
            del self._user[k]
        return list(self._user.values())


class Engine:
    def __init__(
        self, seed: int, now: Callable[[], float], listener: EngineListener, mm_owner: str, mm_address: str
    ) -> None:
        self._seed = seed
        self._now = now
        self._listener = listener
        self.mm_owner = mm_owner
        self.mm_address = mm_address
        self.books: dict[str, OutcomeBook] = {}
        self.orders = OrderIndex()
        self.trades: dict[str, Trade] = {}
        self._n = 0

    def _next(self) -> int:
        self._n += 1
        return self._n

    def book(self, market: SimMarket) -> OutcomeBook:
        b = self.books.get(market.condition_id)
        if b is None:
            b = self.books[market.condition_id] = OutcomeBook()
        return b

    # -- placing -------------------------------------------------------------------------------
    def place(self, order: Order) -> list[Trade]:
        """Validate against the market and book, match, rest the remainder. Raises OrderRejectedError."""
        m = order.market
        now = self._now()
        if order.id in self.orders:
            raise OrderRejectedError(f"order {order.id} is invalid. Duplicated.")
        if not m.accepting_orders(now):
            raise OrderRejectedError(
                "the market is not yet ready to process new orders"
                if not m.closed
                else f"order {order.id} is invalid. Market is closed."
            )
        if order.order_type in ("GTC", "GTD"):
            if order.price % m.tick != 0 or not m.tick <= order.price <= ONE - m.tick:
                raise OrderRejectedError(
                    f"order {order.id} is invalid. Price ({order.price.normalize():f}) breaks minimum tick size "
                    f"rule: {m.tick.normalize():f}"
                )
        elif order.post_only:
            raise OrderRejectedError("invalid post-only order: post only is not supported for FOK/FAK orders")
        if order.order_type in ("FOK", "FAK"):
            # marketable: $1 minimum (a BUY's signed USDC, a SELL's shares at its limit), not the share minimum
            notional = order.budget if order.budget is not None else order.original_size * order.price
            if notional < MIN_MARKETABLE_USDC:
                raise OrderRejectedError(
                    f"order {order.id} is invalid. Amount ({notional.normalize():f}) lower than the minimum: "
                    f"{MIN_MARKETABLE_USDC:f}"
                )
        elif order.original_size < m.min_size:
            raise OrderRejectedError(
                f"order {order.id} is invalid. Size ({order.original_size.normalize():f}) lower than the minimum: "
                f"{m.min_size.normalize():f}"
            )
        if order.order_type == "GTD" and order.expiration and order.expiration < now + 60:
            raise OrderRejectedError("invalid expiration")

        book = self.book(m)
        fills, exhausted = self._plan(order, book)
        if order.post_only and fills:
            raise OrderRejectedError(POST_ONLY_MSG)
        if order.order_type == "FOK" and not exhausted:
            order.status = f"CANCELED_{FOK_MSG}"
            self._listener.on_order(order, "KILLED")
            raise OrderRejectedError(FOK_MSG)
        if order.order_type == "FAK" and not fills:
            raise OrderRejectedError(FAK_MSG)

        self.orders[order.id] = order
        order.remaining = order.original_size
        trades = self._execute(order, book, fills)
        if order.order_type in ("GTC", "GTD") and order.remaining > 0:
            book.add_order(order.canonical_side, order.canonical_price, order)
            order.status = LIVE
            if not trades:
                self._listener.on_order(order, "PLACEMENT")
        else:
            # FOK/FAK never rest; whatever did not fill is gone.
            order.remaining = ZERO
            order.status = MATCHED if order.size_matched > 0 else CANCELED
        if trades:
            self._listener.on_order(order, "UPDATE")
        self._listener.on_book_change(m)
        return trades

    def _plan(self, order: Order, book: OutcomeBook) -> tuple[list[_Fill], bool]:
        """Fills the order would get now, without touching anything; and whether it would be complete."""
        c_side = order.canonical_side
        opp = SELL if c_side == BUY else BUY
        limit = order.canonical_price
        rem_shares = order.original_size
        rem_usd = order.budget
        fills: list[_Fill] = []
        for p, lv in book.levels_best_first(opp):
            if (c_side == BUY and p > limit) or (c_side == SELL and p < limit):
                break
            own_p = p if order.index == 0 else ONE - p
            sources: list[tuple[Order | None, Decimal]] = [(cast(Order, o), o.remaining) for o in lv.orders]
            if lv.mm > 0:
                sources.append((None, lv.mm))
            for maker, avail in sources:
                cap = (rem_usd / own_p).quantize(SHARE_Q, ROUND_DOWN) if rem_usd is not None else rem_shares
                if cap <= 0:
                    return fills, True
                q = min(avail, cap)
                if q <= 0:
                    continue
                fills.append(_Fill(maker, p, q))
                if rem_usd is not None:
                    rem_usd -= q * own_p
                else:
                    rem_shares -= q
        if rem_usd is not None:
            return fills, rem_usd < SHARE_Q * ONE  # only dust below one 0.01-share lot is left
        return fills, rem_shares <= 0

    def _execute(self, taker: Order, book: OutcomeBook, fills: list[_Fill]) -> list[Trade]:
        now = int(self._now())
        m = taker.market
        opp = SELL if taker.canonical_side == BUY else BUY
        tx = ids.hex32(self._seed, "tx", taker.id, self._next())
        trades: list[Trade] = []
        groups: list[list[Trade]] = []
        for f in fills:
            maker = f.maker
            if maker is None:
                maker = self._mm_order(m, opp, f.canonical_price, f.shares, now)
                lv = book.sides[opp][f.canonical_price]
                book.set_mm(opp, f.canonical_price, lv.mm - f.shares)
            else:
                maker.remaining -= f.shares
                if maker.remaining <= 0:
                    maker.status = MATCHED
                    book.remove_order(opp, f.canonical_price, maker)
                else:
                    book.touch(opp, f.canonical_price)
            maker.size_matched += f.shares
            taker.size_matched += f.shares
            taker.remaining -= f.shares
            price = f.canonical_price if taker.index == 0 else ONE - f.canonical_price
            fee = taker_fee(m, f.shares, price)
            notional = f.shares * price
            trade = Trade(
                id=ids.uuid(self._seed, "trade", self._next()),
                taker=taker,
                maker=maker,
                size=f.shares,
                price=price,
                maker_price=maker.price,
                fee=fee,
                fee_rate_bps=int((fee / notional * 10000).to_integral_value(ROUND_HALF_UP)) if notional else 0,
                match_time=now,
                tx_hash=tx,
                last_update=now,
            )
            if not groups or groups[-1][0].price != price:
                groups.append([])
                taker.trade_ids.append(trade.id)
            group = groups[-1]
            group.append(trade)
            trade.group = group
            self.trades[trade.id] = trade
            maker.trade_ids.append(trade.public_id)
            m.volume += notional
            m.last_trade[taker.index] = (price, taker.side)
            m.last_trade[1 - taker.index] = (ONE - price, SELL if taker.side == BUY else BUY)
            trades.append(trade)
            if maker.is_user:
                self._listener.on_order(maker, "UPDATE")
            self._listener.on_trade(trade)
        for group in groups:
            self._listener.on_match(group)
        return trades

    def _mm_order(self, m: SimMarket, c_side: str, c_price: Decimal, shares: Decimal, now: int) -> Order:
        """A synthetic maker order standing for the market maker's size at one level."""
        o = Order(
            id=ids.hex32(self._seed, "mm-order", m.condition_id, self._next()),
            market=m,
            index=0,
            side=c_side,
            price=c_price,
            original_size=shares,
            order_type="GTC",
            owner=self.mm_owner,
            maker_address=self.mm_address,
            created_at=now,
            remaining=ZERO,
            status=MATCHED,
            is_user=False,
        )
        self.orders[o.id] = o
        return o

    # -- removing ------------------------------------------------------------------------------
    def cancel(self, order: Order, status: str = CANCELED) -> bool:
        if order.status != LIVE:
            return False
        order.status = status
        self.book(order.market).remove_order(order.canonical_side, order.canonical_price, order)
        self._listener.on_order(order, "CANCELLATION")
        self._listener.on_book_change(order.market)
        return True

    def live_orders(self) -> list[Order]:
        return self.orders.live_user()

    def expire(self, now: float) -> None:
        for o in self.live_orders():
            if o.order_type == "GTD" and o.expiration and o.expiration <= now:
                self.cancel(o)

    def close_market(self, m: SimMarket) -> None:
        """Resolution: cancel what rests, empty the book."""
        for o in self.live_orders():
            if o.market is m:
                self.cancel(o, RESOLVED_CANCEL)
        self.book(m).clear()
        self._listener.on_book_change(m)
