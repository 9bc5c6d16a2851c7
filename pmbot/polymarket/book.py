"""A local order book for one token, kept from the market channel's `book` snapshots and
`price_change` level updates (each carries the level's NEW total size; "0" removes the level).

Per side: a dict price → size (size lookups, depth), the prices in ascending order (kept with bisect
as levels come and go, so the best is its end) and the side's levels as handed out, built when first
asked for after a change and kept until the next one. The market channel moves a few levels of every
book every second and each move is followed by a read of the whole book (a strategy event carries it):
an update is a dict write plus, when a level appears or goes, a bisect; a read after it builds one
tuple from cached `BookLevel`s instead of sorting and allocating every level again.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable
from decimal import Decimal

from pmbot.polymarket.models import BookLevel, LevelChange, OrderBook, Side

__all__ = ["LocalBook"]

_ZERO = Decimal(0)


class _Side:
    """One side's levels. `best_high`: bids (best = highest price) or asks (best = lowest)."""

    __slots__ = ("_levels", "_prices", "best_high", "levels_out", "sizes")

    def __init__(self, best_high: bool) -> None:
        self.best_high = best_high
        self.sizes: dict[Decimal, Decimal] = {}
        self._prices: list[Decimal] = []  # ascending
        self._levels: dict[Decimal, BookLevel] = {}  # BookLevel per price, for the current size
        self.levels_out: tuple[BookLevel, ...] | None = None  # best first; None: changed since built

    def reset(self, levels: Iterable[BookLevel]) -> None:
        self.sizes = {lv.price: lv.size for lv in levels if lv.size > 0}
        self._prices = sorted(self.sizes)
        self._levels = {}
        self.levels_out = None

    def set(self, price: Decimal, size: Decimal) -> None:
        sizes = self.sizes
        if size > 0:
            if price not in sizes:
                insort(self._prices, price)
            elif sizes[price] == size:
                return
            sizes[price] = size
            self._levels.pop(price, None)
        elif sizes.pop(price, None) is not None:
            prices = self._prices
            del prices[bisect_left(prices, price)]
            self._levels.pop(price, None)
        else:
            return
        self.levels_out = None

    @property
    def best(self) -> Decimal | None:
        prices = self._prices
        if not prices:
            return None
        return prices[-1] if self.best_high else prices[0]

    def levels(self) -> tuple[BookLevel, ...]:
        out = self.levels_out
        if out is None:
            cache, sizes = self._levels, self.sizes
            order = reversed(self._prices) if self.best_high else self._prices
            built = []
            for p in order:
                lv = cache.get(p)
                if lv is None:
                    lv = cache[p] = BookLevel(p, sizes[p])
                built.append(lv)
            out = self.levels_out = tuple(built)
        return out

    def clear(self) -> None:
        self.sizes = {}
        self._prices = []
        self._levels = {}
        self.levels_out = None


