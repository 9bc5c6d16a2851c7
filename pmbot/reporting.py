"""Report rows as plain dicts (the `--json` shape): exact decimal strings, ISO times, explicit mode."""

from __future__ import annotations

from typing import Any

from pmbot.money import fmt
from pmbot.store.models import Position, StrategyStats, TradeRow
from pmbot.timeutil import ms_to_iso


def _mode(dry_run: bool) -> str:
    return "dry-run" if dry_run else "live"


def position_view(p: Position) -> dict[str, Any]:
    unreal = p.unrealized_pnl
    return {
        "strategy": p.strategy,
        "mode": _mode(p.dry_run),
        "dry_run": p.dry_run,
        "token_id": p.token_id,
        "condition_id": p.condition_id,
        "market": p.market,
        "outcome": p.outcome,
        "state": p.state.value,
        "size": fmt(p.size),
        "avg_price": fmt(p.avg_price),
        "cost": fmt(p.cost),
        "mark_price": None if p.mark_price is None else fmt(p.mark_price),
        "unrealized_pnl": None if unreal is None else fmt(unreal),
        "realized_pnl": fmt(p.realized_pnl),
        "opened_at": ms_to_iso(p.opened_at),
        "updated_at": ms_to_iso(p.updated_at),
    }


def trade_view(t: TradeRow) -> dict[str, Any]:
    f = t.fill
    return {
        "trade_id": f.trade_id,
        "time": ms_to_iso(f.ts),
        "ts_ms": f.ts,
        "kind": f.kind.value,
        "strategy": f.strategy,
        "mode": _mode(f.dry_run),
        "dry_run": f.dry_run,
        "token_id": f.token_id,
        "condition_id": f.condition_id,
        "market": f.market,
        "outcome": f.outcome,
        "side": f.side.value,
        "price": fmt(f.price),
        "size": fmt(f.size),
        "notional": fmt(t.notional),
        "fee": fmt(f.fee),
        "realized_pnl": fmt(t.realized_pnl),
        "liquidity": f.liquidity,
        "order_key": f.order_key,
        "venue_order_id": f.venue_order_id,
    }


def stats_view(s: StrategyStats) -> dict[str, Any]:
    return {
        "strategy": s.strategy,
        "mode": _mode(s.dry_run),
        "dry_run": s.dry_run,
        "trades": s.trades,
        "volume": fmt(s.volume),
        "fees": fmt(s.fees),
        "realized_pnl": fmt(s.realized_pnl),
        "unrealized_pnl": fmt(s.unrealized_pnl),
        "open_positions": s.open_positions,
        "closed_positions": s.closed_positions,
        "wins": s.wins,
        "win_rate": None if s.win_rate is None else fmt(s.win_rate),
    }
