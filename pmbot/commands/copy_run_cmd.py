"""`pmbot copy --target NAME|0x…` (the mirroring run) and `pmbot copy report`.

Thin: check the input (bad input → one line, exit 2, nothing written), call
`pmbot.runner.copy_session.run_copy_session` or read the stored copy decisions, render."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.money import fmt

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pmbot.runner.copy_session import CopySession
    from pmbot.store.copy_rows import CopyDecisionRow
    from pmbot.strategies.base import Output

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_USERNAME = re.compile(r"^@?[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SOURCES = ("chain", "rtds", "data_api")


def _target(text: str) -> None:
    t = text.strip()
    if t.lower().startswith("0x"):
        if not _ADDRESS.match(t):
            raise InputError(f"{t[:60]!r} is not a wallet address (0x followed by 40 hex digits)")
    elif not _USERNAME.match(t):
        raise InputError(f"{t[:60]!r} is neither a Polymarket username nor a 0x wallet address")


target_check = base.checked(_target)


def copy_run(
    ctx: typer.Context,
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            "-t",
            metavar="NAME|0x…",
            help="A username or 0x wallet to mirror (repeatable).",
            callback=target_check,
        ),
    ] = None,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration", metavar="D", help="Stop after this long (90s, 15m, 2h).", callback=base.positive_duration
        ),
    ] = None,
    source: Annotated[
        list[str] | None,
        typer.Option(
            "--source", metavar="SOURCE", help="Detect fills only from these (chain, rtds, data_api; repeatable)."
        ),
    ] = None,
    live: Annotated[bool, typer.Option("--live", help="Trade for real (default: dry-run paper fills).")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation of live trading.")] = False,
    no_live: Annotated[bool, typer.Option("--no-live", help="Log lines instead of the live view.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON.")] = False,
) -> None:
    """Mirror a wallet's fills with our sizing and guards (dry-run unless --live); `copy report` shows them."""
    if ctx.invoked_subcommand is not None:
        if target or duration or source or live or no_live or as_json:
            raise InputError(f"options of `pmbot copy` go without a subcommand, not before `{ctx.invoked_subcommand}`")
        return
    app: App = ctx.obj
    from pmbot.runner.copy_session import TargetRequest
    from pmbot.timeutil import parse_duration

    duration_s = parse_duration(duration).total_seconds() if duration is not None else None
    sources = tuple(dict.fromkeys(s.strip().lower() for s in source or ()))
    bad = [s for s in sources if s not in SOURCES]
    if bad:
        raise InputError(f"--source {bad[0]!r} is not one of {', '.join(SOURCES)}")
    cfg = app.settings.copy
    if target:
        by_name = {t.target.strip().lower(): t for t in cfg.targets}
        requests = [TargetRequest(t.strip(), by_name.get(t.strip().lower())) for t in target]
    else:
        requests = [TargetRequest(t.target.strip(), t) for t in cfg.targets]
        for t in requests:
            _target(t.name)
    if not requests:
        raise InputError("give --target NAME|0x… (or [[copy.targets]] in the config file)", hint="pmbot copy --help")
    if live:
        _confirm_live(app, [r.name for r in requests], yes=yes)
    summary = base.run_trading(
        _run(
            app,
            requests,
            dry_run=not live,
            duration_s=duration_s,
            sources=sources or None,
            live_view=not no_live and not as_json,
        ),
        app.settings,
    )
    if as_json:
        render.print_json(summary)
    else:
        render.stdout().print(_final_table(summary))


def _confirm_live(app: App, names: list[str], *, yes: bool) -> None:
    settings = app.settings
    base.check_live(settings)
    if yes:
        return
    c = settings.copy
    size = {"ratio": f"{fmt(c.ratio)} x the target's shares", "fixed": f"{fmt(c.fixed_usdc)} USDC per buy"}.get(
        c.mode, f"{fmt(c.percent)} % of the balance per buy"
    )
    caps = f"at most {fmt(c.max_per_trade_usdc)} USDC per trade, {fmt(c.max_total_usdc)} USDC in all"
    typer.confirm(
        f"LIVE copying of {', '.join(names)}: {c.order_type} orders of {size}, {caps}, on {settings.clob_url}?",
        abort=True,
        err=True,
    )


