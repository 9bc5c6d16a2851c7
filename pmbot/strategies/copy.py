"""Copy trading: mirror one target wallet's fills with our own sizing and guards (config `[copy]`).

This module owns the decision rules and nothing else: no socket, store, clock or sleep. The runner turns the
chain logs, RTDS trades and Data API rows into `TargetFill` events (one per source sighting, market and
outcome decoded from its own cache), keeps a `CopyView`, and executes the intents.

Per sighting: de-duplicated across sources and aggregated into one decision group (`copy_dedup`); a repeat
sighting of a decided group is recorded as `duplicate` (with that source's arrival time). A group is decided
when its `aggregate_ms` window closes (the runner wakes the strategy with a `TimerTick` at
`next_wakeup_ms()`), checking in this order; the first that fails is the recorded skip reason (`SkipReason`):

1. filters: market / tag list, minimum target notional, buys only, maker fills  → filtered
2. age of the target's fill > `max_age_s` (or dated more than that ahead)          → stale
3. the market is in the view / accepting orders                                   → unknown_market / not_accepting
4. SELL: we hold the token (the strategy's own shares)                            → no_position
5. book: best price moved past the threshold since the target's fill, or the
   spread is wider than `max_spread`                                              → slippage
6. size: mode `ratio` / `fixed` / `percent`, capped per trade, per market and in
   total (the caps shrink the order; `cap` when nothing viable is left)          → cap
   venue minimum ($1 marketable, the market's minimum shares resting), rounded up
   when `round_up_to_min`                                                         → min_size
7. not paused                                                                     → paused

Then one order (FAK by default) at the target's price plus `max_slippage` (default one tick), on tick, keyed
by `intent_key(name, condition, fill_id, target, token, side)` so that a restart never copies a fill twice.
SELLs mirror the target's reduction in proportion to our own position: sell `ours × sold / target's holding
before the sale`, never more than we hold net of our own open sells.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal
from enum import StrEnum
from typing import ClassVar, Literal, Protocol

from pydantic import Field, field_validator, model_validator

from pmbot.executor.intents import MIN_MARKETABLE_USDC, OrderIntent, intent_key
from pmbot.money import fmt
from pmbot.store.models import OrderType, Side
from pmbot.strategies.base import PAUSED, Decision, DecisionKind, MarketInfo, Strategy, StrategyConfig, StrategyView
from pmbot.strategies.copy_dedup import FillDeduper, FillGroup
from pmbot.strategies.events import (
    Event,
    MarketResolved,
    OrderFilled,
    OrderResult,
    TargetFill,
    TargetSource,
)
from pmbot.strategies.memview import MemoryView

__all__ = [
    "COPIED",
    "MIN_MARKETABLE_USDC",
    "CopyConfig",
    "CopyMemoryView",
    "CopyStrategy",
    "CopyView",
    "SkipReason",
    "copy_limit",
    "is_address",
    "seen_times",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
SHARE_STEP = Decimal("0.01")  # the venue takes share amounts to 2 decimals
COPIED = "copied"
"""The reason of a signal decision (an intent went to the executor)."""

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class SkipReason(StrEnum):
    """Why a target fill was not copied. Stable strings: reports and stored decisions use them."""

    STALE = "stale"
    SLIPPAGE = "slippage"
    MIN_SIZE = "min_size"
    CAP = "cap"
    FILTERED = "filtered"
    NO_POSITION = "no_position"
    DUPLICATE = "duplicate"
    UNKNOWN_MARKET = "unknown_market"  # the runner has no market info (tick, minimum) for the token
    NOT_ACCEPTING = "not_accepting"  # the market is closed or not accepting orders
    PAUSED = PAUSED


def is_address(value: str) -> bool:
    return bool(_ADDRESS.match(value))


def seen_times(detail: Mapping[str, str]) -> dict[TargetSource, int]:
    """Per source, when it delivered the fill a stored decision names (`seen_<source>_ms` keys): with the
    detail's `target_ts_ms` and the decision's `ts_ms` (our order's time) this is the per-source latency."""
    out = {}
    for src in TargetSource:
        raw = detail.get(f"seen_{src}_ms")
        if raw:
            out[src] = int(raw)
    return out


# ------------------------------------------------------------------------------------------ config


class CopyConfig(StrategyConfig):
    """`[copy]` (one target per strategy instance; the runner starts one instance per `--target`)."""

    target: str = Field(description="the target: a 0x address, or a username the runner resolves")
    address: str | None = Field(None, description="the target's wallet when `target` is a username")
    mode: Literal["ratio", "fixed", "percent"] = "ratio"
    ratio: Decimal = Field(Decimal("0.1"), gt=0, description="mode ratio: our shares = target's × ratio")
    fixed_usdc: Decimal = Field(Decimal(10), gt=0, description="mode fixed: USDC per copied buy")
    percent: Decimal = Field(Decimal(1), gt=0, le=100, description="mode percent: % of our balance per buy")
    max_per_trade_usdc: Decimal | None = Field(Decimal(25), ge=0, description="largest copied buy; 0 stops buys")
    max_per_market_usdc: Decimal | None = Field(Decimal(100), ge=0, description="our cost held in one market")
    max_total_usdc: Decimal | None = Field(Decimal(500), ge=0, description="our cost held in all markets")
    max_slippage: Decimal | None = Field(None, description="limit = target price ± this; default one tick")
    max_book_move: Decimal | None = Field(
        None, description="skip when the best price moved more than this since the fill; default: past our limit"
    )
    max_spread: Decimal | None = Field(Decimal("0.05"), description="skip when the spread is wider")
    require_book: bool = Field(False, description="skip when the runner has no book for the token yet")
    max_age_s: Decimal = Field(
        Decimal(30), gt=0, le=3600, description="older target fills (or dated this far ahead) are skipped as stale"
    )
    order_type: Literal["FAK", "FOK", "GTC"] = "FAK"
    round_up_to_min: bool = Field(False, description="raise a too-small order to the venue minimum")
    markets: tuple[str, ...] = Field((), description="only these condition ids or slugs (empty: all)")
    tags: tuple[str, ...] = Field((), description="only markets with one of these tags (empty: all)")
    min_target_usdc: Decimal = Field(_ZERO, ge=0, description="ignore target fills smaller than this (USDC)")
    buys_only: bool = False
    copy_maker_fills: bool = Field(True, description="false: skip fills where the target was the maker")
    aggregate_ms: int = Field(2, ge=0, le=1000, description="pieces of one target order within this are one")
    match_window_ms: int = Field(10_000, gt=0, description="cross-source match window for fills without tx hash")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        v = v.strip()
        if v.lower().startswith("0x"):
            if not is_address(v):
                raise ValueError("not a wallet address (0x followed by 40 hex digits)")
            return v.lower()
        if not _USERNAME.match(v):
            raise ValueError("must be a 0x wallet address or a Polymarket username")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is None:
            return None
        if not is_address(v.strip()):
            raise ValueError("not a wallet address (0x followed by 40 hex digits)")
        return v.strip().lower()

    @field_validator("max_slippage", "max_book_move", "max_spread")
    @classmethod
    def _fraction(cls, v: Decimal | None) -> Decimal | None:
        if v is not None and not (v.is_finite() and 0 <= v < 1):
            raise ValueError("must be in [0, 1)")
        return v

    @model_validator(mode="after")
    def _resolved(self) -> CopyConfig:
        if self.address is None and not is_address(self.target):
            raise ValueError(f"target {self.target!r} is a username: resolve it to its wallet (address = 0x…)")
        if self.address is not None and is_address(self.target) and self.address != self.target:
            raise ValueError(f"address {self.address} differs from target {self.target}")
        return self

    @property
    def wallet(self) -> str:
        """The target's wallet, lowercase."""
        return self.address if self.address is not None else self.target

    @property
    def max_age_ms(self) -> int:
        return int(self.max_age_s * 1000)


# ------------------------------------------------------------------------------------ the view


class CopyView(StrategyView, Protocol):
    """What the copy strategy reads besides the base view. `position(token)` must be THIS strategy's own
    shares (its filled orders, net), not the wallet's: a target sell never sells what we did not copy."""

    def balance(self) -> Decimal:
        """USDC available to the strategy (mode percent)."""
        ...

    def exposure(self, condition_id: str | None = None) -> Decimal:
        """Cost (USDC, fees included) of the shares this strategy holds: in one market, or in all when None."""
        ...

    def market_tags(self, condition_id: str) -> Collection[str]:
        """The market's tags (Gamma event tags, lowercase); empty when unknown."""
        ...

    def target_position(self, target: str, token_id: str) -> Decimal | None:
        """The target's holding of a token as known BEFORE any of its fills delivered to the strategy (the
        runner's /positions snapshot at start); None when unknown. The strategy tracks it from there."""
        ...


class CopyMemoryView(MemoryView):
    """A CopyView from events (tests, backtests): balance moves with our fills, exposure is average cost."""

    def __init__(
        self,
        markets: Iterable[MarketInfo] = (),
        *,
        balance: Decimal = Decimal(1000),
        tags: Mapping[str, Collection[str]] | None = None,
        target_positions: Mapping[str, Decimal] | None = None,
    ) -> None:
        super().__init__(tuple(markets))
        self._balance = balance
        self._tags = dict(tags or {})
        self._target_positions = dict(target_positions or {})
        self._cost: dict[str, Decimal] = {}
        self._cid: dict[str, str] = {}
        self._seen_fills: set[str] = set()

    def balance(self) -> Decimal:
        return self._balance

    def set_balance(self, balance: Decimal) -> None:
        self._balance = balance

    def exposure(self, condition_id: str | None = None) -> Decimal:
        return sum(
            (c for tok, c in self._cost.items() if condition_id is None or self._cid[tok] == condition_id), _ZERO
        )

    def market_tags(self, condition_id: str) -> Collection[str]:
        return self._tags.get(condition_id, ())

    def target_position(self, target: str, token_id: str) -> Decimal | None:
        return self._target_positions.get(token_id)

    def apply(self, event: Event) -> None:
        if isinstance(event, OrderFilled) and event.fill_id not in self._seen_fills:
            self._seen_fills.add(event.fill_id)
            held = self.position(event.token_id)
            cost = self._cost.get(event.token_id, _ZERO)
            self._cid[event.token_id] = event.condition_id
            if event.side is Side.BUY:
                self._cost[event.token_id] = cost + event.price * event.size + event.fee
                self._balance -= event.price * event.size + event.fee
            elif held > 0:
                sold = min(event.size, held)
                self._cost[event.token_id] = cost - cost * sold / held
                self._balance += event.price * sold - event.fee
        elif isinstance(event, MarketResolved):
            for tok, cid in self._cid.items():
                if cid == event.condition_id and tok in self._cost:
                    if tok == event.winning_token_id:
                        self._balance += self.position(tok)
                    self._cost[tok] = _ZERO
        super().apply(event)
        if isinstance(event, MarketResolved):
            for tok, cid in self._cid.items():
                if cid == event.condition_id:
                    self._positions[tok] = _ZERO


# ------------------------------------------------------------------------------------ pure pricing


def copy_limit(side: Side, target_price: Decimal, slippage: Decimal, tick: Decimal) -> Decimal:
    """Our limit: the target's price plus slippage for a BUY (rounded DOWN to tick), minus it for a SELL
    (rounded UP), inside [tick, 1 − tick]. The rounding is always in our favour."""
    if side is Side.BUY:
        p = ((target_price + slippage) / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    else:
        p = ((target_price - slippage) / tick).to_integral_value(rounding=ROUND_CEILING) * tick
    return min(max(p, tick), _ONE - tick)


def _shares_down(value: Decimal) -> Decimal:
    return value.quantize(SHARE_STEP, rounding=ROUND_DOWN) if value > 0 else _ZERO


def _shares_up(value: Decimal) -> Decimal:
    return value.quantize(SHARE_STEP, rounding=ROUND_UP)


# ----------------------------------------------------------------------------------------- strategy


@dataclass(slots=True)
class _Open:
    """One of our orders not yet settled: what it may still add to (BUY) or take from (SELL) our holding."""

    token_id: str
    condition_id: str
    side: Side
    price: Decimal
    size: Decimal
    booked: Decimal = _ZERO  # filled shares already in the view's position (OrderFilled seen)
    final_filled: Decimal | None = None  # set by a final OrderResult

    @property
    def outstanding(self) -> Decimal:
        total = self.size if self.final_filled is None else self.final_filled
        return max(_ZERO, total - self.booked)


class _SkipError(Exception):
    def __init__(self, reason: str, why: str, **detail: str) -> None:
        super().__init__(why)
        self.reason = reason
        self.detail = {"why": why, **detail}


class CopyStrategy(Strategy[CopyConfig]):
    """Mirror one target. Runner-facing extras: `next_wakeup_ms()`, `watermark()`, `restore()`."""

    name = "copy"
    config_model: ClassVar[type[StrategyConfig]] = CopyConfig
    config_section: ClassVar[str] = "copy"
    view: CopyView

    def __init__(
        self, view: CopyView, config: CopyConfig | Mapping[str, object] | None = None, *, name: str | None = None
    ) -> None:
        super().__init__(view, config, name=name)
        self.view = view

    def on_start(self) -> None:
        cfg = self.config
        retention = max(cfg.max_age_ms, cfg.match_window_ms) * 4 + 60_000
        self._dedup = FillDeduper(
            aggregate_ms=cfg.aggregate_ms, match_window_ms=cfg.match_window_ms, retention_ms=retention
        )
        self._open: dict[str, _Open] = {}
        self._target_pos: dict[str, Decimal] = {}

    # ------------------------------------------------------------------ runner-facing

    def next_wakeup_ms(self) -> int | None:
        """When a fill waiting in its aggregation window must be decided: deliver a TimerTick then."""
        return self._dedup.next_deadline_ms()

    def watermark(self, source: TargetSource) -> int | None:
        """The target time up to which `source` has been fully decided (store it; after a restart re-read the
        source from here less `match_window_ms`, and `restore()` the recent decisions)."""
        return self._dedup.watermark(self.config.wallet, source)

    def pending(self) -> tuple[FillGroup, ...]:
        return self._dedup.pending()

    def restore(self, decisions: Iterable[Decision]) -> int:
        """Rebuild the de-duplication state from decisions stored before a restart (this strategy's, newest
        `max_age_s + match_window_ms` at least), so a fill decided before is `duplicate`, never copied again.
        Call after `start()` and before the first event. Returns how many fills were restored."""
        if not hasattr(self, "_dedup"):
            raise RuntimeError(f"strategy {self.name}: restore() needs start() first")
        groups: dict[str, FillGroup] = {}
        for d in decisions:
            g = _group_from_detail(d)
            if g is None or g.target != self.config.wallet:
                continue
            known = groups.get(g.fill_id)
            if known is None:
                groups[g.fill_id] = g
            else:  # a later sighting (`duplicate`) of a fill restored already: keep what it adds
                for src, ms in g.seen_ms.items():
                    known.seen_ms.setdefault(src, ms)
                known.intent_key = known.intent_key or g.intent_key
        for g in groups.values():
            self._dedup.restore(g)
            if g.intent_key:
                self._sent_keys.add(g.intent_key)
        return len(groups)

    # ------------------------------------------------------------------ events

    def on_event(self, event: Event) -> None:
        now = self.view.now_ms()
        self._decide_due(now)
        if isinstance(event, TargetFill):
            self._on_target_fill(event, now)
        elif isinstance(event, OrderFilled):
            o = self._open.get(event.key)
            if o is not None:
                o.booked += event.size
                self._settle(event.key, o)
        elif isinstance(event, OrderResult):
            o = self._open.get(event.key)
            if o is not None and event.status.is_final:
                o.final_filled = event.filled_size
                self._settle(event.key, o)
        self._dedup.prune(now)

    def on_stop(self) -> None:
        # Fills still in their window are neither copied nor recorded: the watermark stays below them, so
        # the next run re-reads and decides them (or records them stale).
        self._dedup.drain()

    def _settle(self, key: str, o: _Open) -> None:
        if o.final_filled is not None and o.outstanding == 0:
            del self._open[key]

    def _decide_due(self, now: int) -> None:
        for g in self._dedup.due(now):
            self._decide_group(g, now)

    def _on_target_fill(self, f: TargetFill, now: int) -> None:
        if f.target.lower() != self.config.wallet:
            return  # another instance's target: the runner may fan every fill out to every instance
        if not (f.size.is_finite() and f.size > 0 and f.price.is_finite() and 0 < f.price < 1):
            # A decoding bug upstream, not a market condition: say so, and never size an order from it.
            self.warn(
                "malformed_target_fill",
                ts_ms=now,
                condition_id=f.condition_id,
                token_id=f.token_id,
                detail={"source": str(f.source), "tx_hash": f.tx_hash, "price": fmt(f.price), "size": fmt(f.size)},
            )
            return
        s = self._dedup.add(f, now)
        g = s.group
        if s.new_group:
            if self.config.aggregate_ms == 0:
                self._decide_group(g, now)
            return
        if not g.decided:
            return  # joined a group still in its window
        detail = g.detail()
        detail.update(
            source=str(f.source),
            seen_ms=str(f.seen_ts_ms),
            decided_reason=g.reason,
            copied_key=g.intent_key or "",
            redelivery=str(s.redelivery).lower(),
        )
        self.skip(SkipReason.DUPLICATE, ts_ms=now, condition_id=g.condition_id, token_id=g.token_id, detail=detail)

    # ------------------------------------------------------------------ the rules

    def _decide_group(self, g: FillGroup, now: int) -> None:
        before = self._target_holding(g.token_id)
        # The target's holding moves with every fill of it we decide, whatever we do about it.
        if g.side is Side.BUY:
            self._target_pos[g.token_id] = before + g.size
        else:
            self._target_pos[g.token_id] = max(_ZERO, before - g.size)
        detail = g.detail()
        detail["age_ms"] = str(now - g.target_ts_ms)
        try:
            intent = self._intent(g, now, before, detail)
        except _SkipError as skip:
            detail.update(skip.detail)
            self._dedup.mark_decided(g, skip.reason, None)
            self.skip(skip.reason, ts_ms=now, condition_id=g.condition_id, token_id=g.token_id, detail=detail)
            return
        if not self.submit(intent):  # the key was sent before this run: the same fill, decided already
            detail["why"] = "order key already sent"
            self._dedup.mark_decided(g, SkipReason.DUPLICATE, intent.key)
            self.skip(SkipReason.DUPLICATE, ts_ms=now, condition_id=g.condition_id, token_id=g.token_id, detail=detail)
            return
        self._open[intent.key] = _Open(intent.token_id, intent.condition_id, intent.side, intent.price, intent.size)
        self._dedup.mark_decided(g, COPIED, intent.key)
        self.signal(
            COPIED, ts_ms=now, condition_id=g.condition_id, token_id=g.token_id, intent_key=intent.key, detail=detail
        )

    def _intent(self, g: FillGroup, now: int, target_before: Decimal, detail: dict[str, str]) -> OrderIntent:
        cfg = self.config
        self._filters(g)
        age = now - g.target_ts_ms
        if age > cfg.max_age_ms:
            raise _SkipError(SkipReason.STALE, f"the target's fill is {fmt(Decimal(age) / 1000)} s old")
        if -age > cfg.max_age_ms:  # a source's clock (or row) we cannot trust: its price is no guide either
            raise _SkipError(
                SkipReason.STALE, f"the target's fill is dated {fmt(Decimal(-age) / 1000)} s in the future"
            )
        m = self.view.market(g.condition_id)
        if m is None:
            raise _SkipError(SkipReason.UNKNOWN_MARKET, "no market info (tick size, minimum) for this token")
        if m.closed or not m.accepting_orders:
            raise _SkipError(SkipReason.NOT_ACCEPTING, "the market is not accepting orders")
        held = _ZERO
        if g.side is Side.SELL:
            held = self.view.position(g.token_id) - self._outstanding(g.token_id, Side.SELL)
            if held <= 0:
                raise _SkipError(SkipReason.NO_POSITION, "we hold none of this token from copying")
        slippage = cfg.max_slippage if cfg.max_slippage is not None else m.tick_size
        limit = copy_limit(g.side, g.price, slippage, m.tick_size)
        detail["limit"] = fmt(limit)
        self._book_guard(g, limit, detail)
        if g.side is Side.BUY:
            shares, capped = self._buy_size(g, m, limit)
        else:
            shares, capped = self._sell_size(g, m, limit, held, target_before)
        if capped:
            detail["capped_by"] = capped
        if self.paused:
            raise _SkipError(SkipReason.PAUSED, self._paused_reason or "paused")
        order_type = OrderType(cfg.order_type)
        detail.update(size=fmt(shares), notional=fmt(shares * limit), order_type=str(order_type), mode=cfg.mode)
        return OrderIntent(
            key=intent_key(self.name, g.condition_id, g.fill_id, g.target, g.token_id, str(g.side)),
            strategy=self.name,
            token_id=g.token_id,
            condition_id=g.condition_id,
            side=g.side,
            price=limit,
            size=shares,
            order_type=order_type,
            signal_ms=now,
            meta={
                "target": g.target,
                "fill_id": g.fill_id,
                "tx_hash": detail["tx_hash"],
                "log_index": detail["log_index"],
                "outcome": g.outcome,
            },
        )

    def _filters(self, g: FillGroup) -> None:
        cfg = self.config
        if cfg.markets:
            m = self.view.market(g.condition_id)
            names = {g.condition_id.lower(), (m.slug.lower() if m else "")}
            if not names & {x.lower() for x in cfg.markets}:
                raise _SkipError(SkipReason.FILTERED, "market not in `markets`")
        if cfg.tags:
            tags = {t.lower() for t in self.view.market_tags(g.condition_id)}
            if not tags & {t.lower() for t in cfg.tags}:
                raise _SkipError(SkipReason.FILTERED, "market has none of `tags`")
        if g.side is Side.SELL and cfg.buys_only:
            raise _SkipError(SkipReason.FILTERED, "buys_only: target sells are not mirrored")
        if g.maker and not cfg.copy_maker_fills:
            raise _SkipError(SkipReason.FILTERED, "the target was the maker (copy_maker_fills = false)")
        notional = g.price * g.size
        if notional < cfg.min_target_usdc:
            raise _SkipError(SkipReason.FILTERED, f"target fill {fmt(notional)} USDC < min_target_usdc")

    def _book_guard(self, g: FillGroup, limit: Decimal, detail: dict[str, str]) -> None:
        cfg = self.config
        book = self.view.book(g.token_id)
        if book is None:
            if cfg.require_book:
                raise _SkipError(SkipReason.SLIPPAGE, "no book for the token yet (require_book)")
            detail["book"] = "unknown"
            return
        bid = book.bids[0].price if book.bids else None
        ask = book.asks[0].price if book.asks else None
        detail.update(best_bid=fmt(bid) or "none", best_ask=fmt(ask) or "none")
        ours = ask if g.side is Side.BUY else bid
        if ours is None:
            raise _SkipError(SkipReason.SLIPPAGE, f"no {'asks' if g.side is Side.BUY else 'bids'} to take")
        move = ours - g.price if g.side is Side.BUY else g.price - ours
        limit_room = limit - g.price if g.side is Side.BUY else g.price - limit
        threshold = cfg.max_book_move if cfg.max_book_move is not None else limit_room
        detail["book_move"] = fmt(move)
        if move > threshold:
            raise _SkipError(
                SkipReason.SLIPPAGE, f"book moved {fmt(move)} since the target's fill (> {fmt(threshold)})"
            )
        if cfg.max_spread is not None and bid is not None and ask is not None and ask - bid > cfg.max_spread:
            raise _SkipError(SkipReason.SLIPPAGE, f"spread {fmt(ask - bid)} > max_spread {fmt(cfg.max_spread)}")

    def _min_shares(self, m: MarketInfo, limit: Decimal) -> Decimal:
        if self.config.order_type == "GTC":
            return m.min_order_size
        return _shares_up(MIN_MARKETABLE_USDC / limit)

    def _buy_size(self, g: FillGroup, m: MarketInfo, limit: Decimal) -> tuple[Decimal, str]:
        cfg = self.config
        if cfg.mode == "ratio":
            want = _shares_down(g.size * cfg.ratio)
        elif cfg.mode == "fixed":
            want = _shares_down(cfg.fixed_usdc / limit)
        else:
            want = _shares_down(self.view.balance() * cfg.percent / _HUNDRED / limit)
        # Room under each cap, in USDC at our limit (open buys count: they may still fill).
        rooms: list[tuple[str, Decimal]] = []
        if cfg.max_per_trade_usdc is not None:
            rooms.append(("max_per_trade_usdc", cfg.max_per_trade_usdc))
        if cfg.max_per_market_usdc is not None:
            used = self.view.exposure(g.condition_id) + self._open_buy_usdc(g.condition_id)
            rooms.append(("max_per_market_usdc", cfg.max_per_market_usdc - used))
        if cfg.max_total_usdc is not None:
            used = self.view.exposure(None) + self._open_buy_usdc(None)
            rooms.append(("max_total_usdc", cfg.max_total_usdc - used))
        # What a share costs against the caps: the limit plus the market's taker fee on it (positions are
        # booked fees included, so a cap sized at the limit alone was passed by the fee).
        unit = limit + m.fees.fee(_HUNDRED, limit) / _HUNDRED
        shares, capped = want, ""
        for cap_name, room in rooms:
            fit = _shares_down(room / unit)
            if fit < shares:
                shares, capped = fit, cap_name
        minimum = self._min_shares(m, limit)
        if shares >= minimum and shares > 0:
            return shares, capped
        if capped:
            raise _SkipError(
                SkipReason.CAP, f"{capped} leaves room for {fmt(shares)} shares (< minimum {fmt(minimum)})"
            )
        if not cfg.round_up_to_min:
            raise _SkipError(
                SkipReason.MIN_SIZE, f"{fmt(shares)} shares at {fmt(limit)} is under the venue minimum {fmt(minimum)}"
            )
        for cap_name, room in rooms:
            if minimum * unit > room:
                raise _SkipError(
                    SkipReason.CAP, f"rounding up to the minimum {fmt(minimum)} shares would pass {cap_name}"
                )
        return minimum, "round_up_to_min"

    def _sell_size(
        self, g: FillGroup, m: MarketInfo, limit: Decimal, held: Decimal, target_before: Decimal
    ) -> tuple[Decimal, str]:
        # The target sold `size` out of `target_before`: we sell the same fraction of ours. A target selling
        # more than we saw it hold is out entirely, and so are we.
        fraction = _ONE if target_before <= g.size else g.size / target_before
        shares = _shares_down(held * fraction)
        if held - shares < SHARE_STEP:
            shares = _shares_down(held)
        minimum = self._min_shares(m, limit)
        if shares >= minimum and shares > 0:
            return shares, ""
        if self.config.round_up_to_min and minimum <= held:
            return minimum, "round_up_to_min"
        raise _SkipError(
            SkipReason.MIN_SIZE, f"{fmt(shares)} shares at {fmt(limit)} is under the venue minimum {fmt(minimum)}"
        )

    def _target_holding(self, token_id: str) -> Decimal:
        pos = self._target_pos.get(token_id)
        if pos is None:
            seed = self.view.target_position(self.config.wallet, token_id)
            pos = self._target_pos[token_id] = seed if seed is not None and seed > 0 else _ZERO
        return pos

    def _outstanding(self, token_id: str, side: Side) -> Decimal:
        return sum((o.outstanding for o in self._open.values() if o.token_id == token_id and o.side is side), _ZERO)

    def _open_buy_usdc(self, condition_id: str | None) -> Decimal:
        return sum(
            (
                o.outstanding * o.price
                for o in self._open.values()
                if o.side is Side.BUY and (condition_id is None or o.condition_id == condition_id)
            ),
            _ZERO,
        )


# --------------------------------------------------------------------------------------- restart


def _group_from_detail(d: Decision) -> FillGroup | None:
    """A decided group from a stored decision's detail (see `FillGroup.detail`); None when it is not one."""
    det = d.detail
    if d.kind not in (DecisionKind.SIGNAL, DecisionKind.SKIP) or "fill_id" not in det or "target" not in det:
        return None
    try:
        first = TargetSource(det["first_source"])
        side = Side(det["side"])
        ts = int(det["target_ts_ms"])
        g = FillGroup(
            fill_id=det["fill_id"],
            target=det["target"].lower(),
            token_id=d.token_id,
            condition_id=d.condition_id,
            outcome=det.get("outcome", ""),
            side=side,
            target_ts_ms=ts,
            first_source=first,
            deadline_ms=0,
            decided=True,
            reason=det.get("decided_reason") or d.reason,
            intent_key=d.intent_key or det.get("copied_key") or None,
        )
        g.tx_hashes = [t for t in det.get("tx_hashes", "").split(",") if t]
        for item in det.get("log_indexes", "").split(","):
            if item:
                tx, _, idx = item.rpartition(":")
                g.log_indexes.append((tx, int(idx)))
        size = Decimal(det.get("target_size", "0"))
        price = Decimal(det.get("target_price", "0"))
        for src in det.get("sources", "").split(","):
            if not src:
                continue
            s = TargetSource(src)
            g.seen_ms[s] = int(det.get(f"seen_{src}_ms", "0"))
            g.source_ts_ms[s] = ts
            # Sizes per source are not stored; the group's size stands for each (a later piece from any
            # source then matches by tx hash or within the size, never as a new fill).
            g.sizes[s] = size
            g.notionals[s] = size * price
        if first not in g.sizes:
            g.sizes[first] = size
            g.notionals[first] = size * price
    except (KeyError, ValueError, ArithmeticError):
        return None
    return g
