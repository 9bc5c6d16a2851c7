"""`pmbot stats --history`: the periodic metrics snapshots a running `pmbot run-all` stores (pmbot.monitor)."""

from __future__ import annotations

from decimal import Decimal

from rich import box
from rich.table import Table
from rich.text import Text

from pmbot import render
from pmbot.app import App
from pmbot.store.models import Query, mode_name


def show_history(
    a: App, *, since_ms: int | None, limit: int | None, dry_run: bool | None, as_json: bool, local: bool
) -> None:
    """Newest first; `dry_run` keeps one mode's rows (None: both)."""
    from pmbot.monitor import history

    rows = history(a.store, Query(since=since_ms, limit=limit or 50)) if a.database_exists() else []
    if dry_run is not None:
        rows = [r for r in rows if r.mode == mode_name(dry_run)]
    if as_json:
        return render.print_json([r.view() for r in rows])
    if not rows:
        render.stdout().print(
            "No metrics snapshots yet — `pmbot run-all` stores one every 5 minutes and when it stops.", style="dim"
        )
        return
    table = Table(title="Metrics history", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col, justify in [
        ("time", "left"),
        ("kind", "left"),
        ("mode", "left"),
        ("intents", "right"),
        ("sent", "right"),
        ("ok", "right"),
        ("final", "left"),
        ("ack p50/p99 ms", "right"),
        ("exposure", "right"),
        ("today", "right"),
        ("fills", "right"),
        ("strategies", "left"),
    ]:
        table.add_column(col, justify=justify, no_wrap=col not in ("final", "strategies"))  # type: ignore[arg-type]
    for r in rows:
        final = ", ".join(f"{k} {v}" for k, v in sorted(r.statuses.items()))
        if r.rejects:
            final += " (" + ", ".join(f"{k} {v}" for k, v in sorted(r.rejects.items())) + ")"
        states = ", ".join(f"{n} {s}" for n, s in sorted(r.strategies.items()))
        mode = render.mode(r.mode == "dry-run") if r.mode in ("dry-run", "live") else Text(r.mode or "–")
        if r.kill_switch:
            mode.append(" KILL", style="bold red")
        table.add_row(
            render.when(r.ts, local=local),
            r.kind,
            mode,
            str(r.intents),
            str(r.sent),
            f"{r.accepted / r.sent:.0%}" if r.sent else render.DASH,
            render.plain(final),
            f"{_ms(r.ack_p50_ms)}/{_ms(r.ack_p99_ms)}",
            render.usdc(_dec(r.exposure)),
            render.pnl(_dec(r.realized_today)),
            render.DASH if r.trades is None else str(r.trades),
            render.plain(states),
        )
    render.stdout().print(table)


def _ms(v: float | None) -> str:
    return render.DASH if v is None else f"{v:g}"


def _dec(v: str | None) -> Decimal | None:
    return None if v is None else Decimal(v)
