"""`pmbot markets`, `pmbot book`, `pmbot whois`: what an operator looks at before and while trading."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer
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
    rows = _run(ctx, lambda v: scan_markets(v, now_ms=now, closing_within_ms=within, search=search, limit=limit))
    if as_json:
        render.print_json(rows)
        return
    if not rows:
        render.stdout().print("No open markets match.", style="dim")
        return
    table = Table(title=f"{len(rows)} market(s), soonest first", title_justify="left")
    for col in ("Ends (UTC)", "Left", "Question", "Outcome", "Bid", "Ask", "Token id"):
        table.add_column(col, justify="right" if col in ("Left", "Bid", "Ask") else "left", no_wrap=col != "Question")
    for r in rows:
        for i, t in enumerate(r["tokens"]):
            first = i == 0
            table.add_row(
                ms_to_iso(r["end_ms"])[5:16].replace("T", " ") if first and r["end_ms"] else "",
                _left(r["seconds_left"]) if first else "",
                f"{r['question']}\n[dim]{r['slug']}[/dim]" if first else "",
                t["outcome"],
                _price(t["best_bid"]),
                _price(t["best_ask"]),
                t["token_id"],
                end_section=i == len(r["tokens"]) - 1,
            )
    render.stdout().print(table)


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
    out.print(
        f"[bold]{render.short(view['token_id'], 24)}[/bold]  bid [green]{_price(view['best_bid'])}[/green]"
        f"  ask [red]{_price(view['best_ask'])}[/red]  spread {_price(view['spread'])}"
        f"  mid {_price(view['midpoint'])}  tick {_price(view['tick_size'])}"
    )
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
    out = render.stdout()
    out.print(f"[bold]{view['name'] or '(no name)'}[/bold]  proxy wallet [cyan]{view['proxy_wallet']}[/cyan]")
    if not view["activity"]:
        out.print("No recent activity.", style="dim")
        return
    table = Table(show_edge=False)
    for col in ("Time (UTC)", "Type", "Side", "Outcome", "Size", "Price", "USDC", "Market"):
        table.add_column(col, justify="right" if col in ("Size", "Price", "USDC") else "left")
    for a in view["activity"]:
        table.add_row(
            ms_to_iso(a["timestamp_ms"])[:19].replace("T", " "),
            a["type"],
            a["side"] or "",
            a["outcome"] or "",
            fmt(a["size"]),
            _price(a["price"]) if a["type"] == "TRADE" else "",
            fmt(a["usdc_size"], 2),
            a["title"] or "",
        )
    out.print(table)


def register(app: typer.Typer) -> None:
    app.command("markets")(markets)
    app.command("book")(book)
    app.command("whois")(whois)
