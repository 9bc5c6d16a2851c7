"""`pmbot snipe`: expiration sniping through the strategy runner. Dry-run unless --live.

Thin: parse and check the input (bad input → one line, exit 2, nothing written), build the sniper's
config from `[snipe]` and the flags, call `pmbot.runner.session.run_session`, render."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.money import fmt

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pmbot.runner.session import Session
    from pmbot.strategies.base import Output
    from pmbot.strategies.snipe import SnipeConfig


def _dec(flag: str, value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise InputError(f"{flag} must be a decimal number, got {value!r}") from None
    if not d.is_finite():
        raise InputError(f"{flag} must be a finite number, got {value!r}")
    return d


def snipe_config(app: App, overrides: dict[str, Any]) -> SnipeConfig:
    """`[snipe]` with the flags on top, validated (ConfigError: one line per problem)."""
    from pmbot.strategies.snipe import SnipeStrategy

    raw = app.settings.snipe.strategy_config()
    raw.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("shares") is not None:
        raw["usdc"] = None  # a size given on the command line replaces the configured one
    elif overrides.get("usdc") is not None:
        raw["shares"] = None
    return SnipeStrategy.validate_config(raw)


def snipe(
    ctx: typer.Context,
    token_id: Annotated[str | None, typer.Option("--token-id", help="Snipe this token's market.")] = None,
    market: Annotated[str | None, typer.Option("--market", help="Snipe the market with this slug.")] = None,
    auto: Annotated[bool, typer.Option("--auto", help="Discover markets of --series ending soon.")] = False,
    series: Annotated[
        str | None, typer.Option("--series", help="--auto: comma-separated slug prefixes (btc-updown-15m,…).")
    ] = None,
    max_markets: Annotated[int | None, typer.Option("--max-markets", help="--auto: markets armed at once.")] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="Stop after this long (90s, 15m, 2h).")] = None,
    window: Annotated[int | None, typer.Option("--window", help="Entry window before the end, seconds.")] = None,
    stop_s: Annotated[int | None, typer.Option("--stop", help="Stop entering N seconds before the end.")] = None,
    min_price: Annotated[str | None, typer.Option("--min-price", help="Band floor for the best ask.")] = None,
    max_price: Annotated[str | None, typer.Option("--max-price", help="Band ceiling (the order's limit).")] = None,
    shares: Annotated[str | None, typer.Option("--shares", help="Order size in shares.")] = None,
    usdc: Annotated[str | None, typer.Option("--usdc", help="Order size in USDC at the limit.")] = None,
    order_type: Annotated[str | None, typer.Option("--type", help="FOK (default) or FAK.")] = None,
    min_depth: Annotated[str | None, typer.Option("--min-depth", help="Shares at or under the limit.")] = None,
    min_edge: Annotated[str | None, typer.Option("--min-edge", help="1 - price - fee per share, at least.")] = None,
    margin: Annotated[str | None, typer.Option("--margin", help="Reference margin (0.0005 = 0.05 %).")] = None,
    no_reference: Annotated[
        bool, typer.Option("--no-reference", help="Do not confirm Up/Down entries against Chainlink.")
    ] = False,
    live: Annotated[bool, typer.Option("--live", help="Trade for real (default: dry-run paper fills).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation of live trading.")] = False,
    no_live: Annotated[bool, typer.Option("--no-live", help="Log lines instead of the live view.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON.")] = False,
    report: Annotated[bool, typer.Option("--report", help="Show stored decisions (and why) and exit.")] = False,
    backtest: Annotated[str | None, typer.Option("--backtest", help="--report: a backtest run's decisions.")] = None,
    dry_run_only: Annotated[bool, typer.Option("--dry-run", help="--report: dry-run decisions only.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="--report: at most this many rows.", min=1)] = 50,
) -> None:
    """Buy the likely outcome in a market's last seconds when every rule agrees (dry-run unless --live)."""
    app: App = ctx.obj
    if report:
        _report(app, live=live, dry_run=dry_run_only, backtest=backtest, limit=limit, as_json=as_json)
        return
    from pmbot.runner.session import TargetSpec
    from pmbot.timeutil import parse_duration

    chosen = [n for n, v in (("--token-id", token_id), ("--market", market), ("--auto", auto or None)) if v]
    if len(chosen) != 1:
        raise InputError(
            "give exactly one target: --token-id ID, --market SLUG or --auto", hint="see pmbot snipe --help"
        )
    if series is not None and not auto:
        raise InputError("--series is for --auto")
    duration_s: float | None = None
    if duration is not None:
        duration_s = parse_duration(duration).total_seconds()
        if duration_s <= 0:
            raise InputError(f"--duration must be longer than 0s, got {duration}")
    if order_type is not None and order_type.upper() not in ("FOK", "FAK"):
        raise InputError(f"--type must be FOK or FAK, got {order_type}")
    overrides: dict[str, Any] = {
        "window_s": window,
        "stop_s": stop_s,
        "min_price": _dec("--min-price", min_price),
        "max_price": _dec("--max-price", max_price),
        "shares": _dec("--shares", shares),
        "usdc": _dec("--usdc", usdc),
        "order_type": order_type.upper() if order_type else None,
        "min_depth": _dec("--min-depth", min_depth),
        "min_edge": _dec("--min-edge", min_edge),
        "reference_margin": _dec("--margin", margin),
        "confirm_reference": False if no_reference else None,
    }
    if shares is not None and usdc is not None:
        raise InputError("give the size as --shares or --usdc, not both")
    config = snipe_config(app, overrides)
    cfg_settings = app.settings.snipe
    names = tuple(s.strip() for s in (series.split(",") if series else cfg_settings.series) if s.strip())
    if auto and not names:
        raise InputError("--series needs at least one series")
    mm = max_markets if max_markets is not None else cfg_settings.max_markets
    if mm <= 0:
        raise InputError(f"--max-markets must be at least 1, got {mm}")
    spec = TargetSpec(
        token_id=token_id,
        slug=market,
        series=names if auto else (),
        max_markets=mm,
        horizon_s=max(20 * 60, config.window_s * 2),
    )
    if live:
        _confirm_live(app, config, spec, yes=yes)
    summary = base.run_trading(
        _run(app, config, spec, dry_run=not live, duration_s=duration_s, live_view=not no_live and not as_json),
        app.settings,
    )
    if as_json:
        render.print_json(summary)
    else:
        render.stdout().print(_final_table(summary))


