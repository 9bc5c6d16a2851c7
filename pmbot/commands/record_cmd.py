"""`pmbot record`: live streams → a scenario file for `pmbot sim serve --scenario FILE`."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.timeutil import now_ms, parse_duration


def record(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", "-o", metavar="FILE", help="The JSONL scenario file to write.")],
    token_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--token-id",
            "-t",
            metavar="TOKEN_ID",
            callback=base.token_id,
            help="Record this token's market (repeatable).",
        ),
    ] = None,
    series: Annotated[
        str | None,
        typer.Option(
            "--series",
            metavar="SLUG",
            callback=base.not_blank,
            help="Record the next open markets of a series, e.g. btc-up-or-down-15m.",
        ),
    ] = None,
    markets: Annotated[
        int, typer.Option("--markets", metavar="N", min=1, max=20, help="With --series: how many markets.")
    ] = 2,
    duration: Annotated[
        str | None,
        typer.Option(
            "--duration",
            "-d",
            metavar="DURATION",
            callback=base.positive_duration,
            help="Stop after this long (30s, 15m); default: until Ctrl-C.",
        ),
    ] = None,
    rtds: Annotated[bool, typer.Option("--rtds/--no-rtds", help="Also record RTDS trades and BTC prices.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Record the market channel (and RTDS) of some markets into a replayable scenario file."""
    from pmbot.lookup import check_token_id
    from pmbot.recorder import check_output, pick_markets
    from pmbot.recorder import record as run_record

    app: App = ctx.obj
    if bool(token_ids) == bool(series):
        raise InputError("give either --token-id (one or more) or --series")
    tokens = [check_token_id(t) for t in token_ids or []]
    seconds = parse_duration(duration).total_seconds() if duration else None
    check_output(out, force)
    err = render.stderr()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        async with app.venue() as venue:
            chosen = await pick_markets(venue, token_ids=tokens, series=series, count=markets, now_ms=now_ms(app.clock))
            slugs = ", ".join(str(m.get("slug")) for m in chosen)
            err.print(f"recording {slugs} → {out}" + (f" for {duration}" if duration else " (Ctrl-C to stop)"))
            summary = await run_record(
                venue, chosen, out, duration_s=seconds, rtds=rtds, stop=stop, token_ids=tokens or None
            )
        counts = ", ".join(f"{n} {src}" for src, n in sorted(summary.messages.items())) or "no messages"
        render.stdout().print(
            f"wrote {out}: {len(summary.markets)} market(s), {counts} in {summary.seconds:.1f}s"
            + (f", {summary.reconnects} reconnect(s)" if summary.reconnects else "")
        )

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("record")(record)
