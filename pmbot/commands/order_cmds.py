"""`pmbot order`, `pmbot cancel`, `pmbot resume`, `pmbot status`: the operator's hands on the executor."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.money import fmt
from pmbot.store.models import OrderStatus, mode_name

if TYPE_CHECKING:
    from pmbot.executor.engine import SubmitResult

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
    wait: Annotated[
        str | None,
        typer.Option(
            "--wait",
            metavar="DURATION",
            help="Dry-run GTC: rest against the live book until filled, Ctrl-C or this long (30s, 5m).",
        ),
    ] = None,
) -> None:
    """Place one order through the executor (risk-checked, idempotent, recorded). Dry-run unless --live."""
    from pmbot.ops import check_key_reuse, place_order, ticket

    app: App = ctx.obj
    t = ticket(token_id, side, price, size, order_type, key)  # bad input: fail before anything else
    wait_s = _wait_seconds(wait, live=live, order_type=t.order_type.value)
    if t.key is not None and app.database_exists():
        check_key_reuse(app.store, t, dry_run=not live)  # refused before any confirmation prompt
    if live:
        settings = app.settings
        wallet_key = base.check_live(settings)  # refused before asking, not after the prompt
        if not yes:
            from pmbot.polymarket.signing import OrderSigner, marketable_buy_terms

            wallet = settings.funder or OrderSigner(wallet_key.get_secret_value()).address
            what = marketable_buy_terms(t.side.value, t.order_type.value, t.size, t.price)
            if what is None:
                what = (
                    f"{t.side.value} {fmt(t.size)} shares at {render.price(t.price)}"
                    f" ({t.order_type.value}, up to {fmt(t.notional, 2)} USDC)"
                )
            prompt = f"LIVE {what} of {render.short(t.token_id, 20)} from {wallet} on {settings.clob_url}?"
            typer.confirm(prompt, abort=True, err=True)
    err = render.stderr()

    def resting(r: SubmitResult) -> None:
        err.print(f"resting as paper {r.status.value}; waiting up to {wait} for a fill (Ctrl-C cancels)")

    result = base.run(place_order(app, t, dry_run=not live, wait_s=wait_s, on_resting=resting), settings=app.settings)
    if (unplaced := not_placed(result, t.order_type.value)) is not None and not result.reason:
        result = replace(result, reason=unplaced)
    view = {
        "key": result.key,
        "mode": mode_name(result.dry_run),
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
    failed = result.status.value in ("rejected", "not_sent")
    line.append(f"  {result.status.value}", style="bold red" if failed else "bold")
    if result.duplicate:
        line.append("  (already known: not sent again)", style="yellow")
    out.print(line)
    if result.filled_size:
        fill = f"filled {fmt(result.filled_size)} @ {render.mean_price(result.avg_price)} avg"
        out.print(f"{fill}, fees {render.usdc(result.fees)} USDC")  # exact in --json
    if result.reason:
        out.print(render.plain(f"reason: {result.reason}"))
    if result.status.value == "not_sent":
        out.print("nothing reached the venue: the same order with the same --key may be placed again")
    out.print(f"[dim]key {result.key}[/dim]")
    _exit_3_if(unplaced)


def not_placed(result: SubmitResult, order_type: str) -> str | None:
    """Why nothing of this order is on the book or filled (exit code 3), or None when it was placed.

    Rejected by the risk gate, the paper exchange or the venue (tick, minimum size, balance, …), not sent
    (nothing reached the venue: retryable under the same key), or a FOK/FAK that matched nothing. A GTC
    that rested and was then cancelled was placed; a duplicate reports what became of the original.
    """
    if result.status is OrderStatus.REJECTED:
        return result.reason or "rejected"
    if result.status is OrderStatus.NOT_SENT:
        return result.reason or "not sent: nothing reached the venue"
    killed = result.status in (OrderStatus.CANCELLED, OrderStatus.EXPIRED)
    if killed and order_type in ("FOK", "FAK") and not result.filled_size:
        return f"the {order_type} order matched nothing at once"
    return None


def _exit_3_if(unplaced: str | None) -> None:
    if unplaced is not None:
        raise typer.Exit(3)  # the reason is in the output above: stdout's "reason:" line or the JSON


def _wait_seconds(wait: str | None, *, live: bool, order_type: str) -> float | None:
    """--wait is for a paper GTC only (a live GTC rests at the venue until cancelled). Bad input: exit 2."""
    if wait is None:
        return None
    from pmbot.timeutil import parse_duration

    def bad(why: str) -> InputError:
        return InputError(f"--wait {wait}: {why}")

    if live:
        raise bad("only for dry-run orders; a live GTC rests at the venue until `pmbot cancel`")
    if order_type != "GTC":
        raise bad(f"only for GTC orders; {order_type} never rests")
    try:
        seconds = parse_duration(wait).total_seconds()
    except InputError as e:
        raise bad(e.message) from None
    if seconds <= 0:
        raise bad("must be longer than 0s")
    return seconds


def cancel(
    ctx: typer.Context,
    key: KeyArg,
    yes: YesOpt = False,
) -> None:
    """Cancel one open order (dry-run or live, whichever it is), by its key or the --key it was placed with."""
    from pmbot.ops import cancel_order, find_order

    app: App = ctx.obj
    if not app.database_exists():
        raise InputError(f"no order with key {key!r}", hint="nothing has been recorded yet")
    rec = find_order(app.store, key)  # the order's own key or the operator's --key
    if not rec.dry_run and not rec.status.is_final and not yes:
        typer.confirm(f"Cancel LIVE order {rec.key}?", abort=True, err=True)
    done = base.run(cancel_order(app, rec.key))
    render.stdout().print(render.plain(f"{done.key}: {done.status.value}"))


def resume(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="A strategy paused by `pmbot pause` (see `pmbot status`).", show_default=False)
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            "--mode",
            metavar="dry-run|live|both",
            callback=base.choice("dry-run", "live", "both"),
            help="Reset this kill switch only: dry-run, live or both.",
        ),
    ] = None,
) -> None:
    """Resume: `resume NAME` a paused strategy (bare `resume`: every paused strategy); `resume --mode M`
    resets M's kill switch after a daily-loss stop. A tripped kill switch is a risk stop, not a pause: only
    `--mode` resets it, so un-pausing never re-enables trading past the daily loss limit by accident."""
    from pmbot.ops import kill_switches, resume_strategies
    from pmbot.ops import resume as do_resume

    if name is not None and mode is not None:
        raise InputError(
            "give a strategy NAME or --mode, not both", hint="`pmbot resume NAME`, `pmbot resume --mode live`"
        )
    wanted = {"dry-run": [True], "live": [False], "both": [True, False]}.get((mode or "both").lower())
    if wanted is None:
        raise InputError(f"--mode must be dry-run, live or both, not {mode!r}")
    out = render.stdout()
    if mode is None:
        done = resume_strategies(ctx.obj, name)
        out.print(_control_line(done))
        if name is not None:
            return
        for ks in kill_switches(ctx.obj):
            if ks["tripped"]:
                out.print(
                    f"{ks['mode']}: kill switch still TRIPPED ({ks['reason']}); "
                    f"`pmbot resume --mode {ks['mode']}` resets it",
                    style="yellow",
                )
            else:
                out.print(f"{ks['mode']}: not tripped")
        return
    for r in do_resume(ctx.obj, wanted):
        if r["was_tripped"]:
            out.print(f"{r['mode']}: kill switch reset (was tripped: {r['reason']})")
        else:
            out.print(f"{r['mode']}: not tripped")


def _control_line(done: dict[str, Any]) -> Text:
    """`snipe: paused (run-all host:123 applies it within 1 s)` or, with nothing running, when it applies."""
    verb = "paused" if done["action"] == "pause" else "resumed"
    who = render.plain(done["strategy"] or "all strategies")
    line = Text.assemble(who, f": {verb}")
    if done["processes"]:
        line.append(f" (running {', '.join(done['processes'])}: within 1 s)", style="dim")
    elif done["action"] == "pause":
        line.append(" (no run-all is running: it will start paused)", style="dim")
    else:
        line.append(" (no run-all is running)", style="dim")
    return line


def pause(
    ctx: typer.Context,
    name: Annotated[
        str | None, typer.Argument(help="The strategy to pause (default: all).", show_default=False)
    ] = None,
) -> None:
    """Pause a strategy (no NAME: all) in the running `pmbot run-all` within 1 s: no new intents, resting
    orders and positions kept. The pause lasts until `pmbot resume NAME`, across restarts."""
    from pmbot.ops import pause_strategies

    render.stdout().print(_control_line(pause_strategies(ctx.obj, name)))


def status(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Kill switches, open orders and the executor's last-run metrics, per mode."""
    from pmbot.ops import status as get_status

    view = get_status(ctx.obj)
    if as_json:
        render.print_json(view)
        return
    print_status(render.stdout(), view)