def _confirm_live(app: App, config: SnipeConfig, spec: Any, *, yes: bool) -> None:
    settings = app.settings
    wallet_key = base.check_live(settings)
    if yes:
        return
    from pmbot.polymarket.signing import OrderSigner

    wallet = settings.funder or OrderSigner(wallet_key.get_secret_value()).address
    size = f"{fmt(config.shares)} shares" if config.shares is not None else f"{fmt(config.usdc or Decimal(10))} USDC"
    what = spec.token_id or spec.slug or f"series {', '.join(spec.series)}"
    prompt = (
        f"LIVE sniping of {what}: {config.order_type} BUYs of {size} at up to {fmt(config.max_price)}, one per market"
        f" and side, from {wallet} on {settings.clob_url}?"
    )
    typer.confirm(prompt, abort=True, err=True)


async def _run(
    app: App, config: SnipeConfig, spec: Any, *, dry_run: bool, duration_s: float | None, live_view: bool
) -> dict[str, Any]:
    from pmbot.runner.session import run_session
    from pmbot.strategies.snipe import SnipeStrategy

    stop = base.stop_on_signals()
    state = _ViewState()
    err = render.stderr()

    def on_output(out: Output) -> None:
        for d in out.decisions:
            state.last[d.condition_id] = d.reason
            if not live_view:
                line = f"{render.when(d.ts_ms)} {d.kind.value:<7} {d.reason:<20} {d.condition_id[:12]}"
                if d.detail:
                    line += "  " + " ".join(f"{k}={v}" for k, v in sorted(d.detail.items()))
                err.print(render.plain(line))

    view_task: asyncio.Task[None] | None = None

    def on_ready(session: Session) -> None:
        nonlocal view_task
        state.session = session
        if live_view:
            view_task = asyncio.ensure_future(_live_view(state, app))

    try:
        session = await run_session(
            app,
            lambda view: SnipeStrategy(view, config),
            spec,
            dry_run=dry_run,
            duration_s=duration_s,
            stop=stop,
            on_output=on_output,
            on_ready=on_ready,
        )
    finally:
        if view_task is not None:
            view_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await view_task
    return _summary(session)


class _ViewState:
    def __init__(self) -> None:
        self.session: Session | None = None
        self.last: dict[str, str] = {}


async def _live_view(state: _ViewState, app: App) -> None:
    from rich.live import Live

    with Live(_view(state, app), console=render.stderr(), refresh_per_second=4, transient=True) as live:
        while True:
            await asyncio.sleep(0.25)
            live.update(_view(state, app))


def _view(state: _ViewState, app: App) -> RenderableType:
    from rich.table import Table

    from pmbot.strategies.reference import parse_resolution_rule

    session = state.session
    table = Table(title=f"pmbot snipe ({session.mode if session else '…'})", expand=False)
    for col in ("market", "left", "Up bid/ask", "Down bid/ask", "reference / open", "signal"):
        table.add_column(col)
    if session is None or session.feed is None or session.runner is None:
        return table
    feed, runner = session.feed, session.runner
    now = int((session.clock or app.clock)() * 1000)  # the venue's time: an accelerated sim's, too
    for info in list(feed.armed.values()):
        sides = []
        for token in info.token_ids[:2]:
            b = runner.view.book(token)
            bid = b.bids[0].price if b and b.bids else None
            ask = b.asks[0].price if b and b.asks else None
            sides.append(f"{render.price(bid)} / {render.price(ask)}")
        while len(sides) < 2:
            sides.append("")
        rule = parse_resolution_rule(info.description, info.resolution_source)
        ref = "unknown rule"
        if rule is not None:
            cur = feed.references.value_at(rule, now)
            opening = info.reference_open
            if opening is None and info.start_ms is not None and info.start_ms <= now:
                opening = feed.references.value_at(rule, info.start_ms, opening=True)
            ref = f"{fmt(cur, 2) if cur is not None else '—'} / {fmt(opening, 2) if opening is not None else '—'}"
        left = "" if info.end_ms is None else f"{max(0, info.end_ms - now) / 1000:.1f}s"
        table.add_row(
            info.slug or info.condition_id[:14], left, sides[0], sides[1], ref, state.last.get(info.condition_id, "")
        )
    orders = Table(title="orders", expand=False)
    for col in ("market", "side", "price", "size", "status", "filled"):
        orders.add_column(col)
    for sent in runner.sent.values():
        i = sent.intent
        filled = sent.result.filled_size if sent.result else Decimal(0)
        status = sent.status + (" (earlier run)" if sent.result and sent.result.duplicate else "")
        orders.add_row(i.condition_id[:12], i.side.value, fmt(i.price), fmt(i.size), status, fmt(filled))
    from rich.console import Group

    return Group(table, orders)


