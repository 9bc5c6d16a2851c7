"""Records <-> storage rows (micro-unit integers, JSON text). Shared by every SQL backend."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pmbot.errors import InputError
from pmbot.money import from_micro, to_micro
from pmbot.store.models import (
    DEFAULT_PAPER_WALLET,
    ExecutionLog,
    Fill,
    Learning,
    OrderEvent,
    OrderRecord,
    OrderStatus,
    OrderType,
    Position,
    PositionState,
    Query,
    Reflection,
    Side,
    TradeKind,
    TradeRow,
)


def _json(data: dict[str, Any]) -> str:
    if not data:
        return "{}"
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str)


_SIDES = frozenset({"BUY", "SELL"})
_KINDS = frozenset({"fill", "redeem"})


def _micro(value: Decimal, what: str) -> int:
    try:
        return to_micro(value)
    except (ValueError, TypeError) as e:
        raise InputError(f"{what}: {e}") from None


def order_to_row(o: OrderRecord, now: int) -> dict[str, Any]:
    if o.price <= 0 or o.price >= 1:
        raise InputError(f"order {o.key}: price must be between 0 and 1 (exclusive), got {o.price}")
    if o.size <= 0:
        raise InputError(f"order {o.key}: size must be positive, got {o.size}")
    return {
        "key": o.key,
        "strategy": o.strategy,
        "token_id": o.token_id,
        "condition_id": o.condition_id,
        "side": Side(o.side).value,
        "price_micro": _micro(o.price, "order price"),
        "size_micro": _micro(o.size, "order size"),
        "order_type": OrderType(o.order_type).value,
        "dry_run": int(o.dry_run),
        "status": OrderStatus(o.status).value,
        "venue_order_id": o.venue_order_id,
        "error": o.error,
        "filled_size_micro": _micro(o.filled_size, "filled size"),
        "created_at": o.created_at or now,
        "updated_at": o.updated_at or o.created_at or now,
        "metadata": _json(o.metadata),
        "wallet": o.wallet,
    }


def row_to_order(r: dict[str, Any]) -> OrderRecord:
    return OrderRecord(
        key=r["key"],
        strategy=r["strategy"],
        token_id=r["token_id"],
        condition_id=r["condition_id"] or "",
        side=Side(r["side"]),
        price=from_micro(r["price_micro"]),
        size=from_micro(r["size_micro"]),
        order_type=OrderType(r["order_type"]),
        dry_run=bool(r["dry_run"]),
        status=OrderStatus(r["status"]),
        venue_order_id=r["venue_order_id"],
        error=r["error"],
        filled_size=from_micro(r["filled_size_micro"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        metadata=json.loads(r["metadata"] or "{}"),
        wallet=r.get("wallet") or "",
    )


def row_to_event(r: dict[str, Any]) -> OrderEvent:
    return OrderEvent(key=r["order_key"], status=OrderStatus(r["status"]), ts=r["ts"], detail=r["detail"] or "")


def fill_micros(f: Fill) -> tuple[int, int, int]:
    """Validate a fill and return (price, size, fee) in micro-units. Raises InputError."""
    try:
        price, size, fee = to_micro(f.price), to_micro(f.size), to_micro(f.fee)
    except (ValueError, TypeError) as e:
        raise InputError(f"fill {f.trade_id}: {e}") from None
    if not 0 <= price <= 1_000_000:
        raise InputError(f"fill {f.trade_id}: price must be between 0 and 1, got {f.price}")
    if size <= 0:
        raise InputError(f"fill {f.trade_id}: size must be positive, got {f.size}")
    if fee < 0:
        raise InputError(f"fill {f.trade_id}: fee must not be negative, got {f.fee}")
    if not f.trade_id or not f.strategy or not f.token_id:
        raise InputError(f"fill {f.trade_id}: trade_id, strategy and token_id are required")
    if f.side not in _SIDES or f.kind not in _KINDS:
        raise InputError(f"fill {f.trade_id}: side must be BUY or SELL and kind fill or redeem")
    return price, size, fee


def fill_to_row(f: Fill, price: int, size: int, fee: int, notional: int, realized: int) -> tuple[Any, ...]:
    return (
        f.trade_id,
        str(f.kind),
        f.strategy,
        f.token_id,
        f.condition_id,
        f.market,
        f.outcome,
        str(f.side),
        price,
        size,
        notional,
        fee,
        realized,
        int(f.dry_run),
        f.liquidity,
        f.order_key,
        f.venue_order_id,
        f.ts,
        _json(f.metadata),
        f.wallet,
    )


# positions as pmbot.store.ledger reads them (load_books) and writes them (position_rows).
BOOK_COLUMNS = (
    "strategy, token_id, dry_run, size_micro, cost_micro, realized_pnl_micro, state, condition_id, market, outcome,"
    " opened_at, updated_at, mark_price_micro, wallet"
)
POSITION_COLUMNS = (
    "strategy, token_id, dry_run, condition_id, market, outcome, size_micro, cost_micro, realized_pnl_micro,"
    " state, mark_price_micro, opened_at, updated_at, wallet"
)
POSITION_KEY = "strategy, token_id, dry_run, wallet"  # the primary key (migration 0011_paper_wallets)


def position_wallet(dry_run: bool, wallet: str | None) -> str:
    """The wallet column of a position: `wallet`, or by default "" live and the default paper wallet dry-run."""
    if wallet is not None:
        return wallet
    return DEFAULT_PAPER_WALLET if dry_run else ""


TRADE_COLUMNS = (
    "trade_id",
    "kind",
    "strategy",
    "token_id",
    "condition_id",
    "market",
    "outcome",
    "side",
    "price_micro",
    "size_micro",
    "notional_micro",
    "fee_micro",
    "realized_pnl_micro",
    "dry_run",
    "liquidity",
    "order_key",
    "venue_order_id",
    "ts",
    "metadata",
    "wallet",
)


def row_to_trade(r: dict[str, Any]) -> TradeRow:
    fill = Fill(
        trade_id=r["trade_id"],
        kind=TradeKind(r["kind"]),
        strategy=r["strategy"],
        token_id=r["token_id"],
        condition_id=r["condition_id"] or "",
        market=r["market"] or "",
        outcome=r["outcome"] or "",
        side=Side(r["side"]),
        price=from_micro(r["price_micro"]),
        size=from_micro(r["size_micro"]),
        fee=from_micro(r["fee_micro"]),
        dry_run=bool(r["dry_run"]),
        liquidity=r["liquidity"] or "",
        order_key=r["order_key"],
        venue_order_id=r["venue_order_id"],
        ts=r["ts"],
        metadata=json.loads(r["metadata"] or "{}"),
        wallet=r.get("wallet") or "",
    )
    return TradeRow(
        fill=fill, notional=from_micro(r["notional_micro"]), realized_pnl=from_micro(r["realized_pnl_micro"])
    )


def unreversed_fills(found: list[dict[str, Any]]) -> list[Fill]:
    """The fills among trade rows (fills and reversals), without those a reversal took back."""
    return without_reversed([row_to_trade(r).fill for r in found])


def without_reversed(trades: list[Fill]) -> list[Fill]:
    """The fills (kind `fill`) among `trades`, without those a reversal among them took back."""
    taken_back = {f.trade_id.removeprefix("revert:") for f in trades if f.kind is TradeKind.REVERSAL}
    return [f for f in trades if f.kind is TradeKind.FILL and f.trade_id not in taken_back]


def row_to_position(r: dict[str, Any]) -> Position:
    mark = r["mark_price_micro"]
    return Position(
        strategy=r["strategy"],
        token_id=r["token_id"],
        dry_run=bool(r["dry_run"]),
        condition_id=r["condition_id"] or "",
        market=r["market"] or "",
        outcome=r["outcome"] or "",
        size=from_micro(r["size_micro"]),
        cost=from_micro(r["cost_micro"]),
        realized_pnl=from_micro(r["realized_pnl_micro"]),
        state=PositionState(r["state"]),
        mark_price=None if mark is None else from_micro(mark),
        opened_at=r["opened_at"],
        updated_at=r["updated_at"],
        redeemable=from_micro(r.get("redeemable_micro") or 0),
        redeemed_at=r.get("redeemed_at"),
        wallet=r.get("wallet") or "",
    )


def position_to_dict(p: Position) -> dict[str, Any]:
    """JSON-safe form (for the Redis cache)."""
    return {
        "strategy": p.strategy,
        "token_id": p.token_id,
        "dry_run": int(p.dry_run),
        "condition_id": p.condition_id,
        "market": p.market,
        "outcome": p.outcome,
        "size_micro": to_micro(p.size),
        "cost_micro": to_micro(p.cost),
        "realized_pnl_micro": to_micro(p.realized_pnl),
        "state": p.state.value,
        "mark_price_micro": None if p.mark_price is None else to_micro(p.mark_price),
        "opened_at": p.opened_at,
        "updated_at": p.updated_at,
        "redeemable_micro": to_micro(p.redeemable),
        "redeemed_at": p.redeemed_at,
        "wallet": p.wallet,
    }


def learning_to_row(x: Learning, now: int) -> dict[str, Any]:
    if not x.title.strip():
        raise InputError("a learning needs a title")
    return {
        "timestamp": x.timestamp or now,
        "phase": x.phase,
        "category": x.category,
        "title": x.title,
        "description": x.description,
        "code_snippet": x.code_snippet,
        "impact": x.impact,
        "metadata": _json(x.metadata),
    }


def row_to_learning(r: dict[str, Any]) -> Learning:
    return Learning(
        id=r["id"],
        timestamp=r["timestamp"],
        phase=r["phase"] or "",
        category=r["category"] or "",
        title=r["title"],
        description=r["description"] or "",
        code_snippet=r["code_snippet"] or "",
        impact=r["impact"] or "",
        metadata=json.loads(r["metadata"] or "{}"),
    )


def reflection_to_row(x: Reflection, now: int) -> dict[str, Any]:
    if not (x.what_worked.strip() or x.what_failed.strip() or x.next_improvements.strip()):
        raise InputError("a reflection needs what worked, what failed or what to improve next")
    return {
        "timestamp": x.timestamp or now,
        "phase": x.phase,
        "what_worked": x.what_worked,
        "what_failed": x.what_failed,
        "next_improvements": x.next_improvements,
        "metrics": _json(x.metrics),
    }


def row_to_reflection(r: dict[str, Any]) -> Reflection:
    return Reflection(
        id=r["id"],
        timestamp=r["timestamp"],
        phase=r["phase"] or "",
        what_worked=r["what_worked"] or "",
        what_failed=r["what_failed"] or "",
        next_improvements=r["next_improvements"] or "",
        metrics=json.loads(r["metrics"] or "{}"),
    )


def log_to_row(x: ExecutionLog, now: int) -> dict[str, Any]:
    latency = None if x.latency_ms is None else int((x.latency_ms * 1000).to_integral_value())
    return {
        "timestamp": x.ts or now,
        "level": x.level,
        "strategy": x.strategy,
        "message": x.message,
        "metadata": _json(x.metadata),
        "event": x.event,
        "order_key": x.order_key,
        "latency_us": latency,
    }


def row_to_log(r: dict[str, Any]) -> ExecutionLog:
    latency = None if r["latency_us"] is None else Decimal(r["latency_us"]) / 1000
    return ExecutionLog(
        id=r["id"],
        event=r["event"],
        message=r["message"] or "",
        level=r["level"],
        strategy=r["strategy"],
        order_key=r["order_key"],
        latency_ms=latency,
        ts=r["timestamp"],
        metadata=json.loads(r["metadata"] or "{}"),
    )


def where(query: Query | None, *, ts_col: str | None, state: bool = False, ph: str = "?") -> tuple[str, list[Any]]:
    """A WHERE clause for the report filters; `ph` is the driver's placeholder (? or %s)."""
    q = query or Query()
    clauses: list[str] = []
    params: list[Any] = []
    if q.strategy:
        clauses.append(f"strategy = {ph}")
        params.append(q.strategy)
    if q.dry_run is not None:
        clauses.append(f"dry_run = {ph}")
        params.append(int(q.dry_run))
    if q.wallet is not None:
        clauses.append(f"wallet = {ph}")
        params.append(q.wallet)
    if q.since is not None and ts_col:
        clauses.append(f"{ts_col} >= {ph}")
        params.append(q.since)
    if state and q.state is not None:
        if q.state is PositionState.CLOSED:
            clauses.append("state IN ('closed', 'resolved')")
        else:
            clauses.append(f"state = {ph}")
            params.append(q.state.value)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def limit(query: Query | None, ph: str = "?") -> tuple[str, list[Any]]:
    if query is None or query.limit is None:
        return "", []
    return f" LIMIT {ph}", [query.limit]
