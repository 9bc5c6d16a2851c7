"""Typed domain objects the adapter hands out. Nothing Polymarket-shaped leaks past this package:
prices and sizes are Decimal, times are epoch milliseconds (int), sides are `Side`.

The wire → model conversions live in `schemas/`; the simulator speaks the wire format itself so
that it checks these parsers instead of sharing them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from pmbot.errors import register_secret
from pmbot.polymarket.identity import Module, Protocol, decode_position_id
from pmbot.store.models import OrderType, Side

__all__ = [
    "Activity",
    "ApiCreds",
    "BestBidAsk",
    "BookLevel",
    "BookSnapshot",
    "CancelResult",
    "CryptoPrice",
    "DataPosition",
    "FeeSchedule",
    "LastTrade",
    "LevelChange",
    "MakerOrderFill",
    "Market",
    "MarketParams",
    "MarketResolved",
    "NewMarket",
    "OpenOrder",
    "OrderAck",
    "OrderBook",
    "OrderType",
    "Outcome",
    "PriceChange",
    "Profile",
    "Side",
    "StreamState",
    "StreamStatus",
    "TickSizeChange",
    "TradeSource",
    "UserOrderEvent",
    "UserTrade",
    "UserTradeEvent",
    "WalletTrade",
]


# ---------------------------------------------------------------------------------------- markets


@dataclass(frozen=True, slots=True)
class Outcome:
    token_id: str
    outcome: str  # "Up", "Down", "Yes", "No", a team …
    price: Decimal | None = None  # Gamma's outcomePrices; None when not given
    winner: bool | None = None  # CLOB /markets tokens[].winner; None when the source does not say


@dataclass(frozen=True, slots=True)
class FeeSchedule:
    """fee (pUSD) = shares × rate × (p(1−p))^exponent, charged to takers only when taker_only."""

    rate: Decimal = Decimal(0)
    exponent: int = 1
    taker_only: bool = True

    def fee(self, shares: Decimal, price: Decimal) -> Decimal:
        if not self.rate:
            return Decimal(0)
        # Polymarket rounds fees to 5 decimal places (docs: trading/fees).
        raw = shares * self.rate * (price * (1 - price)) ** self.exponent
        return raw.quantize(Decimal("0.00001"))


@dataclass(frozen=True, slots=True)
class Market:
    condition_id: str
    question: str
    slug: str
    outcomes: tuple[Outcome, ...]
    end_ms: int | None
    start_ms: int | None = None  # eventStartTime (the window's open for up/down markets)
    active: bool = True
    closed: bool = False
    accepting_orders: bool = True
    neg_risk: bool = False
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    fees: FeeSchedule | None = None
    best_bid: Decimal | None = None  # Gamma's bestBid/bestAsk: for the first outcome
    best_ask: Decimal | None = None
    event_slug: str | None = None
    series_slug: str | None = None
    gamma_id: str | None = None
    # Which ids `outcomes` carry: V1 clobTokenIds (domain "2") or V2 positionIds (ExchangeV3, domain "3").
    protocol: Protocol = Protocol.V1
    description: str = ""  # the market's rules text (Gamma description): how it resolves
    resolution_source: str = ""  # Gamma resolutionSource (a Chainlink stream URL for crypto Up/Down)
    price_to_beat: Decimal | None = None  # Up/Down: the window's opening reference (event eventMetadata)

    @property
    def module(self) -> Module | None:
        """The V2 module (binary, neg-risk, combos) its position ids name; None for a V1 market."""
        if self.protocol is not Protocol.V2 or not self.outcomes:
            return None
        info = decode_position_id(self.outcomes[0].token_id)
        return info.module if info else None

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(o.token_id for o in self.outcomes)

    def outcome_of(self, token_id: str) -> Outcome | None:
        return next((o for o in self.outcomes if o.token_id == token_id), None)


@dataclass(frozen=True, slots=True)
class MarketParams:
    """What the signer and the risk gate need per token; cached and warmed before a window."""

    token_id: str
    tick_size: Decimal
    neg_risk: bool
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    min_order_size: Decimal = Decimal(5)


# ------------------------------------------------------------------------------------------ books


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    size: Decimal


@dataclass(frozen=True, slots=True)
class OrderBook:
    """A book with levels BEST FIRST on both sides (the wire sends them best-last)."""

    token_id: str
    market: str
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    timestamp_ms: int
    hash: str = ""
    tick_size: Decimal | None = None
    min_order_size: Decimal | None = None
    neg_risk: bool | None = None
    last_trade_price: Decimal | None = None

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None

    @property
    def spread(self) -> Decimal | None:
        if self.bids and self.asks:
            return self.asks[0].price - self.bids[0].price
        return None

    @property
    def midpoint(self) -> Decimal | None:
        if self.bids and self.asks:
            return (self.asks[0].price + self.bids[0].price) / 2
        return None


# ------------------------------------------------------------------------------- people & activity


@dataclass(frozen=True, slots=True)
class Profile:
    proxy_wallet: str  # lowercase 0x address
    name: str | None = None
    pseudonym: str | None = None
    bio: str | None = None


class TradeSource(StrEnum):
    CHAIN = "chain"  # OrderFilled logs: authoritative, ~block time
    RTDS = "rtds"  # activity/trades: fast, may drop messages
    DATA_API = "data_api"  # /activity, /trades: complete, lags


@dataclass(frozen=True, slots=True)
class WalletTrade:
    """One fill by a wallet we follow, from whichever source saw it first.

    `key` identifies the fill across sources for de-duplication: the transaction hash plus the token
    and side (a transaction can carry several fills)."""

    source: TradeSource
    wallet: str  # lowercase proxy wallet
    token_id: str
    side: Side
    size: Decimal
    price: Decimal
    timestamp_ms: int
    tx_hash: str
    condition_id: str | None = None
    outcome: str | None = None
    slug: str | None = None
    name: str | None = None
    outcome_index: int | None = None  # from a V2 position id (its last byte); None when not known

    @property
    def key(self) -> str:
        return f"{self.tx_hash.lower()}:{self.token_id}:{self.side.value}"


@dataclass(frozen=True, slots=True)
class Activity:
    """A Data API /activity row: TRADE, REDEEM, REWARD, … (non-trade rows have no token/side)."""

    wallet: str
    type: str
    timestamp_ms: int
    condition_id: str | None
    token_id: str | None
    side: Side | None
    size: Decimal
    usdc_size: Decimal
    price: Decimal
    outcome: str | None
    title: str | None
    slug: str | None
    tx_hash: str | None
    name: str | None = None

    def as_trade(self) -> WalletTrade | None:
        if self.type != "TRADE" or not self.token_id or self.side is None:
            return None
        return WalletTrade(
            source=TradeSource.DATA_API,
            wallet=self.wallet,
            token_id=self.token_id,
            side=self.side,
            size=self.size,
            price=self.price,
            timestamp_ms=self.timestamp_ms,
            tx_hash=self.tx_hash or "",
            condition_id=self.condition_id,
            outcome=self.outcome,
            slug=self.slug,
            name=self.name,
        )


@dataclass(frozen=True, slots=True)
class DataPosition:
    wallet: str
    token_id: str
    condition_id: str
    size: Decimal
    avg_price: Decimal
    current_price: Decimal
    current_value: Decimal
    cash_pnl: Decimal
    realized_pnl: Decimal
    outcome: str | None
    title: str | None
    slug: str | None
    redeemable: bool = False


# ------------------------------------------------------------------------------------------ trading


@dataclass(frozen=True, slots=True)
class ApiCreds:
    api_key: str
    secret: str
    passphrase: str

    def __post_init__(self) -> None:
        # However the creds came (derived, configured, a test), redaction knows them from now on.
        register_secret(self.secret)
        register_secret(self.passphrase)

    def __repr__(self) -> str:  # never print the secret or passphrase
        return f"ApiCreds(api_key={self.api_key!r}, secret=***, passphrase=***)"


@dataclass(frozen=True, slots=True)
class OrderAck:
    """The venue's answer to POST /order. `accepted` is the one rule that matters: success AND an
    empty errorMsg AND an order id (the venue can say success:true with an error message)."""

    accepted: bool
    order_id: str
    status: str  # live | matched | delayed | unmatched (lowercase, free text)
    making_amount: Decimal | None
    taking_amount: Decimal | None
    error: str = ""
    tx_hashes: tuple[str, ...] = ()
    trade_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenOrder:
    order_id: str
    status: str  # LIVE, MATCHED, CANCELED, …
    market: str
    token_id: str
    side: Side
    price: Decimal
    original_size: Decimal
    size_matched: Decimal
    order_type: str | None
    created_ms: int | None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class UserTrade:
    """A row of /data/trades (or a user-channel trade): one match involving our orders."""

    trade_id: str
    taker_order_id: str
    market: str
    token_id: str
    side: Side
    size: Decimal
    price: Decimal
    status: str  # MATCHED, MINED, CONFIRMED, RETRYING, FAILED
    match_ms: int | None
    trader_side: str | None  # TAKER | MAKER
    maker_order_ids: tuple[str, ...] = ()
    fee_rate_bps: int = 0
    tx_hash: str | None = None
    outcome: str | None = None
    maker_orders: tuple[MakerOrderFill, ...] = ()  # each resting order's own amount, price and token

    def maker_entry(self, order_id: str) -> MakerOrderFill | None:
        return next((m for m in self.maker_orders if m.order_id == order_id), None)


@dataclass(frozen=True, slots=True)
class CancelResult:
    canceled: tuple[str, ...]
    not_canceled: dict[str, str]


# ------------------------------------------------------------------------------------ stream events


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    book: OrderBook


@dataclass(frozen=True, slots=True)
class LevelChange:
    token_id: str
    side: Side  # BUY = bid level, SELL = ask level
    price: Decimal
    size: Decimal  # the NEW total at that price; 0 removes the level
    best_bid: Decimal | None = None
    best_ask: Decimal | None = None
    hash: str = ""  # the venue's book hash after this change ("" in messages that carry none)


@dataclass(frozen=True, slots=True)
class PriceChange:
    market: str
    changes: tuple[LevelChange, ...]
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class LastTrade:
    market: str
    token_id: str
    price: Decimal
    size: Decimal
    side: Side
    timestamp_ms: int
    fee_rate_bps: int = 0
    tx_hash: str | None = None


@dataclass(frozen=True, slots=True)
class TickSizeChange:
    market: str
    token_id: str
    old_tick_size: Decimal
    new_tick_size: Decimal
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class BestBidAsk:
    market: str
    token_id: str
    best_bid: Decimal | None
    best_ask: Decimal | None
    timestamp_ms: int


@dataclass(frozen=True, slots=True)
class MarketResolved:
    market: str
    winning_token_id: str
    winning_outcome: str | None
    timestamp_ms: int
    token_ids: tuple[str, ...] = ()  # every token of the market (`assets_ids`)


@dataclass(frozen=True, slots=True)
class NewMarket:
    """Market-channel `new_market` (custom feature): a market was created. Discovery can start from it
    instead of polling Gamma."""

    market: str  # condition id
    token_ids: tuple[str, ...]
    outcomes: tuple[str, ...]
    timestamp_ms: int
    slug: str | None = None
    question: str | None = None
    gamma_id: str | None = None
    tick_size: Decimal | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserOrderEvent:
    order_id: str
    type: str  # PLACEMENT | UPDATE | CANCELLATION
    status: str  # LIVE, CANCELED, INVALID, CANCELED_<reason> …
    market: str
    token_id: str
    side: Side
    price: Decimal
    original_size: Decimal
    size_matched: Decimal
    timestamp_ms: int
    order_type: str | None = None  # GTC, FOK, … (absent in the docs example)
    outcome: str | None = None
    created_ms: int | None = None  # created_at: seconds or ms on the wire, "" when unknown
    maker_address: str | None = None  # lowercase
    associate_trades: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MakerOrderFill:
    """One resting order filled by a user-channel trade. When we were the MAKER, our fill is the entry
    whose owner is our API key: the trade's top-level side/price/size describe the taker."""

    order_id: str
    owner: str
    token_id: str
    matched_amount: Decimal
    price: Decimal
    maker_address: str | None = None  # lowercase
    outcome: str | None = None
    side: Side | None = None  # absent before 2025
    fee_rate_bps: int = 0


@dataclass(frozen=True, slots=True)
class UserTradeEvent:
    trade: UserTrade
    timestamp_ms: int
    maker_orders: tuple[MakerOrderFill, ...] = ()
    owner: str | None = None  # the API key the venue attributes the trade to


@dataclass(frozen=True, slots=True)
class CryptoPrice:
    topic: str  # crypto_prices | crypto_prices_chainlink | …
    symbol: str
    value: Decimal
    timestamp_ms: int


class StreamState(StrEnum):
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    STALE = "stale"  # connected but silent for longer than the stream's stale_after


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """Emitted by every stream alongside its data events, so a strategy can stand down when blind."""

    stream: str
    state: StreamState
    timestamp_ms: int
    detail: str = ""
    attempt: int = 0