def _summary(session: Session) -> dict[str, Any]:
    runner = session.runner
    if runner is None:
        return {"run_id": session.run_id, "mode": session.mode, "markets": [], "orders": []}
    m = runner.strategy.metrics
    orders = []
    for sent in runner.sent.values():
        r = sent.result
        orders.append(
            {
                "key": sent.intent.key,
                "condition_id": sent.intent.condition_id,
                "token_id": sent.intent.token_id,
                "side": sent.intent.side.value,
                "price": fmt(sent.intent.price),
                "size": fmt(sent.intent.size),
                "status": sent.status,
                "duplicate": bool(r and r.duplicate),  # already sent by an earlier run: not sent again
                "filled": fmt(r.filled_size) if r else "0",
                "avg_price": fmt(r.avg_price) if r and r.avg_price is not None else None,
                "fees": fmt(r.fees) if r else "0",
                "reason": (r.reason if r else sent.error) or "",
            }
        )
    feed = session.feed
    return {
        "run_id": session.run_id,
        "mode": session.mode,
        "markets": [i.slug or i.condition_id for i in (feed.armed.values() if feed else [])],
        "signals": m.signals,
        "skips": dict(sorted(m.skips.items())),
        "entries": len(orders),
        "fills": m.fills,
        "wins": m.wins,
        "losses": m.losses,
        "win_rate": None if m.win_rate is None else fmt(m.win_rate.quantize(Decimal("0.0001"))),
        "fees": fmt(m.fees),
        "pnl": fmt(m.realized_pnl),
        "orders": orders,
    }


def _final_table(summary: dict[str, Any]) -> RenderableType:
    from rich.table import Table

    t = Table(title=f"snipe {summary['mode']} run {summary['run_id']}")
    for col in ("entries", "fills", "wins", "losses", "fees", "PnL", "signals", "skips"):
        t.add_column(col)
    skips = ", ".join(f"{k} {v}" for k, v in summary.get("skips", {}).items())
    t.add_row(
        str(summary.get("entries", 0)),
        str(summary.get("fills", 0)),
        str(summary.get("wins", 0)),
        str(summary.get("losses", 0)),
        render.usdc(Decimal(str(summary.get("fees", "0")))),  # USDC to the cent; --json stays exact
        render.pnl(Decimal(str(summary.get("pnl", "0")))),
        str(summary.get("signals", 0)),
        skips,
    )
    return t


def _report(app: App, *, live: bool, dry_run: bool, backtest: str | None, limit: int, as_json: bool) -> None:
    """Stored decisions, newest first: live and dry-run by default; `--backtest RUN` shows a backtest's."""
    if sum((live, dry_run, backtest is not None)) > 1:
        raise InputError("--report takes one of --live, --dry-run or --backtest RUN")
    if not app.database_exists():
        rows = []
    else:
        mode = "live" if live else "dry-run" if dry_run else None
        rows = app.store.list_decisions(mode=mode, run_id=backtest, strategy="snipe", limit=limit)
        if backtest is not None and app.store.get_backtest(backtest) is None:
            raise InputError(f"no backtest run {backtest!r}", hint="`pmbot backtest list` shows the runs")
    data = [
        {
            "ts_ms": r.ts,
            "mode": r.mode,
            "run_id": r.run_id,
            "kind": r.kind,
            "reason": r.reason,
            "condition_id": r.condition_id,
            "token_id": r.token_id,
            "intent_key": r.intent_key,
            "detail": r.detail,
        }
        for r in rows
    ]
    if as_json:
        render.print_json(data)
        return
    from rich.table import Table

    t = Table(title="snipe decisions (newest first)")
    for col in ("when", "mode", "kind", "reason", "market", "why"):
        t.add_column(col)
    for r in rows:
        why = " ".join(f"{k}={v}" for k, v in sorted(r.detail.items()))
        t.add_row(render.when(r.ts), r.mode, r.kind, r.reason, r.condition_id[:12], render.clean(why))
    render.stdout().print(t)


def register(app: typer.Typer) -> None:
    app.command("snipe")(snipe)
