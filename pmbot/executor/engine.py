"""The order executor: the only path from a strategy's intent to the venue.

For every intent, in this order, and never otherwise:

1. **Idempotency.** The intent's key is looked up in this process (concurrent duplicates await the
   first one's result), in the store (a restart, another process on the same database) and, in a
   fleet, claimed with Redis SET NX. A key seen before is never sent again, unless it is stored
   `not_sent`: nothing of it reached the venue (market parameters or the venue unreachable, our own
   budget, shutting down), so its retry under the same key is executed like a new intent. Risk-gate
   and venue rejections stay final, whenever the outage that caused them began.
2. **Risk.** The gate checks and reserves in one synchronous step (no await in between, so two
   concurrent intents cannot both pass against the same headroom). A breach is stored as a
   rejected order with its reason. A marketable (FOK/FAK) BUY of N shares at worst price p spends
   N × p USDC rounded down to the cent, as the venue sizes market BUYs (`signing.buy_spend`): at a
   better price it gets more shares, never more USDC; its fee allowance is the most that spend can
   pay at any price up to p (`buy_fee_reserve`), so the caps hold whatever it matches.
3. **Write-ahead.** The order is stored `pending` (live: with the signed order's hash, so that an
   order whose answer is lost can be found at the venue by it) and committed before anything is
   sent. Intents arriving in the same event-loop turn share one commit (group commit): one fsync
   for a burst instead of one per order.
4. **Budget.** Our orders/min ceiling (fleet-wide with Redis), on top of the adapter's venue buckets.
5. **Send.** Dry-run: the paper exchange fills against the current book. Live: one POST /order,
   never retried, over the lean kept-alive path (`pmbot.polymarket.fastpost`; `prewarm()` opens it
   before a window). An error before the request was written is `not_sent`; after it, a lost answer
   leaves the order `unknown` until `reconcile()` finds out.
6. **Record.** Every state change and every fill is stored; positions update with the fills.

Pre-armed orders (`arm` / `fire` / `retire`): steps 1 and 3 happen ahead of a window (signed, stored
`armed` with the order hash, one durable commit), so on the tick `fire` runs only the risk gate, the
budget and the POST. The armed record is the write-ahead record: nothing is sent that is not recorded.
An armed order never sent ends `not_sent`; one sent before a crash is reconciled by its hash.

Dry-run and live are two executors with separate risk state and separate records (`dry_run` on
every order and trade), so a paper loss never trips the live kill switch or the other way round. Their
idempotency keys are separate spaces too: a dry-run order is stored under `dry-run:<key>`, so a signal
rehearsed in dry-run is still executed when it comes again live (and is never answered "duplicate" by
the other mode's record).

Every order carries its wallet (live: the maker address; dry-run: `paper:<name>`, the process's paper
wallet, settings `executor.paper_wallet`, held by one process at a time). An executor settles only its
own wallet's orders: another wallet's live orders, or a running dry-run process's resting paper orders,
are never touched (a dead dry-run process's are). Dry-run fills and positions are the paper wallet's
too: a dry-run executor's gate (and the factory's paper exchange) starts from its own wallet's
positions only, so two dry-run processes never both sell the same paper shares.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import TYPE_CHECKING, Any, Protocol

from pmbot.errors import (
    InputError,
    OrderStateUnknownError,
    PmbotError,
    PostOnlyModeError,
    RateLimitedError,
    StoreError,
    VenueError,
)
from pmbot.executor.budget import LocalBudget, OrderBudget
from pmbot.executor.fill_bounds import fills_within_order, matched_within_order
from pmbot.executor.intents import OrderIntent, validate_intent
from pmbot.executor.metrics import ExecutorMetrics
from pmbot.executor.paper import PaperExchange, PaperFill
from pmbot.executor.risk import RiskGate, max_taker_fee
from pmbot.polymarket.models import (
    BookSnapshot,
    CancelResult,
    MakerOrderFill,
    MarketParams,
    MarketResolved,
    OrderBook,
    PriceChange,
    UserOrderEvent,
    UserTrade,
    UserTradeEvent,
)
from pmbot.polymarket.params import MarketParamsCache
from pmbot.polymarket.schemas.refusals import status_reason
from pmbot.polymarket.signing import buy_spend
from pmbot.store.base import Store
from pmbot.store.models import (
    ExecutionLog,
    Fill,
    OrderRecord,
    OrderStatus,
    OrderType,
    PositionState,
    Query,
    Side,
    mode_name,
)
from pmbot.store.rows import without_reversed

if TYPE_CHECKING:
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.signing import SignedOrder
    from pmbot.polymarket.streams import MarketStream, UserStream
    from pmbot.polymarket.trading import PreparedPost, TradingClient
    from pmbot.settle import Resolution, Settlement

log = logging.getLogger("pmbot.executor")

_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_FEE_Q = Decimal("0.00001")
_BUDGET_RETRY_S = 5.0
_RECENT = 100_000  # finished results kept in memory for instant duplicate answers; older ones come from the store
DRY_RUN_PREFIX = "dry-run:"  # dry-run keys are stored under this prefix: a separate idempotency space
_ERROR_STATES = frozenset({OrderStatus.REJECTED, OrderStatus.NOT_SENT, OrderStatus.UNKNOWN})
NON_FINAL = (
    OrderStatus.PENDING,
    OrderStatus.ARMED,
    OrderStatus.SUBMITTED,
    OrderStatus.LIVE,
    OrderStatus.PARTIALLY_FILLED,
    OrderStatus.UNKNOWN,
)


@dataclass
class CancelSweep:
    """What `Executor.cancel_resting` did: each swept order's state after it, and the keys whose POST
    was still unanswered at the deadline (not swept: the next start reconciles them)."""

    states: dict[str, OrderStatus] = field(default_factory=dict)
    in_flight: list[str] = field(default_factory=list)

    def note(self, rec: OrderRecord) -> None:
        self.states[rec.key] = rec.status

    @property
    def cancelled(self) -> list[str]:
        return [k for k, s in self.states.items() if s is OrderStatus.CANCELLED]

    @property
    def open(self) -> dict[str, OrderStatus]:
        """Swept orders not final after it: `unknown` (cancel sent, not settled) or `live` (the venue refused)."""
        return {k: s for k, s in self.states.items() if not s.is_final}


class ExecutorClosedError(PmbotError):
    default_hint = "the executor is shutting down; the intent was recorded as not sent"


@dataclass(frozen=True, slots=True)
class SubmitResult:
    key: str
    status: OrderStatus
    duplicate: bool = False
    reason: str | None = None
    code: str | None = None
    venue_order_id: str | None = None
    filled_size: Decimal = _ZERO
    avg_price: Decimal | None = None
    fees: Decimal = _ZERO
    dry_run: bool = True

    @staticmethod
    def of(record: OrderRecord, *, duplicate: bool) -> SubmitResult:
        return SubmitResult(
            key=record.key,
            status=record.status,
            duplicate=duplicate,
            # the error belongs to the state it explains: a lost answer's, once reconcile found the order, is stale
            reason=record.error if record.status in _ERROR_STATES else None,
            venue_order_id=record.venue_order_id,
            filled_size=record.filled_size,
            dry_run=record.dry_run,
        )


class BookSource(Protocol):
    async def book(self, token_id: str) -> OrderBook: ...


class FleetKeys(Protocol):
    async def claim(self, key: str) -> bool:
        """True if this process is the first anywhere in the fleet to claim `key`."""
        ...


@dataclass(frozen=True, slots=True)
class ArmedOrder:
    """What `Executor.arm` made of one intent: `status` ARMED (stored, signed, ready to `fire`), or why
    not (a duplicate key's stored status, `not_sent` when the market's parameters could not be read,
    `rejected` for an order that cannot be signed)."""

    key: str
    status: OrderStatus
    order_hash: str | None = None
    reason: str | None = None
    duplicate: bool = False


@dataclass(slots=True)
class _Armed:
    intent: OrderIntent
    params: MarketParams
    fee_reserve: Decimal
    signed: SignedOrder | None  # None in dry-run
    prep: PreparedPost | None
    retire_at_ms: int | None


@dataclass(slots=True)
class _Work:
    intent: OrderIntent
    future: asyncio.Future[SubmitResult]
    started: float  # perf_counter at submit()
    params: MarketParams | None = None
    fee_reserve: Decimal = _ZERO
    signed: SignedOrder | None = None
    armed: _Armed | None = None  # fired from an armed order: "not sent" leaves it armed


class Executor:
    def __init__(
        self,
        *,
        store: Store,
        risk: RiskGate,
        budget: OrderBudget,
        params: MarketParamsCache,
        dry_run: bool,
        paper: PaperExchange | None = None,
        books: BookSource | None = None,
        trading: TradingClient | None = None,
        fleet: FleetKeys | None = None,
        clock: Callable[[], float] = time.time,
        perf: Callable[[], float] = time.perf_counter,
        strategy_meta: dict[str, Any] | None = None,
        unknown_grace_s: float = 5.0,
        wallet: str | None = None,
        owner_gone: Callable[[str], bool] | None = None,
        marketable_max_wait_s: float = 2.0,
    ) -> None:
        if dry_run and (paper is None or books is None):
            raise ValueError("a dry-run executor needs a paper exchange and a book source")
        if not dry_run and trading is None:
            raise ValueError("a live executor needs a trading client")
        self.store = store
        self.risk = risk
        self.budget = budget
        self.params = params
        self.dry_run = dry_run
        self.paper = paper
        self.books = books
        self.trading = trading
        self.fleet = fleet
        self.metrics = ExecutorMetrics()
        # A FOK/FAK is a decision about the book as it is now: one that would wait longer than this for our
        # orders/min budget is not sent (not_sent, code "budget") rather than executed seconds later
        # against a book, or a market, that has moved on. Resting orders wait up to a minute.
        self.marketable_max_wait_s = marketable_max_wait_s
        self._clock = clock
        self._perf = perf
        self._meta = strategy_meta or {}
        self._queue: list[_Work] = []
        self._drain_scheduled = False
        self._inflight: dict[str, asyncio.Future[SubmitResult]] = {}
        self._recent: OrderedDict[str, SubmitResult] = OrderedDict()
        self._by_venue_id: dict[str, str] = {}  # live order hash -> intent key, for user-channel events
        self._locks: dict[str, asyncio.Lock] = {}  # one settler at a time per order (cancel, reconcile)
        self._missed: set[str] = set()  # user-channel news about an order still being sent
        self._tasks: set[asyncio.Task[Any]] = set()
        self._risk_state: dict[str, Any] | None = None
        self._local_budget: LocalBudget | None = None  # fallback when the fleet budget (Redis) fails
        self._budget_retry_at = 0.0
        self._closing = False
        self._started = False
        self.lock_lost: Callable[[], bool] = lambda: False  # live: set by the wallet lock
        # An order whose POST got no answer is "not placed" only if the venue still does not know it after
        # this long: the venue may process a request the client already gave up on.
        self.unknown_grace_s = unknown_grace_s
        if wallet is None:
            wallet = (
                f"paper:{secrets.token_hex(6)}"
                if dry_run
                else str(getattr(getattr(trading, "signer", None), "maker", ""))
            )
        self.wallet = wallet.lower()
        # Dry-run: is the process that owned paper wallet `w` gone (so that its resting orders may be closed)?
        self.owner_gone: Callable[[str], bool] = owner_gone or (lambda w: False)
        # The kill switch and today's PnL are shared with other processes of this mode (see RiskGate.merge_state):
        # re-read at most this often (real seconds) before risk-checking a batch, so `pmbot resume` reaches us.
        self.risk_sync_s = 1.0
        self._risk_synced = float("-inf")
        self._cancelling: set[str] = set()  # BUYs being cancelled because the kill switch tripped
        self._armed: dict[str, _Armed] = {}  # pre-armed orders of this process, by key (see arm / fire)
        self._started_ms = 0
        # Order heartbeats (live): the venue cancels the key's open orders 10 s after the last beat, so a
        # lost beat stops new intents (`heartbeat_lost`) until one succeeds again. Set by the factory.
        self.heartbeat = False
        self.heartbeat_every_s = 5.0
        self.heartbeat_timeout_s = 3.0
        self.heartbeat_retry_s = 1.0
        self.heartbeat_lost = False
        self._heartbeat_task: asyncio.Task[None] | None = None
        # The venue's post-only mode after its weekly matching-engine restart (~2 min): from the first refusal
        # for it, taker intents are not sent for this long (clock seconds).
        self.post_only_pause_s = 120.0
        self._post_only_until = 0.0
        # Trades that FAILED at the venue (check_failed_trades): how far back `start` looks; how often (real
        # seconds) and how far back the reconciler looks again, for what the user channel did not deliver
        # (a trade fails within minutes of its match; one request per market with fills in that span).
        self.failed_lookback_s = 24 * 3600.0
        self.failed_check_every_s = 300.0
        self.failed_recheck_lookback_s = 3600.0
        self._failed_checked = float("-inf")

    @property
    def mode(self) -> str:
        return mode_name(self.dry_run)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------------------ lifecycle

    async def start(self) -> dict[str, int]:
        """Restore risk state and positions, then settle every order a previous run left open.
        Intents are accepted only after this returns."""
        self._started_ms = self._now_ms()
        self._risk_state = self.store.update_state(f"risk:{self.mode}", self.risk.merge_state)
        self._risk_synced = self._perf()
        # dry-run: this paper wallet's positions only (another dry-run process's are not ours to sell)
        mine = Query(dry_run=self.dry_run, wallet=self.wallet if self.dry_run else None)
        self.risk.load_positions(p for p in self.store.list_positions(mine) if p.state is PositionState.OPEN)
        report = await self.reconcile()
        if not self.dry_run:
            await self._check_failed_guarded()  # fills of trades that FAILED while we were not running
            self._failed_checked = self._perf()
        if self.heartbeat and not self.dry_run and self._heartbeat_task is None:
            self._heartbeat_task = asyncio.get_running_loop().create_task(self.run_heartbeat())
        self._started = True
        self._on_kill_switch()  # tripped before this start: BUYs still resting from an earlier run go
        return report

    async def close(self) -> None:
        """Stop taking intents, finish the ones already taken, store state and metrics."""
        self._closing = True
        if self._armed:
            self.retire(list(self._armed), why="executor closed: armed order never sent")
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
            self._heartbeat_task = None
        while self._queue or self._tasks or self._drain_scheduled:
            await asyncio.sleep(0)
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self.paper is not None:
            self._cancel_paper_book("paper orders end with the process")
        self._save_risk_state(force=True)
        snapshot = self.metrics.snapshot()
        try:
            self.store.set_state(f"executor:metrics:{self.mode}", snapshot)
            entry = ExecutionLog(
                event="metrics", message=f"{self.mode} executor stopped", ts=self._now_ms(), metadata=snapshot
            )
            self.store.log_execution(entry)
        except StoreError as e:
            log.warning("could not store executor metrics: %s", e.message)

    def _cancel_paper_book(self, why: str) -> None:
        """The paper book lives in memory: its resting orders cannot outlive this executor."""
        assert self.paper is not None
        resting = self.paper.open_orders()
        if not resting:
            return
        with self.store.transaction():
            for o in resting:
                self.paper.cancel(o.order_id)
                self.store.set_order_status(o.intent_key, OrderStatus.CANCELLED, filled_size=o.filled, detail=why)
        for o in resting:
            self.risk.on_order_closed(o.intent_key)
            self._recent.pop(o.intent_key, None)

    async def __aenter__(self) -> Executor:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------------------------- submit

    async def submit(self, intent: OrderIntent) -> SubmitResult:
        """Execute one intent (or return what became of it, if its key was seen before)."""
        validate_intent(intent)  # a malformed intent is a strategy bug: raise, store nothing
        if intent.key.startswith(DRY_RUN_PREFIX) != self.dry_run:
            if self.dry_run:
                intent = replace(intent, key=DRY_RUN_PREFIX + intent.key)  # the dry-run key space
            else:
                raise InputError(f"key {intent.key} is a dry-run key; a live order needs its own key")
        if not self._started:
            # start() settles what an earlier run left open; sending before that could duplicate it.
            raise PmbotError("the executor was not started", hint="await executor.start() first; it reconciles")
        self.metrics.intent()
        key = intent.key
        known = self._recent.get(key)
        if known is not None:
            self.metrics.duplicate()
            return replace(known, duplicate=True)
        pending = self._inflight.get(key)
        if pending is not None:
            self.metrics.duplicate()
            return replace(await asyncio.shield(pending), duplicate=True)
        if self._closing:
            return self._refuse_closed(intent)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[SubmitResult] = loop.create_future()
        self._inflight[key] = future
        self._queue.append(_Work(intent, future, self._perf()))
        if not self._drain_scheduled:
            # The first submitter starts the drain: one task, which runs on the next loop turn and takes
            # every intent queued in this turn (group commit). Its own task, so that one caller's
            # cancellation never cancels a batch (Python 3.11 has no eager tasks to save this turn).
            self._drain_scheduled = True
            self._track(loop.create_task(self._drain_queued()))
        return await asyncio.shield(future)

    async def submit_many(self, intents: list[OrderIntent]) -> list[SubmitResult]:
        return list(await asyncio.gather(*(self.submit(i) for i in intents)))

    # ------------------------------------------------------------------------------ pre-armed orders

    async def prewarm(self, n: int = 1, *, keep_warm: bool = True) -> int:
        """Live: open the order path's connections now (TCP + TLS) and, with `keep_warm`, keep them open
        (re-opened when the venue closes an idle one) until the executor's venue closes. Call it before a
        strategy's window. Returns how many connections are ready (0 in dry-run or without the lean path)."""
        if self.dry_run or self.trading is None:
            return 0
        ready = await self.trading.prewarm(n)
        poster = self.trading.poster
        if keep_warm and poster is not None:
            poster.keep_warm(n)
        return ready

    async def arm(self, intents: list[OrderIntent], *, retire_at_ms: int | None = None) -> list[ArmedOrder]:
        """Prepare orders ahead of a window: market parameters read, each order signed (live) and its
        POST body serialized, then all stored `armed` with their order hash in one durable commit. That
        record is the write-ahead record of the POST `fire` sends later: nothing is ever sent that is
        not already recorded. Risk is checked at `fire` (the headroom of the moment), not here.

        An armed order never fired ends `not_sent` (`retire`, `close`, or a `fire` after `retire_at_ms`).
        One fired before a crash is found by its hash when the next run reconciles."""
        if not self._started:
            raise PmbotError("the executor was not started", hint="await executor.start() first; it reconciles")
        out: dict[str, ArmedOrder] = {}
        ready: list[tuple[_Armed, OrderRecord]] = []
        for intent in intents:
            validate_intent(intent)
            if intent.key.startswith(DRY_RUN_PREFIX) != self.dry_run:
                if not self.dry_run:
                    raise InputError(f"key {intent.key} is a dry-run key; a live order needs its own key")
                intent = replace(intent, key=DRY_RUN_PREFIX + intent.key)
            key = intent.key
            if key in out:  # the same key twice in one call: armed (or refused) once
                continue
            if key in self._armed or key in self._inflight or key in self._recent:
                status = OrderStatus.ARMED if key in self._armed else OrderStatus.SUBMITTED
                known = self._recent.get(key)
                out[key] = ArmedOrder(key, known.status if known else status, duplicate=True)
                continue
            if self._closing:
                out[key] = ArmedOrder(key, OrderStatus.NOT_SENT, reason="executor shutting down")
                continue
            if self.fleet is not None and not await self.fleet.claim(key):
                existing = self.store.get_order(key)
                if existing is None or existing.status is not OrderStatus.NOT_SENT:
                    status = existing.status if existing else OrderStatus.REJECTED
                    out[key] = ArmedOrder(key, status, reason="claimed by another fleet process", duplicate=True)
                    continue
            try:
                params = await self.params.get(intent.token_id)
            except VenueError as e:
                out[key] = ArmedOrder(key, OrderStatus.NOT_SENT, reason=f"market parameters unavailable: {e.detail}")
                continue
            fee = buy_fee_reserve(intent.side, intent.order_type, intent.size, intent.price, params)
            signed: SignedOrder | None = None
            prep: PreparedPost | None = None
            if not self.dry_run:
                assert self.trading is not None
                try:
                    signed = await self.trading.build_order(
                        intent.token_id,
                        intent.side,
                        intent.price,
                        intent.size,
                        order_type=intent.order_type,
                        expiration_s=intent.expiration_s,
                    )
                except PmbotError as e:
                    out[key] = ArmedOrder(key, OrderStatus.REJECTED, reason=e.message)
                    continue
                prep = self.trading.prepare_post(signed, intent.order_type, post_only=intent.post_only)
            armed = _Armed(intent, params, fee, signed, prep, retire_at_ms)
            rec = self._record(intent, OrderStatus.ARMED, venue_order_id=signed.order_hash if signed else None)
            if retire_at_ms is not None:
                rec = replace(rec, metadata={**(rec.metadata or {}), "retire_at_ms": retire_at_ms})
            ready.append((armed, rec))
            out[key] = ArmedOrder(key, OrderStatus.ARMED, order_hash=signed.order_hash if signed else None)
        if ready:
            with self.store.transaction():  # one fsync for every armed order: the write-ahead record
                inserted = [self.store.insert_order(rec) for _, rec in ready]
            for (armed, _rec), ok in zip(ready, inserted, strict=True):
                key = armed.intent.key
                if not ok:
                    existing = self.store.get_order(key)
                    out[key] = ArmedOrder(
                        key, existing.status if existing else OrderStatus.REJECTED, duplicate=True, reason="key exists"
                    )
                    continue
                self._armed[key] = armed
                if armed.signed is not None:
                    self._by_venue_id[armed.signed.order_hash] = key
        return list(out.values())

    def refresh(self) -> None:
        """Re-read the mode's shared risk state (kill switch, today's PnL, `pmbot resume`) now, when it is
        older than `risk_sync_s`: a runner calls it between ticks so that `fire` and `submit` find it fresh
        and read nothing from the store before their POST (at half the age, so the next check finds it fresh).
        Live, the armed orders' L2 headers are worked out for this second and the next (`headers_ahead`), so
        a fire before the next refresh sends them without an HMAC on its path."""
        self._sync_risk_state(max_age_s=self.risk_sync_s / 2)
        if not self.dry_run and self.trading is not None:  # with nothing armed: drops the seconds past
            try:
                self.trading.headers_ahead(a.prep for a in self._armed.values() if a.prep is not None)
            except PmbotError as e:  # e.g. credentials that cannot sign: the fire computes its own and says so
                log.debug("armed orders' headers not worked out ahead: %s", e.message)

    def armed(self) -> list[str]:
        """Keys armed in this process and not fired or retired yet."""
        return list(self._armed)

    async def fire(self, key: str, *, price_check: Callable[[], str | None] | None = None) -> SubmitResult:
        """Send an armed order now: the risk gate (check + reserve), the orders/min budget, one POST /order.
        No signing, no serialization and no commit before the POST: the armed record is its write-ahead
        record. The answer is stored as for `submit` (one durable commit).

        `price_check` runs just before the risk gate; a string it returns is the reason not to send (the
        order stays armed). A result with status ARMED means nothing was sent (price check, budget, the
        venue unreachable or refusing with 429): fire it again or retire it."""
        if self.dry_run and not key.startswith(DRY_RUN_PREFIX):
            key = DRY_RUN_PREFIX + key
        a = self._armed.pop(key, None)
        if a is None:
            known = self._recent.get(key)
            if known is not None or key in self._inflight:
                self.metrics.duplicate()
                if known is None:
                    return replace(await asyncio.shield(self._inflight[key]), duplicate=True)
                return replace(known, duplicate=True)
            raise InputError(f"order {key} is not armed in this executor", hint="arm it first (Executor.arm)")
        started = self._perf()
        intent = a.intent
        if self._closing or (a.retire_at_ms is not None and self._now_ms() >= a.retire_at_ms):
            self._armed[key] = a
            why = "executor shutting down" if self._closing else "its window ended"
            self.retire([key], why=f"armed order never sent: {why}")
            return SubmitResult(key, OrderStatus.NOT_SENT, reason=why, code="retired", dry_run=self.dry_run)
        if price_check is not None:
            refused = price_check()
            if refused:
                self._armed[key] = a
                return SubmitResult(key, OrderStatus.ARMED, reason=refused, code="price_check", dry_run=self.dry_run)
        self.metrics.intent()
        self._sync_risk_state()
        # check + reserve, no await between; the armed intent (frozen) was validated when it was armed
        decision = self.risk.reserve(intent, fee_reserve=a.fee_reserve, validated=True)
        if not decision.ok:
            reason = decision.reason or "rejected by the risk gate"
            code = decision.code or "risk"
            self.store.set_order_status(key, OrderStatus.REJECTED, error=reason, detail=reason)
            self.metrics.final(OrderStatus.REJECTED, code)
            self._save_risk_state()
            return self._finish(key, OrderStatus.REJECTED, reason=reason, code=code)
        future: asyncio.Future[SubmitResult] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        w = _Work(intent, future, started, params=a.params, fee_reserve=a.fee_reserve, signed=a.signed, armed=a)
        try:
            if self.dry_run:
                await self._execute_paper([w])
            else:
                await self._execute_live(w)
        except BaseException as e:  # cancelled or a bug mid-send: maybe sent, only reconcile can tell
            if not future.done():
                self._mark_unknown(key, f"interrupted while sending: {type(e).__name__}")
                self._inflight.pop(key, None)
                future.set_result(
                    SubmitResult(key, OrderStatus.UNKNOWN, reason="interrupted while sending", dry_run=self.dry_run)
                )
            raise
        finally:
            self._save_risk_state()
        # popped above: a result other than ARMED (sent, or final) leaves it out of `_armed`; ARMED means
        # nothing was sent and `_settle` / `_execute_paper` put it back, to be fired again or retired
        return future.result()

    def retire(self, keys: list[str], *, why: str = "armed order never sent: window ended") -> list[str]:
        """Armed orders of this process that were never sent end `not_sent` (their keys may be used again:
        nothing of them reached the venue). Keys not armed here (fired, unknown) are left alone. Returns
        the keys retired."""
        found: list[_Armed] = []
        for key in keys:
            if self.dry_run and not key.startswith(DRY_RUN_PREFIX):
                key = DRY_RUN_PREFIX + key
            a = self._armed.pop(key, None)
            if a is not None:
                found.append(a)
        if not found:
            return []
        with self.store.transaction():
            for a in found:
                self.store.set_order_status(a.intent.key, OrderStatus.NOT_SENT, error=why, detail=why)
        for a in found:
            if a.signed is not None:
                self._by_venue_id.pop(a.signed.order_hash, None)
            self.metrics.final(OrderStatus.NOT_SENT, "retired")
        return [a.intent.key for a in found]

    def _refuse_closed(self, intent: OrderIntent) -> SubmitResult:
        """After close(): store the intent as not sent (a later run may send it under the same key)."""
        reason = "executor shutting down: not sent"
        record = self._record(intent, OrderStatus.NOT_SENT, error=reason)
        with self.store.transaction():
            inserted = self.store.insert_order(record)
        if not inserted:
            existing = self.store.get_order(intent.key)
            assert existing is not None
            return SubmitResult.of(existing, duplicate=True)
        self.metrics.final(OrderStatus.NOT_SENT, "shutting_down")
        return self._finish(intent.key, OrderStatus.NOT_SENT, reason=reason, code="shutting_down")

    async def _drain_queued(self) -> None:
        self._drain_scheduled = False
        batch, self._queue = self._queue, []
        if batch:
            await self._drain(batch)

    def _track(self, task: asyncio.Task[Any] | asyncio.Future[Any]) -> None:
        assert isinstance(task, asyncio.Task)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain(self, batch: list[_Work]) -> None:
        try:
            accepted = await self._admit(batch)
            if not accepted:
                return
            if self.dry_run:
                await self._execute_paper(accepted)
            else:
                # Each order settles on its own: one failure must not fail orders already sent. A single
                # order runs here (a gather would cost a task and a loop turn before its POST).
                outcomes: list[BaseException | None]
                if len(accepted) == 1:
                    try:
                        await self._execute_live(accepted[0])
                        outcomes = [None]
                    except Exception as e:
                        outcomes = [e]
                else:
                    outcomes = await asyncio.gather(*(self._execute_live(w) for w in accepted), return_exceptions=True)
                for w, outcome in zip(accepted, outcomes, strict=True):
                    if isinstance(outcome, BaseException) and not w.future.done():
                        # Stored and maybe sent: keep its reservation, mark it unknown; the reconciler settles it.
                        log.error("order %s: %s", w.intent.key, outcome, exc_info=outcome)
                        self._mark_unknown(w.intent.key, f"failed while sending: {outcome}")
                        self._inflight.pop(w.intent.key, None)
                        w.future.set_exception(outcome if isinstance(outcome, Exception) else PmbotError("stopped"))
        except BaseException as e:  # never leave a caller waiting forever
            for w in batch:
                if not w.future.done():
                    self._inflight.pop(w.intent.key, None)
                    w.future.set_exception(e if isinstance(e, Exception) else PmbotError("executor stopped"))
            if not isinstance(e, Exception):
                raise
        finally:
            self._save_risk_state()

    # ------------------------------------------------------------- idempotency, risk, write-ahead

    async def _admit(self, batch: list[_Work]) -> list[_Work]:
        """Risk-check, sign (live) and store a batch write-ahead in one commit. Returns what may be sent."""
        candidates: list[_Work] = []
        rejected: list[tuple[_Work, OrderStatus, str, str]] = []  # stored final: REJECTED or NOT_SENT
        self._sync_risk_state()
        # No lookup of the keys first: the store's insert is the idempotency check (a key that exists is
        # not inserted, and is answered from its record below; a `not_sent` one is taken over atomically,
        # the retry). A key still open in the gate is refused by the gate's own duplicate check first, so
        # its reservation is never touched. Only the fleet claim needs the record: a key this store
        # already holds (a restart, a retry of a never-sent key) was claimed by its first attempt.
        for w in batch:
            intent = w.intent
            if self.fleet is not None and not await self.fleet.claim(intent.key):
                existing = self.store.get_order(intent.key)
                retry = (
                    existing is not None
                    and existing.status is OrderStatus.NOT_SENT
                    and existing.dry_run is self.dry_run
                )
                if existing is not None and not retry:
                    self._resolve_duplicate(w, existing)
                    continue
                if existing is None:
                    self._resolve_fleet_duplicate(w)
                    continue
            try:
                w.params = await self.params.get(intent.token_id)
            except VenueError as e:
                reason = f"market parameters unavailable: {e.detail}"
                rejected.append((w, OrderStatus.NOT_SENT, reason, "no_market"))
                continue
            w.fee_reserve = buy_fee_reserve(intent.side, intent.order_type, intent.size, intent.price, w.params)
            # check + reserve, no await between; `submit` validated this (immutable) intent before queueing it
            decision = self.risk.reserve(intent, fee_reserve=w.fee_reserve, validated=True)
            if not decision.ok:
                reason = decision.reason or "rejected by the risk gate"
                rejected.append((w, OrderStatus.REJECTED, reason, decision.code or "risk"))
                continue
            if not self.dry_run:
                try:
                    w.signed = await self._sign(w)
                except PmbotError as e:
                    self.risk.on_order_closed(intent.key)
                    rejected.append((w, OrderStatus.REJECTED, e.message, "invalid_order"))
                    continue
                except Exception as e:  # a bug in signing: this intent fails alone, nothing kept for it
                    log.exception("order %s: signing failed", intent.key)
                    self.risk.on_order_closed(intent.key)
                    self._inflight.pop(intent.key, None)
                    if not w.future.done():
                        w.future.set_exception(e)
                    continue
            if w.signed is not None:
                self._by_venue_id[w.signed.order_hash] = intent.key
            candidates.append(w)

        rows = [(w, self._record(w.intent, status, error=reason)) for w, status, reason, _ in rejected]
        for w in candidates:
            hash_ = w.signed.order_hash if w.signed is not None else None
            rows.append((w, self._record(w.intent, OrderStatus.PENDING, venue_order_id=hash_)))
        inserted = self._write_ahead(rows)
        accepted: list[_Work] = []
        raced: list[_Work] = []  # stored by another process between our lookup and our insert
        for w in candidates:
            done = inserted[id(w)]
            if done is True:
                accepted.append(w)
                continue
            self.risk.on_order_closed(w.intent.key)  # not stored: nothing may stay reserved for it
            if w.signed is not None:
                self._by_venue_id.pop(w.signed.order_hash, None)
            if done is False:
                raced.append(w)
        # Committed: from here on a crash leaves a record that reconcile() settles.
        for w, status, reason, code in rejected:
            done = inserted[id(w)]
            if done is True:
                self.metrics.final(status, code)
                self._finish(w.intent.key, status, reason=reason, code=code, future=w.future)
            elif done is False:
                raced.append(w)
        for w, _record in rows:
            error = inserted[id(w)]
            if isinstance(error, Exception):  # this intent alone could not be stored: it fails alone
                self._inflight.pop(w.intent.key, None)
                if not w.future.done():
                    w.future.set_exception(error)
        for w in raced:
            existing = self.store.get_order(w.intent.key)
            assert existing is not None
            self._resolve_duplicate(w, existing)
        return accepted

    def _write_ahead(self, rows: list[tuple[_Work, OrderRecord]]) -> dict[int, bool | Exception]:
        """Insert a batch's records in one commit; by id(work): True stored, False the key exists.

        If the commit fails, nothing of it was stored: each record is then tried in its own commit, so
        a record that cannot be stored (or a store that is down) fails only its own intent."""
        try:
            with self.store.transaction():
                return {id(w): self.store.insert_order(rec) for w, rec in rows}
        except Exception as batch_error:
            if len(rows) == 1:
                return {id(rows[0][0]): batch_error}
        out: dict[int, bool | Exception] = {}
        for w, rec in rows:
            try:
                with self.store.transaction():
                    out[id(w)] = self.store.insert_order(rec)
            except Exception as e:
                log.error("order %s could not be stored: %s", w.intent.key, e)
                out[id(w)] = e
        return out

    def _mark_unknown(self, key: str, why: str) -> None:
        try:
            rec = self.store.get_order(key)
            if rec is not None and not rec.status.is_final and rec.status is not OrderStatus.UNKNOWN:
                self.store.set_order_status(key, OrderStatus.UNKNOWN, error=why[:500], detail=why[:500])
        except PmbotError as e:
            log.error("order %s: could not mark unknown: %s", key, e.message)

    def _resolve_duplicate(self, w: _Work, existing: OrderRecord) -> None:
        self.metrics.duplicate()
        result = SubmitResult.of(existing, duplicate=True)
        self._inflight.pop(w.intent.key, None)
        if not w.future.done():
            w.future.set_result(result)

    def _resolve_fleet_duplicate(self, w: _Work) -> None:
        self.metrics.duplicate()
        self._inflight.pop(w.intent.key, None)
        if not w.future.done():
            w.future.set_result(
                SubmitResult(
                    w.intent.key,
                    OrderStatus.REJECTED,
                    duplicate=True,
                    reason="claimed by another fleet process",
                    code="fleet_duplicate",
                    dry_run=self.dry_run,
                )
            )

    async def _sign(self, w: _Work) -> SignedOrder:
        assert self.trading is not None
        i = w.intent
        return await self.trading.build_order(
            i.token_id, i.side, i.price, i.size, order_type=i.order_type, expiration_s=i.expiration_s, params=w.params
        )

    def _record(
        self,
        intent: OrderIntent,
        status: OrderStatus,
        *,
        error: str | None = None,
        venue_order_id: str | None = None,
    ) -> OrderRecord:
        now = self._now_ms()
        return OrderRecord(
            key=intent.key,
            strategy=intent.strategy,
            token_id=intent.token_id,
            side=intent.side,
            price=intent.price,
            size=intent.size,
            order_type=intent.order_type,
            dry_run=self.dry_run,
            condition_id=intent.condition_id,
            status=status,
            venue_order_id=venue_order_id,
            error=error,
            created_at=now,
            updated_at=now,
            metadata={"signal_ms": intent.signal_ms, **dict(intent.meta)},
            wallet=self.wallet,
        )

    def _finish(
        self,
        key: str,
        status: OrderStatus,
        *,
        reason: str | None = None,
        code: str | None = None,
        venue_order_id: str | None = None,
        filled: Decimal = _ZERO,
        avg_price: Decimal | None = None,
        fees: Decimal = _ZERO,
        future: asyncio.Future[SubmitResult] | None = None,
    ) -> SubmitResult:
        result = SubmitResult(
            key=key,
            status=status,
            reason=reason,
            code=code,
            venue_order_id=venue_order_id,
            filled_size=filled,
            avg_price=avg_price,
            fees=fees,
            dry_run=self.dry_run,
        )
        if status is not OrderStatus.NOT_SENT:  # a never-sent key may be submitted again: no cached answer
            self._recent[key] = result
            if len(self._recent) > _RECENT:
                self._recent.popitem(last=False)
        self._inflight.pop(key, None)
        if future is not None and not future.done():
            future.set_result(result)
        return result

    def _save_risk_state(self, *, force: bool = False) -> None:
        """Merge the gate's changes (PnL realized, a trip) into the mode's shared risk state: a tripped kill
        switch must survive a restart, and must not be reset by another process that closes later."""
        if force or self.risk.dirty:
            self._risk_state = self.store.update_state(f"risk:{self.mode}", self.risk.merge_state)
            self._risk_synced = self._perf()
        self._on_kill_switch()

    def _sync_risk_state(self, *, max_age_s: float | None = None) -> None:
        """Adopt what other processes (or `pmbot resume`) changed in the shared risk state, at most every
        `risk_sync_s`: one small read, so a resume or another process's trip reaches a running engine."""
        max_age = self.risk_sync_s if max_age_s is None else max_age_s
        if self.risk.dirty or self._perf() - self._risk_synced >= max_age:
            try:
                # dirty: merge anyway (no read needed); clean: merge only if another process changed the row
                if self.risk.dirty or self.store.get_state(f"risk:{self.mode}") != self._risk_state:
                    self._risk_state = self.store.update_state(f"risk:{self.mode}", self.risk.merge_state)
                self._risk_synced = self._perf()
            except StoreError as e:
                log.warning("risk state not synced: %s", e.message)

    def _on_kill_switch(self) -> None:
        """A tripped kill switch blocks new BUYs, and cancels the BUYs still resting: they would keep
        buying past the daily loss. (SELLs stay: reducing risk is always allowed.) Paper BUYs are
        cancelled at once; live ones by a task (each a DELETE at the venue, then a settle)."""
        if not self.risk.kill_switch.tripped or self._closing:
            return
        keys = [k for k in self.risk.open_buy_keys() if k not in self._inflight and k not in self._cancelling]
        if not keys:
            return
        if self.paper is not None:
            resting = {o.intent_key: o for o in self.paper.open_orders()}
            with self.store.transaction():
                for key in keys:
                    o = resting.get(key)
                    if o is not None and self.paper.cancel(o.order_id) is not None:
                        self.store.set_order_status(
                            key, OrderStatus.CANCELLED, filled_size=o.filled, detail="kill switch tripped"
                        )
            for key in keys:
                if key in resting:
                    self.risk.on_order_closed(key)
                    self._recent.pop(key, None)
            return
        self._cancelling.update(keys)
        self._track(asyncio.ensure_future(self._cancel_buys(keys)))

    async def _cancel_buys(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.cancel(key, why="kill switch tripped")
            except PmbotError as e:
                log.warning("kill switch: could not cancel %s: %s", key, e.message)
            finally:
                self._cancelling.discard(key)

    # ---------------------------------------------------------------------------------- dry-run

    async def _execute_paper(self, batch: list[_Work]) -> None:
        assert self.paper is not None
        assert self.books is not None
        self._expire_paper()
        outcomes: list[tuple[_Work, OrderStatus, str | None, str | None, list[PaperFill], str]] = []
        ready: list[tuple[_Work, OrderBook]] = []
        for w in batch:  # every await first (budget, books) ...
            intent = w.intent
            try:
                await self._acquire_budget(self._budget_wait(intent))
            except RateLimitedError as e:
                outcomes.append((w, OrderStatus.NOT_SENT, f"{e.message}: not executed", "budget", [], ""))
                continue
            try:
                book = await self.books.book(intent.token_id)
            except VenueError as e:
                outcomes.append((w, OrderStatus.NOT_SENT, f"no order book: {e.detail}", "no_book", [], ""))
                continue
            ready.append((w, book))
        # ... then match and commit without awaiting: on_book() cannot fill (and store) an order of this
        # batch between its paper match and the commit that records it, which would be overwritten.
        for w, book in ready:
            assert w.params is not None
            res = self.paper.submit(w.intent, book, w.params)
            self.metrics.ack((self._perf() - w.started) * 1000, res.status is not OrderStatus.REJECTED)
            outcomes.append((w, res.status, res.reason, res.code, list(res.fills), res.order_id))

        # A fired armed order that was not executed (budget, no book) stays armed, as live (`_settle`): its
        # record is untouched, it may be fired again or retired.
        rearmed = [o for o in outcomes if o[0].armed is not None and o[1] is OrderStatus.NOT_SENT]
        for w, _status, reason, code, _f, _oid in rearmed:
            self._rearm(w, reason, code)
        if rearmed:
            outcomes = [o for o in outcomes if not (o[0].armed is not None and o[1] is OrderStatus.NOT_SENT)]
        fills: list[Fill] = []
        with self.store.transaction():
            for w, _status, _reason, _code, pfills, _oid in outcomes:
                fills.extend(self._paper_fill(f, w.intent) for f in pfills)
            if fills:
                self.store.record_fills(fills)
            for w, status, reason, _code, pfills, order_id in outcomes:
                filled = _totals(pfills)[0]
                self.store.set_order_status(
                    w.intent.key,
                    status,
                    venue_order_id=order_id or None,
                    error=reason if status in (OrderStatus.REJECTED, OrderStatus.NOT_SENT) else None,
                    filled_size=filled,
                    detail=reason or f"paper: {status.value}",
                )
        for w, status, reason, code, pfills, order_id in outcomes:
            for f in pfills:
                self._apply_fill_to_risk(w.intent, f.side, f.size, f.price, f.fee, f.ts_ms)
            if status.is_final:
                self.risk.on_order_closed(w.intent.key)
            self.metrics.final(status, code)
            filled, avg_price, fees, _ = _totals(pfills)
            self._finish(
                w.intent.key,
                status,
                reason=reason,
                code=code,
                venue_order_id=order_id or None,
                filled=filled,
                avg_price=avg_price,
                fees=fees,
                future=w.future,
            )

    def _budget_wait(self, intent: OrderIntent) -> float:
        marketable = intent.order_type in (OrderType.FOK, OrderType.FAK)
        return self.marketable_max_wait_s if marketable else 60.0

    async def _acquire_budget(self, max_wait: float = 60.0) -> None:
        """Our orders/min ceiling. If the fleet budget's Redis fails, this process falls back to its own
        local bucket (and says so once) rather than failing the order, as the store's cache does, and
        tries Redis again after `_BUDGET_RETRY_S` (not on every order: each try may wait a timeout)."""
        if self._local_budget is None or time.monotonic() >= self._budget_retry_at:
            try:
                await self.budget.acquire(max_wait)
                return
            except RateLimitedError:
                raise
            except Exception as e:
                if self._local_budget is None:
                    why = f"{type(e).__name__}: {e}"
                    log.warning("orders/min budget unavailable (%s); using this process's own budget", why)
                    self._local_budget = LocalBudget(self.budget.per_minute, clock=time.monotonic)
                self._budget_retry_at = time.monotonic() + _BUDGET_RETRY_S
        await self._local_budget.acquire(max_wait)

    def _expire_paper(self) -> None:
        """GTD paper orders past their expiration leave the paper book, the store and the gate."""
        assert self.paper is not None
        due = self.paper.expire_due()
        if not due:
            return
        with self.store.transaction():
            for o in due:
                self.store.set_order_status(
                    o.intent_key, OrderStatus.EXPIRED, filled_size=o.filled, detail="paper: GTD expired"
                )
        for o in due:
            self.risk.on_order_closed(o.intent_key)
            self._recent.pop(o.intent_key, None)

    def _paper_fill(self, f: PaperFill, intent: OrderIntent) -> Fill:
        return _fill(
            intent,
            f"paper:{f.trade_id}",
            f.token_id,
            f.price,
            f.size,
            f.fee,
            f.ts_ms,
            f.order_id,
            f.liquidity,
            True,
            wallet=self.wallet,  # the paper wallet's position
        )

    def _apply_fill_to_risk(
        self, intent: OrderIntent, side: Side, size: Decimal, price: Decimal, fee: Decimal, ts_ms: int
    ) -> None:
        self.risk.on_fill(
            token_id=intent.token_id,
            condition_id=intent.condition_id,
            side=side,
            size=size,
            price=price,
            fee=fee,
            order_key=intent.key,
            ts_ms=ts_ms,
            strategy=intent.strategy,
        )

    async def on_book(self, book: OrderBook) -> int:
        """Dry-run: a newer book may cross resting paper orders. Returns how many fills it made."""
        if self.paper is None:
            return 0
        self._expire_paper()
        self._sync_risk_state()  # a trip elsewhere (another process) must stop our resting BUYs first
        self._on_kill_switch()
        pfills = self.paper.on_book(book)
        if not pfills:
            return 0
        orders = self.store.get_orders(f.intent_key for f in pfills)
        intents = {key: _intent_of(rec) for key, rec in orders.items()}
        fills = [self._paper_fill(f, intents[f.intent_key]) for f in pfills if f.intent_key in intents]
        with self.store.transaction():
            self.store.record_fills(fills)
            for key, rec in orders.items():
                left = min(f.remaining for f in pfills if f.intent_key == key)
                filled = rec.size - left
                status = OrderStatus.FILLED if left == 0 else OrderStatus.PARTIALLY_FILLED
                self.store.set_order_status(key, status, filled_size=filled, detail="paper: book crossed")
        for f in pfills:
            self._recent.pop(f.intent_key, None)
            if f.intent_key in intents:
                self._apply_fill_to_risk(intents[f.intent_key], f.side, f.size, f.price, f.fee, f.ts_ms)
                if f.remaining == 0:
                    self.risk.on_order_closed(f.intent_key)
        self._save_risk_state()
        return len(fills)

    async def follow_books(self, stream: MarketStream) -> None:
        """Dry-run: feed every book change of `stream` to the paper exchange, so resting paper orders
        fill when the real book crosses them; in either mode, a `market_resolved` is applied at once
        (`apply_resolution`). Runs until the stream closes."""
        async for event in stream:
            if isinstance(event, MarketResolved):
                self._apply_resolution_event(event)
                continue
            if isinstance(event, BookSnapshot):
                tokens = {event.book.token_id}
            elif isinstance(event, PriceChange):
                tokens = {c.token_id for c in event.changes}
            else:
                continue
            for token in tokens:
                local = stream.books.get(token)
                if local is not None and local.synced and self.paper is not None and self.paper.open_orders(token):
                    await self.on_book(local.snapshot())

    # ---------------------------------------------------------------------------- resolutions

    def _apply_resolution_event(self, event: MarketResolved) -> None:
        """One `market_resolved` of the market channel, applied at once. A failure (the store busy or
        down, a bad event) is logged in one line and counted, never raised: it must not end the book
        following that resting paper orders and later resolutions depend on. Nothing is lost by it:
        `run_settler` / `pmbot settle` find the resolution again from Gamma, and recording is idempotent."""
        from pmbot.settle import resolution_from_event

        try:
            resolution = resolution_from_event(event)
            if resolution is not None:
                self.apply_resolution(resolution)
        except Exception as e:
            self.metrics.resolution_errors += 1
            why = e.one_line() if isinstance(e, PmbotError) else f"{type(e).__name__}: {e}"
            log.error("market_resolved of %s not applied (settled later from Gamma): %s", event.market, why)

    def apply_resolution(self, resolution: Resolution) -> list[Settlement]:
        """A market resolved: its payouts reach the store, the risk gate and the paper wallet at once.

        - The store records every open position's payout once (deterministic trade ids), whichever
          process learns of it first. The PnL of the payouts this call recorded counts towards today's
          loss of their mode (and may trip the kill switch); a payout recorded earlier (`pmbot settle`,
          another engine) was counted by whoever recorded it.
        - The gate drops its holdings of the market's tokens either way: their cost stops counting as
          exposure, and a losing position no longer sits open at cost.
        - The paper wallet cancels the market's resting paper orders and is paid 1 or 0 per share.
        Returns the settlements this call recorded."""
        from pmbot.settle import count_in_risk_state, record_settlements

        now = self._now_ms()
        if self.paper is not None:
            cancelled = []
            for token in resolution.token_ids:
                cancelled += self.paper.redeem(token, resolution.payout(token))[1]
            if cancelled:
                with self.store.transaction():
                    for o in cancelled:
                        self.store.set_order_status(
                            o.intent_key, OrderStatus.CANCELLED, filled_size=o.filled, detail="paper: market resolved"
                        )
                for o in cancelled:
                    self.risk.on_order_closed(o.intent_key)
                    self._recent.pop(o.intent_key, None)
        with self.store.transaction():  # recorded and counted together, or neither (see check_and_settle)
            settlements = record_settlements(self.store, [resolution], now)
            # the other mode's positions in this market were paid too: count them in that mode's state
            count_in_risk_state(self.store, settlements, self.risk.limits, self._clock, modes=(not self.dry_run,))
        for token in resolution.token_ids:
            self.risk.on_resolution(token, resolution.payout(token), ts_ms=now, count_realized=False)
        for st in settlements:
            if st.dry_run == self.dry_run and st.realized_pnl:
                self.risk.add_realized(st.realized_pnl, now)  # merged below, or at the next save if that fails
        self._save_risk_state()
        return settlements

    async def settle_resolved(self, venue: Venue) -> list[Settlement]:
        """Look up whether the markets this engine holds (or rests orders in) have resolved, and apply
        each resolution (`apply_resolution`). Raises VenueError when Gamma cannot be reached."""
        from pmbot.settle import SettleResult, find_resolutions

        tokens = {h.token_id for h in self.risk.holdings() if h.size > 0}
        if self.paper is not None:
            tokens |= {o.token_id for o in self.paper.open_orders()}
        result = SettleResult()
        resolutions = await find_resolutions(venue, sorted(tokens), result)
        for w in result.warnings:
            log.warning("%s", w)
        out: list[Settlement] = []
        for r in resolutions:
            out += self.apply_resolution(r)
        return out

    async def run_settler(self, venue: Venue, every_s: float = 60.0) -> None:
        """Background: `settle_resolved` every `every_s` until cancelled (run-all runs it). A venue
        failure is logged and retried at the next round."""
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.settle_resolved(venue)
            except VenueError as e:
                log.warning("resolutions not checked: %s", e.message)

    async def follow_user(self, stream: UserStream) -> None:
        """Live: the user channel says one of our orders traded or changed; settle it from the venue
        (order state and trade history, de-duplicated by trade id). Resting orders filled later are
        recorded this way, within a round trip of the venue's message. A trade of ours that FAILED
        (reverted on chain) takes its recorded fills back (`reverse_failed`). Runs until the stream closes."""
        async for event in stream:
            if isinstance(event, UserTradeEvent):
                if event.trade.status.upper() == "FAILED":
                    self._reverse_failed_guarded(event.trade, event.maker_orders)
                ids = {event.trade.taker_order_id, *event.trade.maker_order_ids}
            elif isinstance(event, UserOrderEvent):
                ids = {event.order_id}
            else:
                continue
            keys = [self._by_venue_id[i] for i in ids if i in self._by_venue_id]
            for key in keys:
                if key in self._inflight:
                    self._missed.add(key)  # settled when its POST answer is in
            try:
                records = self.store.get_orders(k for k in keys if k not in self._inflight)
            except PmbotError as e:
                log.warning("user channel: %s", e.message)
                continue
            for rec in records.values():
                if not rec.status.is_final:
                    await self._reconcile_guarded(rec)

    # --------------------------------------------------------------------------- failed trades
    #
    # A trade is MATCHED by the venue's engine, then MINED and CONFIRMED on chain; one whose transaction
    # fails is RETRYING (it may still be mined) and, given up, FAILED (terminal): its shares and USDC
    # never moved, the balances are as before the match. We record a fill at MATCHED (the venue's answer,
    # its trade history), so a FAILED trade's fills are taken back: `Store.reverse_fill` records a
    # `reversal` trade once per fill (idempotent by its trade id, whoever sees the FAILED first, however
    # often), and the gate's holdings, exposure and today's PnL follow. The user channel reports it while
    # we run; `check_failed_trades` reads the trade history for fills recorded before a restart.

    def _our_fill_ids(self, trade: UserTrade, makers: tuple[MakerOrderFill, ...] = ()) -> dict[str, str]:
        """Trade id -> order key of the fills our orders (known to this process) have in `trade`: as
        `_venue_fills` names them (the taker's under the trade id, a maker's under `<id>:<order hash>`)."""
        out: dict[str, str] = {}
        key = self._by_venue_id.get(trade.taker_order_id)
        if key is not None:
            out[trade.trade_id] = key
        for oid in {*trade.maker_order_ids, *(m.order_id for m in (*trade.maker_orders, *makers))}:
            key = self._by_venue_id.get(oid)
            if key is not None:
                out[_maker_fill_id(trade.trade_id, oid)] = key
        return out

    def _reverse_failed_guarded(self, trade: UserTrade, makers: tuple[MakerOrderFill, ...] = ()) -> None:
        try:
            self.reverse_failed(trade, makers)
        except Exception as e:  # the store busy: the next check_failed_trades finds it again
            log.error("trade %s FAILED at the venue; fills not taken back yet: %s", trade.trade_id, e)

    def reverse_failed(self, trade: UserTrade, makers: tuple[MakerOrderFill, ...] = ()) -> int:
        """`trade` FAILED at the venue: take back the fills our orders recorded of it. Returns how many
        were taken back now (0 when there were none, or when they were taken back before)."""
        if trade.status.upper() != "FAILED":
            return 0
        ids = self._our_fill_ids(trade, makers)
        return self._reverse_fills(ids, trade.trade_id, trade.match_ms)

    def _reverse_fills(self, ids: dict[str, str], venue_trade: str, fill_ms: int | None) -> int:
        why = f"trade {venue_trade} FAILED at the venue: fill taken back"
        done = 0
        now = self._now_ms()
        for trade_id, key in ids.items():
            with self.store.transaction():  # the reversal and its order event, together
                rev = self.store.reverse_fill(trade_id, ts=now, reason=why)
                if rev is None:
                    continue
                rec = self.store.get_order(key)
                if rec is not None:
                    left = max(_ZERO, rec.filled_size - rev.fill.size)
                    self.store.set_order_status(key, rec.status, filled_size=left, detail=why)
            f = rev.fill
            self.risk.on_fill_reverted(
                token_id=f.token_id,
                strategy=f.strategy,
                side=f.side,
                size=f.size,
                notional=-rev.notional,
                fee=-f.fee,
                realized=-rev.realized_pnl,
                ts_ms=fill_ms,
                condition_id=f.condition_id,
            )
            self._recent.pop(key, None)
            self.metrics.fills_reverted += 1
            done += 1
            log.warning("order %s: trade %s FAILED at the venue; its fill of %s shares was taken back", key,
                        venue_trade, f.size)  # fmt: skip
            try:
                self.store.log_execution(
                    ExecutionLog(
                        event="reversal", level="warning", message=why, strategy=f.strategy, order_key=key, ts=now,
                        metadata={"trade_id": trade_id, "size": str(f.size), "side": f.side.value},
                    )
                )  # fmt: skip
            except StoreError as e:
                log.warning("reversal of %s not logged: %s", trade_id, e.message)
        if done:
            self._save_risk_state()
        return done

    async def check_failed_trades(self, since_ms: int | None = None) -> int:
        """Live: read the venue's trade history of the markets where this wallet recorded fills since
        `since_ms` (default: the last `failed_lookback_s`) and take back the fills of trades that FAILED,
        the ones the user channel did not report (a restart, a dropped channel). One request per market.
        Returns how many fills were taken back. Raises VenueError when the history cannot be read."""
        if self.dry_run or self.trading is None:
            return 0
        since = since_ms if since_ms is not None else self._now_ms() - int(self.failed_lookback_s * 1000)
        # a reversal has its fill's ts: the window holds both or neither
        fills = without_reversed([r.fill for r in self.store.list_trades(Query(dry_run=False, since=since))])
        orders = self.store.get_orders({f.order_key for f in fills if f.order_key})
        mine = [f for f in fills if f.order_key in orders and self._settles(orders[f.order_key])]
        if not mine:
            return 0
        by_id = {f.trade_id: f for f in mine}
        by_market: dict[str, bool] = {}  # market (condition id, else token id) -> is it a condition id
        for f in mine:
            by_market[f.condition_id or f.token_id] = bool(f.condition_id)
        trading = self.trading
        gate = asyncio.Semaphore(8)  # a day of 15-minute markets is ~100 requests: not one after another

        async def history(market: str) -> list[Any]:
            async with gate:
                if by_market[market]:
                    return list(await trading.trades(market=market))
                return list(await trading.trades(token_id=market))

        markets = sorted(by_market)
        answers = await asyncio.gather(*(history(m) for m in markets), return_exceptions=True)
        for a in answers:
            if isinstance(a, BaseException):
                raise a
        done = 0
        for trades in answers:
            assert not isinstance(trades, BaseException)
            for t in trades:
                if t.status.upper() != "FAILED":
                    continue
                makers = {*t.maker_order_ids, *(m.order_id for m in t.maker_orders)}
                ids = {t.trade_id} | {_maker_fill_id(t.trade_id, oid) for oid in makers}
                hit = {i: by_id[i].order_key or "" for i in ids if i in by_id}
                if hit:
                    done += self._reverse_fills(hit, t.trade_id, t.match_ms)
        return done

    async def _check_failed_guarded(self, since_ms: int | None = None) -> None:
        try:
            await self.check_failed_trades(since_ms)
        except PmbotError as e:
            log.warning("failed trades not checked: %s", e.message)
        except Exception:
            log.exception("failed trades not checked")

    # ------------------------------------------------------------------------------------- live

    async def _execute_live(self, w: _Work) -> None:
        assert self.trading is not None
        assert w.signed is not None
        intent, signed = w.intent, w.signed
        try:
            await self._acquire_budget(self._budget_wait(intent))
        except RateLimitedError as e:  # nothing was sent
            self._settle(w, OrderStatus.NOT_SENT, reason=f"{e.message}: not sent", code="budget")
            return
        if self.lock_lost():
            self._settle(w, OrderStatus.NOT_SENT, reason="lost the wallet lock: not sent", code="lock_lost")
            return
        if self.heartbeat_lost:
            # the venue may cancel our orders any moment now: nothing new until a beat is accepted again
            self._settle(w, OrderStatus.NOT_SENT, reason="order heartbeat lost: not sent", code="heartbeat_lost")
            return
        post_only = intent.post_only
        if not post_only and self._clock() < self._post_only_until:
            # The venue's post-only window after a matching-engine restart: taker orders wait (not_sent, the
            # same key may be sent again); a resting order goes as post-only, so it can never take.
            if intent.order_type in (OrderType.FOK, OrderType.FAK):
                why = "the venue is in post-only mode (matching-engine restart): taker order not sent"
                self._settle(w, OrderStatus.NOT_SENT, reason=why, code="post_only_mode")
                return
            post_only = True
        try:
            if w.armed is not None and w.armed.prep is not None and post_only == intent.post_only:
                ack = await self.trading.post_prepared(w.armed.prep)  # signed and serialized at arm time
            else:
                ack = await self.trading.post_order(signed, intent.order_type, post_only=post_only)
        except OrderStateUnknownError as e:
            self.metrics.ack((self._perf() - w.started) * 1000, False)
            self._settle(w, OrderStatus.UNKNOWN, reason=e.message, code="unknown", submitted=True)
            return
        except VenueError as e:  # 429, 425, post-only mode, auth, could not connect: the venue did not take it
            self.metrics.ack((self._perf() - w.started) * 1000, False)
            why = f"{e.message}: not sent"
            code = f"venue_{e.status or 'unreachable'}"
            if isinstance(e, PostOnlyModeError):
                code = "post_only_mode"
                if self._clock() >= self._post_only_until:
                    log.warning("the venue is in post-only mode: taker orders pause for %.0f s", self.post_only_pause_s)
                    self._post_only_until = self._clock() + self.post_only_pause_s
            self._settle(w, OrderStatus.NOT_SENT, reason=why, code=code)
            return
        except Exception as e:  # a bug after the request may have left: only reconcile can tell
            log.exception("order %s: unexpected error while sending", intent.key)
            why = f"unexpected error while sending: {e}"
            self._settle(w, OrderStatus.UNKNOWN, reason=why, code="unknown", submitted=True)
            return
        self.metrics.ack((self._perf() - w.started) * 1000, ack.accepted)
        if not ack.accepted:
            if post_only and not intent.post_only and "post-only" in (ack.error or ""):
                # it would have crossed: refused only because we sent it post-only for the venue's window
                why = f"the venue is in post-only mode and this order would take ({ack.error}): not sent"
                self._settle(w, OrderStatus.NOT_SENT, reason=why, code="post_only_mode")
                return
            self._settle(w, OrderStatus.REJECTED, reason=ack.error, code="venue_rejected", submitted=True)
            return
        filled = _filled_shares(intent, ack.making_amount, ack.taking_amount)
        spent = ack.making_amount if intent.side is Side.BUY else None
        status = _status_after_ack(intent, ack.status, filled, spent)
        fills: list[Fill] = []
        if filled > 0 or ack.status == "matched" or ack.trade_ids:
            found = await self._venue_fills(intent, signed.order_hash)
            got = sum((f.size for f in found or ()), _ZERO)
            if found is None or got < filled or got == 0:
                # Matched, but the trade history does not show it (yet): record what is known and leave the
                # order unknown, so reconcile() records the rest. A final status here would lose the fills.
                self._settle(
                    w,
                    OrderStatus.UNKNOWN,
                    reason="matched; trades not read yet",
                    code="unknown",
                    submitted=True,
                    filled=got,
                    fills=found or [],
                    venue_order_id=signed.order_hash,
                )
                return
            fills, filled = found, got  # a marketable BUY at a better price gets more shares than asked
            status = _status_after_ack(intent, ack.status, filled, _totals(found)[3])
        self._settle(w, status, submitted=True, filled=filled, fills=fills, venue_order_id=signed.order_hash)
        if intent.key in self._missed:
            # the user channel spoke about this order while it was in flight: look again now
            self._missed.discard(intent.key)
            rec = self.store.get_order(intent.key)
            if rec is not None and not rec.status.is_final:
                self._track(asyncio.ensure_future(self._reconcile_guarded(rec)))

    def _settle(
        self,
        w: _Work,
        status: OrderStatus,
        *,
        reason: str | None = None,
        code: str | None = None,
        submitted: bool = False,
        filled: Decimal = _ZERO,
        fills: list[Fill] | None = None,
        venue_order_id: str | None = None,
    ) -> None:
        intent = w.intent
        if w.armed is not None and status is OrderStatus.NOT_SENT:
            self._rearm(w, reason, code)
            return
        fills = fills or []
        with self.store.transaction():
            if submitted:
                self.store.set_order_status(intent.key, OrderStatus.SUBMITTED, detail="POST /order sent")
            new = self._record_new(fills)
            self.store.set_order_status(
                intent.key,
                status,
                venue_order_id=venue_order_id,
                error=reason if status in (OrderStatus.REJECTED, OrderStatus.UNKNOWN, OrderStatus.NOT_SENT) else None,
                filled_size=filled,
                detail=reason or "",
            )
        for f in new:
            self._apply_fill_to_risk(intent, f.side, f.size, f.price, f.fee, f.ts)
        if status.is_final:
            self.risk.on_order_closed(intent.key)
        elif filled:
            self.risk.on_order_update(intent.key, filled)
        self.metrics.final(status, code)
        _, avg_price, fees, _ = _totals(fills)
        self._finish(
            intent.key,
            status,
            reason=reason,
            code=code,
            venue_order_id=venue_order_id,
            filled=filled,
            avg_price=avg_price,
            fees=fees,
            future=w.future,
        )

    def _rearm(self, w: _Work, reason: str | None, code: str | None) -> None:
        """A fired armed order of which nothing left this process: armed again (its record untouched), its
        reservation released; the caller hears ARMED and may fire it again or retire it."""
        assert w.armed is not None
        key = w.intent.key
        self.risk.on_order_closed(key)
        self._armed[key] = w.armed
        self._inflight.pop(key, None)
        if not w.future.done():
            w.future.set_result(SubmitResult(key, OrderStatus.ARMED, reason=reason, code=code, dry_run=self.dry_run))

    def _record_new(self, fills: list[Fill]) -> list[Fill]:
        """Store fills (inside the caller's transaction); return those not stored before. The store's
        unique trade id decides, so a fill seen twice (answer, reconcile, user channel) counts once."""
        return [f for f in fills if self.store.record_fill(f)]

    async def _venue_fills(self, intent: OrderIntent, order_hash: str) -> list[Fill] | None:
        """Our fills of one order, from the venue's trade history (as taker or as maker); None when the
        history could not be read (which is not the same as "no fills")."""
        assert self.trading is not None
        try:
            # by market, not token: a match against the other outcome's token is also ours
            if intent.condition_id:
                trades = await self.trading.trades(market=intent.condition_id)
            else:
                trades = await self.trading.trades(token_id=intent.token_id)
        except VenueError as e:
            log.warning("order %s: trade history unreadable for now: %s", intent.key, e.message)
            return None
        params: MarketParams | None = None
        out: list[Fill] = []
        for t in trades:
            if t.status == "FAILED":
                continue  # the match was reverted on-chain: no position came of it
            taker = t.taker_order_id == order_hash
            entry = None if taker else t.maker_entry(order_hash)
            if not taker and entry is None:
                continue
            # As maker, only our own entry counts: the trade's size and price describe the taker's order.
            size = t.size if entry is None else entry.matched_amount
            price = t.price if entry is None else entry.price
            token = (t.token_id if entry is None else entry.token_id) or intent.token_id
            fee = _ZERO
            if taker:  # takers pay the market's schedule; loaded here if this process has not yet (restart)
                params = params or await self._params_for(intent.token_id)
                if params is not None:
                    fee = params.fees.fee(size, price)
                elif t.fee_rate_bps:
                    fee = (size * price * t.fee_rate_bps / 10_000).quantize(_FEE_Q)
                else:
                    return None  # the fee cannot be known now: do not record the fill without it
            trade_id = t.trade_id if taker else _maker_fill_id(t.trade_id, order_hash)
            ts = t.match_ms or self._now_ms()
            liquidity = "taker" if taker else "maker"
            out.append(_fill(intent, trade_id, token, price, size, fee, ts, order_hash, liquidity, False))
        return fills_within_order(intent, out)  # never more than the order signed

    # ------------------------------------------------------------------------------- reconcile

    async def reconcile(self) -> dict[str, int]:
        """Settle every non-final order of this mode left by an earlier run (or marked unknown).

        Live: asked of the venue by order hash; an order the venue does not know and that has no trades
        was never placed, and is rejected (never re-sent). Dry-run: the paper book does not survive a
        restart, so resting paper orders are cancelled and unsent ones stored `not_sent`."""
        report: dict[str, int] = {}
        open_orders = [o for o in self.store.list_orders(statuses=NON_FINAL) if self._settles(o)]
        for rec in open_orders:
            if rec.key in self._inflight or rec.key in self._armed:
                continue  # being sent by this process right now, or armed by it (not sent)
            if rec.venue_order_id and not self.dry_run:
                self._by_venue_id[rec.venue_order_id] = rec.key
            status = await (self._reconcile_paper(rec) if self.dry_run else self._reconcile_live(rec))
            report[status.value] = report.get(status.value, 0) + 1
        return report

    async def run_heartbeat(self) -> None:
        """Live: POST /v1/heartbeats every `heartbeat_every_s` from start-up until close. A failed beat
        (error, or no answer in `heartbeat_timeout_s`) is a health event: logged, counted, and new intents
        are refused until a beat is accepted again; a failed beat is retried after `heartbeat_retry_s`, so
        that one lost request does not run out the venue's 10 s."""
        assert self.trading is not None
        beat_id = ""
        while not self._closing:
            began = self._perf()
            try:
                beat_id = await asyncio.wait_for(self.trading.heartbeat(beat_id), timeout=self.heartbeat_timeout_s)
            except (PmbotError, TimeoutError) as e:
                self.metrics.heartbeats_lost += 1
                if not self.heartbeat_lost:
                    log.warning("order heartbeat lost (%s): new orders stop until it is back", str(e) or "timed out")
                self.heartbeat_lost = True
                await asyncio.sleep(min(self.heartbeat_retry_s, self.heartbeat_every_s))
                continue
            self.metrics.heartbeats += 1
            if self.heartbeat_lost:
                log.warning("order heartbeat is back")
            self.heartbeat_lost = False
            await asyncio.sleep(max(0.0, self.heartbeat_every_s - (self._perf() - began)))  # every 5 s, start to start

    async def run_reconciler(self, every_s: float = 5.0) -> None:
        """Live: while orders are unknown (a lost answer, a match whose trades were not readable yet),
        settle them every `every_s` seconds. Runs until the executor closes."""
        while not self._closing:
            await asyncio.sleep(every_s)
            if self.dry_run or self._closing:
                continue
            self._sync_risk_state()  # a resume or another process's trip reaches an idle engine too
            self._on_kill_switch()
            try:
                # every open live order: unknown ones settle, resting ones pick up fills the user channel missed
                stuck = [
                    o
                    for o in self.store.list_orders(statuses=NON_FINAL)
                    if self._settles(o) and o.key not in self._inflight and o.key not in self._armed
                ]
            except PmbotError as e:
                log.warning("reconciler: %s", e.message)
                continue
            for rec in stuck:
                await self._reconcile_guarded(rec)
            if self._perf() - self._failed_checked >= self.failed_check_every_s:
                self._failed_checked = self._perf()
                await self._check_failed_guarded(self._now_ms() - int(self.failed_recheck_lookback_s * 1000))

    async def _reconcile_paper(self, rec: OrderRecord) -> OrderStatus:
        if rec.status in (OrderStatus.PENDING, OrderStatus.ARMED):
            status, why = OrderStatus.NOT_SENT, "stopped before execution: not executed"
        else:
            status, why = OrderStatus.CANCELLED, "paper orders do not survive a restart"
        self.store.set_order_status(rec.key, status, error=why if status is OrderStatus.NOT_SENT else None, detail=why)
        self._recent.pop(rec.key, None)
        return status

    def _settles(self, rec: OrderRecord) -> bool:
        """Is `rec` this executor's to settle? Its own wallet's orders, rows from before wallets were
        recorded (''), and dry-run: the orders of a paper wallet whose process is gone."""
        if rec.dry_run != self.dry_run:
            return False
        if rec.wallet in (self.wallet, ""):
            return True
        return self.dry_run and self.owner_gone(rec.wallet)

    def _lock_for(self, key: str) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _params_for(self, token_id: str) -> MarketParams | None:
        """The market's parameters, fetched when this process has not loaded them (after a restart)."""
        try:
            return await self.params.get(token_id)
        except VenueError as e:
            log.warning("market parameters of %s unavailable for now: %s", token_id, e.message)
            return None

    async def _fee_reserve(self, rec: OrderRecord) -> Decimal:
        if rec.side is not Side.BUY:
            return _ZERO
        params = await self._params_for(rec.token_id)
        if params is None:
            return _ZERO
        return buy_fee_reserve(rec.side, rec.order_type, rec.size, rec.price, params)

    async def _hold(self, rec: OrderRecord) -> OrderStatus:
        """Could not settle it now: keep it reserved (the caps must count it) and try again later."""
        self.risk.restore_order(rec, fee_reserve=await self._fee_reserve(rec))
        return rec.status

    async def _hold_unknown(self, rec: OrderRecord, found: list[Fill], got: Decimal, why: str) -> OrderStatus:
        """Record the fills visible so far, keep the order open (unknown) and reserved: not final yet."""
        intent = _intent_of(rec)
        with self.store.transaction():
            new = self._record_new(found)
            if new or rec.status is not OrderStatus.UNKNOWN or rec.error != why:  # no event per unchanged look
                self.store.set_order_status(rec.key, OrderStatus.UNKNOWN, filled_size=got, error=why, detail=why)
        for f in new:
            self._apply_fill_to_risk(intent, f.side, f.size, f.price, f.fee, f.ts)
        held = replace(rec, status=OrderStatus.UNKNOWN, filled_size=max(got, rec.filled_size))
        self.risk.restore_order(held, fee_reserve=await self._fee_reserve(rec))
        self._recent.pop(rec.key, None)
        return OrderStatus.UNKNOWN

    async def _reconcile_guarded(self, rec: OrderRecord) -> None:
        try:
            await self._reconcile_live(rec)
        except Exception:  # a background settle must never die silently or kill its loop
            log.exception("reconcile %s failed; will retry", rec.key)

    async def _reconcile_live(self, rec: OrderRecord) -> OrderStatus:
        async with self._lock_for(rec.key):
            current = self.store.get_order(rec.key)  # someone may have settled it while we waited
            if current is None or current.status.is_final:
                return current.status if current is not None else rec.status
            return await self._reconcile_live_locked(current)

    async def _reconcile_live_locked(self, rec: OrderRecord) -> OrderStatus:
        assert self.trading is not None
        intent = _intent_of(rec)
        if not rec.venue_order_id:  # stored but never signed: nothing of it can be at the venue
            self.store.set_order_status(rec.key, OrderStatus.NOT_SENT, error="never signed", detail="reconcile")
            return OrderStatus.NOT_SENT
        try:
            venue = await self.trading.order(rec.venue_order_id)
        except VenueError as e:
            log.warning("reconcile %s: venue unreadable (%s); left %s", rec.key, e.message, rec.status.value)
            return await self._hold(rec)
        found = await self._venue_fills(intent, rec.venue_order_id)
        if found is None:
            return await self._hold(rec)  # cannot tell yet: never guess "not placed"
        got = sum((f.size for f in found), _ZERO)
        if venue is None and got == 0 and self._too_recent(rec):
            return await self._hold(rec)  # a POST the client gave up on may still be in the venue's pipeline
        spent = _totals(found)[3]
        if venue is not None:
            venue_matched = matched_within_order(intent, venue.size_matched)
            matched = max(venue_matched, got)
            complete = _complete(intent, matched, spent)
            status = _status_of_open_order(venue.status, matched, complete)
            if status is OrderStatus.FILLED and not complete and rec.order_type is OrderType.FAK:
                status = OrderStatus.CANCELLED  # MATCHED in part: the rest of a FAK is cancelled
            if status.is_final and got < venue_matched:
                # The venue closed it, but its trade history does not show all of what it matched yet:
                # closing now would lose those fills (nothing records them later). Record what is
                # visible, keep it open as unknown; the reconciler looks again.
                return await self._hold_unknown(rec, found, got, f"venue says {venue.status}; trades not visible yet")
        elif got > 0:
            done = _complete(intent, got, spent)
            matched, status = got, (OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
            if rec.order_type in (OrderType.FOK, OrderType.FAK) and status is not OrderStatus.FILLED:
                status = OrderStatus.CANCELLED
        else:
            matched, status = _ZERO, OrderStatus.REJECTED
        why = "reconcile: not found at the venue, never placed" if status is OrderStatus.REJECTED else "reconcile"
        if venue is not None and (venue_why := status_reason(venue.status)):  # CANCELED_NOT_ENOUGH_BALANCE…
            why = f"reconcile: {venue_why}"
        with self.store.transaction():
            new = self._record_new(found)
            self.store.set_order_status(
                rec.key, status, filled_size=matched, error=why if status is OrderStatus.REJECTED else None, detail=why
            )
        for f in new:
            self._apply_fill_to_risk(intent, f.side, f.size, f.price, f.fee, f.ts)
        if status.is_final:
            self.risk.on_order_closed(rec.key)
        else:
            self.risk.restore_order(
                replace(rec, status=status, filled_size=matched), fee_reserve=await self._fee_reserve(rec)
            )
        self._recent.pop(rec.key, None)
        return status

    def _too_recent(self, rec: OrderRecord) -> bool:
        since = rec.updated_at
        if rec.status is OrderStatus.ARMED:
            # An armed record left by another run may have been fired at any moment before that run died
            # (firing writes nothing first): give the venue its grace from our start, at least.
            since = max(since, self._started_ms)
        return self.unknown_grace_s > 0 and self._now_ms() - since < self.unknown_grace_s * 1000

    # ----------------------------------------------------------------------------------- cancel

    async def cancel(self, key: str, *, why: str = "cancelled by request") -> OrderRecord:
        rec = self.store.get_order(key)
        if rec is None:
            raise StoreError(f"no order with key {key!r}", hint="`pmbot trades` / the orders table list keys")
        if rec.status.is_final:
            return rec
        if not self._settles(rec):
            owner = f"dry-run process {rec.wallet}" if rec.dry_run else f"wallet {rec.wallet}"
            raise InputError(
                f"order {key} belongs to {owner}, not this {self.mode} executor ({self.wallet})",
                hint="cancel it from the process (or with the wallet) that placed it",
            )
        if key in self._inflight:
            raise InputError(f"order {key} is still being sent; cancel it once it is acknowledged")
        if key in self._armed:  # armed here, never sent: nothing at the venue to cancel
            self.retire([key], why=why)
            after = self.store.get_order(key)
            assert after is not None
            return after
        if self.dry_run:
            assert self.paper is not None
            if rec.venue_order_id:
                self.paper.cancel(rec.venue_order_id)
        else:
            assert self.trading is not None
            if rec.venue_order_id:
                res = await self.trading.cancel(rec.venue_order_id)
                if rec.venue_order_id not in res.canceled:
                    reason = res.not_canceled.get(rec.venue_order_id, "not cancelled")
                    raise VenueError(f"venue did not cancel {key}: {reason}")
                # Fills made before the cancel must be recorded: settle from the venue, not by assumption.
                await self._reconcile_live(rec)
                after = self.store.get_order(key)
                assert after is not None
                if not after.status.is_final:
                    self._mark_unknown(key, "cancelled at the venue; fills not read yet")
                    after = self.store.get_order(key)
                    assert after is not None
                self._save_risk_state()
                return after
        self.risk.on_order_closed(key)
        self._save_risk_state()
        self._recent.pop(key, None)
        return self.store.update_order(key, OrderStatus.CANCELLED, detail=why)

    async def cancel_resting(self, *, why: str = "cancelled at shutdown", timeout_s: float = 4.0) -> CancelSweep:
        """Cancel every open order of this executor's wallet within `timeout_s` (run-all's cancel on stop).

        POSTs still in flight are awaited first (an order acknowledged after the sweep began is swept
        too). Then every resting order is cancelled at the venue at once (`DELETE /orders`, 1000 ids a
        request), before any read. Then each record is settled from `GET /data/order`; the trade history
        (one read per order) only for an order that matched something. One history read per order made
        the sweep stall: the burst before the stop had used up the /data/trades window (every match reads
        the market's history), the reads waited past the deadline, and orders the venue had cancelled
        stayed `live` (or, past 16 of them, were never cancelled at all). Whatever is not settled by the
        deadline is left `unknown`, never `live`: the next start reconciles it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sweep = CancelSweep()
        seen: set[str] = set()
        while True:
            pending = [f for f in self._inflight.values() if not f.done()]
            if pending:
                await asyncio.wait(pending, timeout=max(0.0, deadline - loop.time()))
            batch: list[OrderRecord] = []
            busy: list[str] = []
            for r in self.store.list_orders(statuses=NON_FINAL):
                if r.key in seen or not r.venue_order_id or not self._settles(r):
                    continue
                if r.key in self._inflight:
                    busy.append(r.key)
                elif r.key in self._armed:  # armed here, never sent: nothing at the venue
                    self.retire([r.key], why=why)
                    seen.add(r.key)
                else:
                    batch.append(r)
            seen.update(r.key for r in batch)
            if batch:
                if self.dry_run:
                    for r in batch:
                        with contextlib.suppress(PmbotError):
                            await self.cancel(r.key, why=why)
                        sweep.note(self.store.get_order(r.key) or r)
                else:
                    await self._sweep_live(batch, why, deadline, sweep)
            if not busy or loop.time() >= deadline:
                sweep.in_flight = busy
                self._save_risk_state()
                return sweep

    async def _sweep_live(self, batch: list[OrderRecord], why: str, deadline: float, sweep: CancelSweep) -> None:
        assert self.trading is not None
        trading = self.trading
        loop = asyncio.get_running_loop()
        by_id = {r.venue_order_id: r for r in batch if r.venue_order_id}
        ids = list(by_id)
        confirmed: set[str] = set()
        for i in range(0, len(ids), 1000):
            chunk = ids[i : i + 1000]
            try:
                res = await asyncio.wait_for(trading.cancel_many(chunk), max(0.01, deadline - loop.time()))
            except TimeoutError:
                confirmed.update(chunk)  # the answer is lost: maybe cancelled, so never settled as live unread
                continue
            except PmbotError as e:
                log.warning("cancel of %d orders failed (%s); cancelling them one by one", len(chunk), e.message)
                res = await self._cancel_each(chunk, deadline)
            confirmed.update(res.canceled)
            for oid, reason in res.not_canceled.items():
                log.warning("order %s not cancelled by the venue: %s", by_id[oid].key, reason)
        gate = asyncio.Semaphore(16)
        seen_live: set[str] = set()  # read after the DELETE: the venue still has it resting (it refused)

        async def settle(rec: OrderRecord) -> None:
            async with gate:
                if await self._settle_swept(rec, why) == "LIVE":
                    seen_live.add(rec.key)

        tasks = [asyncio.ensure_future(settle(r)) for r in batch]
        _, late = await asyncio.wait(tasks, timeout=max(0.01, deadline - loop.time())) if tasks else (set(), set())
        for t in late:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for rec in batch:
            after = self.store.get_order(rec.key) or rec
            # not final: `unknown` unless the venue was read with it still resting after refusing the cancel
            if not after.status.is_final and (rec.key not in seen_live or rec.venue_order_id in confirmed):
                self._mark_unknown(rec.key, f"{why}: cancel sent, not settled before the deadline")
                after = self.store.get_order(rec.key) or after
            sweep.note(after)

    async def _cancel_each(self, ids: list[str], deadline: float) -> CancelResult:
        assert self.trading is not None
        trading = self.trading
        loop = asyncio.get_running_loop()
        canceled: list[str] = []
        refused: dict[str, str] = {}

        async def one(oid: str) -> None:
            try:
                res = await asyncio.wait_for(trading.cancel(oid), max(0.01, deadline - loop.time()))
            except (TimeoutError, PmbotError) as e:
                canceled.append(oid)  # maybe cancelled: settled from the venue, or left unknown
                log.warning("cancel of %s: %s", oid, e)
                return
            canceled.extend(res.canceled)
            refused.update(res.not_canceled)

        await asyncio.gather(*(one(oid) for oid in ids))
        return CancelResult(tuple(canceled), refused)

    async def _settle_swept(self, rec: OrderRecord, why: str) -> str | None:
        """After the sweep's DELETE: an order the venue shows cancelled with nothing matched is closed
        from that one read (no trade history needed: nothing of it traded); anything else is reconciled.
        Returns the venue's status of it, when it was read."""
        assert self.trading is not None
        try:
            async with self._lock_for(rec.key):
                current = self.store.get_order(rec.key)
                if current is None or current.status.is_final:
                    return None
                assert current.venue_order_id is not None
                venue = await self.trading.order(current.venue_order_id)
                if (
                    venue is not None
                    and venue.status.upper().startswith("CANCELED")
                    and venue.size_matched == 0
                    and current.filled_size == 0
                ):
                    detail = f"{why}: {venue_why}" if (venue_why := status_reason(venue.status)) else why
                    self.store.set_order_status(rec.key, OrderStatus.CANCELLED, filled_size=_ZERO, detail=detail)
                    self.risk.on_order_closed(rec.key)
                    self._recent.pop(rec.key, None)
                    return venue.status.upper()
                await self._reconcile_live_locked(current)
                return None if venue is None else venue.status.upper()
        except PmbotError as e:
            log.warning("order %s: not settled after its cancel: %s", rec.key, e.message)
        except Exception:  # a bug: this order is left unknown, the sweep goes on
            log.exception("order %s: not settled after its cancel", rec.key)
        return None


# ------------------------------------------------------------------------------------- helpers


def buy_fee_reserve(side: Side, order_type: OrderType, size: Decimal, price: Decimal, params: MarketParams) -> Decimal:
    """The taker-fee allowance the gate reserves for a BUY (0 for a SELL: it pays fees from proceeds).

    A resting BUY buys at most `size` shares at `price` or better: its fee at the limit bounds it
    (`max_taker_fee`). A marketable BUY spends `buy_spend(size, price)` USDC and gets more shares at a
    better price, and the fee is per share: fee = spend/x · rate · (x(1−x))^e at fill price x. That
    rises as x falls for e = 1 (most at the lowest tick) and peaks at x = (e−1)/(2e−1) for larger e, so
    the bound is taken at that peak, clamped to [tick, price]. Rounded up: an allowance, not a charge."""
    if side is not Side.BUY:
        return _ZERO
    if order_type not in (OrderType.FOK, OrderType.FAK):
        return max_taker_fee(size, price, params.fees)
    fees, spend = params.fees, buy_spend(size, price)
    if not fees.rate or spend <= 0:
        return _ZERO
    e = fees.exponent
    if e == 1:  # spend/x · rate · x(1−x) = spend · rate · (1−x), largest at the lowest tick
        return (spend * fees.rate * (1 - params.tick_size)).quantize(_FEE_Q, rounding=ROUND_UP)
    peak = Decimal(e - 1) / Decimal(2 * e - 1)
    x = min(max(peak, params.tick_size), price)
    return (spend / x * fees.rate * (x * (1 - x)) ** e).quantize(_FEE_Q, rounding=ROUND_UP)


def _maker_fill_id(trade_id: str, order_id: str) -> str:
    """The store trade id of a maker order's fill in venue trade `trade_id` (a taker's is the trade id):
    one trade can fill several of our resting orders, each its own fill. `_venue_fills` records fills
    under it; the FAILED-trade reversal finds them by it."""
    return f"{trade_id}:{order_id[:18]}"


def _fill(
    intent: OrderIntent,
    trade_id: str,
    token_id: str,
    price: Decimal,
    size: Decimal,
    fee: Decimal,
    ts: int,
    venue_order_id: str,
    liquidity: str,
    dry_run: bool,
    *,
    wallet: str = "",
) -> Fill:
    """A store Fill of one of `intent`'s orders; side, strategy and labels come from the intent.
    `wallet`: a paper fill's paper wallet (live fills: "")."""
    return Fill(
        trade_id=trade_id,
        strategy=intent.strategy,
        token_id=token_id,
        side=intent.side,
        price=price,
        size=size,
        dry_run=dry_run,
        ts=ts,
        condition_id=intent.condition_id,
        fee=fee,
        order_key=intent.key,
        venue_order_id=venue_order_id,
        liquidity=liquidity,
        market=str(intent.meta.get("market", "")),
        outcome=str(intent.meta.get("outcome", "")),
        wallet=wallet,
    )


def _totals(fills: list[Fill] | list[PaperFill]) -> tuple[Decimal, Decimal | None, Decimal, Decimal]:
    """(shares, volume-weighted price, fees, USDC notional) of some fills."""
    size = sum((f.size for f in fills), _ZERO)
    notional = sum((f.price * f.size for f in fills), _ZERO)
    return size, (notional / size if size else None), sum((f.fee for f in fills), _ZERO), notional


def _intent_of(rec: OrderRecord) -> OrderIntent:
    meta = {k: str(v) for k, v in (rec.metadata or {}).items() if k != "signal_ms"}
    return OrderIntent(
        key=rec.key,
        strategy=rec.strategy,
        token_id=rec.token_id,
        condition_id=rec.condition_id,
        side=rec.side,
        price=rec.price,
        size=rec.size,
        order_type=rec.order_type,
        signal_ms=int((rec.metadata or {}).get("signal_ms", rec.created_at) or rec.created_at),
        meta=meta,
    )


def _filled_shares(intent: OrderIntent, making: Decimal | None, taking: Decimal | None) -> Decimal:
    """Shares matched at once, from the POST /order answer: a BUY receives shares (taking), a SELL
    gives them (making). Not capped at the intent's size: a marketable BUY is signed as a USDC amount
    (`buy_spend`), so a better price buys more shares for the same USDC."""
    amount = taking if intent.side is Side.BUY else making
    return amount or _ZERO


def _complete(intent: OrderIntent, shares: Decimal, spent: Decimal | None) -> bool:
    """Whether `shares` matched (for `spent` USDC) is all of the order, by the venue's own sizing of
    what was signed: a FOK matched at all matched in full; a FAK BUY spends `buy_spend` (complete when
    less than a cent is left, like the venue); anything else is the size in whole 0.01-share lots."""
    if intent.order_type is OrderType.FOK:
        return shares > 0
    if intent.order_type is OrderType.FAK and intent.side is Side.BUY:
        return spent is not None and spent > buy_spend(intent.size, intent.price) - _CENT
    return shares >= intent.size.quantize(_CENT, rounding=ROUND_DOWN)


def _status_after_ack(
    intent: OrderIntent, venue_status: str, filled: Decimal, spent: Decimal | None = None
) -> OrderStatus:
    if venue_status == "delayed":
        return OrderStatus.SUBMITTED  # taker delay window: the venue will decide; reconcile reads it
    if venue_status == "unmatched":
        return OrderStatus.CANCELLED
    complete = _complete(intent, filled, spent)
    if venue_status == "live" and not complete and intent.order_type in (OrderType.FOK, OrderType.FAK):
        return OrderStatus.LIVE  # a FAK answered "live" can still fill: the user channel / reconcile settle it
    if complete:
        return OrderStatus.FILLED
    if intent.order_type in (OrderType.FOK, OrderType.FAK):
        return OrderStatus.CANCELLED  # what did not match at once is cancelled (filled_size keeps the part)
    return OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.LIVE


def _status_of_open_order(venue_status: str, matched: Decimal, complete: bool) -> OrderStatus:
    s = venue_status.upper()
    if s == "DELAYED":
        return OrderStatus.SUBMITTED
    if s == "UNMATCHED":  # a delayed order that did not match: final
        return OrderStatus.FILLED if complete else OrderStatus.CANCELLED
    if s == "LIVE":
        return OrderStatus.PARTIALLY_FILLED if matched > 0 else OrderStatus.LIVE
    if s == "MATCHED" or complete:
        return OrderStatus.FILLED
    if s.startswith("CANCELED"):
        return OrderStatus.CANCELLED
    if s == "INVALID":
        return OrderStatus.REJECTED
    return OrderStatus.UNKNOWN
