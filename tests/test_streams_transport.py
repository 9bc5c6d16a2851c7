"""Transport behaviour of the WebSocket streams over real sockets, against a scripted
`websockets` server on 127.0.0.1: subscribe messages, re-subscribe after drops, malformed frames,
staleness, heartbeats, backoff, dynamic (un)subscribe, close. The venue-level behaviour (books vs
REST, fills, whale activity) is tested against `pmbot sim` in test_streams_sim.py."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import socket
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any, TypeVar

import pytest
from websockets.asyncio.server import ServerConnection, serve

from pmbot.polymarket.models import (
    ApiCreds,
    BookSnapshot,
    CryptoPrice,
    PriceChange,
    Side,
    StreamState,
    StreamStatus,
    UserOrderEvent,
    UserTradeEvent,
    WalletTrade,
)
from pmbot.polymarket.streams import Backoff, MarketStream, RtdsStream, RtdsSubscription, UserStream
from pmbot.polymarket.streams.base import StreamBase
from tests.samples import load

T = TypeVar("T")

FAST = Backoff(base=0.01, cap=0.05)
TOKEN = "23305969272951306317157739183583008201155714184462027894470739210983097393455"
NO_TOKEN = "104425493878736059469967522531475345635535129482242136756374819053652959839920"


class ScriptedServer:
    """Records every text frame each connection sends and lets the test push frames or drop the
    connection. Answers PING with PONG like the venue."""

    def __init__(self, *, answer_ping: bool = True) -> None:
        self.answer_ping = answer_ping
        self.conns: list[ServerConnection] = []
        self.inbox: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        self.pings = 0
        self.url = ""

    async def _handle(self, conn: ServerConnection) -> None:
        index = len(self.conns)
        self.conns.append(conn)
        async for msg in conn:
            text = msg if isinstance(msg, str) else msg.decode()
            if text == "PING":
                self.pings += 1
                if self.answer_ping:
                    await conn.send("PONG")
                continue
            await self.inbox.put((index, text))

    async def next_json(self, timeout: float = 5) -> tuple[int, Any]:
        async with asyncio.timeout(timeout):
            index, text = await self.inbox.get()
        return index, json.loads(text)

    async def send(self, payload: Any, conn: int = -1) -> None:
        await self.conns[conn].send(payload if isinstance(payload, str | bytes) else json.dumps(payload))


async def _server(answer_ping: bool = True) -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer(answer_ping=answer_ping)
    async with serve(srv._handle, "127.0.0.1", 0) as ws_server:
        port = ws_server.sockets[0].getsockname()[1]
        srv.url = f"ws://127.0.0.1:{port}"
        yield srv


@pytest.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    async for srv in _server():
        yield srv


async def next_of(stream: StreamBase[Any], kind: type[T], timeout: float = 5, seen: list[Any] | None = None) -> T:
    """The next event of `kind`, skipping (and optionally collecting) others."""
    async with asyncio.timeout(timeout):
        async for ev in stream:
            if seen is not None:
                seen.append(ev)
            if isinstance(ev, kind):
                return ev
    raise AssertionError(f"stream ended before a {kind.__name__}")


async def next_status(stream: StreamBase[Any], state: StreamState, timeout: float = 5) -> StreamStatus:
    while True:
        ev = await next_of(stream, StreamStatus, timeout)
        if ev.state is state:
            return ev


def book_msg(token: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]], h: str = "h0") -> dict[str, Any]:
    """A `book` message as the venue sends it: levels best-LAST."""
    return {
        "event_type": "book",
        "market": "0xm",
        "asset_id": token,
        "timestamp": "1790272267688",
        "hash": h,
        "bids": [{"price": p, "size": s} for p, s in sorted(bids, key=lambda lv: D(lv[0]))],
        "asks": [{"price": p, "size": s} for p, s in sorted(asks, key=lambda lv: D(lv[0]), reverse=True)],
        "tick_size": "0.01",
    }


def market(server: ScriptedServer, tokens: list[str], **kw: Any) -> MarketStream:
    kw.setdefault("backoff", FAST)
    kw.setdefault("rng", random.Random(1))
    kw.setdefault("stale_after", None)
    return MarketStream(server.url, tokens, **kw)


# ----------------------------------------------------------------------------------------- market


async def test_market_subscribes_parses_arrays_and_keeps_books(server: ScriptedServer) -> None:
    server.url += "/ws"
    async with market(server, [TOKEN]) as stream:
        _, sub = await server.next_json()
        assert sub == {"assets_ids": [TOKEN], "type": "market", "custom_feature_enabled": True}
        assert server.conns[0].request is not None and server.conns[0].request.path == "/ws/market"
        await next_status(stream, StreamState.CONNECTED)
        # The initial dump is an array; the 2026 price_change moves 0.59 to its new total.
        await server.send([load("ws_market_book.json"), book_msg("999", [("0.1", "1")], [])])
        snap = await next_of(stream, BookSnapshot)
        assert snap.book.token_id == TOKEN
        await server.send(load("ws_market_price_change.json"))
        pc = await next_of(stream, PriceChange)
        assert len(pc.changes) == 2
        book = stream.books[TOKEN]
        assert book.size_at(pc.changes[0].side, D("0.59")) == D("703988.22")
        assert (book.best_bid, book.best_ask, book.synced, book.mismatches) == (D("0.61"), D("0.62"), True, 0)
        assert set(stream.books) == {TOKEN}  # the NO leg and the unasked token get no book
        assert stream.counters.messages == 2 and stream.counters.malformed == 0


async def test_market_reconnects_resubscribes_and_snapshot_replaces_book(server: ScriptedServer) -> None:
    async with market(server, [TOKEN]) as stream:
        await server.next_json()
        await next_status(stream, StreamState.CONNECTED)
        await server.send(book_msg(TOKEN, [("0.40", "10"), ("0.45", "5")], [("0.55", "7")]))
        await next_of(stream, BookSnapshot)
        await stream.subscribe([NO_TOKEN])
        _, dyn = await server.next_json()
        assert dyn == {"assets_ids": [NO_TOKEN], "operation": "subscribe", "custom_feature_enabled": True}

        await server.conns[0].close(code=1011, reason="boom")  # a server error close
        status = await next_status(stream, StreamState.RECONNECTING)
        assert status.attempt == 1 and status.stream == "market"
        assert not stream.books[TOKEN].synced  # blind until the fresh snapshot
        conn, resub = await server.next_json()
        assert conn == 1 and resub["assets_ids"] == [TOKEN, NO_TOKEN]  # re-subscribed to both
        await next_status(stream, StreamState.CONNECTED)
        await server.send(book_msg(TOKEN, [("0.30", "1")], [("0.70", "2")], h="h1"))
        await next_of(stream, BookSnapshot)
        book = stream.books[TOKEN]
        assert book.synced and book.bids()[0].price == D("0.30") and book.size_at(Side.BUY, D("0.45")) == 0
        assert book.hash == "h1" and len(book) == 2  # the old levels are gone

        # An abrupt TCP drop (no close frame) is handled the same way.
        server.conns[1].transport.abort()
        await next_status(stream, StreamState.RECONNECTING)
        conn, again = await server.next_json()
        assert conn == 2 and again["type"] == "market"
        assert stream.counters.reconnects == 2


async def test_market_unsubscribe_drops_book_and_sends_operation(server: ScriptedServer) -> None:
    async with market(server, [TOKEN, NO_TOKEN]) as stream:
        await server.next_json()
        await next_status(stream, StreamState.CONNECTED)
        await server.send([book_msg(TOKEN, [("0.4", "1")], []), book_msg(NO_TOKEN, [("0.5", "1")], [])])
        await next_of(stream, BookSnapshot)
        await next_of(stream, BookSnapshot)
        await stream.unsubscribe([NO_TOKEN, "never-subscribed"])
        _, msg = await server.next_json()
        assert msg == {"assets_ids": [NO_TOKEN], "operation": "unsubscribe"}
        assert set(stream.books) == {TOKEN} and stream.token_ids == (TOKEN,)
        await stream.unsubscribe([NO_TOKEN])  # nothing left to do: nothing sent
        await stream.subscribe([TOKEN])
        await server.send(book_msg(TOKEN, [("0.41", "1")], []))
        await next_of(stream, BookSnapshot)
        assert server.inbox.empty()


async def test_malformed_frames_are_skipped_and_counted(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    async with market(server, [TOKEN]) as stream:
        await server.next_json()
        await next_status(stream, StreamState.CONNECTED)
        await server.send("this is not json {")
        await server.send(b"\xff\xfe binary garbage")
        await server.send({"event_type": "book", "bids": []})  # JSON, but no asset_id
        await server.send({"event_type": "new_market", "id": "1"})  # valid, not used
        await server.send(
            [{"event_type": "price_change", "price_changes": "nope"}, book_msg(TOKEN, [("0.4", "1")], [])]
        )
        snap = await next_of(stream, BookSnapshot)
        assert snap.book.best_bid == D("0.4")  # the good element of a half-bad array survives
        assert stream.counters.malformed == 4
        assert stream.counters.reconnects == 0 and stream.state is StreamState.CONNECTED
        assert stream.counters.ignored == 1
        assert "malformed" in caplog.text or "unreadable" in caplog.text


async def test_goes_stale_then_resumes_then_reconnects_when_silent(server: ScriptedServer) -> None:
    async with market(server, [TOKEN], stale_after=0.2, stale_reconnect_after=1.0, heartbeat_interval=0.05) as stream:
        await server.next_json()
        await next_status(stream, StreamState.CONNECTED)
        # PONGs answer our PINGs all along: they prove the socket, not the feed, so STALE still comes.
        stale = await next_status(stream, StreamState.STALE)
        assert "no message" in stale.detail
        assert server.pings >= 1 and stream.counters.pongs >= 1
        await server.send(book_msg(TOKEN, [("0.4", "1")], []))
        resumed = await next_of(stream, StreamStatus)
        assert resumed.state is StreamState.CONNECTED and resumed.detail == "data resumed"
        await next_status(stream, StreamState.STALE)
        status = await next_status(stream, StreamState.RECONNECTING)
        assert "silent" in status.detail
        conn, _ = await server.next_json()
        assert conn == 1
        assert stream.counters.stale >= 2


async def test_heartbeat_ping_is_sent(server: ScriptedServer) -> None:
    async with market(server, [TOKEN], heartbeat_interval=0.02) as stream:
        await server.next_json()
        async with asyncio.timeout(5):
            while server.pings < 3:
                await asyncio.sleep(0.01)
        assert stream.counters.heartbeats >= 3
        assert stream.counters.malformed == 0


async def test_connect_failures_back_off_with_growing_attempts() -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stream = MarketStream(f"ws://127.0.0.1:{port}", [TOKEN], backoff=FAST, rng=random.Random(3))
    attempts = []
    async with stream:
        for _ in range(3):
            attempts.append((await next_status(stream, StreamState.RECONNECTING)).attempt)
    assert attempts == [1, 2, 3]
    assert stream.counters.connects == 0


def test_backoff_delays_are_jittered_and_capped() -> None:
    b = Backoff(base=1, cap=8)
    rng = random.Random(42)
    delays = [b.delay(n, rng) for n in range(1, 8)]
    for n, d in enumerate(delays, start=1):
        full = min(8, 2 ** (n - 1))
        assert full / 2 <= d <= full
    assert max(delays) <= 8
    assert Backoff(base=1, cap=8).delay(3, random.Random(1)) == Backoff(base=1, cap=8).delay(3, random.Random(1))


async def test_close_ends_iteration_and_closes_socket(server: ScriptedServer) -> None:
    stream = market(server, [TOKEN])
    seen: list[Any] = []

    async def consume() -> None:
        async for ev in stream:
            seen.append(ev)

    consumer = asyncio.create_task(consume())
    await server.next_json()
    await stream.close()
    async with asyncio.timeout(5):
        await consumer  # iteration ended instead of hanging
        await server.conns[0].wait_closed()
    assert any(isinstance(e, StreamStatus) and e.state is StreamState.CONNECTED for e in seen)
    await stream.close()  # idempotent
    with pytest.raises(Exception, match="closed"):
        stream.start()


async def test_slow_consumer_drops_oldest_not_newest(server: ScriptedServer) -> None:
    async with market(server, [TOKEN], queue_size=3) as stream:
        await server.next_json()
        for i in range(10):
            await server.send(book_msg(TOKEN, [(f"0.{10 + i}", "1")], []))
        async with asyncio.timeout(5):
            while stream.counters.messages < 10:
                await asyncio.sleep(0.01)
        assert stream.counters.dropped >= 7
        last = None
        while not stream._queue.empty():
            last = await next_of(stream, BookSnapshot)
        assert last is not None and last.book.best_bid == D("0.19")
        assert stream.books[TOKEN].best_bid == D("0.19")  # the book never depends on the consumer


# ------------------------------------------------------------------------------------------- user


async def test_user_channel_auth_events_and_no_secret_in_logs(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="pmbot")
    creds = ApiCreds(api_key="key-uuid", secret="s3cr3t-value-xyz", passphrase="pass-phrase-abc")
    stream = UserStream(server.url, creds, ["0xcond1"], backoff=FAST, rng=random.Random(1))
    async with stream:
        _, auth = await server.next_json()
        assert auth == {
            "auth": {"apiKey": "key-uuid", "secret": "s3cr3t-value-xyz", "passphrase": "pass-phrase-abc"},
            "markets": ["0xcond1"],
            "type": "user",
        }
        assert server.conns[0].request is not None and server.conns[0].request.path == "/user"
        await server.send([load("ws_user_order_placement.json"), load("ws_user_trade_taker_matched_2024.json")])
        order = await next_of(stream, UserOrderEvent)
        assert order.status == "LIVE"
        trade = await next_of(stream, UserTradeEvent)
        assert trade.trade.status == "MATCHED"
        await server.send(load("ws_user_order_fok_killed_ANONYMIZED.json"))
        killed = await next_of(stream, UserOrderEvent)
        assert killed.status.startswith("CANCELED_order couldn't")
        await stream.subscribe(["0xcond2"])
        assert (await server.next_json())[1] == {"markets": ["0xcond2"], "operation": "subscribe"}
        await stream.unsubscribe(["0xcond1"])
        assert (await server.next_json())[1] == {"markets": ["0xcond1"], "operation": "unsubscribe"}
        await server.conns[0].close()
        _, again = await server.next_json()
        assert again["markets"] == ["0xcond2"] and again["auth"]["apiKey"] == "key-uuid"
        await server.send("garbage")
        async with asyncio.timeout(5):
            while stream.counters.malformed < 1:
                await asyncio.sleep(0.01)
    for secret in ("s3cr3t-value-xyz", "pass-phrase-abc"):
        assert secret not in caplog.text
        assert secret not in repr(creds)


# ------------------------------------------------------------------------------------------- RTDS


async def test_rtds_subscribes_filters_wallets_and_parses_prices(server: ScriptedServer) -> None:
    subs = [
        RtdsSubscription.activity(event_slug="unl-and-mal-2026-09-24"),
        RtdsSubscription.crypto_prices("BTCUSDT"),
        RtdsSubscription.chainlink("btc/usd"),
    ]
    whale = "0x09beD1976600971Fd9f9Db454a9c302C7A559c32"  # EIP-55 in, any case matches
    stream = RtdsStream(
        server.url,
        subs,
        wallets=[whale.upper().replace("0X", "0x")],
        backoff=FAST,
        heartbeat_interval=0.02,
        rng=random.Random(1),
    )
    async with stream:
        _, sub = await server.next_json()
        assert sub == {
            "action": "subscribe",
            "subscriptions": [
                {"topic": "activity", "type": "trades", "filters": '{"event_slug":"unl-and-mal-2026-09-24"}'},
                {"topic": "crypto_prices", "type": "update", "filters": "btcusdt"},
                {"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"btc/usd"}'},
            ],
        }
        for row in load("rtds_activity_trades.json"):
            await server.send(row)
        trade = await next_of(stream, WalletTrade)
        assert trade.wallet == whale.lower() and trade.price == D("0.97") and trade.size == D("1030.92")
        await server.send(load("rtds_crypto_prices_subscribe_snapshot.json"))
        await server.send(load("rtds_crypto_prices_update.json"))
        prices = [await next_of(stream, CryptoPrice) for _ in range(4)]
        assert [p.value for p in prices] == [D("61164.12"), D("61161.07"), D("61150.89"), D("61035.86")]
        assert stream.counters.ignored == 4  # the other traders' rows
        async with asyncio.timeout(5):
            while server.pings < 2:
                await asyncio.sleep(0.01)

        stream.follow(["0xF5848342FC388908F2D25A9012CC18A0AD193979"])
        await server.send(load("rtds_activity_trades.json")[0])
        assert (await next_of(stream, WalletTrade)).outcome == "No"
        await stream.unsubscribe([subs[1]])
        _, unsub = await server.next_json()
        assert unsub == {
            "action": "unsubscribe",
            "subscriptions": [{"topic": "crypto_prices", "type": "update", "filters": "btcusdt"}],
        }
        await server.conns[0].close()
        _, resub = await server.next_json()
        assert [s["topic"] for s in resub["subscriptions"]] == ["activity", "crypto_prices_chainlink"]


def test_rtds_activity_filter_needs_one_slug() -> None:
    assert RtdsSubscription.activity().wire() == {"topic": "activity", "type": "trades"}
    assert RtdsSubscription.activity(market_slug="m").filters == '{"market_slug":"m"}'
    with pytest.raises(ValueError, match="not both"):
        RtdsSubscription.activity(event_slug="e", market_slug="m")


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(Exception, match="WebSocket URL"):
        MarketStream("https://clob.polymarket.com", [TOKEN])
    with pytest.raises(Exception, match="stale_reconnect_after"):
        MarketStream("ws://x", [TOKEN], stale_after=1, stale_reconnect_after=0.5)
