"""The strategy runner's loop: events in, decisions stored, intents to the executor, results back.

`Runner` knows no venue and no clock source: a *feed* (pmbot.runner.live for venue streams,
pmbot.runner.backtest for a scenario) calls `deliver(event)` for each typed event, in order, and
`tick(now_ms)` for timer ticks. Per event, strictly in order (the contract of pmbot.strategies.base):

    view.apply(event) → out = strategy.handle(event) → decisions buffered for the store →
    each intent to the executor (concurrently, so a burst shares one write-ahead commit) →
    OrderResult, then OrderFilled when it filled, delivered back through the same loop.

Decisions are written after the intents were handed over (a decision is a report, an order's durability
is the executor's write-ahead), so the hot path pays no extra fsync before the POST.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from pmbot.executor.engine import DRY_RUN_PREFIX
from pmbot.executor.intents import OrderIntent
from pmbot.store.models import DecisionRow, OrderStatus
from pmbot.strategies.base import Decision, Output, Strategy
from pmbot.strategies.events import Event, OrderFilled, OrderResult, TimerTick
from pmbot.strategies.memview import MemoryView

if TYPE_CHECKING:
    from pmbot.executor.engine import ArmedOrder, SubmitResult
    from pmbot.store.base import Store

__all__ = ["ArmingSink", "DecisionLog", "OrderSink", "Runner", "SentOrder", "signals_of_orders"]

log = logging.getLogger("pmbot.runner")
_ZERO = Decimal(0)


class OrderSink(Protocol):
    """What the runner needs from the executor (pmbot.executor.engine.Executor satisfies it)."""

    async def submit(self, intent: OrderIntent) -> SubmitResult: ...


@runtime_checkable
class ArmingSink(Protocol):
    """An executor that can pre-arm orders (pmbot.executor.engine.Executor): the runner's `prearm` uses it."""

    async def arm(self, intents: list[OrderIntent], *, retire_at_ms: int | None = None) -> list[ArmedOrder]: ...

    async def fire(self, key: str) -> SubmitResult: ...

    def retire(self, keys: list[str], *, why: str = ...) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class _ArmedEntry:
    intent: OrderIntent  # as anticipated (and armed)
    stored_key: str  # the executor's key (dry-run: prefixed)
    retire_at_ms: int | None


class DecisionLog:
    """Buffers a strategy's decisions and writes them to the store in batches (one transaction each).

    `mode` is live | dry-run | backtest, `run_id` the run they belong to. With `store=None` decisions
    are only kept in memory (`rows`), e.g. for a sweep's intermediate runs. A decision becomes its store
    row when it is written (`flush`), not when it is added: `add` sits on the entry's hot path (the
    runner adds an output's decisions in order, before its intents go out), the row's copy does not."""

    def __init__(self, store: Store | None, *, mode: str, run_id: str, keep: bool = False) -> None:
        self.store = store
        self.mode = mode
        self.run_id = run_id
        self.keep = keep or store is None
        self.rows: list[DecisionRow] = []
        self._pending: list[Decision] = []
        self.count = 0

    def add(self, decisions: Iterable[Decision]) -> None:
        before = len(self._pending)
        self._pending.extend(decisions)
        added = len(self._pending) - before
        self.count += added
        if self.keep and added:
            self.rows += [self._decision_row(d) for d in self._pending[before:]]

    def _decision_row(self, d: Decision) -> DecisionRow:
        return DecisionRow(
            ts=d.ts_ms,
            strategy=d.strategy,
            kind=d.kind.value,
            reason=d.reason,
            mode=self.mode,
            run_id=self.run_id,
            condition_id=d.condition_id,
            token_id=d.token_id,
            intent_key=d.intent_key,
            detail=dict(d.detail),
        )

    def flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        if self.store is not None:
            try:
                self.store.record_decisions([self._decision_row(d) for d in pending])
            except Exception:
                self._pending = pending + self._pending  # kept for the next flush
                raise


