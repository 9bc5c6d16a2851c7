"""`pmbot markets`, `pmbot book`, `pmbot whois`: what an operator looks at before and while trading."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.money import fmt
from pmbot.timeutil import ms_to_iso, now_ms, parse_duration

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
T = TypeVar("T")


def _run(ctx: typer.Context, job: Callable[[Any], Awaitable[T]]) -> T:
    """Run one async lookup against a venue built for this event loop, and close it."""
    app: App = ctx.obj

    async def main() -> T:
        async with app.venue() as venue:
            return await job(venue)

    return base.run(main())


def _left(seconds: int | None) -> Text:
    if seconds is None:
        return Text("–", style="dim")
    m, s = divmod(seconds, 60)
    h, m = divmod(m, 60)
    text = f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"
    return Text(text, style="bold red" if seconds <= 60 else "yellow" if seconds <= 900 else "")


_price = render.price


def markets(
    ctx: typer.Context,
    closing_within: Annotated[
        str | None,
        typer.Option(
            "--closing-within",
            "-w",
            metavar="DURATION",
            callback=base.positive_duration,
            help="Only markets ending within this: 90s, 15m, 2h.",
        ),
    ] = None,
    search: Annotated[
        str | None, typer.Option("--search", "-q", metavar="TEXT", help="Text in the question or slug.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1, max=500, help="At most this many markets.")
    ] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Open markets, soonest to end first, with time left, token ids and live best prices."""
    from pmbot.lookup import scan_markets

    app: App = ctx.obj
    within = int(parse_duration(closing_within).total_seconds() * 1000) if closing_within else None
    now = now_ms(app.clock)
    warnings: list[str] = []
    rows = _run(
        ctx,
        lambda v: scan_markets(v, now_ms=now, closing_within_ms=within, search=search, limit=limit, warnings=warnings),
    )
    err = render.stderr()
    for w in warnings:  # on stderr, so that --json stays parseable and the warning is still seen
        err.print(Text(f"warning: {w}", style="yellow"), soft_wrap=True)
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.stdout().print("No open markets match.", style="dim")
        return
    print_markets(render.stdout(), rows)


_SOURCE_STYLE = {"book": "green", "gamma": "yellow"}


