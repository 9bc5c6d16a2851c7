"""The sim's WebSocket channels over real sockets: market (book + price_change consistent with REST),
user (own orders and fills only), RTDS, and WebSocket faults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader

SAMPLES = Path("/work/shared/polymarket-samples")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="recorded samples not available")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


def recv(ws: ClientConnection, timeout: float = 5) -> Any:
    raw = ws.recv(timeout=timeout)
    return json.loads(raw) if raw not in ("PONG", "pong") else raw


def drain_until_pong(ws: ClientConnection, ping: str = "PING") -> list[Any]:
    """Everything queued before a PING's answer: the server answers in order, so this is exact."""
    ws.send(ping)
    out = []
    while (msg := recv(ws)) != ping.replace("I", "O").replace("i", "o"):
        out.append(msg)
    return out


@pytest.fixture
def market_ws(sim: SimServer) -> Iterator[ClientConnection]:
    with connect(f"{sim.ws_url}/ws/market") as ws:
        yield ws


def apply(book: dict[str, dict[D, D]], change: dict[str, str]) -> None:
    side = book["bids" if change["side"] == "BUY" else "asks"]
    if D(change["size"]) == 0:
        side.pop(D(change["price"]), None)
    else:
        side[D(change["price"])] = D(change["size"])


def levels(snapshot: dict[str, Any]) -> dict[str, dict[D, D]]:
    return {k: {D(x["price"]): D(x["size"]) for x in snapshot[k]} for k in ("bids", "asks")}


@needs_samples
def test_book_dump_then_price_changes_reproduce_rest_book(sim: SimServer, market_ws: ClientConnection) -> None:
    up, down = sim.current_market()["token_ids"]
    market_ws.send(json.dumps({"assets_ids": [up, down], "type": "market", "custom_feature_enabled": True}))
    dump = recv(market_ws)
    assert isinstance(dump, list) and [b["asset_id"] for b in dump] == [up, down]  # first dump: one array
    assert set(dump[0]) == set(sample("ws_market_book.json"))
    assert dump[0]["bids"] == sim.book(up)["bids"] and dump[0]["hash"] == sim.book(up)["hash"]
    local = {b["asset_id"]: levels(b) for b in dump}
    sim.advance(20)  # requotes every second, whale trades
    kinds = set()
    for msg in drain_until_pong(market_ws):
        kinds.add(msg["event_type"])
        if msg["event_type"] == "price_change":
            assert set(msg) == set(sample("ws_market_price_change.json"))
            assert set(msg["price_changes"][0]) == set(sample("ws_market_price_change.json")["price_changes"][0])
            legs = msg["price_changes"]
            for a, b in zip(legs[::2], legs[1::2], strict=True):  # Up leg, mirrored Down leg
                assert (a["asset_id"], b["asset_id"]) == (up, down)
                assert D(a["price"]) + D(b["price"]) == 1 and a["size"] == b["size"] and a["side"] != b["side"]
            for ch in legs:
                apply(local[ch["asset_id"]], ch)
        elif msg["event_type"] == "last_trade_price":
            assert set(msg) == set(sample("ws_market_last_trade_price.json"))
    assert {"price_change", "last_trade_price", "best_bid_ask"} <= kinds
    for token in (up, down):
        assert local[token] == levels(sim.book(token))


def test_ping_dynamic_subscribe_and_unsubscribe(sim: SimServer, market_ws: ClientConnection) -> None:
    up, down = sim.current_market()["token_ids"]
    market_ws.send("PING")
    assert market_ws.recv(timeout=5) == "PONG"
    market_ws.send(json.dumps({"assets_ids": [up], "type": "market"}))
    assert [b["asset_id"] for b in recv(market_ws)] == [up]
    market_ws.send(json.dumps({"operation": "subscribe", "assets_ids": [down]}))
    assert [b["asset_id"] for b in recv(market_ws)] == [down]
    market_ws.send(json.dumps({"operation": "unsubscribe", "assets_ids": [up, down]}))
    drain_until_pong(market_ws)  # the unsubscribe is processed before the PONG is sent
    sim.advance(5)
    assert drain_until_pong(market_ws) == []


def test_market_resolves_at_the_window_end(sim: SimServer, market_ws: ClientConnection) -> None:
    cur = sim.current_market()
    market_ws.send(json.dumps({"assets_ids": cur["token_ids"], "type": "market", "custom_feature_enabled": True}))
    recv(market_ws)
    sim.advance(cur["end"] - sim.now())
    resolved = [m for m in drain_until_pong(market_ws) if m["event_type"] == "market_resolved"]
    [msg] = resolved
    assert msg["market"] == cur["condition_id"] and msg["winning_asset_id"] in cur["token_ids"]
    assert msg["winning_outcome"] == ("Up" if msg["winning_asset_id"] == cur["token_ids"][0] else "Down")
    after = next(m for m in sim.markets() if m["slug"] == cur["slug"])
    assert after["closed"] and after["winner"] == msg["winning_outcome"]
    assert sim.book(cur["token_ids"][0]) is None
    assert sim.current_market()["start"] == cur["end"]  # the next window is now current


