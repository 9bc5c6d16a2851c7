"""The strategy runtime's contract: the `Strategy` base class, the read-only view it decides against, and
what it hands back (order intents plus recorded decisions).

Modelled on NautilusTrader's `Strategy` and freqtrade's `IStrategy`, cut down to pure decision code:

- a name and a typed config (a pydantic model), validated by `start()`: one ConfigError line per problem;
- lifecycle hooks `on_start` / `on_event` / `on_stop` / `on_error`, driven by the runner through
  `start()` / `handle(event)` / `stop()`; each call returns an `Output` (intents to give the executor, and
  decisions to store), so a unit test drives a strategy with a list of events and checks what came out;
- built-in bookkeeping and metrics (signals, skips by reason, intents, fills, wins, losses, fees, realized
  PnL, win rate) from the strategy's own fills and the markets' resolutions;
- pause / resume (a paused strategy keeps its books up to date but emits no intents) and health (age of the
  last event on the view's clock).

A strategy never opens a socket, runs SQL or sleeps: everything it knows comes from events and the
`StrategyView` the runner implements. Risk limits stay in the executor's gate: an intent is a request.

The runner's loop, per event and strictly in order: update the view (book, position, market) → `out =
strategy.handle(event)` → store `out.decisions` → give each of `out.intents` to the executor → feed the
executor's answer back as an `OrderResult`, and each fill as an `OrderFilled`, through `handle()` again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from pmbot.errors import ConfigError, InputError
from pmbot.executor.intents import OrderIntent, validate_intent
from pmbot.polymarket.models import BookLevel, FeeSchedule, Market, MarketParams, Outcome
from pmbot.store.models import OrderStatus, Side
from pmbot.strategies.events import Event, MarketResolved, OrderFilled, OrderResult

__all__ = [
    "PAUSED",
    "BookView",
    "Decision",
    "DecisionKind",
    "MarketInfo",
    "MetricsSnapshot",
    "Output",
    "Strategy",
    "StrategyConfig",
    "StrategyHealth",
    "StrategyState",
    "StrategyView",
    "format_config_errors",
]

_ZERO = Decimal(0)
_EMPTY: Mapping[str, str] = MappingProxyType({})

PAUSED = "paused"
"""Skip reason recorded for a signal that came while the strategy was paused."""


# ------------------------------------------------------------------------------------------ config


class StrategyConfig(BaseModel):
    """Base of every strategy's `[section]` config: unknown keys are errors, and a validated config is frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


C = TypeVar("C", bound=StrategyConfig)


