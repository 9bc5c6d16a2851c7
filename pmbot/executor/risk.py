"""The risk gate: every intent passes `RiskGate.check` before it is written ahead and sent.

The gate keeps its own exact picture of what is at risk, updated by the executor through the `on_*`
methods (never recomputed from floats or marks):

- positions per (strategy, token), average-cost on micro-units through `pmbot.store.ledger` (the store's
  own rules and keys, so the gate and the reports agree to the micro-unit);
- open orders: a BUY reserves price × unfilled size (+ the fee allowance it was approved with); a SELL
  reserves the shares it may sell;
- today's realized PnL (UTC day) and the kill switch it trips.

A SELL reduces its own strategy's position: it is refused beyond what that strategy holds (minus what
its open SELLs already offer), even if another strategy holds more of the token. So the shares a SELL
gives up always come out of the position the store books it against.

Kill switch and today's PnL are shared by every process of a mode through one state document, merged
(never overwritten) with `merge_state`: a process adds the PnL it realized since its last merge and its
own trips; only a resume (`resumed_at_ms`) clears a trip, and a trip older than the last resume is void (a
trip made after this process adopted that resume never is, even in the same millisecond).

Exposure is cost basis, not mark-to-market: what we paid for what we hold plus what open BUYs may still
spend. BUYs that would breach a cap are rejected, never resized. SELLs that reduce a position bypass the
kill switch and the USDC caps: reducing risk must always be possible. Nothing here shorts: a SELL larger
than the shares held (minus those already offered) is rejected.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pmbot.config import RiskSettings
from pmbot.errors import InputError
from pmbot.executor.intents import OrderIntent, validate_intent
from pmbot.money import fmt, from_micro, to_micro
from pmbot.polymarket.models import FeeSchedule
from pmbot.store import ledger
from pmbot.store.models import OrderRecord, Position, PositionState, Side, TradeKind
from pmbot.timeutil import Clock, ms_to_iso

__all__ = ["Exposure", "Holding", "KillSwitch", "RiskCode", "RiskDecision", "RiskGate", "max_taker_fee"]

Slot = tuple[str, str]  # (strategy, token id): one position

_ZERO = Decimal(0)
_DAY_S = 86_400
STATE_VERSION = 1


class RiskCode(StrEnum):
    INVALID = "invalid"
    DUPLICATE = "duplicate_key"
    KILL_SWITCH = "kill_switch"
    DAILY_LOSS = "daily_loss_limit"
    ORDER_NOTIONAL = "max_order_notional"
    OPEN_ORDERS = "max_open_orders"
    MARKET = "max_position_per_market"
    TOTAL = "max_total_exposure"
    NO_POSITION = "no_position"


@dataclass(frozen=True, slots=True)
class RiskDecision:
    ok: bool
    reason: str | None = None  # one line for a person: "max_order_notional: order 60.00 USDC > limit 50.00"
    code: str | None = None  # a RiskCode, for code and for grouping in reports


APPROVED = RiskDecision(True)


@dataclass(frozen=True, slots=True)
class KillSwitch:
    tripped: bool = False
    tripped_at_ms: int | None = None
    reason: str | None = None  # what tripped it, for people
    cause: str | None = None  # RiskCode.DAILY_LOSS, or RiskCode.KILL_SWITCH for a manual/external trip


@dataclass(frozen=True, slots=True)
class Exposure:
    """A snapshot for status tables and tests. USDC amounts are cost basis (fees included)."""

    positions: Decimal  # cost basis of everything held
    open_buys: Decimal  # what open BUYs may still spend
    per_market: Mapping[str, Decimal]  # condition id -> positions + open buys in that market
    open_orders: int
    realized_today: Decimal
    kill_switch: KillSwitch

    @property
    def total(self) -> Decimal:
        return self.positions + self.open_buys


@dataclass(frozen=True, slots=True)
class Holding:
    token_id: str
    condition_id: str
    size: Decimal  # shares
    cost: Decimal  # cost basis, fees included
    strategy: str = ""


@dataclass(slots=True)
class _Open:
    """An open order's reservation. `fee_paid` counts against the fee allowance it was approved with."""

    key: str
    token_id: str
    condition_id: str
    side: Side
    price: Decimal
    size: Decimal
    fee_reserve: Decimal
    filled: Decimal = _ZERO
    fee_paid: Decimal = _ZERO
    strategy: str = ""

    @property
    def remaining(self) -> Decimal:
        return max(self.size - self.filled, _ZERO)

    @property
    def reserved_usdc(self) -> Decimal:
        if self.side is not Side.BUY:
            return _ZERO
        return self.price * self.remaining + max(self.fee_reserve - self.fee_paid, _ZERO)