def signals_of_orders(
    store: Store, orders: Iterable[tuple[str, bool]], *, lookback_ms: int = 7 * 86_400_000
) -> dict[str, DecisionRow]:
    """The strategy decision that caused each order: `orders` are (stored order key, dry_run) pairs (a
    fill's `order_key` and `dry_run`); the answer maps each key that has one to its `signal` decision
    (decisions.intent_key is the strategy's key; a dry-run order is stored under `dry-run:<key>`). A key
    signalled again after a restart was answered from its record: the first signal is the cause.

    Reads the decisions of the orders' strategies and mode from `lookback_ms` before the oldest order was
    created (a signal comes after its order was pre-armed, before it was sent; a resting order may fill
    long after it)."""
    wanted: dict[tuple[str, str], str] = {}  # (mode, intent key) → stored key
    strategies: set[tuple[str, str]] = set()
    oldest: int | None = None
    for key, dry_run in orders:
        mode = "dry-run" if dry_run else "live"
        ref = (mode, key.removeprefix(DRY_RUN_PREFIX))
        if ref in wanted:
            continue
        rec = store.get_order(key)
        if rec is None:
            continue
        wanted[ref] = key
        strategies.add((mode, rec.strategy))
        oldest = rec.created_at if oldest is None else min(oldest, rec.created_at)
    out: dict[str, DecisionRow] = {}
    if oldest is None:
        return out
    for mode, strategy in sorted(strategies):
        for d in store.list_decisions(mode=mode, strategy=strategy, since=oldest - lookback_ms):  # newest first
            stored = wanted.get((mode, d.intent_key or ""))
            if stored is not None and d.kind == "signal":
                out[stored] = d  # the oldest one wins: it is written last
    return out


@dataclass
class SentOrder:
    """One intent the runner gave the executor and what became of it (for live views and summaries)."""

    intent: OrderIntent
    result: SubmitResult | None = None
    error: str = ""

    @property
    def status(self) -> str:
        if self.error:
            return "error"
        return "sending" if self.result is None else self.result.status.value


@dataclass
class _Stats:
    events: int = 0


