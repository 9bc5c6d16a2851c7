"""What the venue says we traded must fit what we signed.

A venue (or anything between us and it) can report any trade history. Recorded fills move the
position, the risk gate's exposure and the daily P&L, so a single false row of 10^12 shares would
stop all further trading (or worse, hide a real loss). The signed order is the hard limit:

- BUY: the USDC paid, Σ size × price, is at most the signed makerAmount (price × size); a limit
  (GTC/GTD) BUY receives at most its size; no fill is at a price above the limit.
- SELL: the shares given, Σ size, are at most the order's size; no fill is below the limit.

A history that breaks these is not believed at all (not trimmed: which rows are false is unknowable):
the order stays unsettled, with a warning, for an operator to look at.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from pmbot.executor.intents import OrderIntent
from pmbot.store.models import Fill, OrderType, Side

log = logging.getLogger("pmbot.executor")

_ZERO = Decimal(0)
_MIN_TICK = Decimal("0.001")  # the finest tick Polymarket has: no share costs less


def fill_violation(intent: OrderIntent, fills: list[Fill]) -> str | None:
    """Why `fills` (every fill of one order) cannot be true, or None when they fit the order."""
    unique = list({f.trade_id: f for f in fills}.values())
    shares, paid = _ZERO, _ZERO
    for f in unique:
        if not (f.size.is_finite() and f.price.is_finite()) or f.size <= 0 or not 0 < f.price < 1:
            return f"trade {f.trade_id}: {f.size} shares at {f.price} is not a fill"
        if intent.side is Side.BUY and f.price > intent.price:
            return f"trade {f.trade_id}: bought at {f.price}, above the limit {intent.price}"
        if intent.side is Side.SELL and f.price < intent.price:
            return f"trade {f.trade_id}: sold at {f.price}, below the limit {intent.price}"
        shares += f.size
        paid += f.size * f.price
    if intent.side is Side.BUY:
        signed = intent.price * intent.size  # makerAmount: limit orders exactly, market orders rounded down
        if paid > signed:
            return f"fills cost {paid} USDC; the order signed at most {signed}"
        if intent.order_type in (OrderType.GTC, OrderType.GTD) and shares > intent.size:
            return f"fills bought {shares} shares; the order signed for {intent.size}"
    elif shares > intent.size:
        return f"fills sold {shares} shares; the order signed for {intent.size}"
    return None


def fills_within_order(intent: OrderIntent, fills: list[Fill]) -> list[Fill] | None:
    """`fills` when they fit the signed order; None (read as "history not readable") when not."""
    why = fill_violation(intent, fills)
    if why is None:
        return fills
    log.warning("order %s: venue trade history refused (%s); the order is left unsettled", intent.key, why)
    return None


def matched_within_order(intent: OrderIntent, matched: Decimal) -> Decimal:
    """The venue's `size_matched` for one of our orders, capped at what the order could fill."""
    if intent.side is Side.SELL or intent.order_type in (OrderType.GTC, OrderType.GTD):
        cap = intent.size
    else:  # a market BUY spends USDC: at the finest tick it buys at most this many shares
        cap = intent.price * intent.size / _MIN_TICK
    return min(max(matched, _ZERO), cap)
