"""`pmbot copy analyze TARGET`: would copying this wallet have paid?

Thin: the values are checked while parsing (Click usage errors, nothing fetched or written), the history
comes from pmbot.copy_history (the venue, or `--from FILE`), the replay from
pmbot.strategies.copy_analysis, and the result is stored before it is shown."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot import render
from pmbot.commands import base

if TYPE_CHECKING:
    from pmbot.app import App
    from pmbot.copy_history import History
    from pmbot.strategies.copy_analysis import CopyRules

MAX_DAYS = 90
MAX_DELAY_MS = 3_600_000
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m)?$")
_DELAY_UNITS = {"ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000), None: Decimal(1000)}


def parse_delay(text: str) -> int:
    """'2s', '500ms', '1.5s', '0', '1m' → milliseconds (a bare number is seconds)."""
    from pmbot.errors import InputError

    m = _DELAY.match(text.strip().lower())
    if not m:
        raise InputError(f"not a delay: {text!r}", hint="use a number and a unit, like 2s, 500ms or 1.5s")
    ms = Decimal(m.group(1)) * _DELAY_UNITS[m.group(2)]
    if ms != ms.to_integral_value():
        raise InputError(f"delay {text!r} is not a whole number of milliseconds")
    if ms > MAX_DELAY_MS:
        raise InputError(f"delay must be at most 1h, got {text!r}")
    return int(ms)


def parse_slippage(text: str) -> Decimal:
    from pmbot.errors import InputError

    value = base._decimal(text, "slippage")
    if not 0 <= value < 1:
        raise InputError(f"slippage must be at least 0 and below 1 (a price difference), got {text}")
    return Decimal(value)


def rules_from(a: App, target: str) -> CopyRules:
    """Our sizing as `pmbot copy` would use it for `target`: `[copy]`, with the matching
    `[[copy.targets]]` entry's overrides (by name or wallet, any case) on top."""
    from pmbot.strategies.copy import CopyStrategy
    from pmbot.strategies.copy_analysis import CopyRules

    section = a.settings.copy
    entry = next((t for t in section.targets if t.target.strip().lower() == target.strip().lower()), None)
    # validated as `pmbot copy` validates it; the rules do not depend on the wallet, so any address will do
    raw = {"target": "0x" + "0" * 40, **section.rules_for(entry)}
    return CopyRules.from_config(CopyStrategy.validate_config(raw))


def analyze(
    ctx: typer.Context,
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET",
            callback=base.not_blank,
            help="A profile name (e.g. distinct-baguette) or a 0x wallet (--from: the file's target or wallet).",
        ),
    ],
    days: Annotated[
        int | None,
        typer.Option(
            "--days", min=1, max=MAX_DAYS, metavar="N", help="Days of history (default 7; with --from: the whole file)."
        ),
    ] = None,
    delay: Annotated[
        str,
        typer.Option(
            "--delay",
            metavar="DURATION",
            callback=base.checked(parse_delay),
            help="How late a copy arrives: 2s, 500ms, 1.5s.",
        ),
    ] = "2s",
    slippage: Annotated[
        str,
        typer.Option(
            "--slippage",
            metavar="PRICE",
            callback=base.checked(parse_slippage),
            help="Our limit: the target's price ± this.",
        ),
    ] = "0.01",
    from_file: Annotated[
        str | None,
        typer.Option("--from", metavar="FILE", callback=base.not_blank, help="Analyze a recorded history (offline)."),
    ] = None,
    save: Annotated[
        str | None,
        typer.Option("--save", metavar="FILE", callback=base.not_blank, help="Also write the fetched history here."),
    ] = None,
    tape: Annotated[
        bool,
        typer.Option(
            "--tape/--no-tape",
            help="Price the late copy from each market's trades (--no-tape: at the target's price ± slippage).",
        ),
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts (money as exact strings).")] = False,
) -> None:
    """Replay the target's history under our copy rules, late by --delay: its PnL, the copy's, the share
    kept, the maker share (cannot be copied) and a verdict (copyable, marginal, toxic) with its rule."""
    from pmbot.copy_history import read_history, record_analysis, result_document, run_analysis
    from pmbot.errors import InputError
    from pmbot.timeutil import now_ms

    if from_file is not None and save is not None:
        ctx.fail("--save writes a fetched history: it cannot be used with --from")
    if save is not None and Path(save).is_dir():
        ctx.fail(f"--save {save!r} is a directory: name a file")
    if save is not None and not Path(save).parent.is_dir():
        ctx.fail(f"--save {save!r}: no such directory {str(Path(save).parent)!r}")
    a: App = ctx.obj
    delay_ms, slip = parse_delay(delay), parse_slippage(slippage)
    rules = rules_from(a, target)
    if from_file is not None:
        history = read_history(from_file)
        if not history.is_of(target):
            name = render.clean(history.target)  # the file's text: no control characters to the terminal
            raise InputError(
                f"{from_file} holds the history of {name} ({history.wallet}), not of {target!r}",
                hint=f"pmbot copy analyze {name} --from {from_file}",
            )
        if days is not None:
            history = history.window(days)
        if not tape:
            history = dataclasses.replace(history, prices={})
    else:
        history = _fetch(a, target, days or 7, tape=tape, save=save)
    result = run_analysis(history, delay_ms=delay_ms, slippage=slip, rules=rules)
    record_analysis(a.store, history, result, now_ms=now_ms(a.clock))
    doc = result_document(history, result)
    if as_json:
        render.print_json(doc)
        return
    print_analysis(doc)


