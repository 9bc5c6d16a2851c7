"""`pmbot order`, `pmbot cancel`, `pmbot resume`, `pmbot status`: the operator's hands on the executor."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import ConfigError
from pmbot.money import fmt
from pmbot.store.models import OrderStatus

if TYPE_CHECKING:
    from pmbot.executor.engine import SubmitResult

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
LiveOpt = Annotated[bool, typer.Option("--live", help="Send to Polymarket for real (default: dry-run paper fill).")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation of a live order.")]
KeyArg = Annotated[
    str, typer.Argument(metavar="KEY", callback=base.not_blank, help="The order's key (see `pmbot status`).")
]


def order(
    ctx: typer.Context,
    side: Annotated[str, typer.Argument(metavar="SIDE", callback=base.choice("buy", "sell"), help="buy or sell.")],
    token_id: Annotated[
        str,
        typer.Argument(metavar="TOKEN_ID", callback=base.token_id, help="Outcome token id (from `pmbot markets`)."),
    ],
    price: Annotated[
        str,
        typer.Option(
            "--price",
            "-p",
            metavar="PRICE",
            callback=base.price,
            help="Limit price, between 0 and 1 (FOK/FAK: worst acceptable price).",
        ),
    ],
    size: Annotated[
        str, typer.Option("--size", "-s", metavar="SHARES", callback=base.shares, help="Shares (minimum 5).")
    ],
    order_type: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            metavar="GTC|FOK|FAK",
            callback=base.choice("GTC", "FOK", "FAK"),
            help="GTC (rests), FOK (all or nothing), FAK.",
        ),
    ] = "GTC",
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            metavar="KEY",
            callback=base.not_blank,
            help="Idempotency key: the same key and order are never sent twice.",
        ),
    ] = None,
    live: LiveOpt = False,
    yes: YesOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Place one order through the executor (risk-checked, idempotent, recorded). Dry-run unless --live."""
    from pmbot.ops import place_order, ticket

    app: App = ctx.obj
    t = ticket(token_id, side, price, size, order_type, key)  # bad input: fail before anything else
    if live:
        settings = app.settings
        if settings.private_key is None:
            raise ConfigError("--live needs a wallet key", hint="set PMBOT_PRIVATE_KEY in the environment or .env")
        if not yes:
            from pmbot.polymarket.signing import OrderSigner

            wallet = settings.funder or OrderSigner(settings.private_key.get_secret_value()).address
            prompt = (
                f"LIVE {t.side.value} {fmt(t.size)} shares of {render.short(t.token_id, 20)} at {render.price(t.price)}"
                f" ({t.order_type.value}, up to {fmt(t.notional, 2)} USDC) from {wallet} on {settings.clob_url}?"
            )
            typer.confirm(prompt, abort=True, err=True)
    result = base.run(place_order(app, t, dry_run=not live))
    if (unplaced := not_placed(result, t.order_type.value)) is not None and not result.reason:
        result = replace(result, reason=unplaced)
    view = {
        "key": result.key,
        "mode": "dry-run" if result.dry_run else "live",
        "status": result.status.value,
        "duplicate": result.duplicate,
        "filled": result.filled_size,
        "avg_price": result.avg_price,
        "fees": result.fees,
        "venue_order_id": result.venue_order_id,
        "reason": result.reason,
    }
    if as_json:
        render.print_json(view)
        _exit_3_if(unplaced)
        return
    out = render.stdout()
    line = render.mode(result.dry_run)
    line.append(f"  {result.status.value}", style="bold red" if result.status.value == "rejected" else "bold")
    if result.duplicate:
        line.append("  (already known: not sent again)", style="yellow")
    out.print(line)
    if result.filled_size:
        out.print(f"filled {fmt(result.filled_size)} @ {render.price(result.avg_price)}, fees {fmt(result.fees)}")
    if result.reason:
        out.print(f"reason: {result.reason}")
    out.print(f"[dim]key {result.key}[/dim]")
    _exit_3_if(unplaced)