class _ViewState:
    def __init__(self) -> None:
        self.session: CopySession | None = None


async def _run(
    app: App,
    requests: list[Any],
    *,
    dry_run: bool,
    duration_s: float | None,
    sources: tuple[str, ...] | None,
    live_view: bool,
) -> dict[str, Any]:
    from pmbot.runner.copy_session import run_copy_session

    stop = base.stop_on_signals()
    state = _ViewState()
    err = render.stderr()

    def on_output(out: Output) -> None:
        if live_view:
            return
        for d in out.decisions:
            det = d.detail
            line = (
                f"{render.when(d.ts_ms)} {d.kind.value:<7} {d.reason:<14} {det.get('side', ''):<4} "
                f"{det.get('outcome', '')[:10]:<10} target {det.get('target_size', '')}@{_avg(det.get('target_price'))}"
            )
            if det.get("size"):
                line += f" -> ours {det['size']}@{det.get('limit', '')}"
            if det.get("why"):
                line += f"  ({det['why']})"
            if det.get("tx_hash"):
                line += f"  tx {det['tx_hash'][:12]}"
            err.print(render.plain(line))

    view_task: asyncio.Task[None] | None = None

    def on_ready(session: CopySession) -> None:
        nonlocal view_task
        state.session = session
        for w in session.warnings:
            err.print(render.plain(f"warning: {w}", style="yellow"))
        if live_view:
            view_task = asyncio.ensure_future(_live_view(state, app))

    try:
        session = await run_copy_session(
            app,
            app.settings.copy,
            requests,
            dry_run=dry_run,
            duration_s=duration_s,
            stop=stop,
            on_output=on_output,
            on_ready=on_ready,
            sources=sources,
        )
    finally:
        if view_task is not None:
            view_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await view_task
    return summary_of(session)


async def _live_view(state: _ViewState, app: App) -> None:
    from rich.live import Live

    with Live(_view(state, app), console=render.stderr(), refresh_per_second=4, transient=True) as live:
        while True:
            await asyncio.sleep(0.25)
            live.update(_view(state, app))


def _ms(v: int | None) -> str:
    return "—" if v is None else f"{v} ms"


def _view(state: _ViewState, app: App) -> RenderableType:
    from rich.console import Group
    from rich.table import Table

    from pmbot.runner.copy_feed import latency_quantiles

    session = state.session
    title = f"pmbot copy ({session.mode if session else '…'})"
    targets = Table(title=title, expand=False)
    for col in ("target", "wallet", "copied", "skipped", "last fill"):
        targets.add_column(col)
    if session is None or session.feed is None:
        return targets
    feed = session.feed
    for t in session.targets:
        dlog = session.logs.get(t.wallet)
        fills = feed.last_fills.get(t.wallet) or []
        last = fills[-1] if fills else None
        last_txt = (
            f"{last.side} {render.clean(last.outcome)} {fmt(last.size)}@{fmt(last.price)} via {last.source}"
            if last
            else "—"
        )
        skipped = ", ".join(f"{k} {v}" for k, v in sorted((dlog.skipped if dlog else {}).items()))
        targets.add_row(
            render.plain(t.label), t.wallet[:12] + "…", str(dlog.copied if dlog else 0), skipped, render.plain(last_txt)
        )
    mirrors = Table(title="our mirrors (newest last)", expand=False)
    for col in ("when", "target", "decision", "side", "outcome", "target size@price", "ours", "order"):
        mirrors.add_column(col)
    rows = [r for d in session.logs.values() for r in d.copy_rows if r.reason != "duplicate"]
    for r in sorted(rows, key=lambda x: x.ts)[-8:]:
        ours = f"{fmt(r.order_size)}@{fmt(r.order_price)}" if r.copied else r.detail.get("why", "")[:40]
        mirrors.add_row(
            render.when(r.ts),
            render.plain(r.target_label),
            r.reason,
            r.side,
            render.plain(r.outcome),
            f"{fmt(r.target_size)}@{render.mean_price(r.target_price)}",
            render.plain(ours),
            r.order_status,
        )
    sources = Table(title="sources", expand=False)
    for col in ("source", "state", "fills seen", "last", "seen p50", "seen p99", "errors"):
        sources.add_column(col)
    now = int(app.clock() * 1000)
    for src, h in feed.health.items():
        p50, p99 = latency_quantiles(h.latencies_ms)
        ago = "—" if h.last_event_ms is None else f"{max(0, now - h.last_event_ms) / 1000:.1f}s ago"
        state_txt = h.state + (f" ({h.detail})" if h.detail else "")
        sources.add_row(str(src), render.plain(state_txt), str(h.events), ago, _ms(p50), _ms(p99), str(h.errors))
    return Group(targets, mirrors, sources)


