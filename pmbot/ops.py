"""Operator actions behind `pmbot order`, `pmbot cancel`, `pmbot resume` and `pmbot status`.

They go through the same executor the strategies use: a manual order is risk-checked, idempotent,
write-ahead and dry-run unless asked otherwise, exactly like a strategy's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from pmbot.app import App
from pmbot.errors import InputError, VenueError
from pmbot.executor.engine import NON_FINAL, Executor, SubmitResult
from pmbot.executor.factory import build_executor
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.executor.lock import user_lock_dir
from pmbot.executor.risk import RiskGate
from pmbot.money import fmt
from pmbot.polymarket.factory import Venue
from pmbot.polymarket.identity import check_orderable_token_id
from pmbot.store.base import Store
from pmbot.store.models import OrderRecord, OrderStatus, OrderType, Query, Side, mode_name

MANUAL = "manual"


@dataclass(frozen=True)
class OrderTicket:
    """What the operator asked for, checked before anything touches the network or the store."""

    token_id: str
    side: Side
    price: Decimal
    size: Decimal
    order_type: OrderType
    key: str | None

    @property
    def notional(self) -> Decimal:
        return self.price * self.size


def ticket(token_id: str, side: str, price: str, size: str, order_type: str, key: str | None) -> OrderTicket:
    try:
        p, s = Decimal(price), Decimal(size)
    except ArithmeticError:
        raise InputError(f"price and size must be decimal numbers, got {price!r} and {size!r}") from None
    if not p.is_finite() or not 0 < p < 1:
        raise InputError(f"price must be between 0 and 1 (exclusive), got {price}")
    if not s.is_finite() or s <= 0:
        raise InputError(f"size must be a positive number of shares, got {size}")
    try:
        side_ = Side(side.upper())
        type_ = OrderType(order_type.upper())
    except ValueError:
        raise InputError(f"side must be buy or sell and type one of GTC, FOK, FAK (got {side}, {order_type})") from None
    if type_ is OrderType.GTD:
        raise InputError("GTD orders are not offered from the command line; use GTC and cancel")
    return OrderTicket(check_orderable_token_id(token_id), side_, p, s, type_, key)


async def _market_labels(venue: Venue, token_id: str) -> dict[str, str]:
    """Slug and outcome for the records people read (`pmbot trades`); an order does not need them."""
    try:
        market = await venue.gamma.market_by_token(token_id)
    except VenueError:
        return {}
    outcome = market.outcome_of(token_id)
    return {"market": market.slug or market.question, "outcome": outcome.outcome if outcome else ""}


@asynccontextmanager
async def _executor(app: App, venue: Venue, *, dry_run: bool) -> AsyncIterator[Executor]:
    """A started executor for one command; closed (state and metrics stored) on the way out."""
    handle = await build_executor(
        app.settings, app.store, venue, dry_run=dry_run, lock_dir=user_lock_dir(), clock=app.clock, one_shot=True
    )
    try:
        await handle.executor.start()
        yield handle.executor
    finally:
        await handle.close()


def operator_key(key: str, *, dry_run: bool) -> str:
    """The idempotency key of `pmbot order --key K`: K and the mode only, not the order's terms, so
    that K names one order whatever was asked under it (the same K with other terms is a conflict,
    caught in place_order, not a new order)."""
    return intent_key(MANUAL, "operator-key", mode_name(dry_run), key)


def orders_for_key(store: Store, key: str) -> list[OrderRecord]:
    """The orders `key` names: an order's own key, or the operator's --key (newest first)."""
    found = store.get_order(key)
    if found is not None:
        return [found]
    derived = [store.get_order(operator_key(key, dry_run=d)) for d in (True, False)]
    out = [r for r in derived if r is not None]
    # also by the --key kept with the order, whatever key the executor stored it under
    seen = {r.key for r in out}
    for rec in store.list_orders(query=Query(strategy=MANUAL)):
        if rec.key not in seen and (rec.metadata or {}).get("operator_key") == key:
            out.append(rec)
            seen.add(rec.key)
    return out


def find_order(store: Store, key: str, *, prefer_open: bool = True) -> OrderRecord:
    """The one order `key` names, or InputError (unknown, or ambiguous between dry-run and live)."""
    found = orders_for_key(store, key)
    if not found:
        raise InputError(f"no order with key {key!r}", hint="`pmbot status` lists open orders and their keys")
    if len(found) > 1 and prefer_open:
        still_open = [r for r in found if not r.status.is_final]
        found = still_open if len(still_open) == 1 else found
    if len(found) > 1:
        keys = ", ".join(f"{r.key} ({mode_name(r.dry_run)}, {r.status.value})" for r in found)
        raise InputError(f"--key {key!r} names several orders: {keys}", hint="pass the order's own key")
    return found[0]


def _terms(rec: OrderRecord | OrderTicket) -> tuple[str, str, Decimal, Decimal, str]:
    return (rec.token_id, rec.side.value, rec.price.normalize(), rec.size.normalize(), rec.order_type.value)


def check_key_reuse(store: Store, t: OrderTicket, *, dry_run: bool) -> None:
    """The same --key for an order with other terms is the operator's mistake: refuse it (exit 2)
    rather than send a second order or answer with the first one as if it were this one."""
    if t.key is None:
        return
    for rec in orders_for_key(store, t.key):
        if rec.dry_run == dry_run and _terms(rec) != _terms(t):
            raise InputError(
                f"--key {t.key!r} was already used for a different {mode_name(dry_run)} order "
                f"({rec.side.value} {fmt(rec.size)} @ {fmt(rec.price)} {rec.order_type.value} of token "
                f"{rec.token_id[:12]}…, {rec.status.value}); not sent",
                hint="use a new --key for a new order",
            )


def _with_fills(store: Store, result: SubmitResult) -> SubmitResult:
    """A duplicate's answer carries the original's fill price and fees (the executor only knows its
    status and filled size), read from the fills stored for that order."""
    rec = store.get_order(result.key)
    if rec is None:
        return result
    fills = store.fills_of_order(rec.key)  # one indexed query, not every trade of the strategy
    size = sum((f.size for f in fills), Decimal(0))
    if not size:
        return result
    avg = sum((f.price * f.size for f in fills), Decimal(0)) / size
    return replace(result, filled_size=size, avg_price=avg, fees=sum((f.fee for f in fills), Decimal(0)))


async def place_order(
    app: App,
    t: OrderTicket,
    *,
    dry_run: bool,
    wait_s: float | None = None,
    on_resting: Callable[[SubmitResult], None] | None = None,
) -> SubmitResult:
    """Place one order. A dry-run GTC that rests is cancelled when this returns, unless `wait_s`:
    then it rests against the live market stream until filled, the time is up or Ctrl-C."""
    store = app.store
    check_key_reuse(store, t, dry_run=dry_run)  # before any network call
    async with app.venue() as venue:
        book = await venue.clob.book(t.token_id)  # also proves the token exists before anything is stored
        meta = {"source": "pmbot order", **await _market_labels(venue, t.token_id)}
        if t.key is not None:
            meta["operator_key"] = t.key
        now_ms = int(app.clock() * 1000)
        # A manual order's idempotency key: the operator's --key, or one per invocation.
        if t.key is not None:
            key = operator_key(t.key, dry_run=dry_run)
        else:
            key = intent_key(MANUAL, book.market, f"{now_ms}", t.token_id, t.side.value, t.price, t.size)
        intent = OrderIntent(
            key=key,
            strategy=MANUAL,
            token_id=t.token_id,
            condition_id=book.market,
            side=t.side,
            price=t.price,
            size=t.size,
            order_type=t.order_type,
            signal_ms=now_ms,
            meta=meta,
        )
        async with _executor(app, venue, dry_run=dry_run) as executor:
            result = await executor.submit(intent)
            waited = None
            if dry_run and wait_s and not result.duplicate and result.status in RESTING:
                waited = await _rest_paper_order(executor, venue, result, wait_s, on_resting)
    if result.duplicate:
        rec = store.get_order(result.key)
        if rec is not None and _terms(rec) != _terms(t):  # a concurrent run took the key with other terms
            raise InputError(f"--key {t.key!r} was taken by a different order at the same time; not sent")
        return _with_fills(store, result)
    final = store.get_order(result.key)
    if final is not None and final.status is not result.status:
        # a resting paper order cannot outlive this command: say what became of it
        if waited is None:
            why = f"rested as {result.status.value}; paper orders end with the command (--wait keeps one resting)"
        else:
            why = waited
        result = _with_fills(store, replace(result, status=final.status, reason=why, filled_size=final.filled_size))
    return result


RESTING = (OrderStatus.LIVE, OrderStatus.PARTIALLY_FILLED)


async def _rest_paper_order(
    executor: Executor,
    venue: Venue,
    result: SubmitResult,
    wait_s: float,
    on_resting: Callable[[SubmitResult], None] | None,
) -> str:
    """Let a resting paper order meet the live book for up to `wait_s`. Returns why the wait ended
    (an order still open then is cancelled by the executor's close)."""
    import asyncio
    import contextlib
    import signal

    rec = executor.store.get_order(result.key)
    assert rec is not None
    stream = venue.market_stream([rec.token_id])
    follower = asyncio.create_task(executor.follow_books(stream))
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    previous = signal.getsignal(signal.SIGINT)
    handled = False
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Ctrl-C ends the wait, not the command: the order is then cancelled and the outcome shown.
        loop.add_signal_handler(signal.SIGINT, interrupted.set)
        handled = True
    if on_resting is not None:
        on_resting(result)  # after the Ctrl-C handler is in place: from here Ctrl-C cancels the order
    deadline = loop.time() + wait_s
    why = ""
    try:
        while True:
            now = executor.store.get_order(result.key)
            if now is None or now.status.is_final:
                return f"{now.status.value if now else 'gone'} while resting against the live book"
            if interrupted.is_set():
                why = "cancelled by Ctrl-C while waiting for a fill"
                break
            if follower.done():
                exc = follower.exception()
                why = f"market stream ended ({exc or 'closed'}); cancelled"
                break
            left = deadline - loop.time()
            if left <= 0:
                part = "fully " if now.filled_size else ""
                why = f"not {part}filled within {fmt(Decimal(str(wait_s)))}s: cancelled"
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(interrupted.wait(), min(0.05, left))
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGINT)
            signal.signal(signal.SIGINT, previous)  # asyncio.run's own handler: a later Ctrl-C still interrupts
        await stream.close()
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    return why


