"""What the reports compute beyond the store: marks for open positions, and the `--json` row shapes.

Marks. An open position is worth what the market pays now, not what we paid: it is marked at the
current book's midpoint (one `POST /books` for every open token), then the last trade price, then
our own last fill. Like Polymarket's own display, a book whose spread is wider than 0.10 is not
trusted for a midpoint (0.01/0.99 would mark anything at 0.50): its last trade price is used.
Every mark says where it came from (`book` / `last` / `fill`).

JSON rows: exact decimal strings, ISO times, explicit mode. Never rounded (tables round, in render).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pmbot.errors import VenueError
from pmbot.money import ROUNDING, fmt
from pmbot.store.models import Position, PositionState, StrategyStats, TradeRow, mode_name
from pmbot.timeutil import ms_to_iso

if TYPE_CHECKING:
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.models import OrderBook

MICRO_QUANTUM = Decimal("0.000001")
BOOKS_CHUNK = 100  # tokens per POST /books
WIDE_SPREAD = Decimal("0.10")


class MarkSource(StrEnum):
    BOOK = "book"  # the current book's midpoint
    LAST = "last"  # the venue's last trade price
    FILL = "fill"  # our own last fill (offline, or the venue had nothing)


@dataclass(frozen=True, slots=True)
class Mark:
    price: Decimal
    source: MarkSource
    tick: Decimal | None = None  # the market's tick, when the book said


def _mark(price: Decimal, source: MarkSource, tick: Decimal | None = None) -> Mark | None:
    """A venue price as a mark: within [0, 1] and at most 6 decimals (the store's unit; the venue
    sometimes sends a float's digits, 0.5699998232997013). Anything else is no mark."""
    if not 0 <= price <= 1:
        return None
    return Mark(price.quantize(MICRO_QUANTUM, rounding=ROUNDING), source, tick)


def mark_from_book(book: OrderBook) -> Mark | None:
    mid, spread = book.midpoint, book.spread
    if mid is not None and spread is not None and spread <= WIDE_SPREAD:
        return _mark(mid, MarkSource.BOOK, book.tick_size)
    if book.last_trade_price is not None:
        return _mark(book.last_trade_price, MarkSource.LAST, book.tick_size)
    return None


async def fetch_marks(venue: Venue, token_ids: Iterable[str]) -> dict[str, Mark]:
    """Venue marks for `token_ids` (absent: the venue has none; the caller falls back to the fill).

    Raises VenueError when /books cannot be fetched at all. Tokens /books does not return (no order
    book: a closed market) are asked for their last trade price, one request each; those that fail
    are left out."""
    tokens = list(dict.fromkeys(token_ids))
    marks: dict[str, Mark] = {}
    chunks = [tokens[i : i + BOOKS_CHUNK] for i in range(0, len(tokens), BOOKS_CHUNK)]
    for books in await asyncio.gather(*(venue.clob.books(c) for c in chunks)):
        for b in books:
            m = mark_from_book(b)
            if m is not None:
                marks[b.token_id] = m
    missing = [t for t in tokens if t not in marks]

    async def last(token: str) -> tuple[str, Decimal | None]:
        try:
            return token, await venue.clob.last_trade_price(token)
        except VenueError:
            return token, None

    for token, price in await asyncio.gather(*(last(t) for t in missing)):
        m = None if price is None else _mark(price, MarkSource.LAST)
        if m is not None:
            marks[token] = m
    return marks


def marked(p: Position, marks: Mapping[str, Mark]) -> tuple[Position, Mark | None]:
    """`p` with its mark price replaced by the venue's, and the mark used (None: not open or no price)."""
    if p.state is not PositionState.OPEN:
        return p, None
    m = marks.get(p.token_id)
    if m is not None:
        return dataclasses.replace(p, mark_price=m.price), m
    if p.mark_price is None:
        return p, None
    return p, Mark(p.mark_price, MarkSource.FILL)


def unrealized_by_mode(positions: Iterable[Position], marks: Mapping[str, Mark]) -> dict[tuple[str, bool], Any]:
    """(strategy, dry_run) -> {"unrealized": Decimal, "sources": {source: count}} over open positions."""
    out: dict[tuple[str, bool], Any] = {}
    for p in positions:
        if p.state is not PositionState.OPEN:
            continue
        q, m = marked(p, marks)
        slot = out.setdefault((p.strategy, p.dry_run), {"unrealized": Decimal(0), "sources": {}})
        slot["unrealized"] += q.unrealized_pnl or Decimal(0)
        if m is not None:
            slot["sources"][m.source.value] = slot["sources"].get(m.source.value, 0) + 1
    return out


def position_view(p: Position, mark: Mark | None = None) -> dict[str, Any]:
    """`p` as JSON; pass the position already `marked` and its mark."""
    unreal = p.unrealized_pnl
    return {
        "strategy": p.strategy,
        "mode": mode_name(p.dry_run),
        "dry_run": p.dry_run,
        "wallet": p.wallet,  # dry-run: its paper wallet ("paper:<name>"); live: ""
        "token_id": p.token_id,
        "condition_id": p.condition_id,
        "market": p.market,
        "outcome": p.outcome,
        "state": p.state.value,
        "size": fmt(p.size),
        "avg_price": fmt(p.avg_price),
        "cost": fmt(p.cost),
        "mark_price": None if p.mark_price is None else fmt(p.mark_price),
        "mark_source": None if mark is None else mark.source.value,
        "unrealized_pnl": None if unreal is None else fmt(unreal),
        "realized_pnl": fmt(p.realized_pnl),
        # A resolved live winner: the payout is realized PnL but still owed by the on-chain redemption.
        "redeemable": fmt(p.redeemable),
        "redeemed_at": None if p.redeemed_at is None else ms_to_iso(p.redeemed_at),
        "opened_at": ms_to_iso(p.opened_at),
        "updated_at": ms_to_iso(p.updated_at),
    }


def trade_view(t: TradeRow) -> dict[str, Any]:
    f = t.fill
    return {
        "trade_id": f.trade_id,
        "time": ms_to_iso(f.ts),
        "ts_ms": f.ts,
        "kind": f.kind.value,
        "strategy": f.strategy,
        "mode": mode_name(f.dry_run),
        "dry_run": f.dry_run,
        "token_id": f.token_id,
        "condition_id": f.condition_id,
        "market": f.market,
        "outcome": f.outcome,
        "side": f.side.value,
        "price": fmt(f.price),
        "size": fmt(f.size),
        "notional": fmt(t.notional),
        "fee": fmt(f.fee),
        "realized_pnl": fmt(t.realized_pnl),
        "liquidity": f.liquidity,
        "order_key": f.order_key,
        "venue_order_id": f.venue_order_id,
    }


def stats_view(s: StrategyStats, mark_sources: Mapping[str, int] | None = None) -> dict[str, Any]:
    return {
        "strategy": s.strategy,
        "mode": mode_name(s.dry_run),
        "dry_run": s.dry_run,
        "trades": s.trades,
        "volume": fmt(s.volume),
        "fees": fmt(s.fees),
        "realized_pnl": fmt(s.realized_pnl),
        "unrealized_pnl": fmt(s.unrealized_pnl),
        "marks": dict(mark_sources or {}),  # how the open positions were marked: {"book": 2, "fill": 1}
        "redeemable": fmt(s.redeemable),
        "open_positions": s.open_positions,
        "closed_positions": s.closed_positions,
        "wins": s.wins,
        "win_rate": None if s.win_rate is None else fmt(s.win_rate),
    }


def settlement_view(s: Any) -> dict[str, Any]:
    """A pmbot.settle.Settlement as JSON."""
    return {
        "strategy": s.strategy,
        "mode": mode_name(s.dry_run),
        "dry_run": s.dry_run,
        "token_id": s.token_id,
        "condition_id": s.condition_id,
        "market": s.market,
        "outcome": s.outcome,
        "shares": fmt(s.shares),
        "payout": fmt(s.payout),
        "realized_pnl": fmt(s.realized_pnl),
        "redeemable": fmt(s.redeemable),
        "cash": "paper" if s.dry_run else ("redeemable" if s.redeemable else "none"),
        "trade_id": s.trade_id,
        "time": ms_to_iso(s.ts),
        "source": s.source,
    }
