"""Position accounting on micro-unit integers: pure, shared by every store backend.

Average-cost method. A BUY adds shares and their cost (notional + fee). A SELL releases the
sold fraction of the cost basis and realizes (proceeds - fee - released cost). A REDEEM is a
SELL of everything left at the payout price (1 won, 0 lost) and leaves the position RESOLVED.

Shares sold beyond what the ledger holds (bought outside pmbot, or split from collateral) have
no known cost: they realize their full proceeds. The position never goes negative: binary
outcome tokens cannot be shorted on Polymarket.
"""

from __future__ import annotations

from dataclasses import dataclass

from pmbot.money import div_round, mul_micro
from pmbot.store.models import PositionState, Side, TradeKind


@dataclass(slots=True)
class Book:
    """A position's running numbers, in micro-units."""

    size: int = 0
    cost: int = 0
    realized: int = 0
    state: PositionState = PositionState.OPEN


_BUY, _REDEEM = Side.BUY.value, TradeKind.REDEEM.value  # plain str: Enum attribute lookups are slow in 3.11
_OPEN, _CLOSED, _RESOLVED = PositionState.OPEN, PositionState.CLOSED, PositionState.RESOLVED


def apply(book: Book, side: Side, kind: TradeKind, price: int, size: int, fee: int) -> tuple[int, int]:
    """Apply one trade to `book` in place. Returns (notional, realized PnL of this trade)."""
    if size <= 0:
        raise ValueError("trade size must be positive")
    if not 0 <= price <= 1_000_000:
        raise ValueError("price must be between 0 and 1")
    notional = mul_micro(price, size)
    if side == _BUY:
        if kind == _REDEEM:
            raise ValueError("a redemption is a SELL")
        book.size += size
        book.cost += notional + fee
        book.state = _OPEN
        return notional, 0
    held = min(size, book.size)
    released = book.cost if held == book.size else div_round(book.cost * held, book.size) if held else 0
    realized = notional - fee - released
    book.size -= held
    book.cost -= released
    book.realized += realized
    if kind == _REDEEM:
        book.state = _RESOLVED
    elif book.size == 0:
        book.state = _CLOSED
    return notional, realized