class _OpenOrders:
    """Open reservations with running totals, so a check costs the same with 5 or 5 000 orders open.

    Every change to an order goes through `add` / `change` / `remove`, which take its old contribution
    out of the totals and put the new one in: Decimal addition is exact, so the totals always equal
    the sums they replace (the state-machine test checks them against an independent model)."""

    __slots__ = ("by_market", "orders", "reserved", "sells_by_slot")

    def __init__(self) -> None:
        self.orders: dict[str, _Open] = {}
        self.reserved = _ZERO  # what every open BUY may still spend (fees included)
        self.by_market: dict[str, Decimal] = {}
        self.sells_by_slot: dict[Slot, Decimal] = {}  # shares offered by open SELLs, per (strategy, token)

    def __contains__(self, key: object) -> bool:
        return key in self.orders

    def __len__(self) -> int:
        return len(self.orders)

    def get(self, key: str | None) -> _Open | None:
        return self.orders.get(key) if key is not None else None

    def values(self) -> Iterable[_Open]:
        return self.orders.values()

    def add(self, order: _Open) -> None:
        if order.key not in self.orders:
            self.orders[order.key] = order
            self._count(order, 1)

    def remove(self, key: str) -> None:
        order = self.orders.pop(key, None)
        if order is not None:
            self._count(order, -1)

    def change(self, order: _Open, *, filled: Decimal | None = None, fee_paid: Decimal | None = None) -> None:
        self._count(order, -1)
        if filled is not None:
            order.filled = filled
        if fee_paid is not None:
            order.fee_paid = fee_paid
        self._count(order, 1)

    def _count(self, order: _Open, sign: int) -> None:
        if order.side is Side.BUY:
            r = order.reserved_usdc * sign
            self.reserved += r
            self.by_market[order.condition_id] = self.by_market.get(order.condition_id, _ZERO) + r
        else:
            slot = (order.strategy, order.token_id)
            self.sells_by_slot[slot] = self.sells_by_slot.get(slot, _ZERO) + order.remaining * sign


@dataclass(slots=True)
class _Holding:
    condition_id: str
    book: ledger.Book = field(default_factory=ledger.Book)


def max_taker_fee(size: Decimal, price: Decimal, fees: FeeSchedule | None) -> Decimal:
    """The fee allowance for a BUY: its taker fee as if all of it filled at the limit price.

    Per share a BUY costs p + rate·(p(1−p))^e, which rises with p for any rate < 1, so no fill at a better
    price can cost more in total. (Each fill's fee is rounded to 5 dp on its own, so many tiny partial
    fills can exceed this by up to 0.000005 each.)"""
    return fees.fee(size, price) if fees is not None else _ZERO


def _usdc(value: Decimal) -> str:
    """2 places like a statement, more only when needed so that 50.004 never prints as 50.00."""
    q = value.quantize(Decimal("0.01"))
    return f"{q:f}" if q == value else f"{value.normalize():f}"


def _short(ident: str) -> str:
    return ident if len(ident) <= 14 else ident[:10] + "…"


