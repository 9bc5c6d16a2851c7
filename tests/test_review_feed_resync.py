"""Adversarial review of the feed's resync (c7a7826): books blinded while the market channel stays up must
be asked for again, never left blind; a resync must never leave a token subscribed that the feed dropped.
Over real sockets against `pmbot sim` where the wire matters."""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any

import pytest

from pmbot.polymarket.models import StreamState, StreamStatus
from pmbot.polymarket.streams import Backoff, MarketStream
from pmbot.runner import live
from pmbot.runner.feed import BookResync, Translator
from pmbot.runner.live import LiveFeed
from pmbot.sim.testing import SimServer
from pmbot.strategies.events import BookChanged, TradePrinted
from tests.test_review_feed_mismatch import _Runner, feed_with, own_stream
from tests.test_streams_sim import advance, rest_levels, until


def _hub_feed(hub: Any, tokens: list[str], translator: Translator) -> tuple[LiveFeed, _Runner]:
    """A LiveFeed whose market stream is a run-all hub consumer of `tokens`."""
    return feed_with(translator, hub.consumer(tokens))


async def test_books_blinded_by_a_silent_feed_come_back_when_data_resumes(sim: SimServer) -> None:
    """A quiet market channel goes STALE: the feed blinds every book (changes ignored until a snapshot).
    When data resumes on the SAME connection no re-subscribe dumps the books, so the feed must ask for
    them (as for a contradicted book); else they stay blind, every entry missed, until the venue happens
    to send a `book` (after a trade)."""
    m = sim.current_market()
    tokens = list(m["token_ids"])
    translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    stream = own_stream(sim, tokens, stale_after=1.0)
    feed, runner = feed_with(translator, stream)
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
    feed, runner = _hub_feed(hub, tokens, translator)
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


async def test_a_run_all_feed_over_two_shards_gets_back_the_books_a_drop_of_the_other_blinded(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed whose tokens span two shards: one shard's connection drops, so the feed blinds every book (a
    status does not say whose). The dropped shard's re-subscribe dumps its own books; the other shard's
    connection never went away, so nothing would re-send its books: the feed must ask for them (after
    giving the reconnect's dump its chance), or they stay blind until a trade."""
    from pmbot.runner.hub import MarketHub

    m = sim.current_market()
    tokens = list(m["token_ids"])
    url = sim.env()["PMBOT_CLOB_WS_URL"]
    streams: list[MarketStream] = []

    def make(ts: list[str]) -> MarketStream:
        s = MarketStream(url, ts, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1), stale_after=None)
        streams.append(s)
        return s

    monkeypatch.setattr(live, "BookResync", functools.partial(BookResync, every_s=0.3))  # a short wait
    hub = MarketHub(make, per_connection=1)
    translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    feed, runner = _hub_feed(hub, tokens, translator)
    loop = asyncio.create_task(feed._market_loop())
    try:
        await until(lambda: all(translator.order_book(t) is not None for t in tokens))
        assert len(streams) == 2
        kept, dropped = streams
        await dropped.reconnect()
        await until(lambda: dropped.counters.connects == 2)
        await until(lambda: translator.order_book(dropped.token_ids[0]) is not None)
        # the kept shard's token: blind, until the feed asks (within BookResync.every_s, on a message)
        async with asyncio.timeout(15):
            while translator.order_book(kept.token_ids[0]) is None:
                await asyncio.sleep(0.4)
                await advance(sim, 1)  # requotes: messages on which the feed checks
        assert not any(isinstance(e, TradePrinted) for e in runner.events)  # not a venue's book after a trade
        assert kept.counters.connects == 1
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
        await hub.close()


class _Asked:
    """Records what BookResync asks of a stream."""

    def __init__(self) -> None:
        self.asked: list[list[str]] = []

    async def resync(self, tokens: list[str]) -> None:
        self.asked.append(sorted(tokens))


def sim_stream_factory(sim: SimServer) -> tuple[list[str], Callable[..., MarketStream]]:
    """The sim's current market's tokens, and a MarketStream factory on its market channel that reconnects
    at once (10-100 ms backoff): what a MarketHub over the sim is built from."""
    tokens = list(sim.current_market()["token_ids"])
    url = sim.env()["PMBOT_CLOB_WS_URL"]

    def make(ts: Any = ()) -> MarketStream:
        return MarketStream(url, ts, backoff=Backoff(base=0.01, cap=0.1), rng=random.Random(1))

    return tokens, make


def _status(state: StreamState) -> StreamStatus:
    return StreamStatus(stream="market", state=state, timestamp_ms=0)


def _two_synced_books() -> tuple[list[float], Translator, Callable[[str], Any], BookResync, _Asked]:
    """Tokens "1" and "2" of one market, both books synced; a BookResync (every_s 5) on a clock `now[0]`."""
    from pmbot.polymarket.models import BookLevel, BookSnapshot, OrderBook

    now = [100.0]
    t = Translator({"1": "0xc", "2": "0xc"})

    def snap(token: str) -> BookSnapshot:
        return BookSnapshot(OrderBook(token, "0xc", (BookLevel(D("0.4"), D(5)),), (BookLevel(D("0.6"), D(5)),), 1))

    for token in ("1", "2"):
        t.translate(snap(token), 1)
    return now, t, snap, BookResync(t, every_s=5.0, clock=lambda: now[0]), _Asked()


