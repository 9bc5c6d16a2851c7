"""`pmbot positions`, `pmbot trades`, `pmbot stats`: reports over the store.

`positions` and `stats` first settle resolved markets (`pmbot settle`) and mark open positions at the
venue's books; `--offline` skips both and marks at our last fill. A venue that cannot be reached is
a warning line on stderr, never a silent fallback.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError, VenueError
from pmbot.reporting import Mark, marked, position_view, stats_view, trade_view, unrealized_by_mode
from pmbot.store.models import DEFAULT_PAPER_WALLET, Position, PositionState, Query
from pmbot.timeutil import parse_since

if TYPE_CHECKING:
    from pmbot.polymarket.factory import Venue
    from pmbot.settle import SettleResult

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
OfflineOpt = Annotated[
    bool,
    typer.Option("--offline", help="Do not contact the venue: no settlement, marks at the last fill."),
]

LocalOpt = Annotated[bool, typer.Option("--local", help="Times in this machine's time zone instead of UTC.")]

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


def _filtered(q: Query) -> bool:
    return bool(q.strategy or q.since is not None or q.state is not None or q.dry_run is not None)


def _plural(n: int, word: str) -> str:
    return f"{n} {word if n == 1 else word + 's'}"


def _empty(as_json: bool, what: str, *, q: Query | None = None, total: int = 0, unit: str = "") -> None:
    """Nothing to show. With filters over a non-empty store, say so with the total: the store is
    not empty, the filters are too narrow."""
    if as_json:
        render.print_json([])
        return
    if q is not None and total and _filtered(q):
        unit = unit or what.removesuffix("s")
        render.stdout().print(f"no {unit}s match these filters; {_plural(total, unit)} in all", style="dim")
    else:
        render.stdout().print(f"No {what} — {EMPTY_HINT}.", style="dim")


# ------------------------------------------------------------------------------- venue refresh


def _report_settlements(result: SettleResult) -> None:
    for w in result.warnings:
        render.warn(w)
    for s in result.settlements:
        pnl = render.pnl(s.realized_pnl).plain
        owed = f", {render.usdc(s.redeemable)} USDC redeemable on chain" if s.redeemable else ""
        render.note(
            f"settled: {s.strategy} {'dry-run' if s.dry_run else 'LIVE'} {s.market or render.short(s.token_id)}"
            f" {s.outcome} {render.shares(s.shares)} shares at {render.price(s.payout)} ({pnl} realized{owed})"
        )


def refresh(a: App, mark_tokens: list[str]) -> dict[str, Mark]:
    """Settle resolved markets and fetch marks for `mark_tokens`, both at once (one round trip).

    Tokens that turn out resolved are marked for nothing: `marked` ignores marks of closed
    positions. Whatever fails is one warning line on stderr (the cause and what the report lacks);
    the report goes on with what the store knows (open positions stay open, marks at the last fill)."""
    from pmbot.reporting import fetch_marks
    from pmbot.settle import check_and_settle

    failed: dict[str, str] = {}  # step -> the venue's error

    async def settle(venue: Venue) -> None:
        try:
            _report_settlements(await check_and_settle(a.store, venue, a.clock, risk_limits=a.settings.risk))
        except VenueError as e:
            failed["settle"] = e.message

    async def marks(venue: Venue) -> dict[str, Mark]:
        if not mark_tokens:
            return {}
        try:
            return await fetch_marks(venue, mark_tokens)
        except VenueError as e:
            failed["marks"] = e.message
            return {}

    async def main() -> dict[str, Mark]:
        async with a.venue(timeout=5.0, attempts=2) as venue:
            _, found = await asyncio.gather(settle(venue), marks(venue))
            return found

    found = base.run(main())  # a second Ctrl-C mid-request exits at once, as in the other venue commands
    consequences = {
        "settle": "resolved markets were not checked (positions on them show as open)",
        "marks": "open positions are marked at their last fill",
    }
    if failed:  # one line, whatever failed: the cause, then what the report is missing
        cause = "; ".join(dict.fromkeys(failed.values()))
        render.warn(
            f"venue unavailable ({cause}): " + " and ".join(consequences[k] for k in sorted(failed, reverse=True))
        )
    return found


# On a narrow terminal these columns go first, in this order (the JSON has them all): a table squeezed
# by Rich instead loses what a row is about (strategy, market, outcome shrank to nothing) or folds numbers.
_DROP_ORDER = ("updated", "src", "marks", "notional", "time", "avg", "strategy", "closed", "fees", "outcome")


def _print_table(title: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> None:
    """Print a report table that fits the terminal: hide the least useful columns (and say which)
    until every kept column shows whole; only the market name may wrap."""
    from rich import box

    out = render.stdout()
    keep = list(range(len(columns)))

    def build(idx: list[int]) -> Table:
        table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1))
        for i in idx:
            name, justify = columns[i]
            wraps = name == "market"
            table.add_column(
                name,
                justify=justify,  # type: ignore[arg-type]
                no_wrap=not wraps,
                min_width=12 if wraps else None,
                overflow="fold" if wraps else "ellipsis",
            )
        for row in rows:
            table.add_row(*(row[i] for i in idx))
        return table

    table = build(keep)
    hidden: list[str] = []
    names = [c[0] for c in columns]
    for name in _DROP_ORDER:
        # the widest it wants, with the market name allowed to wrap to 24: does it fit as it is?
        need = out.measure(table, options=out.options.update(width=10_000)).maximum
        market = names.index("market") if "market" in names and names.index("market") in keep else None
        if market is not None:
            longest = max((len(str(r[market])) for r in rows), default=0)
            need -= max(0, longest - 24)
        if need <= out.width or name not in names:
            if need <= out.width:
                break
            continue
        keep.remove(names.index(name))
        hidden.append(name)
        table = build(keep)
    out.print(table)
    if hidden:
        render.note(f"(narrow terminal: {', '.join(hidden)} not shown; widen it or use --json)")


def _open_tokens(positions: list[Position]) -> list[str]:
    return sorted({p.token_id for p in positions if p.state is PositionState.OPEN and p.size > 0})


# ------------------------------------------------------------------------------------ commands


def positions(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    limit: LimitOpt = 100,
    state: StateOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
    local: LocalOpt = False,
) -> None:
    """Positions per strategy and token: size, average price, mark (and its source), unrealized and realized PnL."""
    a: App = ctx.obj
    q = _query(a, strategy, since, limit, state, dry_run)
    if not a.database_exists():
        return _empty(as_json, "positions")
    store = a.store
    marks: dict[str, Mark] = {}
    if not offline:
        if q.state is not PositionState.CLOSED:
            marks = refresh(a, _open_tokens(store.list_positions(dataclasses.replace(q, limit=None))))
        else:
            refresh(a, [])
    rows = [marked(p, marks) for p in store.list_positions(q)]
    if as_json:
        return render.print_json([position_view(p, m) for p, m in rows])
    if not rows:
        return _empty(False, "positions", q=q, total=store.count_positions(Query()))
    owed = any(p.redeemable for p, _ in rows)
    columns = [
        ("strategy", "left"),
        ("mode", "left"),
        ("market", "left"),
        ("outcome", "left"),
        ("state", "left"),
        ("size", "right"),
        ("avg", "right"),
        ("mark", "right"),
        ("src", "left"),
        ("unrealized", "right"),
        ("realized", "right"),
        *([("redeemable", "right")] if owed else []),
        ("updated", "left"),
    ]
    cells: list[list[Any]] = []
    for p, m in rows:
        tick = m.tick if m is not None else None
        cells.append(
            [
                p.strategy,
                _mode_of(p),
                render.plain(p.market or render.short(p.token_id)),  # venue text: never markup
                render.plain(p.outcome),
                p.state.value,
                render.shares(p.size),
                render.mean_price(p.avg_price, tick) if p.size else render.DASH,
                render.mean_price(m.price, tick) if m is not None else render.DASH,
                Text(m.source.value if m is not None else "", style="dim"),
                render.pnl(p.unrealized_pnl),
                render.pnl(p.realized_pnl),
                *([render.usdc(p.redeemable) if p.redeemable else ""] if owed else []),
                render.when(p.updated_at, local=local),
            ]
        )
    _print_table("Positions", columns, cells)


def _mode_of(p: Position) -> Text:
    """dry-run, with the paper wallet's name when it is not the default one (positions are per wallet)."""
    shown = render.mode(p.dry_run)
    if p.dry_run and p.wallet not in ("", DEFAULT_PAPER_WALLET):
        shown.append(" " + render.clean(p.wallet.removeprefix("paper:")), style="dim")
    return shown


