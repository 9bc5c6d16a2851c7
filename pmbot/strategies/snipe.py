"""Expiration sniping: buy the likely outcome in a market's last seconds, when the rules a trader would write
down all agree. This module owns those rules (config `[snipe]`) and nothing else: no clock, socket, store
or sleep. The runner delivers events and executes the intents.

For each armed market, on every book change, reference price and timer tick, the rules are checked in
this order; the first that fails is recorded as a skip with a stable reason (`SkipReason`):

1. time: entries only while `stop_s` < seconds left ≤ `window_s`        → too_early / too_late
2. the market is accepting orders                                       → not_accepting
3. one entry per market and side (key from market, window end, token)   → already_entered
4. the leading side's best ask is inside [min_price, max_price]         → outside_band
5. fee-aware edge at that ask: 1 − p − fee(p)/shares ≥ min_edge, the fee from the market's own schedule
   (`FeeSchedule.fee`, the same function the paper exchange charges with)  → edge_below_min
6. depth at or under the limit covers `min_depth` (default: the order size) → depth_short
7. for crypto Up/Down markets, the Chainlink reference (spot or TWAP, as the market's text says) agrees
   with the side by `reference_margin` against the window's opening; ties go to Up
                                                                        → reference_unknown / reference_disagrees
8. not paused                                                           → paused

Then one FOK (or FAK) BUY at the limit: the band ceiling on tick, lowered when needed so that even a fill
at the limit keeps `min_edge` after fees. A skip is recorded when a market's reason changes, not on every
event, so the decision log reads like a trader's notes.

That order depends on the band, the fees, the tick and the size, never on the book: `anticipate()` predicts
both sides' orders from `ARM_LEAD_S` before the window, so the runner pre-arms (signs and records) them and
the tick costs only the checks and one POST.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator

from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.money import fmt
from pmbot.polymarket.models import BookLevel, FeeSchedule
from pmbot.store.models import OrderType, Side
from pmbot.strategies.base import PAUSED, MarketInfo, Strategy, StrategyConfig
from pmbot.strategies.events import BookChanged, Event, MarketResolved, ReferencePrice, TimerTick
from pmbot.strategies.reference import ReferenceTracker, ResolutionRule, parse_resolution_rule

__all__ = [
    "DEFAULT_USDC",
    "SkipReason",
    "SnipeConfig",
    "SnipeStrategy",
    "edge_limit",
    "entry_edge",
    "fee_per_share",
    "walk_asks",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_SHARE_STEP = Decimal("0.01")  # the venue takes share amounts to 2 decimals
DEFAULT_USDC = Decimal(10)
ARM_LEAD_S = 30  # orders are pre-armed this long before the entry window opens (venue seconds)


class SkipReason(StrEnum):
    """Why the sniper did not buy. Stable strings: reports and stored decisions use them."""

    OUTSIDE_BAND = "outside_band"
    TOO_EARLY = "too_early"
    TOO_LATE = "too_late"
    REFERENCE_DISAGREES = "reference_disagrees"
    REFERENCE_UNKNOWN = "reference_unknown"
    DEPTH_SHORT = "depth_short"
    EDGE_BELOW_MIN = "edge_below_min"
    NOT_ACCEPTING = "not_accepting"
    ALREADY_ENTERED = "already_entered"
    PAUSED = PAUSED


# ------------------------------------------------------------------------------------------ config


class SnipeConfig(StrategyConfig):
    """`[snipe]`: every rule the sniper follows. Size is `shares` or `usdc` (default 10 USDC), not both."""

    window_s: int = Field(60, gt=0, description="enter only in the market's last N seconds")
    stop_s: int = Field(2, ge=0, description="stop entering N seconds before the end")
    min_price: Decimal = Field(Decimal("0.90"), gt=0, lt=1, description="band floor for the leading side's ask")
    max_price: Decimal = Field(Decimal("0.99"), gt=0, lt=1, description="band ceiling; also the order's limit")
    shares: Decimal | None = Field(None, gt=0, description="order size in shares")
    usdc: Decimal | None = Field(None, gt=0, description="order size in USDC at the limit (default 10)")
    order_type: Literal["FOK", "FAK"] = "FOK"
    min_depth: Decimal | None = Field(None, ge=0, description="shares at or under the limit; default: order size")
    min_edge: Decimal = Field(Decimal("0.005"), ge=0, lt=1, description="1 - price - fee per share, at least")
    confirm_reference: bool = True
    reference_margin: Decimal = Field(Decimal("0.0005"), ge=0, lt=1, description="0.0005 = 0.05 %")
    reference_max_age_s: int = Field(5, gt=0, description="a reference older than this is unknown")

    @field_validator("stop_s")
    @classmethod
    def _stop_inside_window(cls, v: int, info: ValidationInfo) -> int:
        window = info.data.get("window_s")
        if window is not None and v >= window:
            raise ValueError(f"must be less than window_s ({window})")
        return v

    @field_validator("max_price")
    @classmethod
    def _band_ordered(cls, v: Decimal, info: ValidationInfo) -> Decimal:
        low = info.data.get("min_price")
        if low is not None and low > v:
            raise ValueError(f"must be at least min_price ({low})")
        return v

    @field_validator("usdc")
    @classmethod
    def _one_size(cls, v: Decimal | None, info: ValidationInfo) -> Decimal | None:
        if v is not None and info.data.get("shares") is not None:
            raise ValueError("give the size as shares or as usdc, not both")
        return v


# ------------------------------------------------------------------------------------ pure pricing


def fee_per_share(fees: FeeSchedule, price: Decimal, shares: Decimal) -> Decimal:
    """The taker fee per share for an order of `shares` at `price`, from the market's schedule (the venue
    rounds the order's fee, not the share's, so the size matters)."""
    return fees.fee(shares, price) / shares


def entry_edge(fees: FeeSchedule, price: Decimal, shares: Decimal) -> Decimal:
    """What one share bought at `price` earns if it wins, after the taker fee: 1 − p − fee/share."""
    return _ONE - price - fee_per_share(fees, price, shares)


def walk_asks(
    asks: Sequence[BookLevel], limit: Decimal, shares: Decimal, fees: FeeSchedule
) -> tuple[Decimal, Decimal, Decimal]:
    """Take up to `shares` from asks (best first) at or under `limit`: (filled, cost before fees, fees),
    fees charged per level as the paper exchange does."""
    filled = cost = fee = _ZERO
    for level in asks:
        if level.price > limit or filled >= shares:
            break
        take = min(level.size, shares - filled)
        filled += take
        cost += level.price * take
        fee += fees.fee(take, level.price)
    return filled, cost, fee


def edge_limit(
    fees: FeeSchedule,
    ceiling: Decimal,
    floor: Decimal,
    tick: Decimal,
    min_edge: Decimal,
    size_at: Callable[[Decimal], Decimal],
) -> Decimal | None:
    """The highest price on tick, at most `ceiling` and at least `floor`, at which an order of
    `size_at(price)` shares still keeps `min_edge` a share after fees; None when no price in the band does.
    (The size depends on the price when it is given in USDC, and the venue rounds the order's fee.)"""
    price = (ceiling / tick).to_integral_value(rounding=ROUND_FLOOR) * tick
    while price >= floor and price > 0:
        if entry_edge(fees, price, size_at(price)) >= min_edge:
            return price
        price -= tick
    return None


# ----------------------------------------------------------------------------------------- strategy


@dataclass(slots=True)
class _Terms:
    """What an entry in one market looks like whatever the book: worked out once per MarketInfo (it is
    replaced, never mutated, when the market changes) instead of on every book change. Only the rules'
    arithmetic is kept here, so a changed market (fees, tick) or a new config gives new terms."""

    info: MarketInfo
    limit: Decimal | None  # the order's limit (edge_limit), None when no price in the band keeps min_edge
    limit_text: str
    shares_at_limit: Decimal
    shares_at_ceiling: Decimal  # the size the edge check at the ask uses (at max_price)
    keys: dict[str, str]  # token → the entry's idempotency key
    outcomes: dict[str, str]  # token → outcome name
    up_down: bool
    edges: dict[Decimal, Decimal]  # ask → entry_edge at shares_at_ceiling (asks are on tick: few entries)


@dataclass(slots=True)
class _MarketState:
    last_decision: tuple[str, str] | None = None  # (reason, token) last recorded, to record changes only
    rule: ResolutionRule | None = None
    rule_checked: bool = False
    opening: Decimal | None = None
    resolved: bool = False
    terms: _Terms | None = None


class SnipeStrategy(Strategy[SnipeConfig]):
    name = "snipe"
    config_model: ClassVar[type[StrategyConfig]] = SnipeConfig
    config_section: ClassVar[str] = "snipe"

    def on_start(self) -> None:
        cfg = self.config
        self._refs = ReferenceTracker(max_age_ms=cfg.reference_max_age_s * 1000)
        self._markets: dict[str, _MarketState] = {}
        self._entered: set[tuple[str, str]] = set()  # (condition id, token id)
        if not cfg.confirm_reference:
            self.warn(
                "reference_confirmation_off",
                ts_ms=self.view.now_ms(),
                detail={"why": "confirm_reference = false: Up/Down entries are not checked against Chainlink"},
            )

    def on_event(self, event: Event) -> None:
        if isinstance(event, BookChanged):
            market = self.view.market(event.condition_id)
            if market is not None:
                self._evaluate(market)
        elif isinstance(event, ReferencePrice):
            self._refs.add(event)
            for market in self.view.markets():
                self._evaluate(market)
        elif isinstance(event, TimerTick):
            for market in self.view.markets():
                self._evaluate(market)
        elif isinstance(event, MarketResolved):
            self._state(event.condition_id).resolved = True

    # ------------------------------------------------------------------ the rules

    def _state(self, condition_id: str) -> _MarketState:
        st = self._markets.get(condition_id)
        if st is None:
            st = self._markets[condition_id] = _MarketState()
        return st

    def _evaluate(self, m: MarketInfo) -> None:
        cfg = self.config
        st = self._state(m.condition_id)
        if st.resolved:
            return
        now = self.view.now_ms()
        if m.end_ms is None:
            self._note(st, m, "no_end_time", "", now, warning=True)
            return
        left_ms = m.end_ms - now
        if left_ms > cfg.window_s * 1000:
            if st.last_decision != (SkipReason.TOO_EARLY, ""):  # the detail only for a row that is written
                self._note(st, m, SkipReason.TOO_EARLY, "", now, {"seconds_left": _secs(left_ms)})
            return
        if left_ms <= cfg.stop_s * 1000:
            if st.last_decision != (SkipReason.TOO_LATE, ""):
                self._note(st, m, SkipReason.TOO_LATE, "", now, {"seconds_left": _secs(left_ms)})
            return
        if m.closed or not m.accepting_orders:
            self._note(st, m, SkipReason.NOT_ACCEPTING, "", now)
            return
        token, asks = self._leading(m)
        if token is None:
            self._note(st, m, SkipReason.OUTSIDE_BAND, "", now, {"ask": "none"})
            return
        if (m.condition_id, token) in self._entered:
            self._note(st, m, SkipReason.ALREADY_ENTERED, token, now)
            return
        ask = asks[0].price if asks else None
        if ask is None or not cfg.min_price <= ask <= cfg.max_price:
            if st.last_decision != (SkipReason.OUTSIDE_BAND, token):
                self._note(st, m, SkipReason.OUTSIDE_BAND, token, now, {"ask": _s(ask)})
            return
        terms = self._terms(st, m)
        edge = terms.edges.get(ask)
        if edge is None:
            edge = entry_edge(m.fees, ask, terms.shares_at_ceiling)
            if len(terms.edges) < 1000:  # on tick there are at most a few hundred; an off-tick venue is not a leak
                terms.edges[ask] = edge
        if edge < cfg.min_edge:
            self._note(st, m, SkipReason.EDGE_BELOW_MIN, token, now, {"ask": _s(ask), "edge": _e(edge)})
            return
        limit = terms.limit
        if limit is None or limit < ask:  # only fee rounding can get here after the edge check above
            self._note(st, m, SkipReason.EDGE_BELOW_MIN, token, now, {"ask": _s(ask), "edge": _e(edge)})
            return
        shares = terms.shares_at_limit
        depth = sum((lv.size for lv in asks if lv.price <= limit), _ZERO)
        need = cfg.min_depth if cfg.min_depth is not None else shares
        if depth < need or depth <= 0:
            self._note(
                st, m, SkipReason.DEPTH_SHORT, token, now, {"depth": _s(depth), "need": _s(need), "limit": _s(limit)}
            )
            return
        filled, cost, fees = walk_asks(asks, limit, shares, m.fees)
        walk_edge = (filled - cost - fees) / filled
        if walk_edge < cfg.min_edge:
            self._note(st, m, SkipReason.EDGE_BELOW_MIN, token, now, {"ask": _s(ask), "edge": _e(walk_edge)})
            return
        outcome = terms.outcomes.get(token, "")
        ref_detail: dict[str, str] = {}
        if cfg.confirm_reference and terms.up_down:
            verdict = self._confirm(st, m, outcome, now, ref_detail)
            if verdict is not None:
                self._note(st, m, verdict, token, now, ref_detail)
                return
        if self.paused:
            self._note(st, m, SkipReason.PAUSED, token, now, {"ask": _s(ask)})
            return
        key = terms.keys[token]
        detail = _entry_detail(outcome, ask, terms.limit_text, walk_edge, depth, left_ms, ref_detail)
        intent = OrderIntent(
            key=key,
            strategy=self.name,
            token_id=token,
            condition_id=m.condition_id,
            side=Side.BUY,
            price=limit,
            size=shares,
            order_type=OrderType(cfg.order_type),
            signal_ms=now,
            meta=detail,
        )
        if not self.submit(intent):  # the base refuses a key it already sent: count it as entered
            self._entered.add((m.condition_id, token))
            self._note(st, m, SkipReason.ALREADY_ENTERED, token, now)
            return
        self._entered.add((m.condition_id, token))
        st.last_decision = ("entry", token)
        self.signal("entry", ts_ms=now, condition_id=m.condition_id, token_id=token, intent_key=key, detail=detail)

    def _terms(self, st: _MarketState, m: MarketInfo) -> _Terms:
        """The market's entry terms (see _Terms), kept on its state until its MarketInfo is replaced."""
        if st.terms is not None and st.terms.info is m:
            return st.terms
        cfg = self.config
        assert m.end_ms is not None
        limit = edge_limit(m.fees, cfg.max_price, cfg.min_price, m.tick_size, cfg.min_edge, self._shares)
        if not st.rule_checked:  # parsed ahead; _confirm still warns on its first look if there is none
            st.rule = parse_resolution_rule(m.description, m.resolution_source)
        st.terms = _Terms(
            info=m,
            limit=limit,
            limit_text=fmt(limit) if limit is not None else "none",
            shares_at_limit=self._shares(limit) if limit is not None else _ZERO,
            shares_at_ceiling=self._shares(cfg.max_price),
            keys={t: intent_key(self.name, m.condition_id, m.end_ms, t) for t in m.token_ids},
            outcomes={o.token_id: o.outcome for o in reversed(m.outcomes)},  # the first one wins, as outcome_of
            up_down=_is_up_down(m),
            edges={},
        )
        return st.terms

    def anticipate(self, now_ms: int) -> list[OrderIntent]:
        """Both sides of each market whose entry window opens within `ARM_LEAD_S` (or is open), at the limit
        `_evaluate` would use: the order does not depend on the book, only on the band, the fees and the
        tick, so it can be signed and recorded before the window (the runner pre-arms it)."""
        cfg = self.config
        out: list[OrderIntent] = []
        if self.paused:
            return out
        for m in self.view.markets():
            st = self._markets.get(m.condition_id)
            if m.end_ms is None or m.closed or not m.accepting_orders or (st is not None and st.resolved):
                continue
            left_ms = m.end_ms - now_ms
            if not cfg.stop_s * 1000 < left_ms <= (cfg.window_s + ARM_LEAD_S) * 1000:
                continue
            # the same terms the tick's _evaluate uses, worked out here, ahead of the window
            st = self._state(m.condition_id)
            terms = self._terms(st, m)
            limit = terms.limit
            if limit is None:
                continue
            self._prepare(st, m, terms, now_ms)
            for token in m.token_ids:
                if (m.condition_id, token) in self._entered:
                    continue
                out.append(
                    OrderIntent(
                        key=terms.keys[token],
                        strategy=self.name,
                        token_id=token,
                        condition_id=m.condition_id,
                        side=Side.BUY,
                        price=limit,
                        size=terms.shares_at_limit,
                        order_type=OrderType(cfg.order_type),
                        signal_ms=now_ms,
                        meta={"outcome": terms.outcomes.get(token, ""), "armed": "ahead of the window"},
                    )
                )
        return out

    def _prepare(self, st: _MarketState, m: MarketInfo, terms: _Terms, now_ms: int) -> None:
        """Work the tick's rules would otherwise do on the entry's own event, done here ahead of it: the
        edge at every ask on tick inside the band (what `_evaluate` caches on first sight), and the
        window's opening reference price once the stream has it (once the market has opened: before,
        the latest price is not the opening's). The same values `_evaluate` would compute (it still
        computes any it does not find), so the decision cannot differ."""
        cfg = self.config
        if not terms.edges and m.tick_size > 0:
            tick = m.tick_size
            price = (cfg.min_price / tick).to_integral_value(rounding=ROUND_CEILING) * tick
            n = 0
            while price <= cfg.max_price and n < 1000:  # the cache's own bound
                terms.edges[price] = entry_edge(m.fees, price, terms.shares_at_ceiling)
                price += tick
                n += 1
        if cfg.confirm_reference and terms.up_down and st.rule is not None:
            self._find_opening(st, m, st.rule, now_ms)

    def _find_opening(self, st: _MarketState, m: MarketInfo, rule: ResolutionRule, now_ms: int) -> None:
        """Keep the stream's value at the window's opening once found (the tracker prunes old observations),
        unless the runner gives the official price to beat; only once the market has opened: before, the
        value at its opening would be the latest price, not the opening's."""
        if m.reference_open is None and st.opening is None and m.start_ms is not None and now_ms >= m.start_ms:
            st.opening = self._refs.value_at(rule, m.start_ms, opening=True)

    def _leading(self, m: MarketInfo) -> tuple[str | None, Sequence[BookLevel]]:
        """The market's favourite: the token whose best ask (else best bid) is highest; ties to the first
        outcome. Returns its asks (best first)."""
        best: tuple[Decimal, str, Sequence[BookLevel]] | None = None
        for token in m.token_ids:
            book = self.view.book(token)
            if book is None:
                continue
            asks, bids = book.asks, book.bids
            score = asks[0].price if asks else (bids[0].price if bids else None)
            if score is not None and (best is None or score > best[0]):
                best = (score, token, asks)
        return (None, ()) if best is None else (best[1], best[2])

    def _shares(self, price: Decimal) -> Decimal:
        cfg = self.config
        if cfg.shares is not None:
            return cfg.shares
        usdc = cfg.usdc if cfg.usdc is not None else DEFAULT_USDC
        return max((usdc / price).quantize(_SHARE_STEP, rounding=ROUND_DOWN), _SHARE_STEP)

    def _confirm(
        self, st: _MarketState, m: MarketInfo, outcome: str, now: int, detail: dict[str, str]
    ) -> SkipReason | None:
        """None when the reference agrees with `outcome`; else the skip reason (details filled in)."""
        if not st.rule_checked:
            st.rule_checked = True
            if st.terms is None or st.terms.info is not m:  # else _terms parsed it from this market's text
                st.rule = parse_resolution_rule(m.description, m.resolution_source)
            if st.rule is None:
                self.warn(
                    SkipReason.REFERENCE_UNKNOWN,
                    ts_ms=now,
                    condition_id=m.condition_id,
                    detail={"why": "cannot tell the resolution rule from the market's text", "slug": m.slug},
                )
        rule = st.rule
        if rule is None:
            detail["why"] = "unknown resolution rule"
            return SkipReason.REFERENCE_UNKNOWN
        detail["rule"] = rule.label
        # the runner's official price to beat wins; else the stream's value at the opening (_find_opening)
        self._find_opening(st, m, rule, now)
        opening = m.reference_open if m.reference_open is not None else st.opening
        current = self._refs.value_at(rule, now)
        if opening is None or current is None:
            detail["why"] = "no opening price" if opening is None else "no fresh reference price"
            return SkipReason.REFERENCE_UNKNOWN
        detail["reference"] = _s(current)
        detail["open"] = _s(opening)
        margin = self.config.reference_margin * opening
        side = outcome.lower()
        # Up wins ties (resolves Up when the end price is >= the opening), so Up agrees at >= and Down at >.
        agrees = current - opening >= margin if side == "up" else opening - current > margin
        return None if agrees else SkipReason.REFERENCE_DISAGREES

    def _note(
        self,
        st: _MarketState,
        m: MarketInfo,
        reason: str,
        token: str,
        now: int,
        detail: Mapping[str, str] | None = None,
        *,
        warning: bool = False,
    ) -> None:
        """Record a skip (or warning) only when the market's reason changes: a 100 ms book stream must not
        write a row per update, and the log still shows every transition."""
        reason = str(reason)
        if st.last_decision == (reason, token):
            return
        st.last_decision = (reason, token)
        if warning:
            self.warn(reason, ts_ms=now, condition_id=m.condition_id, token_id=token, detail=detail)
        else:
            self.skip(reason, ts_ms=now, condition_id=m.condition_id, token_id=token, detail=detail)


_ENTRY_KEYS = ("outcome", "ask", "limit", "edge", "depth", "seconds_left")


class _LazyText(Mapping[str, str]):
    """A decision detail whose text is built when first read (the decision log's write, a view, the
    executor's record of a submitted order), not on the entry's path: the intent is handed over before
    anyone reads it. Its keys are known up front (len() builds nothing); read-only, like every detail."""

    __slots__ = ("_build", "_keys", "_text")

    def __init__(self, keys: tuple[str, ...], build: Callable[[], dict[str, str]]) -> None:
        self._keys = keys
        self._build: Callable[[], dict[str, str]] | None = build
        self._text: dict[str, str] | None = None

    def _built(self) -> dict[str, str]:
        if self._text is None:
            assert self._build is not None
            self._text, self._build = self._build(), None
        return self._text

    def __getitem__(self, key: str) -> str:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return repr(self._built())


def _entry_detail(
    outcome: str, ask: Decimal, limit_text: str, edge: Decimal, depth: Decimal, left_ms: int, ref: dict[str, str]
) -> Mapping[str, str]:
    """The entry's detail (its signal's and its intent's: one read-only mapping, so neither copies it), the
    numbers formatted when first read."""

    def build() -> dict[str, str]:
        return {
            "outcome": outcome,
            "ask": fmt(ask),
            "limit": limit_text,
            "edge": _e(edge),
            "depth": fmt(depth),
            "seconds_left": _secs(left_ms),
            **ref,
        }

    keys = _ENTRY_KEYS + tuple(k for k in ref if k not in _ENTRY_KEYS)
    return MappingProxyType(_LazyText(keys, build))


def _is_up_down(m: MarketInfo) -> bool:
    return {o.outcome.lower() for o in m.outcomes} == {"up", "down"}


def _s(value: Decimal | None) -> str:
    return "none" if value is None else fmt(value)


def _e(edge: Decimal) -> str:
    return fmt(edge.quantize(Decimal("0.000001")))


def _secs(ms: int) -> str:
    return fmt(Decimal(ms) / 1000)