def not_placed(result: SubmitResult, order_type: str) -> str | None:
    """Why nothing of this order is on the book or filled (exit code 3), or None when it was placed.

    Rejected by the risk gate, the paper exchange or the venue (tick, minimum size, balance, …), or a
    FOK/FAK that matched nothing. A GTC that rested and was then cancelled was placed; a duplicate
    reports what became of the original.
    """
    if result.status is OrderStatus.REJECTED:
        return result.reason or "rejected"
    killed = result.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
    if killed and order_type in ("FOK", "FAK") and not result.filled_size:
        return f"the {order_type} order matched nothing at once"
    return None


def _exit_3_if(unplaced: str | None) -> None:
    if unplaced is not None:
        raise typer.Exit(3)  # the reason is in the output above: stdout's "reason:" line or the JSON


def cancel(
    ctx: typer.Context,
    key: KeyArg,
    yes: YesOpt = False,
) -> None:
    """Cancel one open order (dry-run or live, whichever it is)."""
    from pmbot.ops import cancel_order

    app: App = ctx.obj
    rec = app.store.get_order(key) if app.database_exists() else None
    if rec is not None and not rec.dry_run and not rec.status.is_final and not yes:
        typer.confirm(f"Cancel LIVE order {key}?", abort=True, err=True)
    done = base.run(cancel_order(app, key))
    render.stdout().print(f"{done.key}: {done.status.value}")


def resume(
    ctx: typer.Context,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            metavar="dry-run|live|both",
            callback=base.choice("dry-run", "live", "both"),
            help="Which kill switch: dry-run, live or both.",
        ),
    ] = "both",
) -> None:
    """Reset the kill switch after a daily-loss stop, so that buying can start again."""
    from pmbot.errors import InputError
    from pmbot.ops import resume as do_resume

    wanted = {"dry-run": [True], "live": [False], "both": [True, False]}.get(mode.lower())
    if wanted is None:
        raise InputError(f"--mode must be dry-run, live or both, not {mode!r}")
    for r in do_resume(ctx.obj, wanted):
        if r["was_tripped"]:
            render.stdout().print(f"{r['mode']}: kill switch reset (was tripped: {r['reason']})")
        else:
            render.stdout().print(f"{r['mode']}: not tripped")


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Kill switches, open orders and the executor's last-run metrics, per mode."""
    from pmbot.ops import status as get_status

    view = get_status(ctx.obj)
    if as_json:
        render.print_json(view)
        return
    out = render.stdout()
    if not view["modes"]:
        out.print("No database yet: nothing has run.", style="dim")
        return
    for m in view["modes"]:
        ks = m["kill_switch"]
        head = render.mode(m["mode"] == "dry-run")
        head.append("  kill switch: ")
        head.append("TRIPPED" if ks["tripped"] else "ok", style="bold red" if ks["tripped"] else "green")
        if ks["tripped"]:
            head.append(f" ({ks['reason']}; `pmbot resume` resets it)")
        out.print(head)
        _print_metrics(m["last_run"])
        if m["open_orders"]:
            table = Table(show_edge=False)
            for col in ("Key", "Strategy", "Status", "Side", "Price", "Size", "Filled", "Token"):
                table.add_column(col)
            for o in m["open_orders"]:
                table.add_row(
                    o["key"],
                    o["strategy"],
                    o["status"],
                    o["side"],
                    render.price(o["price"]),
                    fmt(o["size"]),
                    fmt(o["filled"]),
                    render.short(o["token_id"]),
                )
            out.print(table)


def _print_metrics(metrics: dict[str, Any] | None) -> None:
    if not metrics:
        return
    ack = metrics.get("ack_ms") or {}
    rate = metrics.get("success_rate")
    render.stdout().print(
        f"  last run: {metrics.get('intents', 0)} intents, {metrics.get('duplicates', 0)} duplicates, "
        f"statuses {metrics.get('statuses', {})}, rejects {metrics.get('rejects', {})}, "
        f"ack p50/p95/p99 {_ms(ack.get('p50'))}/{_ms(ack.get('p95'))}/{_ms(ack.get('p99'))} ms"
        + (f", success {rate:.0%}" if rate is not None else "")
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def register(app: typer.Typer) -> None:
    app.command("order")(order)
    app.command("cancel")(cancel)
    app.command("resume")(resume)
    app.command("status")(status)