def _day_of(epoch_s: float) -> int:
    return int(epoch_s // _DAY_S)


class RiskGate:
    """Exact, in-memory risk state plus the rules. Not thread-safe: the executor owns it on one task."""

    def __init__(self, limits: RiskSettings, clock: Clock = time.time) -> None:
        self.limits = limits
        self._clock = clock
        self._holdings: dict[Slot, _Holding] = {}  # (strategy, token id) -> position
        self._open = _OpenOrders()  # intent key -> reservation, with running totals
        self._day = _day_of(clock())
        self._realized_today = _ZERO
        # Realized PnL at the last manual resume: after a resume the day gets a fresh daily_loss_limit from there.
        self._loss_baseline = _ZERO
        self._kill = KillSwitch()
        self._kill_day: int | None = None
        # Shared-state bookkeeping (see merge_state): what this gate changed since its last merge.
        self._pending_realized = _ZERO
        self._pending_trip: KillSwitch | None = None
        self._resumed_at_ms = 0  # the last resume this gate knows of (ms); trips before it are void
        # The last resume this gate knew of when it made its pending trip: a trip made after this gate adopted
        # the shared state's last resume is never voided by it, whatever the clocks say (they can tie or disagree).
        self._pending_trip_seen = 0

    # ------------------------------------------------------------------------------------ the rules

    def check(self, intent: OrderIntent, *, fee_reserve: Decimal = _ZERO, validated: bool = False) -> RiskDecision:
        """Would this intent keep every cap? `fee_reserve` is the BUY's fee allowance (see `max_taker_fee`).
        `validated`: the caller already ran `validate_intent` on this very intent (it is immutable, so the
        answer cannot have changed: the executor's armed orders, validated when armed); every cap is
        checked all the same."""
        self._roll_day()
        if not validated:
            try:
                validate_intent(intent)
            except InputError as e:
                return _reject(RiskCode.INVALID, e.message)
        if fee_reserve < 0:
            return _reject(RiskCode.INVALID, f"fee_reserve must be >= 0, got {fee_reserve}")
        if intent.key in self._open:
            return _reject(RiskCode.DUPLICATE, f"order {intent.key} is already open")
        if intent.side is Side.SELL:
            return self._check_sell(intent)
        return self._check_buy(intent, fee_reserve)

    def reserve(self, intent: OrderIntent, *, fee_reserve: Decimal = _ZERO, validated: bool = False) -> RiskDecision:
        """`check`, and on approval `on_order_open`, in one step: nothing can slip in between.

        The executor must not await between a check and its reservation, or two concurrent intents could
        each pass against the same headroom; this is the form that cannot get that wrong."""
        decision = self.check(intent, fee_reserve=fee_reserve, validated=validated)
        if decision.ok:
            self.on_order_open(intent, fee_reserve=fee_reserve)
        return decision

    def _check_open_orders(self) -> RiskDecision | None:
        # Open SELLs count towards the cap, but only BUYs are held to it: a SELL reduces a position, and
        # reducing risk must always be possible (README), even with max_open_orders reached.
        n, cap = len(self._open), self.limits.max_open_orders
        if n >= cap:
            return _reject(RiskCode.OPEN_ORDERS, f"{n} orders open, limit {cap}; cancel one first")
        return None

    def _check_sell(self, intent: OrderIntent) -> RiskDecision:
        held = self._held(intent.token_id, intent.strategy)
        offered = self._open.sells_by_slot.get((intent.strategy, intent.token_id), _ZERO)
        available = held - offered
        if intent.size > available:
            others = self._held(intent.token_id) - held
            elsewhere = f"; other strategies hold {fmt(others)}, not this one's to sell" if others > 0 else ""
            return _reject(
                RiskCode.NO_POSITION,
                f"SELL {fmt(intent.size)} shares of {_short(intent.token_id)} > {fmt(available)} available to"
                f" {intent.strategy!r} (held {fmt(held)}, {fmt(offered)} in open sells){elsewhere};"
                " pmbot does not short",
            )
        return APPROVED

    def _check_buy(self, intent: OrderIntent, fee_reserve: Decimal) -> RiskDecision:
        lim = self.limits
        self._maybe_trip()  # the limit may have been lowered since the last fill
        if self._kill.tripped:
            return _reject(RiskCode(self._kill.cause or RiskCode.KILL_SWITCH), self._kill_text())
        notional = intent.notional
        if notional > lim.max_order_notional:
            return _reject(
                RiskCode.ORDER_NOTIONAL, f"order {_usdc(notional)} USDC > limit {_usdc(lim.max_order_notional)}"
            )
        if (refused := self._check_open_orders()) is not None:
            return refused
        cost = notional + fee_reserve
        held, open_buys = self._market_cost(intent.condition_id), self._market_open_buys(intent.condition_id)
        after = held + open_buys + cost
        if after > lim.max_position_per_market:
            return _reject(
                RiskCode.MARKET,
                f"market {_short(intent.condition_id)} would reach {_usdc(after)} USDC (held {_usdc(held)}"
                f" + open buys {_usdc(open_buys)} + order {_usdc(cost)}) > limit {_usdc(lim.max_position_per_market)}",
            )
        positions, all_buys = self._positions_cost(), self._open_buys()
        total = positions + all_buys + cost
        if total > lim.max_total_exposure:
            return _reject(
                RiskCode.TOTAL,
                f"exposure would reach {_usdc(total)} USDC (positions {_usdc(positions)} + open buys"
                f" {_usdc(all_buys)} + order {_usdc(cost)}) > limit {_usdc(lim.max_total_exposure)}",
            )
        return APPROVED

    # ------------------------------------------------------------------- keeping the state exact

    def on_order_open(self, intent: OrderIntent, *, fee_reserve: Decimal = _ZERO, filled: Decimal = _ZERO) -> None:
        """The executor accepted `intent` (after an ok `check`): reserve it. Idempotent per key.

        Call it before sending (see `reserve`); `filled` is for restoring a partly filled order after a restart."""
        if intent.key in self._open:
            return
        self._open.add(
            _Open(
                key=intent.key,
                token_id=intent.token_id,
                condition_id=intent.condition_id,
                side=intent.side,
                price=intent.price,
                size=intent.size,
                fee_reserve=fee_reserve,
                filled=filled,
                strategy=intent.strategy,
            )
        )
        self._drop_if_done(intent.key)

    def restore_order(self, record: OrderRecord, *, fee_reserve: Decimal = _ZERO) -> None:
        """Re-reserve an order the store lists as open (after a restart)."""
        if record.status.is_final:
            return
        self._open.add(
            _Open(
                key=record.key,
                token_id=record.token_id,
                condition_id=record.condition_id,
                side=record.side,
                price=record.price,
                size=record.size,
                fee_reserve=fee_reserve,
                filled=record.filled_size,
                strategy=record.strategy,
            ),
        )
        self._drop_if_done(record.key)

    def on_order_update(self, intent_key: str, filled_size: Decimal) -> None:
        """The venue reports an order's cumulative filled size: shrink its reservation (never grows it back)."""
        order = self._open.get(intent_key)
        if order is not None:
            self._open.change(order, filled=max(order.filled, filled_size))
            self._drop_if_done(intent_key)

    def on_order_closed(self, intent_key: str) -> None:
        """Filled, cancelled, expired or rejected: release what is left of its reservation. Idempotent.

        Its fills change positions only through `on_fill`, which carries the price and fee they need."""
        self._open.remove(intent_key)

    def on_fill(
        self,
        *,
        token_id: str,
        condition_id: str,
        side: Side,
        size: Decimal,
        price: Decimal,
        fee: Decimal = _ZERO,
        order_key: str | None = None,
        ts_ms: int | None = None,
        strategy: str | None = None,
    ) -> Decimal:
        """Apply one fill; returns its realized PnL. Trips the kill switch if this fill crosses the daily loss.

        `order_key` moves the filled part out of that order's reservation into the position. The fill books
        on `strategy`'s position (default: the strategy of the order `order_key`). A fill from an earlier
        UTC day (`ts_ms`, e.g. found by reconciliation) updates the position but not today's PnL."""
        self._roll_day()
        order = self._open.get(order_key)
        if strategy is None:
            strategy = order.strategy if order is not None else ""
        holding = self._holdings.get((strategy, token_id))
        if holding is None:
            holding = self._holdings[(strategy, token_id)] = _Holding(condition_id)
        _, realized_micro = ledger.apply(
            holding.book, side, TradeKind.FILL, to_micro(price), to_micro(size), to_micro(fee)
        )
        if order is not None:
            self._open.change(order, filled=order.filled + size, fee_paid=order.fee_paid + fee)
            self._drop_if_done(order.key)
        realized = from_micro(realized_micro)
        self._add_realized(realized, ts_ms)
        return realized

    def on_fill_reverted(
        self,
        *,
        token_id: str,
        strategy: str,
        side: Side,
        size: Decimal,
        notional: Decimal,
        fee: Decimal,
        realized: Decimal,
        ts_ms: int | None = None,
        condition_id: str = "",
    ) -> Decimal:
        """A fill this gate counted was taken back (its trade FAILED at the venue, Store.reverse_fill): its
        shares and cost leave the holding (a BUY) or come back (a SELL), and its realized PnL is undone in
        today's PnL when the fill was today's (`ts_ms`, the fill's time). Returns the PnL undone.

        A SELL that closed its position left no holding here (and a restart loads open positions only):
        its shares come back into a new one, or the gate would count less exposure than the store holds."""
        self._roll_day()
        holding = self._holdings.get((strategy, token_id))
        if holding is None and side is Side.SELL:
            holding = self._holdings[(strategy, token_id)] = _Holding(condition_id)
        if holding is not None:  # a BUY of nothing held here (resolved, or not loaded): no shares to take back
            ledger.reverse(holding.book, side, to_micro(size), to_micro(notional), to_micro(fee), to_micro(realized))
        # The PnL to undo is the store's (`realized`: what the reversal took out of the position's PnL), not
        # the gate's own book's: a BUY reversed after its market paid out takes the payout's profit back too.
        result = -realized
        if result:
            self._add_realized(result, ts_ms)
        return result

    def on_resolution(
        self, token_id: str, payout: Decimal, *, ts_ms: int | None = None, count_realized: bool = True
    ) -> Decimal:
        """The market resolved: what is held of `token_id` is redeemed at `payout` (1 won, 0 lost).

        `count_realized=False` only drops the holdings (their cost stops counting as exposure): the
        realized PnL is counted by whichever process recorded the payout (`add_realized`), so a payout
        that several processes learn of counts once towards the daily loss."""
        self._roll_day()
        realized_micro = 0
        for (_, token), holding in self._holdings.items():
            if token == token_id and holding.book.size > 0:
                realized_micro += ledger.apply(
                    holding.book, Side.SELL, TradeKind.REDEEM, to_micro(payout), holding.book.size, 0
                )[1]
        realized = from_micro(realized_micro)
        if count_realized and realized_micro:
            self._add_realized(realized, ts_ms)
        return realized

    def load_positions(self, positions: Iterable[Position]) -> None:
        """Replace the held positions with the store's (at start-up), one per (strategy, token) like the store."""
        self._holdings.clear()
        for p in positions:
            if p.state is not PositionState.OPEN or p.size <= 0:
                continue
            holding = self._holdings.setdefault((p.strategy, p.token_id), _Holding(p.condition_id))
            holding.book.size += to_micro(p.size)
            holding.book.cost += to_micro(p.cost)

    # ---------------------------------------------------------------------------- kill switch

    @property
    def kill_switch(self) -> KillSwitch:
        self._roll_day()
        return self._kill

    def trip(self, reason: str, *, cause: RiskCode = RiskCode.KILL_SWITCH) -> None:
        """Trip the kill switch by hand (or from another monitor). BUYs stay blocked until it resets."""
        self._roll_day()
        if not self._kill.tripped:
            now = self._clock()
            self._kill = KillSwitch(True, int(now * 1000), reason, cause.value)
            self._kill_day = _day_of(now)
            self._pending_trip = self._kill
            self._pending_trip_seen = self._resumed_at_ms

    def resume(self) -> None:
        """Manual reset. Today's loss so far is accepted: the next trip needs a further daily_loss_limit of loss."""
        self._roll_day()
        if self._kill.tripped:
            self._kill = KillSwitch()
            self._kill_day = None
            self._loss_baseline = self._realized_today  # a further full limit of loss from here trips it again
            self._resumed_at_ms = max(self._resumed_at_ms + 1, int(self._clock() * 1000))
            self._pending_trip = None

    def export_state(self) -> dict[str, Any]:
        """What must survive a restart, as JSON-ready values (Decimals as text). Positions come from the store."""
        self._roll_day()
        return {
            "version": STATE_VERSION,
            "day": date.fromordinal(_EPOCH_ORDINAL + self._day).isoformat(),
            "realized_today": str(self._realized_today),
            "loss_baseline": str(self._loss_baseline),
            "tripped": self._kill.tripped,
            "tripped_at_ms": self._kill.tripped_at_ms,
            "reason": self._kill.reason,
            "cause": self._kill.cause,
            "resumed_at_ms": self._resumed_at_ms,
        }

    def import_state(self, state: Mapping[str, Any]) -> None:
        """Restore `export_state()` output. A kill switch tripped before the restart stays tripped."""
        if state.get("version") != STATE_VERSION:
            raise InputError(f"unknown risk state version {state.get('version')!r}")
        try:
            day = date.fromisoformat(state["day"]).toordinal() - _EPOCH_ORDINAL
            realized, baseline = Decimal(state["realized_today"]), Decimal(state["loss_baseline"])
        except (KeyError, TypeError, ValueError, ArithmeticError) as e:
            raise InputError(f"unreadable risk state: {e!r}") from None
        self._day, self._realized_today, self._loss_baseline = day, realized, baseline
        resumed = state.get("resumed_at_ms") or 0
        self._resumed_at_ms = resumed if isinstance(resumed, int) else 0
        if state.get("tripped"):
            at = state.get("tripped_at_ms")
            cause = state.get("cause") or RiskCode.KILL_SWITCH.value
            if cause not in set(RiskCode):
                raise InputError(f"unknown kill switch cause {cause!r}")
            self._kill = KillSwitch(True, at, state.get("reason"), cause)
            self._kill_day = _day_of(at / 1000) if isinstance(at, int) else day
        else:
            self._kill, self._kill_day = KillSwitch(), None
        self._roll_day()
        self._maybe_trip()

    @property
    def dirty(self) -> bool:
        """Changed since the last `merge_state`: PnL realized or a trip that the shared state has not seen."""
        return bool(self._pending_realized) or self._pending_trip is not None

    def merge_state(self, stored: Mapping[str, Any] | None) -> dict[str, Any]:
        """Merge this gate's changes since its last merge into the shared `stored` state (another process's
        view, or None), adopt the result and return it for storing. Never loses a trip or a loss another
        process recorded: PnL adds up, a trip stays until a resume newer than it clears it.

        Call it inside `Store.update_state`, so that no other process writes in between."""
        self._roll_day()
        shared = RiskGate(self.limits, self._clock)
        if stored:
            shared.import_state(stored)  # rolls the stored day forward to today
        if shared._day == self._day:
            shared._realized_today += self._pending_realized
        trip = self._pending_trip
        if (
            trip is not None
            and not shared._kill.tripped
            and shared._day == self._day
            # void only a trip from before the last resume: one this gate made without knowing of that resume,
            # and that its clock does not place after it either (a tie counts as after: when the order of the
            # two cannot be told, blocking buys until another resume is the side that cannot lose money)
            and (shared._resumed_at_ms <= self._pending_trip_seen or (trip.tripped_at_ms or 0) >= shared._resumed_at_ms)
        ):
            shared._kill, shared._kill_day = trip, self._kill_day
        shared._maybe_trip()
        self._day, self._realized_today, self._loss_baseline = (
            shared._day,
            shared._realized_today,
            shared._loss_baseline,
        )
        self._kill, self._kill_day, self._resumed_at_ms = shared._kill, shared._kill_day, shared._resumed_at_ms
        self._pending_realized, self._pending_trip = _ZERO, None
        return shared.export_state()

    def open_buy_keys(self) -> list[str]:
        return [o.key for o in self._open.values() if o.side is Side.BUY]

    # ------------------------------------------------------------------------------- reading

    def exposure(self) -> Exposure:
        self._roll_day()
        markets: dict[str, Decimal] = {}
        for h in self._holdings.values():
            markets[h.condition_id] = markets.get(h.condition_id, _ZERO) + from_micro(h.book.cost)
        for o in self._open.values():
            if o.side is Side.BUY:
                markets[o.condition_id] = markets.get(o.condition_id, _ZERO) + o.reserved_usdc
        return Exposure(
            positions=self._positions_cost(),
            open_buys=self._open_buys(),
            per_market={k: v for k, v in markets.items() if v},
            open_orders=len(self._open),
            realized_today=self._realized_today,
            kill_switch=self._kill,
        )

    def held(self, token_id: str, strategy: str | None = None) -> Decimal:
        """Shares of `token_id` held by `strategy` (None: by every strategy)."""
        return self._held(token_id, strategy)

    def holdings(self) -> list[Holding]:
        """Every (strategy, token) position, for status tables and for cross-checking against the store."""
        return [
            Holding(token, h.condition_id, from_micro(h.book.size), from_micro(h.book.cost), strategy)
            for (strategy, token), h in sorted(self._holdings.items())
            if h.book.size or h.book.cost
        ]

    def open_keys(self) -> frozenset[str]:
        return frozenset(self._open.orders)

    # ------------------------------------------------------------------------------- internals

    def _held(self, token_id: str, strategy: str | None = None) -> Decimal:
        if strategy is not None:
            h = self._holdings.get((strategy, token_id))
            return from_micro(h.book.size) if h is not None else _ZERO
        return from_micro(sum(h.book.size for (_, t), h in self._holdings.items() if t == token_id))

    def _positions_cost(self) -> Decimal:
        return from_micro(sum(h.book.cost for h in self._holdings.values()))

    def _market_cost(self, condition_id: str) -> Decimal:
        return from_micro(sum(h.book.cost for h in self._holdings.values() if h.condition_id == condition_id))

    def _open_buys(self) -> Decimal:
        return self._open.reserved

    def _market_open_buys(self, condition_id: str) -> Decimal:
        return self._open.by_market.get(condition_id, _ZERO)

    def _drop_if_done(self, key: str) -> None:
        # A fully filled order holds nothing back and must not count against max_open_orders.
        order = self._open.get(key)
        if order is not None and order.remaining == 0:
            self._open.remove(key)

    def add_realized(self, realized: Decimal, ts_ms: int | None = None) -> None:
        """PnL realized outside a fill this gate saw (a resolution's payout recorded by this process):
        it counts towards today's loss and may trip the kill switch; merged by `merge_state`."""
        self._roll_day()
        self._add_realized(realized, ts_ms)

    def _add_realized(self, realized: Decimal, ts_ms: int | None) -> None:
        if ts_ms is not None and _day_of(ts_ms / 1000) < self._day:
            return
        self._realized_today += realized
        self._pending_realized += realized
        self._maybe_trip()

    def _maybe_trip(self) -> None:
        limit = self.limits.daily_loss_limit
        since_resume = self._realized_today - self._loss_baseline
        if self._kill.tripped or since_resume > -limit:
            return
        detail = f" ({_usdc(since_resume)} since the last resume)" if self._loss_baseline else ""
        self.trip(
            f"realized today {_usdc(self._realized_today)} USDC{detail} <= -{_usdc(limit)}", cause=RiskCode.DAILY_LOSS
        )

    def _roll_day(self) -> None:
        today = _day_of(self._clock())
        if today <= self._day:
            return
        self._day, self._realized_today, self._loss_baseline = today, _ZERO, _ZERO
        self._pending_realized = _ZERO  # a past day's PnL: the shared state rolls over too
        if (
            self._kill.tripped
            and self.limits.kill_switch_reset == "next_day"
            and self._kill_day is not None
            and self._kill_day < today
        ):
            self._kill, self._kill_day = KillSwitch(), None
            self._pending_trip = None  # yesterday's trip, reset by the policy: not news for the shared state

    def _kill_text(self) -> str:
        k = self._kill
        when = f" at {ms_to_iso(k.tripped_at_ms)}" if k.tripped_at_ms is not None else ""
        until = "the next UTC day" if self.limits.kill_switch_reset == "next_day" else "a manual resume"
        return f"{k.reason}; kill switch tripped{when}, BUYs blocked until {until} (SELLs that reduce still allowed)"


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()  # UTC day numbers (epoch_s // 86400) <-> calendar dates


def _reject(code: RiskCode, detail: str) -> RiskDecision:
    return RiskDecision(False, f"{code.value}: {detail}", code.value)