async def test_a_reconnect_whose_dump_comes_is_not_asked_again_and_one_that_misses_a_book_is() -> None:
    """The plain reconnect: RECONNECTING blinds the books, CONNECTED, the dump re-sends them: nothing is asked
    (no second dump). A book the dump did not bring (another shard's) is asked for once every_s passed."""
    now, t, snap, resync, stream = _two_synced_books()
    # a drop: blind, then the new connection's dump of both books
    t.blind(2)
    resync.status(_status(StreamState.RECONNECTING), stream)
    now[0] += 30.0  # a long backoff: the dump still gets its every_s from the new connection
    resync.status(_status(StreamState.CONNECTED), stream)
    for token in ("1", "2"):
        t.translate(snap(token), 3)
        resync.check(stream)
    now[0] += 60.0
    resync.check(stream)
    await asyncio.sleep(0)
    assert stream.asked == []
    # a drop whose dump brings only token 1 (token 2 lives on another shard's connection)
    t.blind(4)
    resync.status(_status(StreamState.RECONNECTING), stream)
    resync.status(_status(StreamState.CONNECTED), stream)
    t.translate(snap("1"), 5)
    resync.check(stream)
    await asyncio.sleep(0)
    assert stream.asked == []
    now[0] += 5.0
    resync.check(stream)  # the next message after every_s
    await asyncio.sleep(0)
    assert stream.asked == [["2"]]
    # STALE: asked at once, every blind book
    t.translate(snap("2"), 6)
    t.blind(7)
    resync.status(_status(StreamState.STALE), stream)
    await asyncio.sleep(0)
    assert stream.asked == [["2"], ["1", "2"]]


def test_the_sniper_never_enters_the_other_side_of_a_market_whose_favourite_is_blind() -> None:
    """One message moves both legs; only the favourite's (Up) disagrees with the venue, so Up is blinded and
    Down is shown as it is. The sniper must not take Down's ask for the market's favourite, and buys Up
    only once a fresh snapshot shows it."""
    from pmbot.polymarket.models import BookLevel, BookSnapshot, LevelChange, OrderBook, PriceChange
    from pmbot.store.models import Side
    from tests.strategy_kit import CID, DOWN, UP
    from tests.test_strategy_snipe import NOW, confirmed, sniper

    def snap(token: str, bid: str, ask: str) -> BookSnapshot:
        return BookSnapshot(OrderBook(token, CID, (BookLevel(D(bid), D(100)),), (BookLevel(D(ask), D(100)),), 1))

    t = Translator({UP: CID, DOWN: CID})
    d = sniper().feed(confirmed())
    d.feed(t.translate(snap(DOWN, "0.05", "0.07"), NOW - 1000))
    # the Up book we hold (ask 0.80: outside the band) is wrong: the venue's best ask is 0.95
    d.feed(t.translate(snap(UP, "0.79", "0.80"), NOW - 1000))
    change = PriceChange(
        CID,
        (
            LevelChange(UP, Side.BUY, D("0.70"), D(5), D("0.79"), D("0.95")),  # contradicts our 0.80
            LevelChange(DOWN, Side.SELL, D("0.30"), D(5), D("0.05"), D("0.07")),  # agrees
        ),
        NOW,
    )
    events = t.translate(change, NOW)
    assert [(e.token_id, bool(e.asks)) for e in events if isinstance(e, BookChanged)] == [(UP, False), (DOWN, True)]
    d.feed(events)
    assert d.intents == []  # Down (ask 0.07) is not the favourite; Up is unknown
    d.feed(t.translate(snap(UP, "0.94", "0.95"), NOW + 100))  # the snapshot the feed asked for
    assert [(i.token_id, i.side) for i in d.intents] == [(UP, Side.BUY)]


class _FailOnce:
    """A runner whose delivery fails once when armed (any failure in the copy feed's market loop body: a
    store error applying a market_resolved, a bug in a strategy's delivery)."""

    def __init__(self) -> None:
        self.armed = False
        self.events: list[Any] = []

    async def deliver(self, event: Any) -> None:
        if self.armed:
            self.armed = False
            raise RuntimeError("boom")
        self.events.append(event)

    async def sync_orders(self) -> None:
        return None