class Runner:
    """Drives one strategy. Strategy-agnostic: the command builds the strategy (with `view` as its view)
    and the feed; the runner wires them to the executor and the decision log.

        view = MemoryView(markets, clock=...)
        strategy = SnipeStrategy(view, config)
        runner = Runner(strategy, view, executor, DecisionLog(store, mode="dry-run", run_id=...))
        await runner.start()
        await runner.deliver(event)  # … for each event from the feed
        await runner.stop()

    `on_output(out)` (optional) sees every strategy Output, for live views.

    Pre-armed orders (`prearm=True`, with an executor that can arm: `ArmingSink`): `arm_ahead()` (LiveFeed
    calls it twice a second) asks the strategy what it expects to submit soon (`Strategy.anticipate`)
    and arms it: signed and recorded `armed` ahead, retired at its market's end if never fired. When the
    strategy then submits the same order (same key, token, side, price, size, type), `submit` fires the
    armed one: the hot path is the risk gate and one POST, no signing, no commit before it. A different
    order under an armed key retires the armed one and is submitted as usual; an anticipated order whose
    terms changed is re-armed. The armed record keeps the metadata of its arming (the signal's own detail
    is in its decision: `signals_of_orders`).
    """

    def __init__(
        self,
        strategy: Strategy[Any],
        view: MemoryView,
        orders: OrderSink,
        decisions: DecisionLog,
        *,
        on_output: Callable[[Output], None] | None = None,
        store: Store | None = None,
        prearm: bool = False,
    ) -> None:
        self.strategy = strategy
        self.view = view
        self.orders = orders
        self.decisions = decisions
        self.on_output = on_output
        # With the executor's store, fills are read back from it (exact, per trade id, including those
        # that come after the answer: `sync_orders`); without, an answer's totals become one fill.
        self.store = store
        self.sent: dict[str, SentOrder] = {}  # by the strategy's own key
        self._delivered: set[str] = set()  # fill ids already given to the strategy
        self.stats = _Stats()
        self._depth = 0
        # A decision is a report; its store write is a commit (an fsync with synchronous=FULL) that blocks
        # the loop. With `defer_decisions` the feed writes them between events (`flush_decisions`, about
        # once a second) instead of after every event, e.g. the burst of skips when a window opens, right
        # where the entry's trigger is most likely to come. The orders' own records are not affected.
        self.defer_decisions = False
        self.prearm = prearm and isinstance(orders, ArmingSink)
        # the executor as an ArmingSink, checked once here: an isinstance against a runtime Protocol costs
        # ~6 µs (it looks up each method), too much for the entry's path in submit()
        self._sink: ArmingSink | None = cast("ArmingSink", orders) if self.prearm else None
        self.armed: dict[str, _ArmedEntry] = {}  # by the strategy's own key: armed, not fired yet
        self._arming: asyncio.Future[None] | None = None  # an arm() in flight (submit waits for it)
        self._arming_keys: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._process(self.strategy.start())
        self.decisions.flush()

    async def stop(self) -> None:
        await self._process(self.strategy.stop())
        self.decisions.flush()

    # ------------------------------------------------------------------ events

    async def deliver(self, event: Event) -> None:
        """One event: the view first, then the strategy, then its output (and the results it caused)."""
        self.stats.events += 1
        self.view.apply(event)
        out = self.strategy.handle(event)
        if out:
            await self._process(out)

    def deliver_nowait(self, event: Event) -> Output | None:
        """The synchronous fast path for feeds that replay many events (backtest): handles the event and
        logs its decisions; returns the Output only when it has intents (then `await process(out)`)."""
        self.stats.events += 1
        self.view.apply(event)
        out = self.strategy.handle(event)
        if not out:
            return None
        if out.intents:
            return out
        self.decisions.add(out.decisions)
        if self.on_output is not None:
            self.on_output(out)
        return None

    async def process(self, out: Output) -> None:
        """Store, send and feed back one Output (what `deliver` does after the strategy ran)."""
        await self._process(out)

    async def tick(self, now_ms: int) -> None:
        await self.deliver(TimerTick(ts_ms=now_ms))

    # ------------------------------------------------------------------ internals

    async def _process(self, out: Output) -> None:
        self.decisions.add(out.decisions)  # in order; its rows are built when written (DecisionLog.flush)
        if not out.intents:
            if self.on_output is not None:
                self.on_output(out)
            if self._depth == 0 and not self.defer_decisions:
                self.decisions.flush()
            return
        self._depth += 1
        try:
            # The hot path: the intents go first; views (on_output) and the decision log's write after. A
            # single intent is awaited here (a gather would cost a task and a loop turn before its POST); a
            # burst goes concurrently, so it shares one write-ahead commit.
            if len(out.intents) == 1:
                results = [await self._send(out.intents[0])]
            else:
                results = list(await asyncio.gather(*(self._send(i) for i in out.intents)))
            if self.on_output is not None:
                self.on_output(out)
            if not self.defer_decisions:
                self.decisions.flush()
            for intent, res in zip(out.intents, results, strict=True):
                if res is None:
                    continue
                for ev in self._result_events(intent, res):
                    await self.deliver(ev)
        finally:
            self._depth -= 1
        if self._depth == 0 and not self.defer_decisions:
            self.decisions.flush()

    def flush_decisions(self) -> None:
        """Write the decisions buffered so far (with `defer_decisions`, the feed calls this between events)."""
        self.decisions.flush()

    async def _send(self, intent: OrderIntent) -> SubmitResult | None:
        entry = self.sent.setdefault(intent.key, SentOrder(intent))
        try:
            res = await self.submit(intent)
        except Exception as e:  # a malformed intent is a strategy bug; the executor stored nothing
            log.error("order %s not executed: %s", intent.key, e)
            entry.error = str(e)
            return None
        entry.result = res
        return res

    def _result_events(self, intent: OrderIntent, res: SubmitResult) -> list[Event]:
        now = self.view.now_ms()
        if self.store is None:
            return result_events(intent, res, now)
        events: list[Event] = [_order_result(intent, res, now)]
        if res.filled_size > 0:
            events += self._new_fills(intent, res.key)
        return events

    def _new_fills(self, intent: OrderIntent, stored_key: str) -> list[Event]:
        assert self.store is not None
        out: list[Event] = []
        for f in self.store.fills_of_order(stored_key):
            if f.trade_id in self._delivered:
                continue
            self._delivered.add(f.trade_id)
            out.append(
                OrderFilled(
                    key=intent.key,
                    fill_id=f.trade_id,
                    token_id=f.token_id,
                    condition_id=intent.condition_id,
                    side=f.side,
                    price=f.price,
                    size=f.size,
                    fee=f.fee,
                    ts_ms=f.ts,
                )
            )
        return out

    async def sync_orders(self) -> int:
        """Tell the strategy what became of its orders since their answer (a resting order filled on a
        later book, the user channel, the reconciler): a new OrderResult when the stored status or fill
        changed, and an OrderFilled per new fill. Needs the store. Returns how many orders changed."""
        if self.store is None:
            return 0
        changed = 0
        for entry in list(self.sent.values()):
            res = entry.result
            if res is None or res.status.is_final:
                continue
            rec = self.store.get_order(res.key)
            if rec is None or (rec.status is res.status and rec.filled_size == res.filled_size):
                continue
            changed += 1
            entry.result = replace(res, status=rec.status, filled_size=rec.filled_size, reason=rec.error)
            events: list[Event] = [_order_result(entry.intent, entry.result, self.view.now_ms())]
            events += self._new_fills(entry.intent, res.key)
            for ev in events:
                await self.deliver(ev)
        return changed

    async def submit(self, intent: OrderIntent) -> SubmitResult:
        """One intent to the executor: its armed order fired when one was armed for it, else a submit."""
        if self._arming is not None and intent.key in self._arming_keys:
            await asyncio.shield(self._arming)  # being armed right now: fire it once recorded, never race it
        entry = self.armed.pop(intent.key, None)
        if entry is None:
            return await self.orders.submit(intent)
        sink = self._sink
        assert sink is not None  # only a prearm runner arms
        if not _same_order(entry.intent, intent):
            sink.retire([entry.stored_key], why="armed order not sent: the strategy sent a different order")
            return await self.orders.submit(intent)
        res = await sink.fire(entry.stored_key)
        if res.status is OrderStatus.ARMED:
            # Nothing was sent (our budget, the venue unreachable or refusing): as a submit would, it ends
            # not_sent; the strategy decides whether to try again (under the same key, executed anew).
            sink.retire([entry.stored_key], why=f"armed order not sent: {res.reason or 'not sent'}")
            return replace(res, status=OrderStatus.NOT_SENT)
        return res

    # ------------------------------------------------------------------ pre-armed orders

    async def arm_ahead(self) -> int:
        """Arm what the strategy anticipates (and has not armed or sent yet); retire armed orders whose
        market ended. Returns how many were armed now. A no-op unless `prearm`."""
        if not self.prearm or self._arming is not None:
            return 0
        sink = self.orders
        assert isinstance(sink, ArmingSink)
        refresh = getattr(sink, "refresh", None)
        if refresh is not None:
            refresh()  # the shared risk state read here, between ticks: fire() finds it fresh
        now = self.view.now_ms()
        ended = [k for k, e in self.armed.items() if e.retire_at_ms is not None and now >= e.retire_at_ms]
        if ended:
            sink.retire([self.armed.pop(k).stored_key for k in ended])
        try:
            anticipated = list(self.strategy.anticipate(now))
        except Exception as e:  # a prediction that fails costs speed, never the run: entries are submitted as usual
            log.error("strategy %s: anticipate() failed: %s", self.strategy.name, e)
            return 0
        wanted: dict[int | None, list[OrderIntent]] = {}
        for intent in anticipated:
            key = intent.key
            old = self.armed.get(key)
            if old is not None and not _same_order(old.intent, intent):
                # the order it would send changed (the market's fees or tick, the config): arm the new one
                del self.armed[key]
                sink.retire([old.stored_key], why="armed order never sent: replaced by a changed order")
            elif old is not None:
                continue
            if key in self.sent or self.strategy.was_sent(key) or key in self._arming_keys:
                continue
            market = self.view.market(intent.condition_id)
            wanted.setdefault(market.end_ms if market is not None else None, []).append(intent)
        if not wanted:
            return 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._arming = done
        self._arming_keys = {i.key for group in wanted.values() for i in group}
        count = 0
        try:
            for retire_at, intents in wanted.items():
                try:
                    armed = await sink.arm(intents, retire_at_ms=retire_at)
                except Exception as e:  # arming is an optimisation: on failure the intent is submitted as usual
                    log.warning("could not pre-arm %d order(s): %s", len(intents), e)
                    continue
                by_key = {a.key.removeprefix(DRY_RUN_PREFIX): a for a in armed}
                for intent in intents:
                    a = by_key.get(intent.key)
                    if a is not None and a.status is OrderStatus.ARMED and not a.duplicate:
                        self.armed[intent.key] = _ArmedEntry(intent, a.key, retire_at)
                        count += 1
        finally:
            self._arming, self._arming_keys = None, set()
            done.set_result(None)
        return count

    def retire_armed(self, why: str = "armed order never sent: the run ended") -> list[str]:
        """Retire every order armed and not fired (the feed calls it when the run ends)."""
        if not self.armed:
            return []
        sink = self.orders
        assert isinstance(sink, ArmingSink)
        keys = [e.stored_key for e in self.armed.values()]
        self.armed.clear()
        return sink.retire(keys, why=why)


