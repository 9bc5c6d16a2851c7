"""The dry-run paper exchange: fills intents against the live order book, with a paper USDC balance.

Marketable orders walk the opposite side best-first up to the limit price, each level at its own price;
what a GTC/GTD order cannot take rests and fills later when a book (or a trade) crosses it, at its own
price, as a maker (no fee). Taker fees follow the market's FeeSchedule when `fees` is on.

Two rules keep paper results honest:
- the balance never goes negative: a BUY is refused unless its whole cost (fills + fees + the reserve for
  a resting remainder) fits in the available balance; it is never resized;
- liquidity taken from one book snapshot stays taken: an overlay subtracts what we consumed until a newer
  snapshot (other timestamp/hash) of that token arrives. The venue's next book does not know about our
  paper trades, so after that the same liquidity can be taken again: an optimistic approximation. The
  overlay is per market, across both outcomes: the venue shows each resting order in both books (an Up
  bid at p is the Down ask at 1 − p), so what was taken through one book is gone from the other too.

Paper orders live in memory only: after a restart the executor closes the ones the store lists as open.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from enum import StrEnum
from typing import Any

from pmbot.errors import InputError
from pmbot.executor.intents import MIN_MARKETABLE_USDC, OrderIntent, off_tick, validate_intent
from pmbot.money import fmt
from pmbot.polymarket.models import BookLevel, MarketParams, OrderBook
from pmbot.polymarket.signing import buy_spend
from pmbot.store.models import OrderStatus, OrderType, Side
from pmbot.timeutil import Clock

__all__ = ["PaperCode", "PaperExchange", "PaperFill", "PaperOrder", "PaperResult"]

_ZERO = Decimal(0)
_LOT = Decimal("0.01")  # the venue matches shares in 0.01 lots (and a marketable BUY to the cent)


class PaperCode(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate_order"
    TICK = "tick_size"
    MIN_SIZE = "min_size"
    EXPIRED = "expired"
    POST_ONLY = "post_only_cross"
    NO_POSITION = "no_position"
    FOK_UNFILLED = "fok_not_filled"
    NO_LIQUIDITY = "no_liquidity"
    BALANCE = "insufficient_balance"


@dataclass(frozen=True, slots=True)
class PaperFill:
    """One paper match. The executor turns it into a store `Fill` with dry_run=True."""

    trade_id: str  # "<order id>:<n>": unique as long as order ids are (they derive from intent keys)
    order_id: str
    intent_key: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    ts_ms: int
    liquidity: str  # "taker" | "maker"
    remaining: Decimal  # the order's unfilled size after this fill (0: done)

    @property
    def notional(self) -> Decimal:
        return self.price * self.size


@dataclass(frozen=True, slots=True)
class PaperResult:
    order_id: str
    intent_key: str
    status: OrderStatus  # FILLED | PARTIALLY_FILLED (rest live) | LIVE | CANCELLED (FAK remainder) | REJECTED
    fills: tuple[PaperFill, ...] = ()
    resting: Decimal = _ZERO  # size left on the paper book
    reason: str | None = None  # rejections: "tick_size: price 0.555 is not on the 0.01 tick"
    code: str | None = None  # a PaperCode

    @property
    def filled_size(self) -> Decimal:
        return sum((f.size for f in self.fills), _ZERO)

    @property
    def notional(self) -> Decimal:
        return sum((f.notional for f in self.fills), _ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((f.fee for f in self.fills), _ZERO)

    @property
    def avg_price(self) -> Decimal | None:
        """Volume-weighted fill price, before fees (exact when the division terminates within 28 digits)."""
        size = self.filled_size
        return self.notional / size if size else None


@dataclass(frozen=True, slots=True)
class PaperOrder:
    """A snapshot of a paper order, for `open_orders()`, `cancel()` and `expire_due()`."""

    order_id: str
    intent_key: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    filled: Decimal
    order_type: OrderType
    status: OrderStatus
    created_ms: int
    expiration_s: int = 0

    @property
    def remaining(self) -> Decimal:
        return self.size - self.filled


@dataclass(slots=True)
class _Resting:
    order_id: str
    intent: OrderIntent
    seq: int  # time priority among our own orders
    created_ms: int
    filled: Decimal = _ZERO
    fills: int = 0  # fills so far, for trade ids

    @property
    def remaining(self) -> Decimal:
        return self.intent.size - self.filled

    def snapshot(self, status: OrderStatus) -> PaperOrder:
        i = self.intent
        return PaperOrder(
            self.order_id, i.key, i.token_id, i.side, i.price, i.size, self.filled, i.order_type, status,
            self.created_ms, i.expiration_s,
        )  # fmt: skip


@dataclass(slots=True)
class _Taken:
    """Liquidity we took from one token's book snapshot: (side of the book, price) -> shares."""

    stamp: tuple[int, str]
    taken: dict[tuple[str, Decimal], Decimal] = field(default_factory=dict)