async def cancel_order(app: App, key: str) -> OrderRecord:
    rec = find_order(app.store, key)
    async with app.venue() as venue, _executor(app, venue, dry_run=rec.dry_run) as executor:
        return await executor.cancel(rec.key)


def resume(app: App, modes: list[bool]) -> list[dict[str, Any]]:
    """Reset the kill switch of the given modes (True = dry-run). Returns what changed."""
    out = []
    for dry_run in modes:
        name = f"risk:{mode_name(dry_run)}"
        gate = RiskGate(app.settings.risk, app.clock)
        was = gate.kill_switch
        if app.database_exists() and app.store.get_state(name):

            def resumed(current: dict[str, Any] | None, gate: RiskGate = gate) -> dict[str, Any]:
                nonlocal was
                if current:
                    gate.import_state(current)
                was = gate.kill_switch
                gate.resume()  # stamps resumed_at_ms: running engines adopt it at their next sync (<= 1 s)
                return gate.export_state()

            app.store.update_state(name, resumed)  # atomic: a trip stored meanwhile by an engine is not lost
        out.append({"mode": mode_name(dry_run), "was_tripped": was.tripped, "reason": was.reason})
    return out


def kill_switches(app: App) -> list[dict[str, Any]]:
    """Each mode's kill switch as stored, read only (nothing is created or reset)."""
    out = []
    for dry_run in (True, False):
        gate = RiskGate(app.settings.risk, app.clock)
        current = app.store.get_state(f"risk:{mode_name(dry_run)}") if app.database_exists() else None
        if current:
            gate.import_state(current)
        ks = gate.kill_switch
        out.append({"mode": mode_name(dry_run), "tripped": ks.tripped, "reason": ks.reason})
    return out


