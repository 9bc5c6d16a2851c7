"""`pmbot positions`, `pmbot trades`, `pmbot stats`: read-only reports over the store."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.money import fmt
from pmbot.reporting import position_view, stats_view, trade_view
from pmbot.store.models import PositionState, Query
from pmbot.timeutil import ms_to_iso, parse_since

StrategyOpt = Annotated[
    str | None,
    typer.Option(
        "--strategy", "-s", metavar="NAME", callback=base.not_blank, help="Only this strategy (snipe, copy, …)."
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        callback=base.since,
        help="Only since then: 15m, 24h, 7d, today, or an ISO date/time (UTC).",
    ),
]
LimitOpt = Annotated[
    int | None, typer.Option("--limit", "-n", metavar="N", help="At most this many rows.", min=1, max=1_000_000)
]
# --open --closed (or --dry-run --live) together is a usage error: see pmbot.commands.base.Command.
StateOpt = Annotated[bool | None, typer.Option("--open/--closed", help="Only open, or only closed/resolved.")]
ModeOpt = Annotated[
    bool | None, typer.Option("--dry-run/--live", help="Only paper (dry-run) or only live records. Default: both.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

EMPTY_HINT = "nothing recorded yet: run a strategy (dry-run is the default) and its trades will show here"


def _query(
    a: App, strategy: str | None, since: str | None, limit: int | None, state: bool | None, dry_run: bool | None
) -> Query:
    if strategy is not None and not strategy.strip():
        raise InputError("--strategy must not be empty")
    return Query(
        strategy=strategy,
        since=parse_since(since, a.clock) if since else None,
        limit=limit,
        state=None if state is None else (PositionState.OPEN if state else PositionState.CLOSED),
        dry_run=dry_run,
    )


def _empty(as_json: bool, what: str, empty_value: object) -> None:
    if as_json:
        render.print_json(empty_value)
    else:
        render.stdout().print(f"No {what} — {EMPTY_HINT}.", style="dim")


def positions(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    limit: LimitOpt = 100,
    state: StateOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Positions per strategy and token: size, average price, mark, unrealized and realized PnL."""
    a: App = ctx.obj
    q = _query(a, strategy, since, limit, state, dry_run)
    if not a.database_exists():
        return _empty(as_json, "positions", [])
    rows = a.store.list_positions(q)
    if as_json:
        return render.print_json([position_view(p) for p in rows])
    if not rows:
        return _empty(False, "positions match", [])
    table = Table(title="Positions", title_justify="left")
    for col, justify in [
        ("strategy", "left"),
        ("mode", "left"),
        ("market", "left"),
        ("outcome", "left"),
        ("state", "left"),
        ("size", "right"),
        ("avg", "right"),
        ("mark", "right"),
        ("unrealized", "right"),
        ("realized", "right"),
        ("updated", "left"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for p in rows:
        table.add_row(
            p.strategy,
            render.mode(p.dry_run),
            p.market or render.short(p.token_id),
            p.outcome,
            p.state.value,
            fmt(p.size, 2),
            fmt(p.avg_price, 4),
            "–" if p.mark_price is None else fmt(p.mark_price, 4),
            render.pnl(p.unrealized_pnl),
            render.pnl(p.realized_pnl),
            ms_to_iso(p.updated_at),
        )
    render.stdout().print(table)


def trades(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    limit: LimitOpt = 50,
    state: StateOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fills (and resolution payouts), newest first. --open/--closed filters by the position's state."""
    a: App = ctx.obj
    q = _query(a, strategy, since, limit, state, dry_run)
    if not a.database_exists():
        return _empty(as_json, "trades", [])
    rows = a.store.list_trades(q)
    if as_json:
        return render.print_json([trade_view(t) for t in rows])
    if not rows:
        return _empty(False, "trades match", [])
    table = Table(title="Trades", title_justify="left")
    for col, justify in [
        ("time (UTC)", "left"),
        ("strategy", "left"),
        ("mode", "left"),
        ("market", "left"),
        ("outcome", "left"),
        ("side", "left"),
        ("price", "right"),
        ("size", "right"),
        ("notional", "right"),
        ("fee", "right"),
        ("realized", "right"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for t in rows:
        f = t.fill
        side = f.side.value if f.kind.value == "fill" else "REDEEM"
        table.add_row(
            ms_to_iso(f.ts),
            f.strategy,
            render.mode(f.dry_run),
            f.market or render.short(f.token_id),
            f.outcome,
            side,
            fmt(f.price, 4),
            fmt(f.size, 2),
            fmt(t.notional, 2),
            fmt(f.fee, 4),
            render.pnl(t.realized_pnl) if f.side.value == "SELL" else "",
        )
    render.stdout().print(table)


def stats(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per strategy, dry-run and live apart: trades, volume, realized and unrealized PnL, win rate."""
    a: App = ctx.obj
    q = _query(a, strategy, since, None, None, dry_run)
    if not a.database_exists():
        return _empty(as_json, "statistics", [])
    rows = a.store.stats(q)
    if as_json:
        return render.print_json([stats_view(s) for s in rows])
    if not rows:
        return _empty(False, "statistics", [])
    table = Table(title="Stats" + (f" since {ms_to_iso(q.since)}" if q.since else ""), title_justify="left")
    for col, justify in [
        ("strategy", "left"),
        ("mode", "left"),
        ("trades", "right"),
        ("volume", "right"),
        ("fees", "right"),
        ("realized", "right"),
        ("unrealized", "right"),
        ("open", "right"),
        ("closed", "right"),
        ("win rate", "right"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for s in rows:
        rate = "–" if s.win_rate is None else f"{fmt(s.win_rate * 100, 1)}%"
        table.add_row(
            s.strategy,
            render.mode(s.dry_run),
            str(s.trades),
            fmt(s.volume, 2),
            fmt(s.fees, 2),
            render.pnl(s.realized_pnl),
            render.pnl(s.unrealized_pnl),
            str(s.open_positions),
            str(s.closed_positions),
            rate,
        )
    render.stdout().print(table)


def register(app: typer.Typer) -> None:
    app.command("positions")(positions)
    app.command("trades")(trades)
    app.command("stats")(stats)