def _fetch(a: App, target: str, days: int, *, tape: bool, save: str | None) -> History:
    from pmbot.copy_history import fetch_history, write_history

    async def main() -> History:
        async with a.venue() as v:
            profile = await v.gamma.resolve_wallet(target)
            now = await v.clob.server_time()  # the venue's clock ends the window (a local clock may be off)
            wallet = profile.proxy_wallet
            return await fetch_history(v.data, v.gamma, target, wallet, days=days, now_ms=now * 1000, tape=tape)

    with render.stderr().status(f"fetching {days} days of history…"):  # shown on a terminal only
        history = base.run(main())
    if save is not None:
        write_history(history, save)
    return history


def print_analysis(doc: dict[str, Any]) -> None:
    """Names come from the operator or the venue: plain text, never markup."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    out = render.stdout()

    def dec(key: str) -> Decimal | None:
        v = doc.get(key)
        return None if v is None else Decimal(str(v))

    head = Text("Copy analysis of ", style="bold")
    head.append_text(render.plain(doc["target"], style="bold"))
    if doc["wallet"] != str(doc["target"]).lower():
        head.append("  ")
        head.append_text(render.plain(doc["wallet"], style="cyan"))
    out.print(head)
    span = f"{render.when(doc['start_ms'])} → {render.when(doc['end_ms'])}" if doc.get("end_ms") else "whole file"
    out.print(
        f"[dim]{span} · {doc['trades']} fills in {doc['markets']} markets ({doc['resolved_markets']} resolved) · "
        f"delay {doc['delay_ms']} ms · slippage {doc['slippage']} · prices: {doc['price_model']}[/dim]"
    )
    table = Table(box=box.SIMPLE, pad_edge=False, show_header=False)
    table.add_column("", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    table.add_column("", style="dim")
    table.add_row("target PnL", render.pnl(dec("target_pnl")), f"on {render.usdc(dec('target_volume'))} USDC traded")
    table.add_row(
        "copy PnL",
        render.pnl(dec("copy_pnl")),
        f"{doc['copied']} of {doc['trades']} fills copied, {render.usdc(dec('copy_volume'))} USDC traded",
    )
    table.add_row("ideal copy PnL", render.pnl(dec("ideal_pnl")), "same sizing, no delay, no slippage")
    table.add_row("share kept", render.percent(dec("share_kept")), "copy / ideal copy")
    maker_note = "maker fills cannot be copied (a copy arrives later, as a taker)"
    unknown = dec("maker_unknown_share")
    if unknown:
        maker_note += f"; {render.percent(unknown)} of the volume unknown"
    table.add_row("maker share", render.percent(dec("maker_share")), maker_note)
    skipped = doc.get("skipped") or {}
    if skipped:
        table.add_row("skipped", str(sum(skipped.values())), ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    if doc.get("unresolved_markets"):
        table.add_row("unresolved", str(doc["unresolved_markets"]), "markets still held, valued at their last price")
    out.print(table)
    style = {"copyable": "bold green", "marginal": "bold yellow", "toxic": "bold red"}[doc["verdict"]]
    line = Text("verdict: ")
    line.append(doc["verdict"], style=style)
    out.print(line)
    out.print(render.plain(f"rule: {doc['rule']}", style="dim"))
    for note in doc.get("notes") or []:
        render.warn(note)


def register(app: typer.Typer) -> None:
    """Adds `analyze` to the `copy` group."""
    app.command("analyze")(analyze)