@needs_samples
def test_user_channel_carries_own_orders_and_fills_only(sim: SimServer) -> None:
    up, _ = sim.current_market()["token_ids"]
    alice, bob, carol = (SimTrader(sim, k) for k in HARDHAT_KEYS)
    with ExitStack() as stack:
        socks = {}
        for name, t in (("alice", alice), ("bob", bob), ("carol", carol)):
            ws = stack.enter_context(connect(f"{sim.ws_url}/ws/user"))
            ws.send(json.dumps({"auth": t.creds, "markets": [], "type": "user"}))
            drain_until_pong(ws)  # authenticated and subscribed once the PONG arrives
            socks[name] = ws
        book = sim.book(up)
        bid, ask = D(book["bids"][-1]["price"]), D(book["asks"][-1]["price"])
        inside = ask - D("0.01") if ask - bid > D("0.01") else ask  # resting orders go first at a level
        sim.split(alice.address, sim.current_market()["condition_id"], 20)  # shares to sell
        rest = alice.post_order(up, "SELL", inside, D("20")).json()
        take = bob.post_order(up, "BUY", inside, amount=D(20) * inside, order_type="FOK").json()
        assert take["status"] == "matched"
        a_msgs, b_msgs = drain_until_pong(socks["alice"]), drain_until_pong(socks["bob"])
        assert drain_until_pong(socks["carol"]) == []
        assert [(m["event_type"], m.get("type")) for m in a_msgs] == [
            ("order", "PLACEMENT"),
            ("order", "UPDATE"),
            ("trade", "TRADE"),
        ]
        placement, update, a_trade = a_msgs
        assert set(placement) == set(sample("ws_user_order_placement.json"))
        assert placement["id"] == rest["orderID"] and placement["status"] == "LIVE"
        assert update["size_matched"] == "20" and update["status"] == "MATCHED"
        assert set(sample("ws_user_trade_taker_matched_2024.json")) <= set(a_trade)
        assert a_trade["trader_side"] == "MAKER" and a_trade["status"] == "MATCHED"
        b_trade = next(m for m in b_msgs if m["event_type"] == "trade")
        assert b_trade["trader_side"] == "TAKER" and b_trade["id"] == a_trade["id"]
        assert {m["owner"] for m in b_msgs} == {bob.creds["apiKey"]}
        sim.advance(6)  # MATCHED → MINED → CONFIRMED
        assert [m["status"] for m in drain_until_pong(socks["bob"])] == ["MINED", "CONFIRMED"]
    for t in (alice, bob, carol):
        t.close()


def test_user_channel_hangs_up_on_bad_credentials(sim: SimServer) -> None:
    with connect(f"{sim.ws_url}/ws/user") as ws:
        ws.send(json.dumps({"auth": {"apiKey": "x", "secret": "y", "passphrase": "z"}, "type": "user"}))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)