def summary_of(session: CopySession) -> dict[str, Any]:
    from pmbot.runner.copy_feed import latency_quantiles

    targets = []
    orders = []
    for t in session.targets:
        dlog = session.logs.get(t.wallet)
        runner = session.runners.get(t.wallet)
        m = runner.strategy.metrics if runner is not None else None
        targets.append(
            {
                "target": t.label,
                "wallet": t.wallet,
                "strategy": t.strategy_name,
                "restored": session.restored.get(t.wallet, 0),
                "copied": dlog.copied if dlog else 0,
                "skipped": dict(sorted((dlog.skipped if dlog else {}).items())),
                "fills": m.fills if m else 0,
                "fees": fmt(m.fees) if m else "0",
                "realized_pnl": fmt(m.realized_pnl) if m else "0",
            }
        )
        for sent in runner.sent.values() if runner else ():
            r = sent.result
            orders.append(
                {
                    "target": t.label,
                    "key": r.key if r else sent.intent.key,
                    "token_id": sent.intent.token_id,
                    "outcome": sent.intent.meta.get("outcome", ""),
                    "side": sent.intent.side.value,
                    "price": fmt(sent.intent.price),
                    "size": fmt(sent.intent.size),
                    "status": sent.status,
                    "filled": fmt(r.filled_size) if r else "0",
                    "tx_hash": sent.intent.meta.get("tx_hash", ""),
                }
            )
    sources = {}
    if session.feed is not None:
        for src, h in session.feed.health.items():
            p50, p99 = latency_quantiles(h.latencies_ms)
            sources[str(src)] = {
                "state": h.state,
                "fills_seen": h.events,
                "errors": h.errors,
                "seen_p50_ms": p50,
                "seen_p99_ms": p99,
            }
    return {
        "run_id": session.run_id,
        "mode": session.mode,
        "warnings": session.warnings,
        "targets": targets,
        "sources": sources,
        "orders": orders,
    }


def _final_table(summary: dict[str, Any]) -> RenderableType:
    from rich.table import Table

    t = Table(title=f"copy {summary['mode']} run {summary['run_id']}")
    for col in ("target", "copied", "skipped", "fills", "fees", "realized PnL"):
        t.add_column(col)
    for row in summary["targets"]:
        t.add_row(
            render.plain(row["target"]),
            str(row["copied"]),
            ", ".join(f"{k} {v}" for k, v in row["skipped"].items()) or "0",
            str(row["fills"]),
            render.usdc(Decimal(row["fees"])),
            render.pnl(Decimal(row["realized_pnl"])),
        )
    return t


# ------------------------------------------------------------------------------------------- report