def print_markets(out: Console, rows: list[dict[str, Any]]) -> None:
    """The markets table, readable from 80 columns up: only the question wraps, prices stay whole and
    each one says where it came from; token ids follow the table in full (never cut), one per line."""
    table = Table(title=f"{len(rows)} market(s), soonest first", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("Ends (UTC)", no_wrap=True)
    table.add_column("Market", min_width=16, overflow="fold")
    table.add_column("Outcome", no_wrap=True, max_width=12, overflow="ellipsis")
    for col in ("Bid", "Ask"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("From", no_wrap=True)
    for n, r in enumerate(rows, 1):
        for i, t in enumerate(r["tokens"]):
            first = i == 0
            ends = Text()
            if first:
                if r["end_ms"]:
                    ends.append(ms_to_iso(r["end_ms"])[5:16].replace("T", " ") + "\n")
                ends.append_text(_left(r["seconds_left"]))
            market = Text()
            if first:
                market.append_text(render.plain(r["question"]))
                market.append("\n")
                market.append_text(render.plain(r["slug"], style="dim"))
            source = t.get("price_source")
            table.add_row(
                str(n) if first else "",
                ends,
                market,
                render.plain(t["outcome"]),
                _price(t["best_bid"]),
                _price(t["best_ask"]),
                Text(source or "–", style=_SOURCE_STYLE.get(source or "", "dim")),
                end_section=i == len(r["tokens"]) - 1,
            )
    out.print(table)
    out.print("Token ids (for `pmbot book` and `pmbot order`):", style="bold")
    width = out.width
    pad = min(12, max((len(render.clean(t["outcome"])) for r in rows for t in r["tokens"]), default=0))
    for n, r in enumerate(rows, 1):
        for t in r["tokens"]:
            label = render.plain(f"{n:>2} {render.clean(t['outcome']):<{pad}}")
            token = render.clean(t["token_id"])
            if label.cell_len + 2 + len(token) <= width:
                out.print(Text.assemble(label, "  ", (token, "cyan")), no_wrap=True, crop=False)
            else:  # its own line, whole, so it can be copied in one piece
                label.rstrip()
                out.print(label)
                out.print(Text(token, style="cyan"), no_wrap=True, crop=False)


def book(
    ctx: typer.Context,
    token_id: Annotated[
        str,
        typer.Argument(metavar="TOKEN_ID", callback=base.token_id, help="The outcome token id (from `pmbot markets`)."),
    ],
    depth: Annotated[int, typer.Option("--depth", "-d", metavar="N", min=1, max=500, help="Levels per side.")] = 10,
    as_json: JsonOpt = False,
) -> None:
    """The order book of one token: best bid, best ask, spread, depth; levels best first."""
    from pmbot.lookup import book_view, check_token_id

    check_token_id(token_id)  # bad input fails before any network call
    view = _run(ctx, lambda v: book_view(v, token_id, depth))
    if as_json:
        render.print_json(view)
        return
    out = render.stdout()
    head = render.plain(render.short(view["token_id"], 24), style="bold")
    head.append("  bid ").append(_price(view["best_bid"]), style="green")
    head.append("  ask ").append(_price(view["best_ask"]), style="red")
    head.append(f"  spread {_price(view['spread'])}  mid {_price(view['midpoint'])}  tick {_price(view['tick_size'])}")
    out.print(head)
    table = Table(show_edge=False)
    table.add_column("Bid size", justify="right")
    table.add_column("Bid", justify="right", style="green")
    table.add_column("Ask", justify="right", style="red")
    table.add_column("Ask size", justify="right")
    bids, asks = view["bids"], view["asks"]
    for i in range(max(len(bids), len(asks))):
        b = bids[i] if i < len(bids) else None
        a = asks[i] if i < len(asks) else None
        table.add_row(
            fmt(b["size"]) if b else "",
            _price(b["price"]) if b else "",
            _price(a["price"]) if a else "",
            fmt(a["size"]) if a else "",
        )
    out.print(table)
    out.print(f"[dim]depth: {fmt(view['bid_depth'])} bid / {fmt(view['ask_depth'])} ask shares[/dim]")


def whois(
    ctx: typer.Context,
    who: Annotated[
        str,
        typer.Argument(
            metavar="NAME|0xADDRESS",
            callback=base.not_blank,
            help="A profile name (e.g. distinct-baguette) or a 0x wallet address.",
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", "-n", metavar="N", min=1, max=500, help="Recent activity rows.")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """A trader's profile name, proxy wallet and recent activity."""
    from pmbot.lookup import whois as lookup

    view = _run(ctx, lambda v: lookup(v, who, limit))
    if as_json:
        render.print_json(view)
        return
    print_whois(render.stdout(), view)


def print_whois(out: Console, view: dict[str, Any]) -> None:
    """Names, titles and outcomes come from the venue: rendered as plain text, never as markup."""
    head = render.plain(view["name"] or "(no name)", style="bold")
    head.append("  proxy wallet ")
    head.append_text(render.plain(view["proxy_wallet"], style="cyan"))
    out.print(head)
    if not view["activity"]:
        out.print("No recent activity.", style="dim")
        return
    table = Table(show_edge=False)
    for col in ("Time (UTC)", "Type", "Side", "Outcome", "Size", "Price", "USDC", "Market"):
        table.add_column(col, justify="right" if col in ("Size", "Price", "USDC") else "left")
    for a in view["activity"]:
        table.add_row(
            ms_to_iso(a["timestamp_ms"])[:19].replace("T", " "),
            render.plain(a["type"]),
            render.plain(a["side"]),
            render.plain(a["outcome"]),
            fmt(a["size"]),
            _price(a["price"]) if a["type"] == "TRADE" else "",
            fmt(a["usdc_size"], 2),
            render.plain(a["title"]),
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("markets")(markets)
    app.command("book")(book)
    app.command("whois")(whois)