_MIRROR = {"bid": "ask", "ask": "bid"}
_ONE = Decimal(1)


class _MarketOverlay:
    """What we took in one market, per token. The other outcome's book mirrors this one: its ask at 1 − p
    is our bid at p (the same resting order, matched by minting) and its bid at 1 − p our ask at p (merging)."""

    __slots__ = ("tokens",)

    def __init__(self) -> None:
        self.tokens: dict[str, _Taken] = {}

    def taken(self, token_id: str, book_side: str, price: Decimal) -> Decimal:
        total = _ZERO
        mirrored = (_MIRROR[book_side], _ONE - price)
        for token, t in self.tokens.items():
            total += t.taken.get((book_side, price) if token == token_id else mirrored, _ZERO)
        return total


@dataclass(slots=True)
class _Overlay:
    """One token's view of its market's overlay: what is still free at a level, and taking from it."""

    market: _MarketOverlay
    token_id: str

    def free(self, book_side: str, level: BookLevel) -> Decimal:
        return max(level.size - self.market.taken(self.token_id, book_side, level.price), _ZERO)

    def take(self, book_side: str, price: Decimal, size: Decimal) -> None:
        own = self.market.tokens[self.token_id].taken
        key = (book_side, price)
        own[key] = own.get(key, _ZERO) + size


def _default_order_id(intent: OrderIntent) -> str:
    # Derived from the idempotency key, so trade ids stay unique across restarts (the store dedupes on them).
    return f"paper-{intent.key}"


def _expired(intent: OrderIntent, now: float) -> bool:
    return intent.order_type is OrderType.GTD and intent.expiration_s <= now


def _crosses(side: Side, limit: Decimal, level_price: Decimal) -> bool:
    return level_price <= limit if side is Side.BUY else level_price >= limit


