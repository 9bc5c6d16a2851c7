"""A local order book for one token, kept from the market channel's `book` snapshots and
`price_change` level updates (each carries the level's NEW total size; "0" removes the level).

Levels are plain dicts keyed by price: books hold tens of levels, and the hot path (one change, then
best bid/ask) stays O(1) except when the best level itself is removed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pmbot.polymarket.models import BookLevel, LevelChange, OrderBook, Side

__all__ = ["LocalBook"]


class LocalBook:
    """One token's book. `synced` is False until the first snapshot and again after the stream
    loses its connection, until the fresh snapshot the venue sends on re-subscribe arrives."""

    __slots__ = (
        "_ask_best",
        "_asks",
        "_bid_best",
        "_bids",
        "hash",
        "last_trade_price",
        "market",
        "mismatches",
        "synced",
        "tick_size",
        "timestamp_ms",
        "token_id",
        "updates",
    )

    def __init__(self, token_id: str, market: str = "") -> None:
        self.token_id = token_id
        self.market = market
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bid_best: Decimal | None = None
        self._ask_best: Decimal | None = None
        self.timestamp_ms = 0
        self.hash = ""
        self.tick_size: Decimal | None = None
        self.last_trade_price: Decimal | None = None
        self.synced = False
        self.updates = 0  # changes applied since the last snapshot
        # price_change messages carry the venue's best bid/ask; a disagreement with ours means we
        # missed an update. Counted (for metrics and tests), not acted on: the next snapshot fixes it.
        self.mismatches = 0

    # ------------------------------------------------------------------------------------ updates

    def apply_snapshot(self, book: OrderBook) -> None:
        """Replace the whole state (a `book` message, or REST /book)."""
        self.market = book.market or self.market
        self._bids = {lv.price: lv.size for lv in book.bids if lv.size > 0}
        self._asks = {lv.price: lv.size for lv in book.asks if lv.size > 0}
        self._bid_best = max(self._bids, default=None)
        self._ask_best = min(self._asks, default=None)
        self.timestamp_ms = book.timestamp_ms
        self.hash = book.hash
        if book.tick_size is not None:
            self.tick_size = book.tick_size
        if book.last_trade_price is not None:
            self.last_trade_price = book.last_trade_price
        self.synced = True
        self.updates = 0

    def apply_change(self, change: LevelChange, timestamp_ms: int | None = None) -> None:
        """Set one level to its new total size (0 removes it)."""
        if change.side is Side.BUY:
            self._set_bid(change.price, change.size)
        else:
            self._set_ask(change.price, change.size)
        if timestamp_ms is not None:
            self.timestamp_ms = timestamp_ms
        if change.hash:
            self.hash = change.hash
        self.updates += 1

    def apply_changes(self, changes: Iterable[LevelChange], timestamp_ms: int | None = None) -> bool:
        """Apply one message's changes for this token, then compare our best bid/ask with what the
        LAST change reports (one message can move several levels of one token; the venue's best is
        the state after all of them). Returns False and counts a mismatch when they disagree."""
        last: LevelChange | None = None
        for ch in changes:
            self.apply_change(ch, timestamp_ms)
            last = ch
        if last is None or self.agrees(last.best_bid, last.best_ask):
            return True
        self.mismatches += 1
        return False

    def agrees(self, best_bid: Decimal | None, best_ask: Decimal | None) -> bool:
        """Whether our best levels match the venue's. None = not reported (2024 format); the venue
        reports an empty side as "0", which matches our None."""
        for reported, ours in ((best_bid, self._bid_best), (best_ask, self._ask_best)):
            if reported is not None and reported != (ours if ours is not None else Decimal(0)):
                return False
        return True

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self._bid_best = self._ask_best = None
        self.synced = False

    def _set_bid(self, price: Decimal, size: Decimal) -> None:
        if size > 0:
            self._bids[price] = size
            if self._bid_best is None or price > self._bid_best:
                self._bid_best = price
        elif self._bids.pop(price, None) is not None and price == self._bid_best:
            self._bid_best = max(self._bids, default=None)

    def _set_ask(self, price: Decimal, size: Decimal) -> None:
        if size > 0:
            self._asks[price] = size
            if self._ask_best is None or price < self._ask_best:
                self._ask_best = price
        elif self._asks.pop(price, None) is not None and price == self._ask_best:
            self._ask_best = min(self._asks, default=None)

    # ------------------------------------------------------------------------------------ queries

    @property
    def best_bid(self) -> Decimal | None:
        return self._bid_best

    @property
    def best_ask(self) -> Decimal | None:
        return self._ask_best

    @property
    def spread(self) -> Decimal | None:
        if self._bid_best is None or self._ask_best is None:
            return None
        return self._ask_best - self._bid_best

    @property
    def midpoint(self) -> Decimal | None:
        if self._bid_best is None or self._ask_best is None:
            return None
        return (self._ask_best + self._bid_best) / 2

    def size_at(self, side: Side, price: Decimal) -> Decimal:
        levels = self._bids if side is Side.BUY else self._asks
        return levels.get(price, Decimal(0))

    def bids(self, depth: int | None = None) -> tuple[BookLevel, ...]:
        """Bid levels, best (highest) first."""
        prices = sorted(self._bids, reverse=True)[:depth]
        return tuple(BookLevel(p, self._bids[p]) for p in prices)

    def asks(self, depth: int | None = None) -> tuple[BookLevel, ...]:
        """Ask levels, best (lowest) first."""
        prices = sorted(self._asks)[:depth]
        return tuple(BookLevel(p, self._asks[p]) for p in prices)

    def depth(self, side: Side, *, limit_price: Decimal | None = None) -> Decimal:
        """Total size on one side (BUY = bids), optionally only at prices at least as good as
        `limit_price` for a taker: bids ≥ limit, asks ≤ limit."""
        if side is Side.BUY:
            return sum((s for p, s in self._bids.items() if limit_price is None or p >= limit_price), Decimal(0))
        return sum((s for p, s in self._asks.items() if limit_price is None or p <= limit_price), Decimal(0))

    def snapshot(self, depth: int | None = None) -> OrderBook:
        return OrderBook(
            token_id=self.token_id,
            market=self.market,
            bids=self.bids(depth),
            asks=self.asks(depth),
            timestamp_ms=self.timestamp_ms,
            hash=self.hash,
            tick_size=self.tick_size,
            last_trade_price=self.last_trade_price,
        )

    def __len__(self) -> int:
        return len(self._bids) + len(self._asks)

    def __repr__(self) -> str:
        return (
            f"LocalBook({self.token_id[:12]}…, bid={self._bid_best}, ask={self._ask_best}, "
            f"levels={len(self._bids)}/{len(self._asks)}, synced={self.synced})"
        )