@pytest.mark.parametrize("shared", [False, True], ids=["own-stream", "run-all-hub"])
async def test_the_copy_feeds_market_channel_comes_back_after_its_loop_failed(sim: SimServer, shared: bool) -> None:
    """The copy feed's market loop failed once (its stream closes with it): the books must not stay frozen
    at the failure, still "synced" for the copy guard, while the guard retries a closed stream forever. The
    feed blinds them and follows the books again on a new stream."""
    import time as _time

    from pmbot.runner.copy_feed import CopyFeed
    from pmbot.runner.hub import MarketHub

    m = sim.current_market()
    tokens, make = sim_stream_factory(sim)
    hub = MarketHub(make)

    class _Venue:
        def market_stream(self, token_ids: Any = ()) -> Any:
            return hub.consumer(token_ids) if shared else make(token_ids)

    class _Executor:
        paper = None

    runner = _FailOnce()
    feed: Any = CopyFeed.__new__(CopyFeed)
    feed.venue, feed.clock, feed.executor, feed.runners = _Venue(), _time.time, _Executor(), {"w": runner}
    feed.translator = Translator(dict.fromkeys(tokens, m["condition_id"]))
    feed.market_state = "off"
    feed.market_stream = first = _Venue().market_stream(())  # as run() opens it: follow_market subscribes
    guard = asyncio.create_task(feed._market_guard())
    try:
        await feed.market_stream.subscribe(tokens)  # follow_market's subscribe (its translator has the tokens)
        await until(lambda: all(feed.translator.order_book(t) is not None for t in tokens))
        runner.armed = True
        await advance(sim, 1)  # a requote: the delivery fails, the loop ends, its stream closes
        await until(lambda: feed.market_state.startswith("error"))
        await until(
            lambda: (
                {e.token_id for e in runner.events if isinstance(e, BookChanged) and not e.asks and not e.bids}
                == set(tokens)
            )
        )
        # blinded at once (no guard passes on the frozen book), then followed again on a new stream
        await until(lambda: feed.market_stream.token_ids != () and feed.market_stream is not first, timeout=10)
        # followed again: the books track the venue (not the state they had when the loop failed)
        for _ in range(3):
            await advance(sim, 1)
        await advance(sim, 0)
        await until(
            lambda: all(
                (b := feed.translator.order_book(t)) is not None and (b.bids, b.asks) == rest_levels(sim, t)
                for t in tokens
            )
        )
        # and it says so: not the failure's "error: …" (on the hub, whose shard never dropped, no status comes)
        await until(lambda: feed.market_state == "connected")
    finally:
        guard.cancel()
        await asyncio.gather(guard, return_exceptions=True)
        if feed.market_stream is not None:
            await feed.market_stream.close()
        await hub.close()


async def test_a_channel_that_reconnects_faster_than_every_s_still_gets_a_missing_book_asked_for() -> None:
    """Each status postpones the ask (a new connection's dump gets its every_s), but a shard that flaps every
    2 s must not keep a book blind that its dumps never bring: it is asked for within 2 × every_s."""
    now, t, snap, resync, stream = _two_synced_books()
    seq = 2
    for _ in range(5):  # 10 s of a drop and a reconnect every 2 s; each dump brings token 1 only
        t.blind(seq)
        resync.status(_status(StreamState.RECONNECTING), stream)
        now[0] += 1.0
        resync.status(_status(StreamState.CONNECTED), stream)
        t.translate(snap("1"), seq + 1)
        resync.check(stream)
        now[0] += 1.0
        seq += 2
    resync.check(stream)
    await asyncio.sleep(0)
    assert stream.asked == [["2"]]  # by 2 × every_s after it went blind, not never
    # and then every 2 × every_s at the latest while the flapping goes on and the book stays blind
    for _ in range(5):
        resync.status(_status(StreamState.RECONNECTING), stream)
        now[0] += 1.0
        resync.status(_status(StreamState.CONNECTED), stream)
        resync.check(stream)
        now[0] += 1.0
    resync.check(stream)  # 2 × every_s after the last ask
    await asyncio.sleep(0)
    assert stream.asked == [["2"], ["2"]]


async def test_a_book_that_keeps_flapping_is_asked_for_with_a_backoff_not_every_second() -> None:
    """A book the venue contradicts again on the first change after each snapshot (found by the review of
    the once-per-snapshot warning): asked for at once every time, that was an unsubscribe and a subscribe a
    second per token for as long as it lasted (3 600 an hour). Now every_s × 2, × 4, … up to 60 s after the
    last ask; a book that then holds for flap_window_s is asked for at once again. Blind meanwhile."""
    from pmbot.polymarket.models import LevelChange, PriceChange
    from pmbot.store.models import Side

    now, t, snap, resync, stream = _two_synced_books()
    wrong = PriceChange("0xc", (LevelChange("1", Side.BUY, D("0.39"), D(5), D("0.41"), D("0.6")),), 2)
    pending = 0
    for s in range(3600):  # an hour, one change a second; each ask's snapshot comes a second later
        now[0] = 100.0 + s
        if len(stream.asked) > pending:
            pending = len(stream.asked)
            t.translate(snap("1"), s * 1000)
        t.translate(wrong, s * 1000 + 500)
        resync.check(stream)
        await asyncio.sleep(0)
        assert not t.books["1"].synced or s == 0
    assert 55 <= len(stream.asked) <= 70, len(stream.asked)  # about one a minute, not 3 600
    assert set(map(tuple, stream.asked)) == {("1",)}
    # held for longer than flap_window_s: the next contradiction is asked for at once
    t.translate(snap("1"), 4_000_000)
    now[0] += 31
    resync.check(stream)
    t.translate(wrong, 4_000_001)
    resync.check(stream)
    await asyncio.sleep(0)
    assert len(stream.asked) == pending + 1
