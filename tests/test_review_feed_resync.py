"""Adversarial review of the feed's resync (c7a7826): books blinded while the market channel stays up must
be asked for again, never left blind; a resync must never leave a token subscribed that the feed dropped.
Over real sockets against `pmbot sim` where the wire matters."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from pmbot.polymarket.streams import Backoff, MarketStream
from pmbot.runner.feed import Translator
from pmbot.runner.live import LiveFeed, Targets
from pmbot.sim.testing import SimServer
from pmbot.strategies.events import BookChanged
from tests.test_streams_sim import rest_levels, until


class _Runner:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def deliver(self, event: Any) -> None:
        self.events.append(event)


class _NoPaper:
    paper = None


async def test_books_blinded_by_a_silent_feed_come_back_when_data_resumes(sim: SimServer) -> None:
    """A quiet market channel goes STALE: the feed blinds every book (changes ignored until a snapshot).
    When data resumes on the SAME connection no re-subscribe dumps the books, so the feed must ask for
    them (as for a contradicted book); else they stay blind, every entry missed, until the venue happens
    to send a `book` (after a trade)."""
    m = sim.current_market()
    tokens = list(m["token_ids"])
    translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    runner = _Runner()
    none: Any = None
    feed = LiveFeed(none, runner, translator, _NoPaper(), Targets())  # type: ignore[arg-type]
    stream = MarketStream(
        sim.env()["PMBOT_CLOB_WS_URL"], tokens, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1),
        stale_after=1.0,
    )  # fmt: skip
    stream.keep_books = False
    feed.market_stream = stream
    loop = asyncio.create_task(feed._market_loop())
    try:
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))

        # the sim is frozen: silence → STALE → every book blind (its changes ignored until a snapshot)
        def blinded() -> set[str]:
            return {e.token_id for e in runner.events if isinstance(e, BookChanged) and not e.asks and not e.bids}

        await until(lambda: blinded() == set(tokens))
        assert stream.counters.stale >= 1
        # the connection is up: the books must come back from a snapshot the feed asks for, not wait for the
        # venue to send one after a trade (none can happen: the sim is frozen)
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))
        for t in tokens:
            book = translator.order_book(t)
            assert book is not None and (book.bids, book.asks) == rest_levels(sim, t)
        assert stream.counters.connects == 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


def _sim_assets(sim: SimServer) -> list[set[str]]:
    """What each market-channel connection of the sim is subscribed to."""
    return sim.call(lambda v: [set(c.assets) for c in v.hub.market])


async def test_a_resync_racing_an_unsubscribe_never_leaves_the_token_subscribed(sim: SimServer) -> None:
    """Disarm (unsubscribe) while a resync of the same token is in flight, in either order on the loop: the
    venue ends with the token unsubscribed (the resync's subscribe is never the last word)."""
    m = sim.current_market()
    a, b = m["token_ids"]
    stream = MarketStream(
        sim.env()["PMBOT_CLOB_WS_URL"], [a, b], backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1),
        stale_after=None,
    )  # fmt: skip
    async with stream:
        await until(lambda: a in stream.books and b in stream.books and stream.books[a].synced)
        await asyncio.gather(stream.resync([a]), stream.unsubscribe([a]))
        await until(lambda: _sim_assets(sim) == [{b}])
        await stream.subscribe([a])
        await until(lambda: a in stream.books and stream.books[a].synced)
        await asyncio.gather(stream.unsubscribe([a]), stream.resync([a]))
        await until(lambda: _sim_assets(sim) == [{b}])
        await asyncio.sleep(0.2)  # nothing later re-subscribes it
        assert _sim_assets(sim) == [{b}] and a not in stream.books and stream.token_ids == (b,)


async def test_a_hub_resync_racing_the_last_consumers_close_leaves_nothing_subscribed(sim: SimServer) -> None:
    """run-all: a consumer asks a resync of a token and the last consumer of it goes at once: the shared
    connection ends unsubscribed from it; another consumer's resync of its own token still works."""
    from pmbot.runner.hub import MarketHub

    m = sim.current_market()
    a, b = m["token_ids"]
    url = sim.env()["PMBOT_CLOB_WS_URL"]
    hub = MarketHub(
        lambda ts: MarketStream(url, ts, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1), stale_after=None)
    )
    x, y = hub.consumer([a]), hub.consumer([a, b])
    try:
        await x._start()
        await y._start()
        await until(lambda: a in hub.books and b in hub.books and hub.books[a].synced and hub.books[b].synced)
        await asyncio.gather(x.resync([a]), x.close(), y.resync([a]), y.unsubscribe([a]))
        await until(lambda: _sim_assets(sim) == [{b}])
        await y.resync([b])
        await until(lambda: hub.books[b].synced)
        await asyncio.sleep(0.2)
        assert _sim_assets(sim) == [{b}] and hub.token_ids == (b,)
    finally:
        await hub.close()


async def test_a_run_all_feed_gets_its_books_back_after_its_shard_went_stale(sim: SimServer) -> None:
    """The same over a run-all hub: the shard's STALE reaches the feed through its consumer, which asks the
    shared connection for the snapshots (no reconnect)."""
    from pmbot.runner.hub import MarketHub

    m = sim.current_market()
    tokens = list(m["token_ids"])
    url = sim.env()["PMBOT_CLOB_WS_URL"]
    streams: list[MarketStream] = []

    def make(ts: list[str]) -> MarketStream:
        s = MarketStream(url, ts, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1), stale_after=1.0)
        streams.append(s)
        return s

    hub = MarketHub(make)
    translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    runner = _Runner()
    none: Any = None
    feed = LiveFeed(none, runner, translator, _NoPaper(), Targets())  # type: ignore[arg-type]
    feed.market_stream = hub.consumer(tokens)  # type: ignore[assignment]
    loop = asyncio.create_task(feed._market_loop())
    try:
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))
        await until(lambda: any(isinstance(e, BookChanged) and not e.asks and not e.bids for e in runner.events))
        assert streams[0].counters.stale >= 1
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))
        for t in tokens:
            book = translator.order_book(t)
            assert book is not None and (book.bids, book.asks) == rest_levels(sim, t)
        assert streams[0].counters.connects == 1 and len(streams) == 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await hub.close()