def _same_order(armed: OrderIntent, intent: OrderIntent) -> bool:
    """Would firing `armed` send what `intent` asks for? (The key matched already; meta may differ.)"""
    return (
        armed.token_id == intent.token_id
        and armed.side is intent.side
        and armed.price == intent.price
        and armed.size == intent.size
        and armed.order_type is intent.order_type
        and armed.post_only == intent.post_only
        and armed.expiration_s == intent.expiration_s
    )


def _order_result(intent: OrderIntent, res: SubmitResult, now_ms: int) -> OrderResult:
    return OrderResult(
        key=intent.key,
        status=res.status,
        ts_ms=now_ms,
        filled_size=res.filled_size,
        avg_price=res.avg_price,
        fee=res.fees,
        reason=res.reason or "",
    )


def result_events(intent: OrderIntent, res: SubmitResult, now_ms: int) -> list[Event]:
    """The strategy-facing events of one executor answer, without a store: an OrderResult, and an
    OrderFilled for what it filled (one aggregate fill per answer)."""
    events: list[Event] = [_order_result(intent, res, now_ms)]
    if res.filled_size > 0 and not res.duplicate and res.status is not OrderStatus.REJECTED:
        price = res.avg_price if res.avg_price is not None else intent.price
        events.append(
            OrderFilled(
                key=intent.key,
                fill_id=f"{res.key.removeprefix(DRY_RUN_PREFIX)}:{'paper' if res.dry_run else 'live'}:answer",
                token_id=intent.token_id,
                condition_id=intent.condition_id,
                side=intent.side,
                price=price,
                size=res.filled_size,
                fee=res.fees,
                ts_ms=now_ms,
            )
        )
    return events
