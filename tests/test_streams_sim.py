"""The streams against `pmbot sim` over real sockets: market books stay equal to REST /book through
price changes and WebSocket faults, the user channel reports our order and its fill through
MATCHED → MINED → CONFIRMED, RTDS delivers the whale's trades and BTC prices, and the chain stream
decodes the whale's OrderFilled logs into the same fills RTDS reported."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from decimal import Decimal as D
from typing import Any, TypeVar

from pmbot.polymarket.models import (
    ApiCreds,
    CryptoPrice,
    PriceChange,
    Side,
    StreamState,
    TradeSource,
    UserOrderEvent,
    UserTradeEvent,
    WalletTrade,
)
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.streams import Backoff, ChainFillStream, MarketStream, RtdsStream, RtdsSubscription, UserStream
from pmbot.polymarket.streams.base import StreamBase
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from tests.test_streams_transport import next_of, next_status

FAST = Backoff(base=0.01, cap=0.1)
T = TypeVar("T")


async def advance(sim: SimServer, seconds: float) -> None:
    """Move sim time without blocking our event loop (the sim runs in its own thread)."""
    await asyncio.to_thread(sim.advance, seconds)


async def until(check: Callable[[], bool], timeout: float = 5) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def rest_levels(sim: SimServer, token: str) -> tuple[Any, Any]:
    book = rest.book(sim.book(token))
    return book.bids, book.asks


def local_levels(stream: MarketStream, token: str) -> tuple[Any, Any] | None:
    book = stream.books.get(token)
    return (book.bids(), book.asks()) if book is not None and book.synced else None


async def converge(stream: MarketStream, sim: SimServer, tokens: list[str], seen: list[Any]) -> None:
    """Consume events until every local book equals REST /book (the sim is frozen between advances,
    so this is exactly "all updates processed")."""
    want = {t: rest_levels(sim, t) for t in tokens}
    async with asyncio.timeout(10):
        while any(local_levels(stream, t) != want[t] for t in tokens):
            async with asyncio.timeout(0.5):
                with_event = await anext(stream)
            seen.append(with_event)


async def drain(stream: MarketStream, seen: list[Any], quiet: float = 0.2) -> None:
    """Collect what is already queued. The reader updates the local books before it queues the events,
    so books can match REST while their events still wait for the consumer."""
    while True:
        try:
            async with asyncio.timeout(quiet):
                seen.append(await anext(stream))
        except TimeoutError:
            return


def market_stream(sim: SimServer, tokens: list[str]) -> MarketStream:
    return MarketStream(sim.env()["PMBOT_CLOB_WS_URL"], tokens, backoff=FAST, rng=random.Random(1), stale_after=None)


async def test_market_books_track_rest_through_price_changes(sim: SimServer) -> None:
    tokens = list(sim.current_market()["token_ids"])
    seen: list[Any] = []
    async with market_stream(sim, tokens) as stream:
        await converge(stream, sim, tokens, seen)  # the initial dump
        for _ in range(3):
            await advance(sim, 10)  # the market maker requotes every second
            await converge(stream, sim, tokens, seen)
            await drain(stream, seen)
        changes = [ev for ev in seen if isinstance(ev, PriceChange)]
        assert len(changes) >= 3
        for t in tokens:
            book = stream.books[t]
            assert book.mismatches == 0 and book.updates > 0
            assert book.best_bid is not None and book.best_ask is not None and book.best_bid < book.best_ask
        assert stream.counters.malformed == 0 and stream.counters.reconnects == 0


async def test_market_books_recover_from_drops_and_malformed_frames(sim: SimServer) -> None:
    tokens = list(sim.current_market()["token_ids"])
    seen: list[Any] = []
    # Every connection is dropped 0.3 s after it opens; every 3rd frame is preceded by garbage.
    sim.set_faults(ws_malformed_every=3, ws_drop_every=0.3)
    async with market_stream(sim, tokens) as stream:
        await until(lambda: stream.counters.reconnects >= 2)  # dropped, re-subscribed, dropped again
        async with asyncio.timeout(10):
            while stream.counters.malformed < 2:  # requotes go only to whoever is connected right now
                await advance(sim, 1)
                await asyncio.sleep(0.05)
        sim.clear_faults()
        await asyncio.sleep(0.5)  # the last faulty connection drops; the next one lasts
        await advance(sim, 5)
        await converge(stream, sim, tokens, seen)  # fresh snapshots replaced the stale books
        assert all(stream.books[t].synced and stream.books[t].mismatches == 0 for t in tokens)
        assert stream.counters.connects >= 3


async def test_user_channel_reports_placement_and_fill_lifecycle(sim: SimServer) -> None:
    trader = SimTrader(sim, HARDHAT_KEYS[0])
    creds = ApiCreds(trader.creds["apiKey"], trader.creds["secret"], trader.creds["passphrase"])
    m = sim.current_market()
    up = m["token_ids"][0]
    stream = UserStream(sim.env()["PMBOT_CLOB_WS_URL"], creds, [m["condition_id"]], backoff=FAST)
    try:
        async with stream:
            await next_status(stream, StreamState.CONNECTED)
            await until(lambda: sim.call(lambda v: len(v.hub.user)) == 1)  # the venue has read our auth
            resp = await asyncio.to_thread(trader.post_order, up, "BUY", D("0.02"), D("10"))
            assert resp.status_code == 200, resp.text
            placed = await next_of(stream, UserOrderEvent)
            assert (placed.type, placed.status, placed.token_id) == ("PLACEMENT", "LIVE", up)
            assert (placed.side, placed.price, placed.original_size) == (Side.BUY, D("0.02"), D("10"))
            assert placed.order_id == resp.json()["orderID"]

            # A marketable FOK: fills against the market maker at once.
            resp = await asyncio.to_thread(trader.post_order, up, "BUY", D("0.99"), amount=D("5"), order_type="FOK")
            assert resp.status_code == 200 and resp.json()["success"], resp.text
            matched = await next_of(stream, UserTradeEvent)
            t = matched.trade
            assert (t.status, t.trader_side, t.side, t.token_id) == ("MATCHED", "TAKER", Side.BUY, up)
            assert t.size > 0 and D(0) < t.price < D(1)
            assert t.taker_order_id == resp.json()["orderID"]
            await advance(sim, 3)
            assert (await next_of(stream, UserTradeEvent)).trade.status == "MINED"
            await advance(sim, 5)
            confirmed = await next_of(stream, UserTradeEvent)
            assert confirmed.trade.status == "CONFIRMED" and confirmed.trade.trade_id == t.trade_id
            assert stream.counters.malformed == 0
    finally:
        trader.close()


async def test_user_channel_with_bad_creds_keeps_retrying(sim: SimServer) -> None:
    trader = SimTrader(sim, HARDHAT_KEYS[1])
    trader.close()
    creds = ApiCreds(trader.creds["apiKey"], "not-the-secret", trader.creds["passphrase"])
    async with UserStream(sim.env()["PMBOT_CLOB_WS_URL"], creds, backoff=FAST) as stream:
        first = await next_status(stream, StreamState.RECONNECTING)
        second = await next_status(stream, StreamState.RECONNECTING)
    assert (first.attempt, second.attempt) == (1, 2)  # no data ever came: the backoff keeps growing
    assert sim.call(lambda v: len(v.hub.user)) == 0


def of_type(items: list[Any], kind: type[T]) -> list[T]:
    return [e for e in items if isinstance(e, kind)]


async def collect(stream: StreamBase[Any], into: list[Any], stop: Callable[[], bool], timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not stop():
            into.append(await anext(stream))


async def test_rtds_whale_activity_and_prices(sim: SimServer) -> None:
    whale = sim.whale_address
    subs = [
        RtdsSubscription.activity(),
        RtdsSubscription.crypto_prices("btcusdt"),
        RtdsSubscription.chainlink("btc/usd"),
    ]
    seen: list[Any] = []
    async with RtdsStream(sim.env()["PMBOT_RTDS_URL"], subs, wallets=[whale], backoff=FAST, stale_after=None) as stream:
        await next_status(stream, StreamState.CONNECTED)
        await until(lambda: sim.call(lambda v: sum(len(c.subs) for c in v.hub.rtds)) == 3)
        await advance(sim, 30)
        topics = {"crypto_prices", "crypto_prices_chainlink"}
        await collect(
            stream,
            seen,
            lambda: len(of_type(seen, WalletTrade)) >= 2 and {p.topic for p in of_type(seen, CryptoPrice)} >= topics,
        )
    trades = of_type(seen, WalletTrade)
    assert {t.wallet for t in trades} == {whale.lower()}  # other traders' rows filtered out
    assert all(t.source is TradeSource.RTDS and t.tx_hash.startswith("0x") for t in trades)
    # The same fills are in the Data API.
    rows = await asyncio.to_thread(_data_trades, sim, whale)
    assert {t.key for t in trades} <= {r.key for r in rows}
    btc = [p for p in of_type(seen, CryptoPrice) if p.topic == "crypto_prices_chainlink"]
    assert btc
    assert all(p.symbol == "btc/usd" and D(10_000) < p.value < D(1_000_000) for p in btc)


def _data_trades(sim: SimServer, wallet: str) -> list[WalletTrade]:
    import httpx

    body = httpx.get(f"{sim.url}/data-api/trades", params={"user": wallet, "limit": "500"}, timeout=10).json()
    return [rest.data_trade(r) for r in body]


async def test_chain_fills_match_rtds_trades(sim: SimServer) -> None:
    whale = sim.whale_address
    env = sim.env()
    rtds_seen: list[Any] = []
    chain_seen: list[Any] = []
    chain = ChainFillStream(env["PMBOT_RPC_WS_URL"], [whale], backoff=FAST, clock=sim.now)
    rtds = RtdsStream(env["PMBOT_RTDS_URL"], [RtdsSubscription.activity()], wallets=[whale], backoff=FAST)
    async with chain, rtds:
        await next_status(chain, StreamState.CONNECTED)
        await next_status(rtds, StreamState.CONNECTED)
        await until(lambda: sim.call(lambda v: sum(len(c.subs) for c in v.hub.rpc)) == 2)
        await until(lambda: sim.call(lambda v: sum(len(c.subs) for c in v.hub.rtds)) == 1)
        await advance(sim, 30)  # the whale trades every 3–8 s; logs follow 2 s after each match
        logs = sim.chain_logs()
        own = [lg for lg in logs if lg["topics"][2][-40:] == whale.lower()[2:]]
        assert own, "the whale traded"
        await collect(chain, chain_seen, lambda: len(of_type(chain_seen, WalletTrade)) >= len(own))
        keys = {t.key for t in of_type(chain_seen, WalletTrade)}
        await collect(rtds, rtds_seen, lambda: sum(t.key in keys for t in of_type(rtds_seen, WalletTrade)) >= len(own))
        # Logs naming the whale as the counterparty (taker topic) arrive too, but are not its trades.
        theirs = [lg for lg in logs if lg["topics"][3][-40:] == whale.lower()[2:]]
        await until(lambda: chain.counterparty_fills == len(theirs))
    chain_trades, rtds_trades = of_type(chain_seen, WalletTrade), of_type(rtds_seen, WalletTrade)
    assert len(chain_trades) == len(own)  # one trade per own fill
    assert all(t.source is TradeSource.CHAIN and t.wallet == whale.lower() for t in chain_trades)
    # One taker order can fill against several levels in one transaction: compare the fills as
    # multisets, since the key (tx, token, side) alone does not tell them apart.
    fills = sorted((t.key, t.token_id, t.side, t.size, t.price) for t in chain_trades)
    twins = sorted((t.key, t.token_id, t.side, t.size, t.price) for t in rtds_trades)
    assert fills == [f for f in twins if f[0] in {x[0] for x in fills}]