def trades(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    limit: LimitOpt = 50,
    state: StateOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
    local: LocalOpt = False,
    backtest: Annotated[
        str | None, typer.Option("--backtest", help="A backtest run's trades (never mixed with dry-run/live).")
    ] = None,
    why: Annotated[
        bool, typer.Option("--why", help="Show the strategy decision that caused each fill (its signal).")
    ] = False,
) -> None:
    """Fills (and resolution payouts), newest first. --open/--closed filters by the position's state."""
    a: App = ctx.obj
    if backtest is not None:
        return _backtest_trades(a, backtest, as_json=as_json, local=local)
    q = _query(a, strategy, since, limit, state, dry_run)
    if not a.database_exists():
        return _empty(as_json, "trades")
    store = a.store
    rows = store.list_trades(q)
    causes: dict[str, Any] = {}
    if why:
        from pmbot.runner.core import signals_of_orders

        causes = signals_of_orders(store, ((t.fill.order_key, t.fill.dry_run) for t in rows if t.fill.order_key))
    if as_json:
        views = [trade_view(t) for t in rows]
        if why:
            for v, t in zip(views, rows, strict=True):
                d = causes.get(t.fill.order_key or "")
                v["decision"] = None if d is None else _decision_view(d)
        return render.print_json(views)
    if not rows:
        return _empty(False, "trades", q=q, total=store.count_trades(Query()))
    columns = [
        ("time", "left"),
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
    ]
    if why:
        columns.append(("why", "left"))
    cells: list[list[Any]] = []
    for t in rows:
        f = t.fill
        redeem = f.kind.value != "fill"
        side = f.side.value if not redeem else "REDEEM"
        cells.append(
            [
                render.when(f.ts, local=local),
                f.strategy,
                render.mode(f.dry_run),
                render.plain(f.market or render.short(f.token_id)),  # venue text: never markup
                render.plain(f.outcome),
                side,
                render.price(f.price),
                render.shares(f.size),
                render.usdc(t.notional),
                render.usdc(f.fee),
                render.pnl(t.realized_pnl) if f.side.value == "SELL" else "",
            ]
        )
        if why:
            d = causes.get(f.order_key or "")
            detail = "" if d is None else " ".join(f"{k}={v}" for k, v in sorted(d.detail.items()))
            cells[-1].append(render.plain(f"{d.reason} {detail}".strip()) if d is not None else render.DASH)
    _print_table("Trades", columns, cells)


