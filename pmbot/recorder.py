"""`pmbot record`: write live venue streams to a scenario file that `pmbot sim serve --scenario` replays.

The file keeps what the venue sent, untouched (the Gamma market objects in the header, then every
market-channel and RTDS frame with its arrival time), so a replay exercises the same parsers a live
run does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pmbot.errors import InputError, NotFoundError
from pmbot.polymarket.factory import Venue
from pmbot.polymarket.models import StreamState, StreamStatus
from pmbot.polymarket.schemas import rest

_SERIES_SCAN = 200  # open markets, soonest-ending first, searched for the series
CONNECT_GRACE_S = 30.0  # a market channel not connected after this long is not coming: stop and say so
LOST_AFTER_S = 10.0  # down this long when the run ends: the venue was lost, not reconnecting in a blink


@dataclass
class RecordSummary:
    path: Path
    markets: list[str]  # slugs
    tokens: int
    messages: Counter[str] = field(default_factory=Counter)
    reconnects: int = 0
    seconds: float = 0.0
    market_connects: int = 0  # times the market channel connected
    down_at_end_s: float = 0.0  # how long the market channel had been down when the run ended (0: it was up)
    last_error: str = ""  # why the market channel last failed
    gave_up: bool = False  # stopped early: the market channel never connected within CONNECT_GRACE_S

    @property
    def reached_venue(self) -> bool:
        """Anything at all recorded from the market channel: the scenario is worth keeping."""
        return self.messages["market"] > 0

    @property
    def lost_venue(self) -> bool:
        """The market channel went down and had not come back, long after, when the run ended."""
        return self.down_at_end_s >= LOST_AFTER_S


def check_output(out: Path, force: bool) -> None:
    """Refuse before touching anything: bad input writes nothing."""
    if out.exists() and not force:
        raise InputError(f"{out} already exists", hint="pass --force to overwrite it, or choose another --out")
    if not out.parent.is_dir():
        raise InputError(f"directory {out.parent} does not exist")


async def pick_markets(
    venue: Venue, *, token_ids: list[str], series: str | None, count: int, now_ms: int
) -> list[dict[str, Any]]:
    """The raw Gamma objects of the markets to record: those holding `token_ids`, or the next
    `count` open markets of `series` (the one running now first)."""
    if token_ids:
        raw = await venue.gamma.markets_raw(token_ids=token_ids, closed=None, active=None, order=None)
        found = {t for m in raw for t in rest.gamma_market(m).token_ids}
        missing = [t for t in token_ids if t not in found]
        if missing:
            raise NotFoundError(f"no market has token id {missing[0]}")
        return raw
    assert series is not None
    raw = await venue.gamma.markets_raw(end_min_ms=now_ms, order="endDate", ascending=True, limit=_SERIES_SCAN)
    picked = [m for m in raw if rest.gamma_market(m).series_slug == series][:count]
    if not picked:
        raise NotFoundError(f"no open market of series {series!r}", hint="`pmbot markets` shows what is open")
    return picked


async def record(
    venue: Venue,
    markets: list[dict[str, Any]],
    out: Path,
    *,
    duration_s: float | None,
    rtds: bool,
    stop: asyncio.Event,
    token_ids: list[str] | None = None,
    grace_s: float | None = None,
) -> RecordSummary:
    from pmbot.polymarket.streams import RtdsSubscription
    from pmbot.sim.scenario_file import ScenarioWriter

    parsed = [rest.gamma_market(m) for m in markets]
    tokens = token_ids or [t for m in parsed for t in m.token_ids]
    clock = venue.clock
    summary = RecordSummary(path=out, markets=[m.slug for m in parsed], tokens=len(tokens))
    started = clock()

    with ScenarioWriter(out) as writer:
        writer.header(markets, created_ms=int(started * 1000))

        def sink(source: str) -> Any:
            def write(obj: Any) -> None:
                writer.write(int(clock() * 1000), source, obj)
                summary.messages[source] += 1

            return write

        streams: list[Any] = [venue.market_stream(tokens)]
        if rtds:
            subs = [RtdsSubscription.activity(market_slug=m.slug) for m in parsed if m.slug]
            subs += [RtdsSubscription.crypto_prices("btcusdt"), RtdsSubscription.chainlink("btc/usd")]
            streams.append(venue.rtds_stream(subs))
        streams[0].on_raw = sink("market")
        if rtds:
            streams[1].on_raw = sink("rtds")

        market_up = asyncio.Event()
        down_since: list[float | None] = [None]  # when the market channel last went down (clock seconds)

        async def drain(stream: Any, is_market: bool) -> None:
            async for event in stream:
                if isinstance(event, StreamStatus):
                    if event.state is StreamState.RECONNECTING:
                        summary.reconnects += 1
                    if is_market:
                        if event.state is StreamState.CONNECTED:
                            summary.market_connects += 1
                            market_up.set()
                            down_since[0] = None
                        elif event.state is StreamState.RECONNECTING:
                            summary.last_error = event.detail
                            if down_since[0] is None:
                                down_since[0] = clock()
                if summary.messages.total() and summary.messages.total() % 200 == 0:
                    writer.flush()

        async def give_up_unless_connected() -> None:
            try:
                await asyncio.wait_for(market_up.wait(), CONNECT_GRACE_S if grace_s is None else grace_s)
            except TimeoutError:
                summary.gave_up = True
                stop.set()

        tasks = [asyncio.create_task(drain(s, i == 0)) for i, s in enumerate(streams)]
        tasks.append(asyncio.create_task(give_up_unless_connected()))
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
        finally:
            for s in streams:
                await s.close()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.flush()
    if down_since[0] is not None:
        summary.down_at_end_s = clock() - down_since[0]
    summary.seconds = clock() - started
    return summary