class _RestingBook(dict[str, _Resting]):
    """The resting orders, with running totals of what BUYs reserve and SELLs offer: a submit checks
    the balance without walking every resting order. Every change goes through this class."""

    def __init__(self) -> None:
        super().__init__()
        self.reserved = _ZERO
        self.offered: dict[str, Decimal] = {}

    def _count(self, r: _Resting, sign: int) -> None:
        if r.intent.side is Side.BUY:
            self.reserved += r.intent.price * r.remaining * sign
        else:
            token = r.intent.token_id
            self.offered[token] = self.offered.get(token, _ZERO) + r.remaining * sign

    def __setitem__(self, key: str, order: _Resting) -> None:
        if key in self:
            self._count(self[key], -1)
        super().__setitem__(key, order)
        self._count(order, 1)

    def __delitem__(self, key: str) -> None:
        self._count(self[key], -1)
        super().__delitem__(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            order = super().pop(key)
            self._count(order, -1)
            return order
        if default:
            return default[0]
        raise KeyError(key)

    def fill(self, order: _Resting, size: Decimal) -> None:
        resting = self.get(order.order_id) is order
        if resting:
            self._count(order, -1)
        order.filled += size
        if resting:
            self._count(order, 1)


class PaperExchange:
    """In-memory paper venue. Not thread-safe: the executor drives it from one task."""

    def __init__(
        self,
        balance: Decimal,
        *,
        fees: bool = True,
        clock: Clock = time.time,
        order_id: Callable[[OrderIntent], str] = _default_order_id,
        positions: Mapping[str, Decimal] | None = None,
    ) -> None:
        if balance < 0:
            raise ValueError("paper balance must be >= 0")
        self.fees = fees
        self._balance = balance
        self._clock = clock
        self._order_id = order_id
        self._shares: dict[str, Decimal] = {k: v for k, v in (positions or {}).items() if v > 0}
        self._resting = _RestingBook()
        self._seen: set[str] = set()  # every order id accepted: a resubmitted intent is refused, not refilled
        self._overlays: dict[str, _MarketOverlay] = {}
        self._seq = 0
        self._next_expiry = float("inf")  # no resting GTD order expires before this (epoch s): cheap expire_due

    # ---------------------------------------------------------------------------------- wallet

    @property
    def balance(self) -> Decimal:
        """Paper USDC, including what resting BUYs reserve."""
        return self._balance

    @property
    def reserved(self) -> Decimal:
        return self._resting.reserved

    @property
    def available(self) -> Decimal:
        return self._balance - self.reserved

    def shares(self, token_id: str) -> Decimal:
        return self._shares.get(token_id, _ZERO)

    def free_shares(self, token_id: str) -> Decimal:
        """Held shares not already offered by resting SELLs."""
        return self.shares(token_id) - self._resting.offered.get(token_id, _ZERO)

    # ---------------------------------------------------------------------------------- orders

    def submit(self, intent: OrderIntent, book: OrderBook, params: MarketParams) -> PaperResult:
        """Match `intent` against `book` now; rest a GTC/GTD remainder. Never raises for a market condition."""
        if book.token_id != intent.token_id:
            raise ValueError(f"book is for token {book.token_id}, intent {intent.key} for {intent.token_id}")
        oid = self._order_id(intent)

        def reject(code: PaperCode, detail: str) -> PaperResult:
            return PaperResult(oid, intent.key, OrderStatus.REJECTED, reason=f"{code.value}: {detail}", code=code.value)

        if oid in self._seen:
            return reject(PaperCode.DUPLICATE, f"order {oid} was already submitted")
        try:
            validate_intent(intent)
        except InputError as e:
            return reject(PaperCode.INVALID, e.message)
        price, size, side = intent.price, intent.size, intent.side
        if off_tick(price, params.tick_size):
            return reject(PaperCode.TICK, f"price {fmt(price)} is not on the {fmt(params.tick_size)} tick")
        if intent.order_type in (OrderType.FOK, OrderType.FAK):
            # The venue's minimums: $1 for a marketable order, the market's minimum shares for one that can
            # rest. A marketable BUY spends its signed USDC (signing.buy_spend); a SELL offers shares.
            notional = buy_spend(size, price) if side is Side.BUY else size * price
            if notional < MIN_MARKETABLE_USDC:
                return reject(
                    PaperCode.MIN_SIZE,
                    f"{intent.order_type.value} {side.value} of {fmt(notional, 2)} USDC"
                    f" < minimum {fmt(MIN_MARKETABLE_USDC)} USDC for a marketable order",
                )
        elif size < params.min_order_size:
            return reject(PaperCode.MIN_SIZE, f"{fmt(size)} shares < minimum {fmt(params.min_order_size)}")
        now = self._clock()
        if _expired(intent, now):
            return reject(PaperCode.EXPIRED, f"expiration {intent.expiration_s} is not in the future")
        if side is Side.SELL and size > (free := self.free_shares(intent.token_id)):
            return reject(
                PaperCode.NO_POSITION,
                f"SELL {fmt(size)} shares > {fmt(free)} held and not already offered; no shorting",
            )

        overlay = self._overlay_for(book)
        book_side, levels = ("ask", book.asks) if side is Side.BUY else ("bid", book.bids)
        marketable = intent.order_type in (OrderType.FOK, OrderType.FAK)
        better = "<=" if side is Side.BUY else ">="
        if marketable and side is Side.BUY:
            # The venue's marketable BUY spends USDC (see signing.buy_spend), not a number of shares.
            spend = buy_spend(size, price)
            chunks, complete = _walk_spend(levels, overlay, book_side, price, spend)
            filled = sum((q for _, q in chunks), _ZERO)
            if intent.order_type is OrderType.FOK and not complete:
                spent = sum((p * q for p, q in chunks), _ZERO)
                return reject(
                    PaperCode.FOK_UNFILLED,
                    f"only {fmt(spent, 2)} of {fmt(spend, 2)} USDC could be spent at {better} {fmt(price)}",
                )
        else:
            chunks = _walk(levels, overlay, book_side, side, price, size)
            filled = sum((q for _, q in chunks), _ZERO)
            complete = filled >= size
        if intent.post_only and chunks:
            return reject(
                PaperCode.POST_ONLY, f"{side} at {fmt(price)} would cross the {book_side} at {fmt(chunks[0][0])}"
            )
        if intent.order_type is OrderType.FOK and not complete:
            return reject(
                PaperCode.FOK_UNFILLED, f"only {fmt(filled)} of {fmt(size)} shares available at {better} {fmt(price)}"
            )
        if intent.order_type is OrderType.FAK and not chunks:
            return reject(PaperCode.NO_LIQUIDITY, f"no {book_side}s at {better} {fmt(price)}")

        rests = intent.order_type in (OrderType.GTC, OrderType.GTD)
        rest = size - filled if rests else _ZERO
        fees = [self._taker_fee(params, p, q) for p, q in chunks]
        sign = -1 if side is Side.BUY else 1
        cash = sum((sign * p * q - f for (p, q), f in zip(chunks, fees, strict=True)), _ZERO)
        reserve = price * rest if side is Side.BUY else _ZERO
        if self.available + cash - reserve < 0:
            need = reserve - cash
            return reject(
                PaperCode.BALANCE,
                f"needs {fmt(need)} USDC (fills, fees and resting reserve), {fmt(self.available)} available"
                f" (balance {fmt(self._balance)}, {fmt(self.reserved)} reserved by resting BUYs)",
            )

        # Accepted: from here on nothing can refuse, so state changes all happen together.
        self._seen.add(oid)
        self._seq += 1
        order = _Resting(oid, intent, self._seq, int(now * 1000))
        fills = []
        for (p, q), fee in zip(chunks, fees, strict=True):
            overlay.take(book_side, p, q)
            fills.append(self._fill(order, p, q, fee, "taker"))
        if rest > 0:
            self._resting[oid] = order
            if intent.order_type is OrderType.GTD:
                self._next_expiry = min(self._next_expiry, intent.expiration_s)
        if complete:
            status = OrderStatus.FILLED
        elif not rests:
            status = OrderStatus.CANCELLED  # FAK: the unfilled rest is cancelled
        else:
            status = OrderStatus.PARTIALLY_FILLED if filled else OrderStatus.LIVE
        return PaperResult(oid, intent.key, status, tuple(fills), resting=rest)

    def cancel(self, order_id: str) -> PaperOrder | None:
        """Cancel a resting order; None if it is not open (unknown, filled or already gone)."""
        order = self._resting.pop(order_id, None)
        return order.snapshot(OrderStatus.CANCELLED) if order is not None else None

    def open_orders(self, token_id: str | None = None) -> list[PaperOrder]:
        return [
            r.snapshot(OrderStatus.PARTIALLY_FILLED if r.filled else OrderStatus.LIVE)
            for r in sorted(self._resting.values(), key=lambda r: r.seq)
            if token_id is None or r.intent.token_id == token_id
        ]

    def expire_due(self) -> list[PaperOrder]:
        """Remove GTD orders whose expiration has passed (the executor calls this on a timer)."""
        now = self._clock()
        if now < self._next_expiry:
            return []
        due = [r for r in self._resting.values() if _expired(r.intent, now)]
        for r in due:
            del self._resting[r.order_id]
        gtd = [r.intent.expiration_s for r in self._resting.values() if r.intent.order_type is OrderType.GTD]
        self._next_expiry = min(gtd, default=float("inf"))
        return [r.snapshot(OrderStatus.EXPIRED) for r in due]

    # ---------------------------------------------------------------------------- market data

    def on_book(self, book: OrderBook) -> list[PaperFill]:
        """Fill resting orders that `book` crosses, at their own price, up to the crossing size."""
        overlay = self._overlay_for(book)
        fills: list[PaperFill] = []
        for order in self._queue(book.token_id):
            side = order.intent.side
            book_side, levels = ("ask", book.asks) if side is Side.BUY else ("bid", book.bids)
            chunks = _walk(levels, overlay, book_side, side, order.intent.price, order.remaining)
            for level_price, q in chunks:
                overlay.take(book_side, level_price, q)
            if chunks:
                # A resting order is the maker: one fill at its own price, whatever the crossing levels' prices.
                fills.append(self._fill(order, order.intent.price, sum((q for _, q in chunks), _ZERO), _ZERO, "maker"))
                self._drop_if_done(order)
        return fills

    def on_trade(self, token_id: str, price: Decimal, size: Decimal) -> list[PaperFill]:
        """A trade printed at `price`: our resting orders strictly better than it would have matched first.

        Equal prices do not fill (our place in the queue is unknown). The printed size is shared out in
        price-time priority among our orders."""
        left = size
        fills: list[PaperFill] = []
        for order in self._queue(token_id):
            if left <= 0:
                break
            limit = order.intent.price
            if not (limit > price if order.intent.side is Side.BUY else limit < price):
                continue
            q = min(order.remaining, left)
            left -= q
            fills.append(self._fill(order, limit, q, _ZERO, "maker"))
            self._drop_if_done(order)
        return fills

    def redeem(self, token_id: str, payout: Decimal) -> tuple[Decimal, list[PaperOrder]]:
        """The market resolved: cancel its resting orders, pay `payout` (1 or 0) per held share.

        Returns (USDC credited, the orders cancelled)."""
        if not 0 <= payout <= 1:
            raise ValueError(f"payout must be between 0 and 1, got {payout}")
        cancelled = [self._resting.pop(o.order_id).snapshot(OrderStatus.CANCELLED) for o in self.open_orders(token_id)]
        credited = self._shares.pop(token_id, _ZERO) * payout
        self._balance += credited
        return credited, cancelled

    # ---------------------------------------------------------------------------------- internals

    def _overlay_for(self, book: OrderBook) -> _Overlay:
        stamp = (book.timestamp_ms, book.hash)
        market = self._overlays.get(book.market or book.token_id)
        if market is None:
            market = self._overlays[book.market or book.token_id] = _MarketOverlay()
        mine = market.tokens.get(book.token_id)
        # An older snapshot arriving late keeps the newer overlay: taken liquidity stays taken (conservative).
        if mine is None or (stamp != mine.stamp and book.timestamp_ms >= mine.stamp[0]):
            market.tokens[book.token_id] = _Taken(stamp)
        return _Overlay(market, book.token_id)

    def _queue(self, token_id: str) -> list[_Resting]:
        """Live resting orders in `token_id`, best price first, then oldest first."""
        now = self._clock()
        live = [r for r in self._resting.values() if r.intent.token_id == token_id and not _expired(r.intent, now)]
        return sorted(live, key=lambda r: (-r.intent.price if r.intent.side is Side.BUY else r.intent.price, r.seq))

    def _taker_fee(self, params: MarketParams, price: Decimal, size: Decimal) -> Decimal:
        return params.fees.fee(size, price) if self.fees else _ZERO

    def _fill(self, order: _Resting, price: Decimal, size: Decimal, fee: Decimal, liquidity: str) -> PaperFill:
        token, side = order.intent.token_id, order.intent.side
        if side is Side.BUY:
            self._balance -= price * size + fee
            self._shares[token] = self.shares(token) + size
        else:
            self._balance += price * size - fee
            self._shares[token] = self.shares(token) - size
        self._resting.fill(order, size)
        order.fills += 1
        return PaperFill(
            trade_id=f"{order.order_id}:{order.fills}",
            order_id=order.order_id,
            intent_key=order.intent.key,
            token_id=token,
            side=side,
            price=price,
            size=size,
            fee=fee,
            ts_ms=int(self._clock() * 1000),
            liquidity=liquidity,
            remaining=order.remaining,
        )

    def _drop_if_done(self, order: _Resting) -> None:
        if order.remaining <= 0:
            self._resting.pop(order.order_id, None)


def _walk_spend(
    levels: tuple[BookLevel, ...], overlay: _Overlay, book_side: str, limit: Decimal, spend: Decimal
) -> tuple[list[tuple[Decimal, Decimal]], bool]:
    """(price, shares) a marketable BUY spending `spend` USDC takes from best-first asks within `limit`,
    in whole 0.01-share lots as the venue matches them; and whether it is complete (less than a cent
    left unspent, the venue's rule). Pure."""
    chunks: list[tuple[Decimal, Decimal]] = []
    left = spend
    for level in levels:
        if not _crosses(Side.BUY, limit, level.price):
            break
        cap = (left / level.price).quantize(_LOT, rounding=ROUND_DOWN)
        if cap <= 0:
            return chunks, True
        q = min(overlay.free(book_side, level), cap)
        if q > 0:
            chunks.append((level.price, q))
            left -= q * level.price
    return chunks, left < _LOT


def _walk(
    levels: tuple[BookLevel, ...], overlay: _Overlay, book_side: str, side: Side, limit: Decimal, size: Decimal
) -> list[tuple[Decimal, Decimal]]:
    """(price, shares) to take from best-first `levels` for up to `size` shares within `limit`. Pure."""
    chunks: list[tuple[Decimal, Decimal]] = []
    left = size
    for level in levels:
        if left <= 0 or not _crosses(side, limit, level.price):
            break
        q = min(overlay.free(book_side, level), left)
        if q > 0:
            chunks.append((level.price, q))
            left -= q
    return chunks
