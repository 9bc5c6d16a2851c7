"""Operator actions behind `pmbot order`, `pmbot cancel`, `pmbot resume` and `pmbot status`.

They go through the same executor the strategies use: a manual order is risk-checked, idempotent,
write-ahead and dry-run unless asked otherwise, exactly like a strategy's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from pmbot.app import App
from pmbot.config import default_data_dir
from pmbot.errors import InputError, VenueError
from pmbot.executor.engine import NON_FINAL, Executor, SubmitResult
from pmbot.executor.factory import build_executor
from pmbot.executor.intents import OrderIntent, intent_key
from pmbot.executor.risk import RiskGate
from pmbot.lookup import check_token_id
from pmbot.polymarket.factory import Venue
from pmbot.store.models import OrderRecord, OrderType, Side

MANUAL = "manual"


def mode_name(dry_run: bool) -> str:
    return "dry-run" if dry_run else "live"


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
    return OrderTicket(check_token_id(token_id), side_, p, s, type_, key)


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
        app.settings, app.store, venue, dry_run=dry_run, lock_dir=default_data_dir() / "locks", clock=app.clock
    )
    try:
        await handle.executor.start()
        yield handle.executor
    finally:
        await handle.close()


async def place_order(app: App, t: OrderTicket, *, dry_run: bool) -> SubmitResult:
    async with app.venue() as venue:
        book = await venue.clob.book(t.token_id)  # also proves the token exists before anything is stored
        meta = {"source": "pmbot order", **await _market_labels(venue, t.token_id)}
        now_ms = int(app.clock() * 1000)
        # A manual order's idempotency key: the operator's --key, or one per invocation.
        signal = t.key or f"{now_ms}"
        intent = OrderIntent(
            key=intent_key(MANUAL, book.market, signal, t.token_id, t.side.value, t.price, t.size),
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
    final = app.store.get_order(result.key)
    if final is not None and final.status is not result.status and not result.duplicate:
        # a resting paper order cannot outlive this command: say what became of it
        why = f"rested as {result.status.value}; paper orders end with the command that placed them"
        result = replace(result, status=final.status, reason=why)
    return result


async def cancel_order(app: App, key: str) -> OrderRecord:
    rec = app.store.get_order(key)
    if rec is None:
        raise InputError(f"no order with key {key!r}", hint="`pmbot status --json` lists open orders and their keys")
    async with app.venue() as venue, _executor(app, venue, dry_run=rec.dry_run) as executor:
        return await executor.cancel(key)


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


def status(app: App) -> dict[str, Any]:
    if not app.database_exists():
        return {"database": app.settings.database_url, "modes": []}
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
    return {"database": app.settings.database_url, "modes": modes, "checked_ms": int(time.time() * 1000)}
