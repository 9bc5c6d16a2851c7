"""Records the store keeps. Decimal in code; the store converts to micro-units at its edge."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pmbot.money import from_micro, mul_micro, to_micro


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    GTC = "GTC"  # rests until filled or cancelled
    GTD = "GTD"  # rests until an expiry
    FOK = "FOK"  # all now or nothing
    FAK = "FAK"  # what fills now, the rest cancelled


class OrderStatus(StrEnum):
    PENDING = "pending"  # stored, not yet sent (write-ahead)
    SUBMITTED = "submitted"  # POST sent, no answer yet
    LIVE = "live"  # resting on the book
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"  # by the risk gate or the venue; never reached the book
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # POST timed out: reconcile with the venue before anything else
    # Failed before anything reached the venue (market parameters or the venue unreachable, our own
    # budget, shutting down): final, but its key may be used again; the retry replaces this record.
    NOT_SENT = "not_sent"
    # Pre-armed (Executor.arm): signed and stored with its order hash before a window opens, not sent yet.
    # Its record is the write-ahead record of the POST that `fire` sends; never sent, it ends `not_sent`.
    ARMED = "armed"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED, OrderStatus.NOT_SENT}
)


class PositionState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # sold down to zero
    RESOLVED = "resolved"  # the market resolved; payout realized


class TradeKind(StrEnum):
    FILL = "fill"  # a match on the venue (or a paper fill in dry-run)
    REDEEM = "redeem"  # a resolution payout: the remaining shares at 1 (won) or 0 (lost)
    # a fill taken back: its trade FAILED at the venue (reverted on chain, never settled). Trade id
    # "revert:<fill's trade id>", same side, price, size and ts; notional and fee negated, realized PnL
    # the position's change (the fill's negated, plus a payout of its shares since): the position is as
    # if the fill never happened (Store.reverse_fill, ledger.take_back).
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True)
class OrderRecord:
    key: str  # idempotency key: deterministic from strategy, market, signal
    strategy: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType
    dry_run: bool
    condition_id: str = ""
    status: OrderStatus = OrderStatus.PENDING
    venue_order_id: str | None = None
    error: str | None = None
    filled_size: Decimal = Decimal(0)
    created_at: int = 0  # epoch ms
    updated_at: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    # live: the maker address (lower case); dry-run: "paper:<name>" (settings executor.paper_wallet; older
    # rows "paper:<run id>"); "" for rows stored before wallets
    wallet: str = ""

    @property
    def notional(self) -> Decimal:
        return from_micro(mul_micro(to_micro(self.price), to_micro(self.size)))


@dataclass(frozen=True, slots=True)
class OrderEvent:
    key: str
    status: OrderStatus
    ts: int
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Fill:
    """One fill (or one resolution payout). `trade_id` is unique: recording it twice is a no-op."""

    trade_id: str
    strategy: str
    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    dry_run: bool
    ts: int  # epoch ms
    condition_id: str = ""
    fee: Decimal = Decimal(0)
    order_key: str | None = None
    venue_order_id: str | None = None
    liquidity: str = "taker"  # taker | maker
    kind: TradeKind = TradeKind.FILL
    market: str = ""  # question or slug, for people
    outcome: str = ""  # Up / Down / Yes / No
    metadata: dict[str, Any] = field(default_factory=dict)
    # dry-run: the paper wallet ("paper:<name>") whose position the fill moves (given none: the default
    # one, "paper:default", as migration 0011 made of older rows); live: "" (the database's one live
    # account). Positions are per (strategy, token, mode, wallet).
    wallet: str = ""

    def __post_init__(self) -> None:
        if self.dry_run and not self.wallet:
            object.__setattr__(self, "wallet", DEFAULT_PAPER_WALLET)


DEFAULT_PAPER_WALLET = "paper:default"  # settings executor.paper_wallet = "default"


@dataclass(frozen=True, slots=True)
class TradeRow:
    """A stored fill with what the store derived from it."""

    fill: Fill
    notional: Decimal
    realized_pnl: Decimal


@dataclass(frozen=True, slots=True)
class Position:
    strategy: str
    token_id: str
    dry_run: bool
    size: Decimal
    cost: Decimal  # cost basis of the shares still held (fees included)
    realized_pnl: Decimal
    state: PositionState
    condition_id: str = ""
    market: str = ""
    outcome: str = ""
    mark_price: Decimal | None = None  # last known price: our last fill or market data
    opened_at: int = 0
    updated_at: int = 0
    # USDC a resolved LIVE position is owed until its shares are redeemed on chain (0 once redeemed,
    # for losers, and for dry-run, whose paper payout is cash at once). Realized PnL already counts it.
    redeemable: Decimal = Decimal(0)
    redeemed_at: int | None = None
    wallet: str = ""  # dry-run: its paper wallet ("paper:<name>"); live: ""

    @property
    def avg_price(self) -> Decimal:
        if self.size == 0:
            return Decimal(0)
        return (self.cost / self.size).quantize(Decimal("0.000001"))

    @property
    def unrealized_pnl(self) -> Decimal | None:
        if self.state is not PositionState.OPEN or self.mark_price is None:
            return None
        return from_micro(mul_micro(to_micro(self.size), to_micro(self.mark_price))) - self.cost

    @property
    def exposure(self) -> Decimal:
        """What is at risk: the cost basis of what is held."""
        return self.cost if self.state is PositionState.OPEN else Decimal(0)


@dataclass(frozen=True, slots=True)
class Query:
    """Filters shared by the reports."""

    strategy: str | None = None
    since: int | None = None  # epoch ms
    limit: int | None = None
    state: PositionState | None = None  # None: all; CLOSED also matches RESOLVED in reports
    dry_run: bool | None = None  # None: both
    wallet: str | None = None  # one paper wallet's positions and trades ("paper:<name>"); None: every wallet


@dataclass(frozen=True, slots=True)
class StrategyStats:
    strategy: str
    dry_run: bool
    trades: int
    volume: Decimal
    fees: Decimal
    realized_pnl: Decimal
    unrealized_pnl: Decimal
    open_positions: int
    closed_positions: int
    wins: int
    redeemable: Decimal = Decimal(0)  # USDC owed by on-chain redemptions not yet made (live only)

    @property
    def win_rate(self) -> Decimal | None:
        if self.closed_positions == 0:
            return None
        return (Decimal(self.wins) / Decimal(self.closed_positions)).quantize(Decimal("0.0001"))


@dataclass(frozen=True, slots=True)
class Learning:
    """A lesson learned (the seed's `learnings` table): what was found, where, and what it changed."""

    title: str
    description: str = ""
    phase: str = ""  # when it was learned: "phase-1", "snipe tuning", a date …
    category: str = ""  # e.g. "latency", "risk", "timing"
    code_snippet: str = ""
    impact: str = ""  # free text: "high", "-40 % ack latency" …
    timestamp: int = 0  # epoch ms; 0: the store stamps it
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class Reflection:
    """A look back over a phase (the seed's `reflections` table)."""

    phase: str
    what_worked: str = ""
    what_failed: str = ""
    next_improvements: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    timestamp: int = 0  # epoch ms; 0: the store stamps it
    id: int | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class ExecutionLog:
    event: str  # e.g. "intent", "submit", "ack", "reject", "fill", "reconcile"
    message: str = ""
    level: str = "info"
    strategy: str | None = None
    order_key: str | None = None
    latency_ms: Decimal | None = None
    ts: int = 0  # epoch ms; stored in the seed's `timestamp` column
    metadata: dict[str, Any] = field(default_factory=dict)
    id: int | None = None  # set by the store


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One stored strategy decision (pmbot.strategies.base.Decision plus where it was made).

    `mode` is "live", "dry-run" or "backtest"; `run_id` is the runner's run (a backtest's run id)."""

    ts: int  # epoch ms, on the clock the runner drives
    strategy: str
    kind: str  # signal | skip | warning | error
    reason: str
    mode: str
    run_id: str
    condition_id: str = ""
    token_id: str = ""
    intent_key: str | None = None
    detail: dict[str, str] = field(default_factory=dict)
    id: int | None = None

    @property
    def dry_run(self) -> bool:
        return self.mode != "live"


@dataclass(frozen=True, slots=True)
class BacktestRun:
    """One stored backtest: its parameters and its result document (the `--json` summary)."""

    run_id: str
    created_at: int  # epoch ms (wall clock)
    strategy: str
    scenario: str
    params: dict[str, Any]
    result: dict[str, Any]


def mode_name(dry_run: bool) -> str:
    """What a mode is called everywhere (records, reports, the risk-state key `risk:<mode>`)."""
    return "dry-run" if dry_run else "live"


@dataclass(frozen=True, slots=True)
class CopyAnalysisRow:
    """One stored `pmbot copy analyze` (migration 0010_copy_analyses). Money as exact decimal text;
    `result` is the analysis exactly as `--json` prints it."""

    created_at: int  # epoch ms (wall clock)
    wallet: str  # lowercase proxy wallet
    name: str  # lowercase profile name ("" when analysed by address alone)
    source: str  # "live" (fetched from the venue) or "file" (--from)
    start_ms: int | None
    end_ms: int | None
    delay_ms: int
    slippage: str
    trades: int
    copied: int
    target_pnl: str
    copy_pnl: str
    share_kept: str | None
    maker_share: str | None
    verdict: str
    result: dict[str, Any]
    id: int | None = None