def print_status(out: Console, view: dict[str, Any]) -> None:
    """A table of the two executors (kill switch, open orders, last run), then one of the open
    orders, keys in full for `pmbot cancel`. Reads at 80 columns: only the last-run summary wraps."""
    if not view["modes"]:
        out.print("No database yet: nothing has run.", style="dim")
        return
    print_processes(out, view.get("processes") or [], view.get("paused") or {})
    runs = Table(title="Executors", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    runs.add_column("Mode", no_wrap=True)
    runs.add_column("Kill switch", no_wrap=True)
    runs.add_column("Open", justify="right", no_wrap=True)
    runs.add_column("Last run", min_width=20)
    for m in view["modes"]:
        ks = m["kill_switch"]
        switch = Text("TRIPPED", style="bold red") if ks["tripped"] else Text("ok", style="green")
        runs.add_row(render.mode(m["mode"] == "dry-run"), switch, str(len(m["open_orders"])), _last_run(m["last_run"]))
    out.print(runs)
    for m in view["modes"]:
        ks = m["kill_switch"]
        if ks["tripped"]:
            line = render.mode(m["mode"] == "dry-run")
            line.append(" kill switch tripped: ", style="bold red")
            line.append_text(render.plain(ks["reason"]))
            line.append("; `pmbot resume` resets it")
            out.print(line)
    if not any(m["open_orders"] for m in view["modes"]):
        out.print("No open orders.", style="dim")
        return
    for m in view["modes"]:
        if m["open_orders"]:
            out.print(_open_orders(m["mode"], m["open_orders"]))


def print_processes(out: Console, procs: list[dict[str, Any]], paused: dict[str, Any]) -> None:
    """`Running processes` (one row per run-all that reported in; stale and stopped ones marked), then
    the strategies and streams of the live ones: state and heartbeat age, age of the last message."""
    if not procs:
        out.print("No run-all running.", style="dim")
    else:
        table = Table(title="Running processes", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for col in ("Process", "Mode", "State", "Uptime", "Beat", "Open", "Kill switch"):
            table.add_column(col, no_wrap=True, justify="right" if col in ("Uptime", "Beat", "Open") else "left")
        for p in procs:
            state = p.get("state", "?")
            style = "green" if p["alive"] else ("bold red" if state == "stale" else "dim")
            ks = p.get("kill_switch")
            switch = Text("–") if not ks else Text("TRIPPED", "bold red") if ks.get("tripped") else Text("ok", "green")
            table.add_row(
                render.plain(p.get("process", "?")),
                render.plain(p.get("mode", "")),
                Text(state, style=style),
                _duration(p.get("uptime_s")),
                _age(p.get("heartbeat_age_s")),
                "–" if p.get("open_orders") is None else str(p["open_orders"]),
                switch,
            )
        out.print(table)
        live = [p for p in procs if p["alive"]]
        several = len(live) > 1
        strategies = Table(title="Strategies", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        streams = Table(title="Streams", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
        for t, cols in (
            (strategies, ("Strategy", "State", "Heartbeat", "Restarts")),
            (streams, ("Stream", "Last message")),
        ):
            if several:
                t.add_column("Process", no_wrap=True)
            for col in cols:
                t.add_column(
                    col, no_wrap=True, justify="right" if col in ("Heartbeat", "Restarts", "Last message") else "left"
                )
        strategies.add_column("Detail")
        for p in live:
            who = [render.plain(p.get("process", "?"))] if several else []
            for name, st in sorted((p.get("strategies") or {}).items()):
                s_state = st.get("state", "?")
                strategies.add_row(
                    *who,
                    render.plain(name),
                    Text(s_state, style=_STATE_STYLE.get(s_state, "")),
                    _age(st.get("heartbeat_age_s")),
                    str(st.get("restarts") or 0),
                    render.plain(st.get("detail") or "", style="dim"),
                )
            for name, st in sorted((p.get("streams") or {}).items()):
                streams.add_row(
                    *who, render.plain(name), _age(st.get("age_s")) if st.get("age_s") is not None else "none yet"
                )
        if strategies.row_count:
            out.print(strategies)
        if streams.row_count:
            out.print(streams)
    if paused.get("all") or paused.get("names"):
        names = "all strategies" if paused.get("all") else ", ".join(paused["names"])
        if paused.get("all") and paused.get("except"):
            names += f" except {', '.join(paused['except'])}"
        line = Text("paused by the operator: ", style="yellow")
        line.append_text(render.plain(names))
        line.append("; `pmbot resume [NAME]` resumes")
        out.print(line)


_STATE_STYLE = {"running": "green", "paused": "yellow", "crashed": "bold red", "restarting": "yellow"}


def _age(seconds: float | None) -> str:
    return "–" if seconds is None else f"{_duration(seconds)} ago"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    s = int(seconds)
    if s < 60:
        return f"{seconds:.0f}s" if seconds >= 10 else f"{seconds:.1f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _open_orders(mode: str, orders: list[dict[str, Any]]) -> Table:
    title = Text("Open orders, ")
    title.append_text(render.mode(mode == "dry-run"))
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Key / token", no_wrap=True)  # the key in full: `pmbot cancel KEY` needs it
    for col in ("Status", "Side"):
        table.add_column(col, no_wrap=True)
    for col in ("Price", "Size", "Filled"):
        table.add_column(col, justify="right", no_wrap=True)
    for o in orders:
        cell = render.plain(o["key"])
        cell.append("\n")
        cell.append_text(render.plain(render.short(o["token_id"], 24), style="dim"))
        table.add_row(
            cell,
            o["status"],
            o["side"],
            render.price(o["price"]),
            fmt(o["size"]),
            fmt(o["filled"]),
        )
    return table


def _last_run(run: dict[str, Any] | None) -> Text:
    """`3 intents (1 duplicate), 2 sent, 2 accepted (100%); filled 2, rejected 1 (risk_limit 1); ack ms
    p50/p95/p99 4.1/9.8/9.8`: the executor's last-run metrics in words."""
    if not run:
        return Text("no run yet", style="dim")
    parts = [f"{run.get('intents', 0)} intent(s) ({run.get('duplicates', 0)} duplicate)", f"{run.get('sent', 0)} sent"]
    if run.get("sent"):
        rate = run.get("success_rate")
        parts.append(f"{run.get('accepted', 0)} accepted" + (f" ({rate:.0%})" if rate is not None else ""))
    text = ", ".join(parts)
    statuses = run.get("statuses") or {}
    rejects = run.get("rejects") or {}
    if statuses:
        text += "; " + ", ".join(f"{name} {n}" for name, n in sorted(statuses.items()))
    if rejects:
        text += " (" + ", ".join(f"{why} {n}" for why, n in sorted(rejects.items())) + ")"
    ack = run.get("ack_ms") or {}
    if ack.get("n"):
        text += "; ack ms p50/p95/p99 " + "/".join(_ms(ack.get(p)) for p in ("p50", "p95", "p99"))
    return render.plain(text)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def register(app: typer.Typer) -> None:
    app.command("order")(order)
    app.command("cancel")(cancel)
    app.command("pause")(pause)
    app.command("resume")(resume)
    app.command("status")(status)
