"""A book the venue contradicts (a message's best bid/ask is not the local book's: an update was missed) is
never handed to a strategy: the Translator blinds it (an empty BookChanged, its changes ignored) until the
next snapshot, and the feed asks the venue for one (BookResync → MarketStream.resync: an unsubscribe and a
subscribe on the wire, whose dump is the snapshot). Over real sockets against `pmbot sim`: a corrupted
local book is found out on the next requote, blinded, and replaced by a fresh snapshot equal to REST."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal as D
from typing import Any

from pmbot.polymarket.models import BookLevel, BookSnapshot, LevelChange, OrderBook, PriceChange, StreamState
from pmbot.polymarket.streams import Backoff, MarketStream
from pmbot.runner.feed import BookResync, Translator
from pmbot.runner.live import LiveFeed, Targets
from pmbot.sim.testing import SimServer
from pmbot.store.models import Side
from pmbot.strategies.events import BookChanged
from tests.test_streams_sim import advance, rest_levels, until

CID = "0xcid"


def _contradicted() -> tuple[Translator, BookChanged]:
    t = Translator({"1001": CID})
    snap = OrderBook("1001", CID, (BookLevel(D("0.94"), D(10)),), (BookLevel(D("0.95"), D(10)),), 1)
    t.translate(BookSnapshot(snap), 1)
    # the venue says the best ask is 0.80 (an update was missed): the local book still shows 0.95
    off = PriceChange(CID, (LevelChange("1001", Side.BUY, D("0.70"), D(5), D("0.79"), D("0.80")),), 2)
    (changed,) = t.translate(off, 2)
    assert isinstance(changed, BookChanged)
    return t, changed


def test_a_book_the_venue_contradicts_is_not_acted_on() -> None:
    t, changed = _contradicted()
    assert changed.asks == () and changed.bids == () and t.order_book("1001") is None
    assert t.resync == {"1001"}
    # blind until a snapshot: a later change is ignored (it would be applied to a wrong book)
    later = PriceChange(CID, (LevelChange("1001", Side.SELL, D("0.95"), D(0), D("0.79"), D("0.80")),), 3)
    assert t.translate(later, 3) == [] and t.order_book("1001") is None
    assert t.take_resync() == ["1001"] and t.resync == set()
    fresh = OrderBook("1001", CID, (BookLevel(D("0.79"), D(4)),), (BookLevel(D("0.80"), D(6)),), 4)
    (back,) = t.translate(BookSnapshot(fresh), 4)
    assert isinstance(back, BookChanged) and back.asks == (BookLevel(D("0.80"), D(6)),)
    assert t.take_resync() == []  # synced again: nothing left to ask for


def test_a_book_that_agrees_is_emitted_as_before() -> None:
    t = Translator({"1001": CID})
    snap = OrderBook("1001", CID, (BookLevel(D("0.94"), D(10)),), (BookLevel(D("0.95"), D(10)),), 1)
    t.translate(BookSnapshot(snap), 1)
    ok = PriceChange(CID, (LevelChange("1001", Side.BUY, D("0.94"), D(12), D("0.94"), D("0.95")),), 2)
    (changed,) = t.translate(ok, 2)
    assert isinstance(changed, BookChanged) and changed.bids == (BookLevel(D("0.94"), D(12)),)
    assert t.resync == set()


class _Stream:
    """Records what BookResync asks of a market stream (its scheduling alone; the wire is tested below)."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def resync(self, tokens: list[str]) -> None:
        self.asked.append(tokens)


async def test_resync_asks_once_then_again_only_while_the_book_stays_blind() -> None:
    now = [100.0]
    t, _ = _contradicted()
    resync, stream = BookResync(t, every_s=5.0, clock=lambda: now[0]), _Stream()
    resync.check(stream)
    resync.check(stream)  # the next message: asked already, not again yet
    await asyncio.sleep(0)
    assert stream.asked == [["1001"]] and resync.requests == 1
    now[0] += 5.0  # the snapshot did not come: asked again
    resync.check(stream)
    await asyncio.sleep(0)
    assert stream.asked == [["1001"], ["1001"]]
    fresh = OrderBook("1001", CID, (BookLevel(D("0.79"), D(4)),), (BookLevel(D("0.80"), D(6)),), 4)
    t.translate(BookSnapshot(fresh), 4)
    now[0] += 60.0
    resync.check(stream)  # synced: forgotten
    await asyncio.sleep(0)
    assert len(stream.asked) == 2 and not resync._asked


class _Runner:
    def __init__(self) -> None:
        self.events: list[Any] = []

    async def deliver(self, event: Any) -> None:
        self.events.append(event)


