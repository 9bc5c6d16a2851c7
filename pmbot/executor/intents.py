"""Order intents: what a strategy asks the executor to do, before any risk check or venue call."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from pmbot.errors import InputError
from pmbot.money import fmt
from pmbot.store.models import OrderType, Side

__all__ = ["MIN_MARKETABLE_USDC", "OrderIntent", "intent_key", "off_tick", "validate_intent"]

# The venue's minimum for a marketable (FOK/FAK) order, in USDC; an order that can rest (GTC/GTD) needs
# the market's minimum shares instead (its book's `min_order_size`, usually 5).
MIN_MARKETABLE_USDC = Decimal(1)
_EMPTY: Mapping[str, str] = MappingProxyType({})
_UNSAFE = re.compile(r"[^a-z0-9_.-]+")
_MICRO = Decimal(1_000_000)
_MAX_DIGITS = 12  # below 10^12: its micro-units fit the store's 64-bit integers (2^63 ≈ 9.2 · 10^18)
_DIGEST_CHARS = 24  # 96 bits: collisions are out of reach for any number of orders we will ever send


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderIntent:
    """One order a strategy wants. `key` is its idempotency key: the same signal always yields the same key,
    so a retried or replayed signal is recognised instead of sent twice."""

    key: str
    strategy: str
    token_id: str
    condition_id: str  # the market; risk caps are per condition id
    side: Side
    price: Decimal  # limit price; for FOK/FAK the worst acceptable price
    size: Decimal  # shares
    order_type: OrderType
    signal_ms: int  # when the strategy decided (epoch ms): signal-to-venue latency is measured from here
    post_only: bool = False
    expiration_s: int = 0  # GTD only: epoch seconds
    meta: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)

    def __post_init__(self) -> None:
        # A frozen intent must not change under the executor's feet through a dict the strategy kept.
        if not isinstance(self.meta, MappingProxyType):
            object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    @property
    def notional(self) -> Decimal:
        """price × size, exact (no rounding): the most this order can spend (BUY) or its value (SELL)."""
        return self.price * self.size


def _canonical(part: str | int | Decimal) -> str:
    if isinstance(part, float):
        raise TypeError("intent key parts must not be floats; pass a str, int or Decimal")
    if isinstance(part, Decimal):
        # 0.5 and 0.50 are the same signal: normalise so they give the same key.
        return fmt(part)
    return str(part)


def intent_key(strategy: str, market: str, signal_id: str | int, *parts: str | int | Decimal) -> str:
    """Deterministic, short idempotency key: `<strategy>-<24 hex of sha256>`.

    The strategy name stays readable in front (for people reading the orders table); the digest covers a
    JSON list of every part, so no choice of separators inside the parts can make two signals collide."""
    if not strategy:
        raise InputError("intent key needs a strategy name")
    canonical = json.dumps([strategy, market, _canonical(signal_id), *(_canonical(p) for p in parts)])
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:_DIGEST_CHARS]
    readable = _UNSAFE.sub("_", strategy.lower()).strip("_")[:32] or "s"
    return f"{readable}-{digest}"


def off_tick(price: Decimal, tick: Decimal) -> bool:
    """True when `price` is not a multiple of `tick` (Decimal remainder is exact)."""
    return tick > 0 and price % tick != 0


def validate_intent(intent: OrderIntent) -> None:
    """Raise InputError when an intent is malformed whatever the market: a strategy bug, not a market condition."""
    problems = []
    if not intent.key:
        problems.append("key must not be empty")
    if not intent.token_id:
        problems.append("token_id must not be empty")
    if not intent.size.is_finite() or intent.size <= 0:
        problems.append(f"size must be > 0, got {intent.size}")
    if not intent.price.is_finite() or not 0 < intent.price < 1:
        problems.append(f"price must be strictly between 0 and 1, got {intent.price}")
    for name, value in (("size", intent.size), ("price", intent.price)):
        # the store keeps exact 6-decimal micro-units in a 64-bit integer: anything else cannot be stored
        if value.is_finite() and (value.adjusted() >= _MAX_DIGITS or (value * _MICRO) % 1 != 0):
            problems.append(f"{name} must have at most 6 decimals and be below 10^12, got {value}")
    if intent.post_only and intent.order_type in (OrderType.FOK, OrderType.FAK):
        problems.append(f"post_only needs a resting order (GTC or GTD), not {intent.order_type}")
    if intent.order_type is OrderType.GTD and intent.expiration_s <= 0:
        problems.append("GTD needs expiration_s (epoch seconds)")
    if intent.order_type is not OrderType.GTD and intent.expiration_s:
        problems.append(f"expiration_s is only for GTD, not {intent.order_type}")
    if problems:
        raise InputError(f"invalid order intent {intent.key or '(no key)'}: " + "; ".join(problems))