def copy_report(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option(
            "--target", "-t", metavar="NAME|0x…", help="Only this target (username or 0x).", callback=target_check
        ),
    ] = None,
    since: Annotated[
        str, typer.Option("--since", metavar="WHEN", help="From this long ago (24h, 7d, today).", callback=base.since)
    ] = "24h",
    live: Annotated[bool, typer.Option("--live", help="Live decisions (default: dry-run).")] = False,
    limit: Annotated[int, typer.Option("--limit", metavar="N", help="Decisions listed, at most.", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Copy decisions, the PnL of what was copied, and the latency per source (p50 / p99)."""
    app: App = ctx.obj
    from pmbot.timeutil import parse_since

    since_ms = parse_since(since, app.clock)
    mode = "live" if live else "dry-run"
    doc = build_report(app, mode=mode, target=target, since_ms=since_ms, limit=limit)
    if as_json:
        render.print_json(doc)
        return
    _print_report(doc)


def build_report(app: App, *, mode: str, target: str | None, since_ms: int, limit: int) -> dict[str, Any]:
    """The report document (`--json` prints it as is)."""
    rows: list[CopyDecisionRow] = []
    positions: list[Any] = []
    if app.database_exists():
        store = app.store
        wallet = None
        if target is not None:
            wallet = target.lower() if target.lower().startswith("0x") else _wallet_of_label(store, mode, target)
        rows = store.list_copy_decisions(mode=mode, target=wallet, since=since_ms) if wallet != "" else []
        rows = _with_order_status(store, rows)
        from pmbot.store.models import Query

        positions = [p for p in store.list_positions(Query(dry_run=mode != "live")) if p.strategy.startswith("copy-")]
    return report_doc(rows, positions, mode=mode, since_ms=since_ms, limit=limit)


def _with_order_status(store: Any, rows: list[CopyDecisionRow]) -> list[CopyDecisionRow]:
    """A decision stores its order's status when it was handed over (`sending`, `pending`, …); the order
    moved on since (filled, rejected, not_sent): report what the order is now, not what it was."""
    from dataclasses import replace

    orders = store.get_orders({r.order_key for r in rows if r.order_key})
    return [replace(r, order_status=orders[r.order_key].status.value) if r.order_key in orders else r for r in rows]


def _wallet_of_label(store: Any, mode: str, label: str) -> str:
    for r in store.list_copy_decisions(mode=mode, limit=5000):
        if r.target_label.lower() == label.lower().lstrip("@"):
            return str(r.target)
    return ""  # never copied under that name: an empty report


def report_doc(
    rows: list[CopyDecisionRow], positions: list[Any], *, mode: str, since_ms: int, limit: int
) -> dict[str, Any]:
    from pmbot.runner.copy_feed import latency_quantiles

    by_target: dict[str, list[CopyDecisionRow]] = {}
    for r in rows:
        by_target.setdefault(r.target, []).append(r)
    targets = []
    for wallet, rs in sorted(by_target.items()):
        strategy = rs[0].strategy
        copied = [r for r in rs if r.copied]
        skipped: dict[str, int] = {}
        for r in rs:
            if not r.copied:
                skipped[r.reason] = skipped.get(r.reason, 0) + 1
        # One latency sample per fill and source: a fill's first decision has its first arrivals.
        first: dict[str, CopyDecisionRow] = {}
        for r in sorted(rs, key=lambda x: (x.ts, x.id or 0)):
            first.setdefault(r.fill_id, r)
        latency: dict[str, Any] = {}
        for src in SOURCES:
            seen = [
                ms - r.target_ts for r in first.values() if (ms := r.seen_ms().get(src)) is not None and r.target_ts
            ]
            order = [
                r.order_ts - r.target_ts
                for r in copied
                if r.order_ts is not None and r.target_ts is not None and r.detail.get("first_source") == src
            ]
            s50, s99 = latency_quantiles([max(0, x) for x in seen])
            o50, o99 = latency_quantiles([max(0, x) for x in order])
            latency[src] = {
                "fills_seen": len(seen),
                "seen_p50_ms": s50,
                "seen_p99_ms": s99,
                "orders": len(order),
                "order_p50_ms": o50,
                "order_p99_ms": o99,
            }
        mine = [p for p in positions if p.strategy == strategy]
        realized = sum((p.realized_pnl for p in mine), Decimal(0))
        unrealized = sum(
            (p.size * p.mark_price - p.cost for p in mine if p.size > 0 and p.mark_price is not None), Decimal(0)
        )
        targets.append(
            {
                "target": rs[0].target_label or wallet,
                "wallet": wallet,
                "strategy": strategy,
                "decisions": len(rs),
                "fills": len(first),
                "copied": len(copied),
                # what became of the copies' orders: a copy decision is not a fill
                "orders": dict(sorted(Counter(r.order_status or "unknown" for r in copied).items())),
                "skipped": dict(sorted(skipped.items())),
                "pnl": {
                    "realized": fmt(realized),
                    "unrealized": fmt(unrealized),
                    "open_cost": fmt(sum((p.cost for p in mine if p.size > 0), Decimal(0))),
                    "open_positions": sum(1 for p in mine if p.size > 0),
                },
                "latency_ms": latency,
            }
        )
    decisions = [
        {
            "ts_ms": r.ts,
            "target": r.target_label or r.target,
            "decision": r.decision,
            "reason": r.reason,
            "tx_hash": r.tx_hash,
            "log_index": r.log_index,
            "condition_id": r.condition_id,
            "token_id": r.token_id,
            "outcome": r.outcome,
            "side": r.side,
            "target_price": fmt(r.target_price) if r.target_price is not None else None,
            "target_size": fmt(r.target_size) if r.target_size is not None else None,
            "target_ts_ms": r.target_ts,
            "seen_ms": r.seen_ms(),
            "order_key": r.order_key,
            "order_ts_ms": r.order_ts,
            "order_price": fmt(r.order_price) if r.order_price is not None else None,
            "order_size": fmt(r.order_size) if r.order_size is not None else None,
            "order_status": r.order_status,
            "why": r.detail.get("why", ""),
        }
        for r in rows[:limit]
    ]
    return {"mode": mode, "since_ms": since_ms, "targets": targets, "decisions": decisions}


def _print_report(doc: dict[str, Any]) -> None:
    from rich.table import Table

    out = render.stdout()
    t = Table(title=f"copy report ({doc['mode']}, since {render.when(doc['since_ms'])})")
    for col in ("target", "fills", "copied", "their orders", "skipped", "realized", "unrealized", "open"):
        t.add_column(col)
    for r in doc["targets"]:
        p = r["pnl"]
        t.add_row(
            render.plain(r["target"]),
            str(r["fills"]),
            str(r["copied"]),
            ", ".join(f"{k} {v}" for k, v in r["orders"].items()),
            ", ".join(f"{k} {v}" for k, v in r["skipped"].items()) or "0",
            render.pnl(Decimal(p["realized"])),
            render.pnl(Decimal(p["unrealized"])),
            str(p["open_positions"]),
        )
    out.print(t)
    lat = Table(title="latency per source: target fill → seen / → our order (p50 / p99)")
    for col in ("target", "source", "fills seen", "seen p50/p99", "orders", "order p50/p99"):
        lat.add_column(col)
    for r in doc["targets"]:
        for src, v in r["latency_ms"].items():
            lat.add_row(
                render.plain(r["target"]),
                src,
                str(v["fills_seen"]),
                f"{_ms(v['seen_p50_ms'])} / {_ms(v['seen_p99_ms'])}",
                str(v["orders"]),
                f"{_ms(v['order_p50_ms'])} / {_ms(v['order_p99_ms'])}",
            )
    out.print(lat)
    d = Table(title="decisions (newest first)")
    for col in ("when", "target", "decision", "reason", "side", "outcome", "target", "ours", "tx"):
        d.add_column(col)
    for r in doc["decisions"]:
        ours = f"{r['order_size']}@{r['order_price']}" if r["decision"] == "copied" else render.clean(r["why"])[:40]
        d.add_row(
            render.when(r["ts_ms"]),
            render.plain(r["target"]),
            r["decision"],
            r["reason"],
            r["side"],
            render.plain(r["outcome"]),
            f"{r['target_size']}@{_avg(r['target_price'])}",
            render.plain(ours),
            (r["tx_hash"] or "")[:12],
        )
    out.print(d)


def register(app: typer.Typer) -> None:
    """Adds the group's callback (the run) and `report` to the `copy` group."""
    app.callback(invoke_without_command=True, no_args_is_help=False)(copy_run)
    app.command("report")(copy_report)


def _avg(text: str | None) -> str:
    """A target fill's price as stored (text): an average over its matches, so rounded like one."""
    from decimal import InvalidOperation

    try:
        return render.mean_price(Decimal(text)) if text else ""
    except InvalidOperation:
        return render.clean(text)