class _NoPaper:
    paper = None


def feed_with(translator: Translator, stream: Any) -> tuple[LiveFeed, _Runner]:
    """A LiveFeed reading `stream` (a MarketStream or a run-all hub consumer) into `translator`."""
    runner = _Runner()
    none: Any = None
    feed = LiveFeed(none, runner, translator, _NoPaper(), Targets())  # type: ignore[arg-type]
    feed.market_stream = stream
    return feed, runner


def own_stream(sim: SimServer, tokens: list[str], *, stale_after: float | None = None) -> MarketStream:
    """The feed's own market stream against the sim (no books of its own: the Translator's are the feed's)."""
    url = sim.env()["PMBOT_CLOB_WS_URL"]
    stream = MarketStream(
        url, tokens, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1), stale_after=stale_after
    )
    stream.keep_books = False
    return stream


async def test_a_corrupted_book_is_blinded_and_replaced_by_a_fresh_snapshot_over_the_wire(sim: SimServer) -> None:
    m = sim.current_market()
    tokens = list(m["token_ids"])
    translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    stream = own_stream(sim, tokens)
    feed, runner = feed_with(translator, stream)
    loop = asyncio.create_task(feed._market_loop())
    try:
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))
        token = tokens[0]
        book = translator.books[token]
        # a missed update: our book shows an ask the venue does not have, inside the spread and off the tick
        # (no requote of the venue's can touch it)
        best = book.best_ask
        assert best is not None
        phantom = best - D("0.005")
        book.apply_change(LevelChange(token, Side.SELL, phantom, D(100), None, None), 0)
        assert book.best_ask == phantom
        runner.events.clear()
        async with asyncio.timeout(10):
            while not any(isinstance(e, BookChanged) and e.token_id == token and not e.asks for e in runner.events):
                await advance(sim, 1)  # the next requote's best ask contradicts ours
                await asyncio.sleep(0.05)
        blind_at = next(
            i for i, e in enumerate(runner.events) if isinstance(e, BookChanged) and e.token_id == token and not e.asks
        )
        shown = [e for e in runner.events[:blind_at] if isinstance(e, BookChanged) and e.token_id == token]
        # never shown as the best ask (deeper in the book the venue's best prices cannot tell it from a real
        # level: a better ask of the venue's may have hidden it before a message contradicted us)
        assert all(not e.asks or e.asks[0].price != phantom for e in shown)
        # nothing after the blind event showed the wrong book; the fresh snapshot came without a reconnect
        await until(lambda: translator.order_book(token) is not None)
        await advance(sim, 0)  # the sim is frozen: REST /book is the state the snapshot showed
        fresh = translator.order_book(token)
        assert fresh is not None
        bids, asks = rest_levels(sim, token)
        assert (fresh.bids, fresh.asks) == (bids, asks)
        after = [e for e in runner.events[blind_at + 1 :] if isinstance(e, BookChanged) and e.token_id == token]
        assert after and after[0].asks == asks  # the first book shown again is the venue's own
        assert stream.counters.connects == 1 and feed.status.get("market") == StreamState.CONNECTED.value
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)


async def test_a_run_all_hub_consumer_asks_its_shard_for_the_snapshots(sim: SimServer) -> None:
    """run-all: the feed's stream is a hub consumer; its resync goes to the shared connection of the token,
    whose fresh snapshot reaches the consumer (and replaces the hub's book) without a reconnect."""
    from pmbot.runner.hub import MarketHub

    m = sim.current_market()
    tokens = list(m["token_ids"])
    url = sim.env()["PMBOT_CLOB_WS_URL"]

    def make(ts: list[str]) -> MarketStream:
        return MarketStream(url, ts, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1), stale_after=None)

    hub = MarketHub(make)
    consumer = hub.consumer(tokens)
    seen: list[Any] = []

    async def read() -> None:
        async for item in consumer:
            seen.append(item)

    async with consumer:
        reader = asyncio.create_task(read())
        try:
            await until(lambda: {e.book.token_id for e in seen if isinstance(e, BookSnapshot)} == set(tokens))
            n = len(seen)
            await consumer.resync([tokens[1], "not-followed"])
            await until(lambda: any(isinstance(e, BookSnapshot) and e.book.token_id == tokens[1] for e in seen[n:]))
            assert not any(isinstance(e, BookSnapshot) and e.book.token_id == tokens[0] for e in seen[n:])
            assert hub.books[tokens[1]].synced and hub.shards[0].stream.counters.connects == 1
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            await hub.close()
