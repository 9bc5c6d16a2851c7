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
from pmbot.errors import InputError, VenueError
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
    from pmbot.config import mask_url
    from pmbot.lookup import check_token_id
    from pmbot.recorder import CONNECT_GRACE_S, check_output, pick_markets
    from pmbot.recorder import record as run_record

    app: App = ctx.obj
    if bool(token_ids) == bool(series):
        raise InputError("give either --token-id (one or more) or --series")
    tokens = [check_token_id(t) for t in token_ids or []]
    seconds = parse_duration(duration).total_seconds() if duration is not None else None
    if seconds is not None and seconds <= 0:
        raise InputError(f"--duration {duration}: must be longer than 0s", hint="leave it out to record until Ctrl-C")
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
            err.print(
                f"recording {slugs} → {out}" + (f" for {duration}" if duration else " (Ctrl-C to stop)"),
                markup=False,
                soft_wrap=True,
            )
            summary = await run_record(
                venue, chosen, out, duration_s=seconds, rtds=rtds, stop=stop, token_ids=tokens or None
            )
        if not summary.reached_venue:
            # A scenario with no market data replays nothing: do not leave one behind to be mistaken for a recording.
            out.unlink(missing_ok=True)
            why = summary.last_error or ("connected, but no message came" if summary.market_connects else "no answer")
            when = f"within {CONNECT_GRACE_S:.0f}s" if summary.gave_up else f"in {summary.seconds:.0f}s"
            raise VenueError(
                f"never reached the market channel at {mask_url(app.settings.clob_ws_url)} {when} ({why});"
                " nothing recorded",
                hint=f"{out} was not written; check PMBOT_CLOB_WS_URL and the network",
            )
        counts = ", ".join(f"{n} {src}" for src, n in sorted(summary.messages.items())) or "no messages"
        render.stdout().print(
            f"wrote {out}: {len(summary.markets)} market(s), {counts} in {summary.seconds:.1f}s"
            + (f", {summary.reconnects} reconnect(s)" if summary.reconnects else ""),
            markup=False,  # a path like `[/x].jsonl` is a file name, not markup
        )
        if summary.lost_venue:
            # The file holds what came before the loss and is kept; the run still failed.
            raise VenueError(
                f"lost the market channel {summary.down_at_end_s:.0f}s before the end and never got it back"
                f" ({summary.last_error}); {out} holds what came before",
                hint="check the network and PMBOT_CLOB_WS_URL, then record again",
            )

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    app.command("record")(record)