@needs_samples
def test_rtds_prices_and_whale_activity(sim: SimServer) -> None:
    subs = [
        {"topic": "activity", "type": "trades", "filters": json.dumps({"event_slug": sim.current_market()["slug"]})},
        {"topic": "crypto_prices", "type": "update", "filters": "btcusdt"},
        {"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"btc/usd"}'},
    ]
    with connect(f"{sim.ws_url}/rtds") as ws:
        ws.send(json.dumps({"action": "subscribe", "subscriptions": subs}))
        snapshot = recv(ws)
        assert (snapshot["topic"], snapshot["type"]) == ("crypto_prices", "subscribe")
        assert set(snapshot) == set(sample("rtds_crypto_prices_subscribe_snapshot.json")) | {"connection_id"}
        assert len(snapshot["payload"]["data"]) == 121
        sim.advance(15)
        msgs = drain_until_pong(ws, "ping")
    prices = [m for m in msgs if m["topic"] == "crypto_prices"]
    chainlink = [m for m in msgs if m["topic"] == "crypto_prices_chainlink"]
    activity = [m for m in msgs if m["topic"] == "activity"]
    assert len(prices) == len(chainlink) == 15
    assert set(prices[0]) == set(sample("rtds_crypto_prices_update.json")) | {"connection_id"}
    assert set(prices[0]["payload"]) == set(sample("rtds_crypto_prices_update.json")["payload"])
    assert isinstance(prices[0]["payload"]["value"], float) and isinstance(prices[0]["timestamp"], int)
    assert 50_000 < prices[0]["payload"]["value"] < 200_000 and chainlink[0]["payload"]["symbol"] == "btc/usd"
    whale = [a for a in activity if a["payload"]["proxyWallet"] == sim.whale_address]  # EIP-55 case on RTDS
    assert whale, "the whale trades every few seconds"
    rec = sample("rtds_activity_trades.json")[0]
    assert set(rec) == set(whale[0])
    assert set(whale[0]["payload"]) - {"fee"} == set(rec["payload"]) - {"fee"}
    assert whale[0]["payload"]["name"] == "distinct-baguette"


def test_ws_faults_malformed_frames_and_drops(sim: SimServer) -> None:
    sim.set_faults(ws_malformed_every=2)
    with connect(f"{sim.ws_url}/ws/market") as ws:
        for _ in range(4):
            ws.send("PING")
        frames = [ws.recv(timeout=5) for _ in range(6)]
    # Every 2nd frame is preceded by a cut-off JSON frame; nothing real is lost.
    assert [f if f == "PONG" else "BAD" for f in frames] == ["PONG", "BAD", "PONG", "PONG", "BAD", "PONG"]
    assert _not_json(frames[1]) and _not_json(frames[4])
    sim.clear_faults()
    sim.set_faults(ws_drop_every=0.2)
    with connect(f"{sim.ws_url}/ws/market") as ws, pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)  # nothing is sent until the sim hangs up after 0.2 s


def _not_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


def _subscribe_all(sim: SimServer, market: ClientConnection, rtds: ClientConnection) -> None:
    tokens = [t for m in sim.markets() if not m["closed"] for t in m["token_ids"]]
    market.send(json.dumps({"assets_ids": tokens, "type": "market", "custom_feature_enabled": True}))
    recv(market)  # the book dump
    subs = [
        {"topic": "crypto_prices", "type": "update", "filters": "btcusdt"},
        {"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"btc/usd"}'},
    ]
    rtds.send(json.dumps({"action": "subscribe", "subscriptions": subs}))
    recv(rtds)  # the price history


def test_http_advance_sends_what_the_venue_emits_in_order() -> None:
    """POST /_sim/advance lets the writers send a slice's frames (each connection's as one corked burst)
    before it answers: every frame still arrives, whole and in order, the same as a twin sim stepped
    directly sends (two slices here: 60 s + 15 s)."""
    import httpx

    got = []
    for over_http in (True, False):
        with (
            SimServer(seed=7, manual=True) as sim,
            connect(f"{sim.ws_url}/ws/market") as market,
            connect(f"{sim.ws_url}/rtds") as rtds,
        ):
            _subscribe_all(sim, market, rtds)
            if over_http:
                r = httpx.post(f"{sim.url}/_sim/advance", json={"seconds": 75}, timeout=30)
                assert r.status_code == 200 and r.json() == {"now": sim.now()}
            else:
                sim.advance(75)
            got.append((drain_until_pong(market), drain_until_pong(rtds, "ping")))
    (market_http, rtds_http), (market_direct, rtds_direct) = got
    assert len(rtds_http) == 2 * 75 and len(market_http) > 75  # a burst a second on both
    assert market_http == market_direct and rtds_http == rtds_direct


def test_a_burst_is_stamped_before_its_writes_and_when_it_leaves(sim: SimServer, market_ws: ClientConnection) -> None:
    """The benchmarks' frame stamps around a corked burst: `on_write` right before each frame is written,
    `on_send` once it has left, i.e. after the uncork."""
    from pmbot.sim.hub import StampedText

    market_ws.send("PING")
    assert market_ws.recv(timeout=5) == "PONG"  # registered with the hub
    events: list[str] = []

    def frames(tag: str) -> list[StampedText]:
        out = []
        for i in range(3):
            text = StampedText(json.dumps(f"{tag}{i}"))
            text.on_write = lambda n=f"{tag}{i}": events.append(f"write {n}")
            text.on_send = lambda n=f"{tag}{i}": events.append(f"sent {n}")
            out.append(text)
        return out

    def burst(v: Any) -> None:  # queued at once: the writer's own corked burst
        [conn] = v.hub.market
        for text in frames("a"):
            conn.push(text)

    sim.call(burst)
    assert [json.loads(market_ws.recv(timeout=5)) for _ in range(3)] == ["a0", "a1", "a2"]
    assert events == ["write a0", "write a1", "write a2", "sent a0", "sent a1", "sent a2"]