class LocalBook:
    """One token's book. `synced` is False until the first snapshot and again after the stream
    loses its connection, until the fresh snapshot the venue sends on re-subscribe arrives."""

    __slots__ = (
        "_asks",
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
        "warned",
        "warned_at",
    )

    def __init__(self, token_id: str, market: str = "") -> None:
        self.token_id = token_id
        self.market = market
        self._bids = _Side(best_high=True)
        self._asks = _Side(best_high=False)
        self.timestamp_ms = 0
        self.hash = ""
        self.tick_size: Decimal | None = None
        self.last_trade_price: Decimal | None = None
        self.synced = False
        self.updates = 0  # changes applied since the last snapshot
        # price_change messages carry the venue's best bid/ask; a disagreement with ours means we
        # missed an update. Counted (for metrics and tests), not acted on: the next snapshot fixes it.
        self.mismatches = 0
        self.warned = False  # warn_disagreement said so since the last snapshot
        self.warned_at: float | None = None  # monotonic time of its last warning (None: never warned)

    # ------------------------------------------------------------------------------------ updates

    def apply_snapshot(self, book: OrderBook) -> None:
        """Replace the whole state (a `book` message, or REST /book)."""
        self.market = book.market or self.market
        self._bids.reset(book.bids)
        self._asks.reset(book.asks)
        self.timestamp_ms = book.timestamp_ms
        self.hash = book.hash
        if book.tick_size is not None:
            self.tick_size = book.tick_size
        if book.last_trade_price is not None:
            self.last_trade_price = book.last_trade_price
        self.synced = True
        self.warned = False  # a snapshot fixed it: a later disagreement is news again
        self.updates = 0

    def apply_change(self, change: LevelChange, timestamp_ms: int | None = None) -> None:
        """Set one level to its new total size (0 removes it)."""
        (self._bids if change.side is Side.BUY else self._asks).set(change.price, change.size)
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
        return last is None or self.check_best(last)

    def check_best(self, last: LevelChange) -> bool:
        """Our best bid/ask against what a message's last change for this token reports (the state after
        all of the message's changes). False, and a mismatch counted, when they disagree."""
        if self.agrees(last.best_bid, last.best_ask):
            return True
        self.mismatches += 1
        return False

    def agrees(self, best_bid: Decimal | None, best_ask: Decimal | None) -> bool:
        """Whether our best levels match the venue's. None = not reported (2024 format); the venue
        reports an empty side as "0", which matches our None."""
        for reported, ours in ((best_bid, self._bids.best), (best_ask, self._asks.best)):
            if reported is not None and reported != (ours if ours is not None else _ZERO):
                return False
        return True

    def clear(self) -> None:
        self._bids.clear()
        self._asks.clear()
        self.synced = False

    # ------------------------------------------------------------------------------------ queries

    @property
    def best_bid(self) -> Decimal | None:
        return self._bids.best

    @property
    def best_ask(self) -> Decimal | None:
        return self._asks.best

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self._bids.best, self._asks.best
        if bid is None or ask is None:
            return None
        return ask - bid

    @property
    def midpoint(self) -> Decimal | None:
        bid, ask = self._bids.best, self._asks.best
        if bid is None or ask is None:
            return None
        return (ask + bid) / 2

    def size_at(self, side: Side, price: Decimal) -> Decimal:
        levels = self._bids.sizes if side is Side.BUY else self._asks.sizes
        return levels.get(price, _ZERO)

    def bids(self, depth: int | None = None) -> tuple[BookLevel, ...]:
        """Bid levels, best (highest) first."""
        levels = self._bids.levels()
        return levels if depth is None else levels[:depth]

    def asks(self, depth: int | None = None) -> tuple[BookLevel, ...]:
        """Ask levels, best (lowest) first."""
        levels = self._asks.levels()
        return levels if depth is None else levels[:depth]

    def depth(self, side: Side, *, limit_price: Decimal | None = None) -> Decimal:
        """Total size on one side (BUY = bids), optionally only at prices at least as good as
        `limit_price` for a taker: bids ≥ limit, asks ≤ limit."""
        if side is Side.BUY:
            bids = self._bids.sizes
            return sum((s for p, s in bids.items() if limit_price is None or p >= limit_price), _ZERO)
        asks = self._asks.sizes
        return sum((s for p, s in asks.items() if limit_price is None or p <= limit_price), _ZERO)

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
        return len(self._bids.sizes) + len(self._asks.sizes)

    def __repr__(self) -> str:
        return (
            f"LocalBook({self.token_id[:12]}…, bid={self._bids.best}, ask={self._asks.best}, "
            f"levels={len(self._bids.sizes)}/{len(self._asks.sizes)}, synced={self.synced})"
        )


WARN_EVERY_S = 60.0  # a book the venue keeps contradicting, warned of at most this often
_clock: Callable[[], float] = time.monotonic  # warn_disagreement's default clock (a test sets its own)


def warn_disagreement(logger: logging.Logger, who: str, book: LocalBook, last: LevelChange) -> None:
    """The warning for a book `check_best` found wrong (a missed update shows this way), once per snapshot:
    a book that a fresh snapshot fixed and that goes wrong again later is warned of again, but not more often
    than every WARN_EVERY_S: a book that flaps (wrong again on the first change after each snapshot, and the
    feed asks for a snapshot at once) would otherwise warn about once a second per token (`mismatches`
    still counts every one)."""
    if book.warned:
        return
    book.warned = True
    now = _clock()
    if book.warned_at is not None and now - book.warned_at < WARN_EVERY_S:
        return
    book.warned_at = now
    logger.warning(
        "%s: local book of %s disagrees with the venue's best bid/ask (%s/%s vs %s/%s)",
        who,
        book.token_id[:16],
        book.best_bid,
        book.best_ask,
        last.best_bid,
        last.best_ask,
    )