def format_config_errors(section: str, err: ValidationError) -> str:
    """One line per problem, naming the key: `[snipe] window_s: must be > 0 (got 0)`."""
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(config)"
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"].removeprefix("Value error, ")
        got = "" if e["type"] in ("extra_forbidden", "missing") else f" (got {e.get('input')!s})"
        lines.append(f"[{section}] {key}: {msg}{got}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ the view


@dataclass(frozen=True, slots=True, kw_only=True)
class MarketInfo:
    """What a strategy may know about one market it is armed for. The runner keeps it current (for
    instance `accepting_orders` turning false) and replaces the object; it is never mutated."""

    condition_id: str
    outcomes: tuple[Outcome, ...]  # token ids and names; for crypto Up/Down markets index 0 is Up
    end_ms: int | None  # when trading in the market ends (Gamma endDate)
    tick_size: Decimal
    fees: FeeSchedule  # the market's own taker fee schedule; never a constant
    start_ms: int | None = None  # the window's opening (Gamma eventStartTime) for Up/Down markets
    accepting_orders: bool = True
    closed: bool = False
    neg_risk: bool = False
    min_order_size: Decimal = Decimal(5)
    slug: str = ""
    question: str = ""
    description: str = ""  # the market's resolution rules text (Gamma description)
    resolution_source: str = ""  # Gamma resolutionSource (a URL for Chainlink markets)
    reference_open: Decimal | None = None  # the window's opening reference price ("price to beat"), when known

    def __post_init__(self) -> None:
        if not self.tick_size.is_finite() or self.tick_size <= 0:
            raise InputError(f"market {self.slug or self.condition_id}: tick size must be > 0, got {self.tick_size}")

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(o.token_id for o in self.outcomes)

    def outcome_of(self, token_id: str) -> str | None:
        return next((o.outcome for o in self.outcomes if o.token_id == token_id), None)

    @classmethod
    def from_market(
        cls,
        market: Market,
        *,
        params: MarketParams | None = None,
        description: str = "",
        resolution_source: str = "",
        reference_open: Decimal | None = None,
    ) -> MarketInfo:
        """Build from the adapter's Market (tick size and fees from `params` when the Market lacks them)."""
        tick = market.tick_size if market.tick_size is not None else (params.tick_size if params else None)
        fees = market.fees if market.fees is not None else (params.fees if params else None)
        if tick is None or fees is None:
            raise InputError(f"market {market.slug or market.condition_id} has no tick size or fee schedule yet")
        return cls(
            condition_id=market.condition_id,
            outcomes=market.outcomes,
            end_ms=market.end_ms,
            start_ms=market.start_ms,
            tick_size=tick,
            fees=fees,
            accepting_orders=market.accepting_orders,
            closed=market.closed,
            neg_risk=market.neg_risk,
            min_order_size=market.min_order_size or (params.min_order_size if params else Decimal(5)),
            slug=market.slug,
            question=market.question,
            description=description,
            resolution_source=resolution_source,
            reference_open=reference_open,
        )


class BookView(Protocol):
    """One token's current book, levels BEST FIRST (pmbot.polymarket.models.OrderBook satisfies it)."""

    @property
    def bids(self) -> Sequence[BookLevel]: ...

    @property
    def asks(self) -> Sequence[BookLevel]: ...


class StrategyView(Protocol):
    """Read-only state the runner keeps for a strategy. It already reflects the event being handled
    (the book after a BookChanged, the position after an OrderFilled)."""

    def now_ms(self) -> int:
        """The clock: wall time live and in dry-run, the scenario's clock in a backtest."""
        ...

    def markets(self) -> Sequence[MarketInfo]:
        """The markets this strategy is armed for."""
        ...

    def market(self, condition_id: str) -> MarketInfo | None: ...

    def book(self, token_id: str) -> BookView | None: ...

    def position(self, token_id: str) -> Decimal:
        """Shares held (0 when none)."""
        ...


# ------------------------------------------------------------------------------------------- output


class DecisionKind(StrEnum):
    SIGNAL = "signal"  # the rules said buy (an intent with `intent_key` went to the executor)
    SKIP = "skip"  # the rules said no, with a stable reason
    WARNING = "warning"  # something the operator should see (e.g. an unknown resolution rule)
    ERROR = "error"  # the strategy's own code failed on an event


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One recorded decision: the runner stores it so reports show why the strategy bought or did not."""

    kind: DecisionKind
    strategy: str
    reason: str  # stable string: a skip reason (`outside_band`, …), or what the signal was (`entry`)
    ts_ms: int
    condition_id: str = ""
    token_id: str = ""
    intent_key: str | None = None
    detail: Mapping[str, str] = field(default_factory=lambda: _EMPTY, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.detail, MappingProxyType):
            object.__setattr__(self, "detail", MappingProxyType(dict(self.detail)))


@dataclass(frozen=True, slots=True)
class Output:
    """What one call into the strategy produced: intents for the executor, decisions for the store."""

    intents: tuple[OrderIntent, ...] = ()
    decisions: tuple[Decision, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.intents or self.decisions)


# ------------------------------------------------------------------------------------------ metrics


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsSnapshot:
    signals: int
    skips: Mapping[str, int]
    warnings: int
    errors: int
    intents: int
    rejected: int  # own orders the risk gate or venue refused
    fills: int
    fees: Decimal
    wins: int
    losses: int
    realized_pnl: Decimal

    @property
    def win_rate(self) -> Decimal | None:
        """wins / (wins + losses); None before any position has been decided."""
        decided = self.wins + self.losses
        return Decimal(self.wins) / Decimal(decided) if decided else None


@dataclass(slots=True)
class _Lot:
    condition_id: str
    shares: Decimal = _ZERO
    cost: Decimal = _ZERO  # what the shares held cost, fees included
    realized: Decimal = _ZERO  # PnL realized by sells of this lot so far


class StrategyState(StrEnum):
    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyHealth:
    name: str
    state: StrategyState
    paused: bool
    paused_reason: str
    last_event_age_ms: int | None  # None before the first event
    errors: int
    last_error: str


# ----------------------------------------------------------------------------------------- strategy


class Strategy(Generic[C]):
    """Base of every strategy. Subclasses set `name`, `config_model` and `config_section`, implement
    `on_event`, and inside the hooks call `submit()`, `signal()`, `skip()` and `warn()`.

    The runner calls `start()` once, then `handle(event)` for each event (in order, never concurrently), then
    `stop()`. Each returns an `Output`."""

    name: str = "strategy"  # class default; an instance may be given its own
    config_model: ClassVar[type[StrategyConfig]] = StrategyConfig
    config_section: ClassVar[str] = "strategy"

    def __init__(
        self, view: StrategyView, config: C | Mapping[str, Any] | None = None, *, name: str | None = None
    ) -> None:
        self.view = view
        self.name = name or type(self).name  # instance name: two snipers can run side by side
        self._raw_config = config
        self._config: C | None = None
        self.state = StrategyState.NEW
        self._paused_reason: str | None = None
        self._last_event_ms: int | None = None
        self._last_error = ""
        # per-call collectors
        self._intents: list[OrderIntent] = []
        self._decisions: list[Decision] = []
        # bookkeeping
        self._sent_keys: set[str] = set()
        self._fill_ids: set[str] = set()
        self._lots: dict[str, _Lot] = {}
        self._signals = 0
        self._skips: dict[str, int] = {}
        self._warnings = 0
        self._errors = 0
        self._intent_count = 0
        self._rejected = 0
        self._fills = 0
        self._fees = _ZERO
        self._wins = 0
        self._losses = 0
        self._realized = _ZERO

    # ------------------------------------------------------------------ config

    @classmethod
    def validate_config(cls, raw: StrategyConfig | Mapping[str, Any] | None) -> C:
        """The typed config, or ConfigError with one line per problem (the CLI calls this before it writes
        anything, `start()` calls it again)."""
        model = cls.config_model
        if isinstance(raw, model):
            return cast(C, raw)
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})
        try:
            return cast(C, model.model_validate(data))
        except ValidationError as e:
            raise ConfigError(format_config_errors(cls.config_section, e)) from None

    @property
    def config(self) -> C:
        if self._config is None:
            raise RuntimeError(f"strategy {self.name}: config is validated by start(); call start() first")
        return self._config

    # --------------------------------------------------------------- lifecycle (runner-facing)

    def start(self) -> Output:
        if self.state is not StrategyState.NEW:
            raise RuntimeError(f"strategy {self.name} is {self.state}, it can start only once")
        self._config = self.validate_config(self._raw_config)
        self.state = StrategyState.RUNNING
        self._begin()
        self.on_start()
        return self._end()

    def handle(self, event: Event) -> Output:
        """Deliver one event. Own fills and resolutions are booked first (so metrics and PnL stay right even
        if the strategy's code then fails); an exception in `on_event` discards that call's output and goes
        to `on_error`, which by default records it and pauses the strategy."""
        if self.state is not StrategyState.RUNNING:
            raise RuntimeError(f"strategy {self.name} is {self.state}: handle() needs a running strategy")
        self._last_event_ms = self.view.now_ms()
        self._begin()
        self._book(event)
        try:
            self.on_event(event)
        except Exception as exc:
            self._begin()  # nothing half-decided leaves a failed call
            self._errors += 1
            self._last_error = f"{type(exc).__name__}: {exc}"
            self.on_error(exc, event)
        return self._end()

    def stop(self) -> Output:
        if self.state is not StrategyState.RUNNING:
            self.state = StrategyState.STOPPED
            return Output()
        self._begin()
        self.on_stop()
        self.state = StrategyState.STOPPED
        return self._end()

    def pause(self, reason: str = "") -> None:
        """Stop emitting intents (signals become `paused` skips) until `resume()`; events still update state."""
        self._paused_reason = reason or "paused by the operator"

    def resume(self) -> None:
        self._paused_reason = None

    @property
    def paused(self) -> bool:
        return self._paused_reason is not None

    def health(self) -> StrategyHealth:
        age = None if self._last_event_ms is None else max(0, self.view.now_ms() - self._last_event_ms)
        return StrategyHealth(
            name=self.name,
            state=self.state,
            paused=self.paused,
            paused_reason=self._paused_reason or "",
            last_event_age_ms=age,
            errors=self._errors,
            last_error=self._last_error,
        )

    @property
    def metrics(self) -> MetricsSnapshot:
        return MetricsSnapshot(
            signals=self._signals,
            skips=MappingProxyType(dict(self._skips)),
            warnings=self._warnings,
            errors=self._errors,
            intents=self._intent_count,
            rejected=self._rejected,
            fills=self._fills,
            fees=self._fees,
            wins=self._wins,
            losses=self._losses,
            realized_pnl=self._realized,
        )

    # ------------------------------------------------------------------ hooks (strategy-facing)

    def on_start(self) -> None:
        """After the config is validated, before the first event."""

    def on_event(self, event: Event) -> None:
        raise NotImplementedError

    def on_stop(self) -> None:
        """Last call; the strategy may record final decisions."""

    def anticipate(self, now_ms: int) -> Sequence[OrderIntent]:
        """The intents this strategy expects it may submit soon, each exactly as it would (key, token, side,
        price, size, type), so the runner can pre-arm them: signed and recorded ahead, fired on the tick.
        Only a prediction: nothing is sent unless `submit()` later asks for the same order. Pure, like
        the hooks (no output recorded). Default: nothing predictable."""
        return ()

    def on_error(self, exc: Exception, event: Event) -> None:
        """Default: record the error and pause. A strategy whose code failed must not keep trading on a
        state it may have half-updated; the operator resumes after reading the error."""
        self._record(DecisionKind.ERROR, "strategy_error", ts_ms=_ts_of(event), detail={"error": self._last_error})
        self.pause(f"error: {self._last_error}")

    # ------------------------------------------------------------------ emitting (strategy-facing)

    def submit(self, intent: OrderIntent) -> bool:
        """Queue an intent for the executor. Returns False (and queues nothing) when the strategy is paused
        or the key was already sent: the same signal never becomes two orders, whatever the subclass does."""
        validate_intent(intent)
        if self.paused:
            self.skip(PAUSED, ts_ms=intent.signal_ms, condition_id=intent.condition_id, token_id=intent.token_id)
            return False
        if intent.key in self._sent_keys or any(i.key == intent.key for i in self._intents):
            return False
        self._intents.append(intent)
        return True

    def signal(
        self,
        reason: str,
        *,
        ts_ms: int,
        condition_id: str = "",
        token_id: str = "",
        intent_key: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self._record(DecisionKind.SIGNAL, reason, ts_ms, condition_id, token_id, intent_key, detail)

    def skip(
        self,
        reason: str,
        *,
        ts_ms: int,
        condition_id: str = "",
        token_id: str = "",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self._record(DecisionKind.SKIP, reason, ts_ms, condition_id, token_id, None, detail)

    def warn(
        self,
        reason: str,
        *,
        ts_ms: int,
        condition_id: str = "",
        token_id: str = "",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self._record(DecisionKind.WARNING, reason, ts_ms, condition_id, token_id, None, detail)

    def was_sent(self, key: str) -> bool:
        return key in self._sent_keys

    # ------------------------------------------------------------------ internals

    def _record(
        self,
        kind: DecisionKind,
        reason: str,
        ts_ms: int,
        condition_id: str = "",
        token_id: str = "",
        intent_key: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        self._decisions.append(
            Decision(
                kind=kind,
                strategy=self.name,
                reason=reason,
                ts_ms=ts_ms,
                condition_id=condition_id,
                token_id=token_id,
                intent_key=intent_key,
                detail=detail or _EMPTY,
            )
        )

    def _begin(self) -> None:
        self._intents = []
        self._decisions = []

    def _end(self) -> Output:
        intents, decisions = tuple(self._intents), tuple(self._decisions)
        self._intents, self._decisions = [], []
        for intent in intents:
            self._sent_keys.add(intent.key)
        self._intent_count += len(intents)
        for d in decisions:
            if d.kind is DecisionKind.SIGNAL:
                self._signals += 1
            elif d.kind is DecisionKind.SKIP:
                self._skips[d.reason] = self._skips.get(d.reason, 0) + 1
            elif d.kind is DecisionKind.WARNING:
                self._warnings += 1
        return Output(intents, decisions)

    def _book(self, event: Event) -> None:
        if isinstance(event, OrderFilled):
            self._book_fill(event)
        elif isinstance(event, MarketResolved):
            self._book_resolution(event)
        elif isinstance(event, OrderResult) and event.status is OrderStatus.REJECTED:
            self._rejected += 1

    def _book_fill(self, f: OrderFilled) -> None:
        if f.fill_id in self._fill_ids or f.size <= 0:
            return
        self._fill_ids.add(f.fill_id)
        self._fills += 1
        self._fees += f.fee
        lot = self._lots.setdefault(f.token_id, _Lot(f.condition_id))
        if f.side is Side.BUY:
            lot.shares += f.size
            lot.cost += f.price * f.size + f.fee
            return
        # A sell realizes against the average cost of what is held (never more than is held).
        sold = min(f.size, lot.shares)
        if sold <= 0:
            return
        basis = lot.cost * sold / lot.shares
        pnl = f.price * sold - f.fee - basis
        lot.shares -= sold
        lot.cost -= basis
        lot.realized += pnl
        self._realized += pnl
        if lot.shares == 0:
            self._decide(lot.realized > 0)
            del self._lots[f.token_id]

    def _book_resolution(self, r: MarketResolved) -> None:
        for token_id, lot in list(self._lots.items()):
            if lot.condition_id != r.condition_id or lot.shares <= 0:
                continue
            won = token_id == r.winning_token_id
            pnl = (lot.shares if won else _ZERO) - lot.cost
            self._realized += pnl
            self._decide(won)
            del self._lots[token_id]

    def _decide(self, won: bool) -> None:
        if won:
            self._wins += 1
        else:
            self._losses += 1


def _ts_of(event: Event) -> int:
    return event.ts_ms
