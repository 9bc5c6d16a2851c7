"""ChainFillStream over a real socket: web3.py talks to a scripted JSON-RPC WebSocket server on
127.0.0.1 that answers eth_subscribe / eth_unsubscribe and pushes OrderFilled logs."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from pmbot.polymarket.models import Side, StreamState, StreamStatus, TradeSource, WalletTrade
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.streams import Backoff, ChainFillStream
from tests.test_streams_transport import next_of, next_status

WHALE = "0x56687bF447db6FFa42FFe2204A05edAA20F55839"  # EIP-55, as an operator would paste it
WHALE_LC = WHALE.lower()
OTHER = "0x1111111111111111111111111111111111111111"
FAST = Backoff(base=0.01, cap=0.05)


class RpcServer:
    """Minimal eth_subscribe endpoint. Subscriptions are numbered across connections."""

    def __init__(self) -> None:
        self.conns: list[ServerConnection] = []
        self.subs: dict[str, tuple[int, dict[str, Any]]] = {}  # id → (connection, filter)
        self.unsubscribed: list[str] = []
        self.calls: list[str] = []
        self.subscribed = asyncio.Event()
        self.url = ""

    async def _handle(self, conn: ServerConnection) -> None:
        index = len(self.conns)
        self.conns.append(conn)
        async for raw in conn:
            req = json.loads(raw)
            self.calls.append(req["method"])
            if req["method"] == "eth_subscribe":
                sub_id = f"0x{len(self.subs) + 1:x}"
                self.subs[sub_id] = (index, req["params"][1])
                result: Any = sub_id
                self.subscribed.set()
            elif req["method"] == "eth_unsubscribe":
                self.unsubscribed.append(req["params"][0])
                result = True
            else:
                result = None
            await conn.send(json.dumps({"jsonrpc": "2.0", "id": req["id"], "result": result}))

    def live(self, conn: int = -1) -> list[str]:
        idx = conn if conn >= 0 else len(self.conns) - 1
        return [s for s, (c, _) in self.subs.items() if c == idx and s not in self.unsubscribed]

    async def wait_subs(self, count: int, conn: int = -1) -> list[str]:
        async with asyncio.timeout(5):
            while len(self.conns) < (conn + 1 if conn >= 0 else 1) or len(self.live(conn)) < count:
                await asyncio.sleep(0.01)
        return self.live(conn)

    async def push(self, sub_id: str, log: dict[str, Any], conn: int = -1) -> None:
        note = {"jsonrpc": "2.0", "method": "eth_subscription", "params": {"subscription": sub_id, "result": log}}
        await self.conns[conn].send(json.dumps(note))


@pytest.fixture
async def rpc() -> AsyncIterator[RpcServer]:
    srv = RpcServer()
    async with serve(srv._handle, "127.0.0.1", 0) as server:
        srv.url = f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        yield srv


def filled(
    *, maker: str, taker: str, side: int, token: int, maker_amount: int, taker_amount: int, tx: str, log_index: int = 0
) -> dict[str, Any]:
    words = [side, token, maker_amount, taker_amount, 0, 0, 0]
    return {
        "address": ws.CTF_EXCHANGE_V2.lower(),
        "topics": [ws.ORDER_FILLED_TOPIC, "0x" + "aa" * 32, ws.address_topic(maker), ws.address_topic(taker)],
        "data": "0x" + b"".join(w.to_bytes(32, "big") for w in words).hex(),
        "blockNumber": "0x10",
        "blockHash": "0x" + "bb" * 32,
        "transactionHash": tx,
        "transactionIndex": "0x0",
        "logIndex": hex(log_index),
        "removed": False,
    }


def stream_for(rpc: RpcServer, wallets: list[str], **kw: Any) -> ChainFillStream:
    return ChainFillStream(rpc.url, wallets, backoff=FAST, rng=random.Random(1), clock=lambda: 1_795_000_000.5, **kw)


async def test_subscribes_as_maker_and_taker_on_both_exchanges(rpc: RpcServer) -> None:
    async with stream_for(rpc, [WHALE]) as stream:
        maker_sub, taker_sub = await rpc.wait_subs(2)
        await next_status(stream, StreamState.CONNECTED)
        maker_filter, taker_filter = rpc.subs[maker_sub][1], rpc.subs[taker_sub][1]
        exchanges = {a.lower() for a in maker_filter["address"]}
        assert exchanges == {a.lower() for a in ws.EXCHANGES}  # CTFExchangeV2, NegRisk V2, ExchangeV3
        whale_topic = "0x" + "00" * 12 + WHALE_LC[2:]
        assert maker_filter["topics"] == [ws.ORDER_FILLED_TOPIC, None, [whale_topic]]
        assert taker_filter["topics"] == [ws.ORDER_FILLED_TOPIC, None, None, [whale_topic]]

        # The whale's BUY of 10 shares for 5.2 pUSD, as maker.
        tx1 = "0x" + "01" * 32
        await rpc.push(
            maker_sub,
            filled(
                maker=WHALE,
                taker=ws.CTF_EXCHANGE_V2,
                side=0,
                token=42,
                maker_amount=5_200_000,
                taker_amount=10_000_000,
                tx=tx1,
            ),
        )
        trade = await next_of(stream, WalletTrade)
        assert trade == WalletTrade(
            source=TradeSource.CHAIN,
            wallet=WHALE_LC,
            token_id="42",
            side=Side.BUY,
            size=D(10),
            price=D("0.52"),
            timestamp_ms=1_795_000_000_500,
            tx_hash=tx1,
        )
        # The whale TAKES someone's SELL: one tx, two logs. OTHER's fill names the whale as taker (the
        # taker subscription sees it); the whale's own fill has maker = whale, taker = the exchange.
        tx2 = "0x" + "02" * 32
        theirs = filled(
            maker=OTHER,
            taker=WHALE,
            side=1,
            token=7,
            maker_amount=20_000_000,
            taker_amount=19_400_000,
            tx=tx2,
            log_index=5,
        )
        ours = filled(
            maker=WHALE,
            taker=ws.CTF_EXCHANGE_V2,
            side=0,
            token=7,
            maker_amount=19_400_000,
            taker_amount=20_000_000,
            tx=tx2,
            log_index=6,
        )
        await rpc.push(taker_sub, theirs)
        await rpc.push(maker_sub, ours)
        await rpc.push(maker_sub, ours)  # delivered twice: emitted once
        await rpc.push(taker_sub, {**theirs, "data": "0x1234", "logIndex": "0x7"})  # truncated data: skipped
        second = await next_of(stream, WalletTrade)
        assert (second.side, second.size, second.price, second.tx_hash) == (Side.BUY, D(20), D("0.97"), tx2)
        async with asyncio.timeout(5):
            while stream.counters.malformed < 1:
                await asyncio.sleep(0.01)
        assert stream.counters.events == 2  # the counterparty's log and the duplicate are not trades
        assert stream.counterparty_fills == 1
        assert "eth_subscribe" in rpc.calls


async def test_reconnects_and_resubscribes_after_drop(rpc: RpcServer) -> None:
    async with stream_for(rpc, [WHALE]) as stream:
        await rpc.wait_subs(2)
        await next_status(stream, StreamState.CONNECTED)
        rpc.conns[0].transport.abort()
        status = await next_status(stream, StreamState.RECONNECTING)
        assert status.attempt == 1
        maker_sub, _ = await rpc.wait_subs(2, conn=1)
        await next_status(stream, StreamState.CONNECTED)
        tx = "0x" + "03" * 32
        await rpc.push(
            maker_sub,
            filled(maker=WHALE, taker=OTHER, side=1, token=9, maker_amount=3_000_000, taker_amount=2_850_000, tx=tx),
        )
        trade = await next_of(stream, WalletTrade)
        assert (trade.side, trade.size, trade.price) == (Side.SELL, D(3), D("0.95"))
        assert stream.counters.reconnects == 1


async def test_non_json_frames_are_skipped_not_fatal(rpc: RpcServer) -> None:
    async with stream_for(rpc, [WHALE]) as stream:
        maker_sub, _ = await rpc.wait_subs(2)
        await next_status(stream, StreamState.CONNECTED)
        await rpc.conns[0].send('{"jsonrpc": "2.0", "method": ')  # a cut-off frame
        await rpc.conns[0].send("garbage")
        tx = "0x" + "05" * 32
        await rpc.push(
            maker_sub,
            filled(maker=WHALE, taker=OTHER, side=0, token=3, maker_amount=500_000, taker_amount=1_000_000, tx=tx),
        )
        trade = await next_of(stream, WalletTrade)
        assert trade.tx_hash == tx and trade.price == D("0.5")
        assert stream.counters.malformed == 2 and stream.counters.reconnects == 0 and len(rpc.conns) == 1


async def test_follow_replaces_subscriptions_without_reconnecting(rpc: RpcServer) -> None:
    async with stream_for(rpc, [WHALE]) as stream:
        old = await rpc.wait_subs(2)
        await next_status(stream, StreamState.CONNECTED)
        await stream.follow([OTHER])
        new = rpc.live()
        assert len(new) == 2 and not set(new) & set(old)
        assert sorted(rpc.unsubscribed) == sorted(old)
        topics = rpc.subs[new[0]][1]["topics"][2]
        assert len(topics) == 2 and ws.address_topic(OTHER) in topics
        await rpc.push(
            new[0],
            filled(
                maker=OTHER,
                taker=WHALE,
                side=0,
                token=1,
                maker_amount=1_000_000,
                taker_amount=4_000_000,
                tx="0x" + "04" * 32,
            ),
        )
        # Only OTHER is this log's maker; WHALE is named as its counterparty.
        got = await next_of(stream, WalletTrade)
        assert (got.wallet, got.side, got.price) == (OTHER, Side.BUY, D("0.25"))
        await stream.unfollow([OTHER, WHALE])
        assert rpc.live() == [] and len(rpc.conns) == 1
        assert stream.wallets == frozenset()


async def test_unreachable_rpc_reports_reconnecting() -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stream = ChainFillStream(f"ws://127.0.0.1:{port}", [WHALE], backoff=FAST, rng=random.Random(1))
    async with stream:
        first = await next_of(stream, StreamStatus)
        second = await next_status(stream, StreamState.RECONNECTING)
    assert first.state is StreamState.RECONNECTING and (first.attempt, second.attempt) == (1, 2)


def test_import_does_not_load_web3() -> None:
    import subprocess
    import sys

    code = "import sys, pmbot.polymarket.streams; print('web3' in sys.modules, 'websockets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "False"]