def pause_strategies(app: App, name: str | None) -> dict[str, Any]:
    """`pmbot pause [NAME]`: pause one strategy (None: all) in every running run-all, within 1 s."""
    return _control(app, name, pause=True)


def resume_strategies(app: App, name: str | None) -> dict[str, Any]:
    """`pmbot resume NAME` (None: all): undo `pause_strategies`."""
    return _control(app, name, pause=False)


def _control(app: App, name: str | None, *, pause: bool) -> dict[str, Any]:
    from pmbot import control

    target = control.ALL if name is None else control.check_strategy_name(name)
    action = "pause" if pause else "resume"
    live = _live_processes(app)  # none without a database (and nothing is created to find out)
    running = {s for p in live for s in p.get("strategies") or {}}
    if pause and target != control.ALL and not running:
        # With no run-all up, a name is checked against the config's instances: a typo ("snip") would
        # otherwise be stored as paused while the real `snipe` starts and trades. (`resume` of any name is
        # allowed: it can only clear a pause.)
        configured = [e.name for e, _ in app.settings.strategy_instances()]
        known = set(configured) | {e.name for e in app.settings.strategies}  # disabled ones too
        if target not in known:
            raise InputError(
                f"no strategy named {target!r} in the config (configured: {', '.join(configured) or 'none'})",
                hint="names come from [[strategies]] (default: snipe, copy); `pmbot config show` shows them",
            )
    if target != control.ALL and live and target not in running:
        raise InputError(  # before anything is written
            f"no running strategy named {target!r} (running: {', '.join(sorted(running)) or 'none'})",
            hint="`pmbot status` lists the running strategies",
        )
    if not pause and not app.database_exists():  # nothing was ever paused: create nothing
        return {"action": action, "strategy": None if target == control.ALL else target, "processes": [], "paused": {}}
    store = app.store
    state = (
        control.request_pause(store, target, clock=app.clock)
        if pause
        else control.request_resume(store, target, clock=app.clock)
    )
    names = sorted(running) if target == control.ALL else [target]
    return {
        "action": action,
        "strategy": None if target == control.ALL else target,
        "processes": [p["process"] for p in live],
        "paused": {n: state.is_paused(n) for n in names},
    }