def _decision_view(d: Any) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "reason": d.reason,
        "ts_ms": d.ts,
        "run_id": d.run_id,
        "intent_key": d.intent_key,
        "detail": d.detail,
    }


def _backtest_trades(a: App, run_id: str, *, as_json: bool, local: bool) -> None:
    """`pmbot trades --backtest RUN`: the run's trades as stored with its result (not in the ledger)."""
    run = a.store.get_backtest(run_id) if a.database_exists() else None
    if run is None:
        raise InputError(f"no backtest run {run_id!r}", hint="`pmbot backtest list` shows the runs")
    rows = run.result.get("trades", [])
    if as_json:
        return render.print_json(rows)
    table = Table(title=f"Trades of backtest {run_id}", title_justify="left")
    for col in ("time", "market", "outcome", "side", "price", "size", "fee", "payout", "pnl"):
        table.add_column(col, justify="left" if col in ("time", "market", "outcome", "side") else "right")
    for t in rows:
        table.add_row(
            render.when(t["ts_ms"], local=local),
            render.plain(t["market"]),
            render.plain(t["outcome"]),
            t["side"],
            t["price"],
            t["size"],
            t["fee"],
            t["payout"] or "",
            t["pnl"] or "",
        )
    render.stdout().print(table)


def stats(
    ctx: typer.Context,
    strategy: StrategyOpt = None,
    since: SinceOpt = None,
    dry_run: ModeOpt = None,
    as_json: JsonOpt = False,
    offline: OfflineOpt = False,
    local: LocalOpt = False,
    history: Annotated[
        bool, typer.Option("--history", help="The metrics snapshots `pmbot run-all` stores every 5 minutes.")
    ] = False,
) -> None:
    """Per strategy, dry-run and live apart: trades, volume, realized and unrealized PnL, win rate."""
    a: App = ctx.obj
    q = _query(a, strategy, since, None, None, dry_run)
    if history:
        from pmbot.commands.history_cmd import show_history

        if q.strategy:
            raise InputError("--history shows the whole process; --strategy does not apply to it")
        return show_history(a, since_ms=q.since, limit=None, dry_run=q.dry_run, as_json=as_json, local=local)
    if not a.database_exists():
        return _empty(as_json, "statistics")
    store = a.store
    open_q = Query(strategy=q.strategy, dry_run=q.dry_run, state=PositionState.OPEN)
    marks: dict[str, Mark] = {}
    if not offline:
        marks = refresh(a, _open_tokens(store.list_positions(open_q)))
    # The store's unrealized PnL is at the last fill; replace it with the venue's marks.
    by_mode = unrealized_by_mode(store.list_positions(open_q), marks)
    rows = []
    for s in store.stats(q):
        slot = by_mode.get((s.strategy, s.dry_run))
        rows.append((dataclasses.replace(s, unrealized_pnl=slot["unrealized"]) if slot else s, slot))
    if as_json:
        return render.print_json([stats_view(s, slot["sources"] if slot else None) for s, slot in rows])
    if not rows:
        return _empty(False, "statistics", q=q, total=store.count_trades(Query()), unit="trade")
    owed = any(s.redeemable for s, _ in rows)
    title = "Stats" + (f" since {render.when(q.since, local=local)}" if q.since else "")
    columns = [
        ("strategy", "left"),
        ("mode", "left"),
        ("trades", "right"),
        ("volume", "right"),
        ("fees", "right"),
        ("realized", "right"),
        ("unrealized", "right"),
        ("marks", "left"),
        *([("redeemable", "right")] if owed else []),
        ("open", "right"),
        ("closed", "right"),
        ("win rate", "right"),
    ]
    cells: list[list[Any]] = []
    for s, slot in rows:
        sources = ", ".join(f"{n} {src}" for src, n in sorted(slot["sources"].items())) if slot else ""
        cells.append(
            [
                s.strategy,
                render.mode(s.dry_run),
                str(s.trades),
                render.usdc(s.volume),
                render.usdc(s.fees),
                render.pnl(s.realized_pnl),
                render.pnl(s.unrealized_pnl),
                Text(sources, style="dim"),
                *([render.usdc(s.redeemable) if s.redeemable else ""] if owed else []),
                str(s.open_positions),
                str(s.closed_positions),
                render.percent(s.win_rate),
            ]
        )
    _print_table(title, columns, cells)


def register(app: typer.Typer) -> None:
    app.command("positions")(positions)
    app.command("trades")(trades)
    app.command("stats")(stats)
