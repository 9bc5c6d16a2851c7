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
        await until(lambda: stream.counters.stale >= 1)
        blinded = [e for e in runner.events if isinstance(e, BookChanged) and not e.asks and not e.bids]
        assert {e.token_id for e in blinded} == set(tokens)
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
