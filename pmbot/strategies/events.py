"""Typed events a strategy sees: the only input to its decisions.

This module owns the event vocabulary between the runner and a strategy. The runner converts venue
stream messages, executor results and its own timer into these; a strategy never sees wire JSON, a socket
or a store row. Every event is a frozen, slotted dataclass: money, prices and sizes are Decimal, times are
epoch milliseconds (int) and every event has a `ts_ms` (when it happened, on the clock the runner drives).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from pmbot.polymarket.models import BookLevel
from pmbot.store.models import OrderStatus, Side

__all__ = [
    "BookChanged",
    "BookLevel",
    "Event",
    "MarketResolved",
    "OrderFilled",
    "OrderResult",
    "PriceSource",
    "ReferencePrice",
    "TargetFill",
    "TargetSource",
    "TimerTick",
    "TradePrinted",
]

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True, kw_only=True)
class BookChanged:
    """The book of one token after a change (snapshot or level update), levels BEST FIRST.

    The runner updates its view's book before it delivers this event, so `view.book(token_id)` agrees."""

    token_id: str
    condition_id: str
    bids: tuple[BookLevel, ...]  # highest price first
    asks: tuple[BookLevel, ...]  # lowest price first
    ts_ms: int

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TradePrinted:
    """A trade on the venue's tape (anyone's; `last_trade_price`). Our own fills come as OrderFilled."""

    token_id: str
    condition_id: str
    price: Decimal
    size: Decimal
    side: Side  # the taker's side
    ts_ms: int


class PriceSource(StrEnum):
    """Where a reference price comes from. Values are the RTDS topic names, so the runner maps a
    `CryptoPrice.topic` with `PriceSource(topic)`."""

    CHAINLINK = "crypto_prices_chainlink"  # Chainlink data-stream spot relay
    CHAINLINK_TWAP_30 = "crypto_prices_twap_thirty"  # Chainlink 30 s TWAP (value already averaged)
    CHAINLINK_TWAP_60 = "crypto_prices_twap_sixty"  # Chainlink 60 s TWAP
    BINANCE = "crypto_prices"  # exchange spot: never used to confirm a Chainlink-resolved market


@dataclass(frozen=True, slots=True, kw_only=True)
class ReferencePrice:
    """An external reference observation, e.g. BTC/USD from Chainlink. `symbol` is lowercase and
    slash-separated (`btc/usd`); `ts_ms` is the observation time reported by the source."""

    symbol: str
    price: Decimal
    ts_ms: int
    source: PriceSource


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketResolved:
    """A market resolved: `winning_token_id` pays 1, every other token of the market pays 0."""

    condition_id: str
    winning_token_id: str
    ts_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class TimerTick:
    """The runner's heartbeat, so time-based rules (windows opening and closing) fire without a book change."""

    ts_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderResult:
    """What became of one of the strategy's own intents (the executor's SubmitResult, or a later update).

    `filled_size`, `avg_price` and `fee` are totals for the order so far; positions and PnL are booked from
    OrderFilled, never from this, so a result and its fills are not counted twice."""

    key: str
    status: OrderStatus
    ts_ms: int
    filled_size: Decimal = _ZERO
    avg_price: Decimal | None = None
    fee: Decimal = _ZERO
    reason: str = ""  # the risk gate's or venue's words when rejected


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFilled:
    """One fill of one of the strategy's own orders (venue match or paper fill). `fill_id` is unique
    (the store's trade id): a fill delivered twice is booked once."""

    key: str  # the intent's idempotency key
    fill_id: str
    token_id: str
    condition_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    ts_ms: int


class TargetSource(StrEnum):
    """Where a copied wallet's fill was seen (copy trading). Stable strings: stored with every decision."""

    CHAIN = "chain"  # an OrderFilled log on Polygon with maker = the target
    RTDS = "rtds"  # the real-time data service's `activity` trades
    DATA_API = "data_api"  # Data API polling (the slow fallback)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetFill:
    """One fill of a copied wallet (the target) as ONE source saw it. The same fill usually arrives from
    several sources; the copy strategy de-duplicates them. `token_id`, `condition_id` and `outcome` come
    from the runner's own market cache (never assumed YES). `ts_ms` is when we saw it (`seen_ts_ms`)."""

    target: str  # the target's wallet, 0x address (any case)
    source: TargetSource
    tx_hash: str  # "" when the source does not say
    log_index: int | None  # the log's index in its block, when the source has it (chain)
    token_id: str
    condition_id: str
    outcome: str
    side: Side  # the target's side
    price: Decimal
    size: Decimal  # shares
    target_ts_ms: int  # when the target's fill happened, by the source's clock (block time, trade time)
    seen_ts_ms: int  # when our runner received it
    maker: bool | None = None  # whether the target was the maker; None when the source does not say

    @property
    def ts_ms(self) -> int:
        return self.seen_ts_ms


Event = (
    BookChanged | TradePrinted | ReferencePrice | MarketResolved | TimerTick | OrderResult | OrderFilled | TargetFill
)
"""Everything `Strategy.handle` accepts."""
