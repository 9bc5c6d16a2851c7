"""How market-channel events travel from the socket to the feeds, over real sockets (a scripted `websockets`
server on 127.0.0.1): the arrival stamp taken when a frame's bytes are read from the socket and carried with
every event (so queueing anywhere after the read is measured), the run-all hub delivering straight from the
stream's reader (consumers interleaved with a burst, order and books kept, a drop reaching every consumer,
bounded queues, the messages no feed reads skipped), and the reader's silence watch."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest

from pmbot.polymarket.models import BestBidAsk, BookSnapshot, StreamState, StreamStatus
from pmbot.polymarket.streams import MarketStream
from pmbot.polymarket.streams.base import YIELD_AFTER_S, websockets_connect
from pmbot.runner.hub import HubConsumer, MarketHub, _Shard
from tests.test_streams_transport import (
    NO_TOKEN,
    TOKEN,
    ScriptedServer,
    _server,
    book_msg,
    market,
    next_of,
    next_status,
)


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async for srv in _server():
        yield srv


def bba_msg(token: str) -> dict[str, Any]:
    return {"event_type": "best_bid_ask", "market": "0xm", "asset_id": token, "best_bid": "0.4", "best_ask": "0.6",
            "timestamp": "1790272267688"}  # fmt: skip


async def held_back(stream: MarketStream, send: Any) -> None:
    """Run `send()` while the client does not read its socket, so that everything sent reaches the client
    in one read once reading resumes (one `data_received`, as a burst the loop was too busy to read)."""
    conn = stream._conn
    assert conn is not None
    transport = conn.transport  # type: ignore[attr-defined]
    transport.pause_reading()
    await send()
    await asyncio.sleep(0.05)  # on the loopback: everything is in the client's socket buffer now
    transport.resume_reading()


async def connected(stream: Any, server: ScriptedServer) -> None:
    await server.next_json()
    await next_status(stream, StreamState.CONNECTED)


# ----------------------------------------------------------------------------------- arrival stamp


async def test_the_connection_stamps_each_message_once_in_order(server: ScriptedServer) -> None:
    conn = await websockets_connect(server.url)
    try:
        async with asyncio.timeout(5):
            while not server.conns:
                await asyncio.sleep(0.01)
        srv = server.conns[0]
        before = time.perf_counter()
        await srv.send("one")
        await srv.ping()  # control frames are not messages: no stamp
        await srv.send(b"two")
        await srv.send(["thr", "ee"])  # a fragmented message: one stamp, its first fragment's read
        await srv.send("four")
        got = []
        for _ in range(4):
            msg = await conn.recv()
            got.append((msg, conn.arrivals.popleft(), time.perf_counter()))  # type: ignore[attr-defined]
        assert [m for m, _, _ in got] == ["one", b"two", "three", "four"]
        assert not conn.arrivals  # type: ignore[attr-defined]  # one stamp per message, none left over
        stamps = [s for _, s, _ in got]
        assert stamps == sorted(stamps) and before <= stamps[0]
        assert all(s <= returned for _, s, returned in got)
    finally:
        await conn.close()


async def test_the_stamp_is_the_socket_read_so_the_readers_own_backlog_is_inside_it(server: ScriptedServer) -> None:
    """Three frames read from the socket at once; handling the first takes 30 ms. The other two carry the
    time they were read, before that: their wait behind the first is part of what a consumer measures."""
    handled: list[float] = []

    def slow(obj: Any) -> None:
        if not handled:
            time.sleep(0.03)
        handled.append(time.perf_counter())

    async with market(server, [TOKEN, NO_TOKEN]) as stream:
        await connected(stream, server)
        stream.on_raw = slow

        async def send() -> None:
            for i in range(3):
                await server.send(book_msg(TOKEN, [(f"0.{40 + i}", "1")], []))

        await held_back(stream, send)
        got = []
        for _ in range(3):
            snap = await next_of(stream, BookSnapshot)
            got.append((snap.book.best_bid, stream.current_arrival, time.perf_counter()))
    assert [b for b, _, _ in got] == [D("0.40"), D("0.41"), D("0.42")]
    arrivals = [a for _, a, _ in got]
    assert all(a is not None for a in arrivals)
    assert arrivals[1] is not None and arrivals[2] is not None and arrivals[0] is not None
    assert arrivals[1] < handled[0] and arrivals[2] < handled[0]  # stamped before the first was done
    assert arrivals[0] <= arrivals[1] <= arrivals[2]
    assert all(a is not None and a <= t for _, a, t in got)


async def test_a_status_the_stream_makes_itself_is_stamped_when_made(server: ScriptedServer) -> None:
    async with market(server, [TOKEN]) as stream:
        await server.next_json()
        before = time.perf_counter()
        status = await next_of(stream, StreamStatus)
        assert status.state is StreamState.CONNECTED
        assert stream.current_arrival is not None and before - 5 < stream.current_arrival <= time.perf_counter()


# ---------------------------------------------------------------------------------------------- hub


async def drain(c: HubConsumer) -> None:
    async with asyncio.timeout(5):
        async for _ in c:
            pass


def hub_on(server: ScriptedServer, **kw: Any) -> MarketHub:
    return MarketHub(lambda tokens: market(server, tokens), **kw)


async def test_the_hub_delivers_from_the_reader_between_frames_of_a_burst_in_order_with_books_current(
    server: ScriptedServer,
) -> None:
    hub = hub_on(server)
    a = hub.consumer([TOKEN])
    await a.__aenter__()
    try:
        await server.next_json()
        assert isinstance(await asyncio.wait_for(a.__anext__(), 5), StreamStatus)
        stream = hub.shards[0].stream
        assert stream.sink is not None and hub.shards[0].task is None  # no queue, no pump task in between
        # each frame costs more than the reader's budget: it must let the consumer act after each
        stream.on_raw = lambda obj: time.sleep(YIELD_AFTER_S * 2)

        async def send() -> None:
            for i in range(20):
                await server.send(book_msg(TOKEN, [(f"0.{10 + i}", "1")], []))

        await held_back(stream, send)
        seen = []
        for _ in range(20):
            ev = await asyncio.wait_for(a.__anext__(), 5)
            assert isinstance(ev, BookSnapshot)
            book = hub.books[TOKEN]
            seen.append((ev.book.best_bid, stream.counters.messages, book.best_bid, a.current_arrival))
    finally:
        await a.close()
        await hub.close()
    bids = [b for b, _, _, _ in seen]
    assert bids == sorted(bids) and len(set(bids)) == 20  # the shard's order
    assert seen[0][1] < 20  # the consumer had the first event before the reader was through the burst
    assert all(book is not None and b is not None and book >= b for b, _, book, _ in seen)  # books never behind
    arrivals = [t for _, _, _, t in seen]
    assert all(t is not None for t in arrivals) and arrivals == sorted(arrivals)  # type: ignore[type-var]


async def test_a_drop_reaches_every_consumer_of_the_shard(server: ScriptedServer) -> None:
    hub = hub_on(server)
    a, b = hub.consumer([TOKEN]), hub.consumer([NO_TOKEN])
    everything = hub.consumer(every_token=True, accept=lambda item, tokens: False)  # accepts no event
    for c in (a, b, everything):
        await c.__aenter__()
    try:
        await server.next_json()

        async def status_of(c: HubConsumer, state: StreamState) -> None:
            while True:
                item = await asyncio.wait_for(c.__anext__(), 5)
                if isinstance(item, StreamStatus) and item.state is state:
                    return

        for c in (a, b, everything):
            await status_of(c, StreamState.CONNECTED)
        await server.conns[0].close(code=1011, reason="boom")
        for c in (a, b, everything):
            await status_of(c, StreamState.RECONNECTING)
    finally:
        for c in (a, b, everything):
            await c.close()
        await hub.close()


async def test_the_hub_skips_best_bid_ask_which_a_plain_stream_still_yields(server: ScriptedServer) -> None:
    hub = hub_on(server)
    a = hub.consumer([TOKEN])
    await a.__aenter__()
    try:
        await server.next_json()
        await server.send(bba_msg(TOKEN))
        await server.send(book_msg(TOKEN, [("0.4", "1")], []))
        got = []
        while not got or not isinstance(got[-1], BookSnapshot):
            got.append(await asyncio.wait_for(a.__anext__(), 5))
        assert not any(isinstance(x, BestBidAsk) for x in got)
        assert hub.shards[0].stream.counters.ignored == 1 and hub.events == 1
    finally:
        await a.close()
        await hub.close()
    async with market(server, [TOKEN]) as stream:
        await connected(stream, server)
        await server.send(bba_msg(TOKEN))
        assert (await next_of(stream, BestBidAsk)).best_ask == D("0.6")


async def test_a_dead_stream_task_and_a_failing_filter_still_reach_the_consumers(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pmbot")

    def broken(item: Any, tokens: tuple[str, ...]) -> bool:
        raise RuntimeError("filter bug")

    hub = hub_on(server)
    a = hub.consumer([TOKEN])
    picky = hub.consumer(every_token=True, accept=broken)
    for c in (a, picky):
        await c.__aenter__()
    try:
        await server.next_json()
        await server.send(book_msg(TOKEN, [("0.4", "1")], []))
        for c in (a, picky):  # a filter that raises delivers (it only saves work) and is logged
            await next_of(c, BookSnapshot)  # type: ignore[arg-type]
        assert "filter bug" in caplog.text
        hub.shards[0].stream._put(RuntimeError("stream bug"))  # what the stream does when its task dies
        for c in (a, picky):
            with pytest.raises(RuntimeError, match="stream bug"):
                await drain(c)
    finally:
        for c in (a, picky):
            await c.close()
        await hub.close()


async def test_a_consumer_that_falls_behind_loses_the_oldest_and_counts_them() -> None:
    from pmbot.polymarket.models import LastTrade
    from pmbot.store.models import Side

    hub = MarketHub(lambda tokens: None, queue_size=3)  # type: ignore[arg-type, return-value]
    c = hub.consumer()
    c.tokens = {"t1"}
    c._started = True
    shard = _Shard(0, None)  # type: ignore[arg-type]
    shard.tokens = {"t1"}
    for i in range(10):
        trade = LastTrade(market="m", token_id="t1", price=D(i + 1) / 100, size=D(1), side=Side.BUY, timestamp_ms=i)
        hub._dispatch(shard, trade, float(i))
    assert c.dropped == 7 and len(c._queue) == 3
    kept = [await c.__anext__() for _ in range(3)]
    assert [t.timestamp_ms for t in kept] == [7, 8, 9] and c.current_arrival == 9.0
    await hub.close()
    with pytest.raises(StopAsyncIteration):  # the end is never dropped
        await c.__anext__()


# ------------------------------------------------------------------------------------- silence watch


async def test_a_feed_that_keeps_talking_never_goes_stale(server: ScriptedServer) -> None:
    """Silence is watched by one timer per quiet period, re-armed from the last data when it fires: a
    feed that sends more often than `stale_after`, for several times `stale_after`, is never STALE."""
    async with market(server, [TOKEN], stale_after=0.15, stale_reconnect_after=0.5) as stream:
        await connected(stream, server)
        seen: list[Any] = []
        for i in range(12):  # 0.6 s of data every 0.05 s: four stale_after periods
            await server.send(book_msg(TOKEN, [(f"0.{10 + i}", "1")], []))
            await next_of(stream, BookSnapshot, seen=seen)
            await asyncio.sleep(0.05)
        assert stream.counters.stale == 0 and stream.counters.reconnects == 0
        assert not [s for s in seen if isinstance(s, StreamStatus)]
        stale = await next_status(stream, StreamState.STALE, timeout=2)  # and once it stops, it is
        assert "no message" in stale.detail


async def test_a_sink_that_raises_is_logged_and_the_message_is_not_counted_malformed(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="pmbot")
    got: list[Any] = []

    def sink(item: Any, arrival: float) -> None:
        first_book = isinstance(item, BookSnapshot) and not any(isinstance(x, BookSnapshot) for x in got)
        got.append(item)
        if first_book:
            raise RuntimeError("dispatch bug")

    stream = market(server, [TOKEN])
    stream.sink = sink
    stream.start()
    try:
        await server.next_json()
        await server.send(book_msg(TOKEN, [("0.4", "1")], []))
        await server.send(book_msg(TOKEN, [("0.5", "1")], []))
        async with asyncio.timeout(5):
            while len([x for x in got if isinstance(x, BookSnapshot)]) < 2:
                await asyncio.sleep(0.01)
        assert stream.counters.malformed == 0 and stream.counters.reconnects == 0
        assert "dispatch bug" in caplog.text and stream.books[TOKEN].best_bid == D("0.5")
    finally:
        await stream.close()
    assert not stream._queue.qsize()  # with a sink nothing is queued, not even the end