def _live_processes(app: App) -> list[dict[str, Any]]:
    """Every run-all that reported in and is alive (none without a database)."""
    if not app.database_exists():
        return []
    from pmbot import control

    return [p for p in control.processes(app.store, now_ms=int(app.clock() * 1000)) if p["alive"]]


def status(app: App) -> dict[str, Any]:
    if not app.database_exists():
        return {"database": app.settings.database_url, "modes": [], "processes": []}
    from pmbot import control

    store = app.store
    orders = store.list_orders(statuses=NON_FINAL)
    modes = []
    for dry_run in (True, False):
        name = mode_name(dry_run)
        gate = RiskGate(app.settings.risk, app.clock)
        state = store.get_state(f"risk:{name}")
        if state:
            gate.import_state(state)
        ks = gate.kill_switch
        mine = [o for o in orders if o.dry_run == dry_run]
        modes.append(
            {
                "mode": name,
                "kill_switch": {"tripped": ks.tripped, "reason": ks.reason, "since_ms": ks.tripped_at_ms},
                "open_orders": [
                    {
                        "key": o.key,
                        "strategy": o.strategy,
                        "status": o.status.value,
                        "side": o.side.value,
                        "price": o.price,
                        "size": o.size,
                        "filled": o.filled_size,
                        "token_id": o.token_id,
                    }
                    for o in mine
                ],
                "last_run": store.get_state(f"executor:metrics:{name}"),
            }
        )
    now = int(app.clock() * 1000)
    paused = control.pause_state(store)
    return {
        "database": app.settings.database_url,
        "modes": modes,
        "processes": control.processes(store, now_ms=now),
        "paused": {"all": paused.all_paused, "names": sorted(paused.paused), "except": sorted(paused.resumed)},
        "checked_ms": now,
    }
