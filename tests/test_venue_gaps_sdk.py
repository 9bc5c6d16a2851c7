"""Issue 11, "done when": what the sim serves is read with the official SDK's own parsers and models
(polymarket-client, package `polymarket`): thousands of market- and user-channel frames over a
window's life (requotes, trades, a tick change past 0.96, resolution, a new window), and the REST
bodies of every CLOB route the SDK reads. A field the SDK requires that the sim leaves out, a type it
refuses, a status it does not know: each fails here."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import ExitStack
from decimal import Decimal
from typing import Any

import httpx
from polymarket._internal.actions.account import (
    parse_account_trades_page,
    parse_balance_allowance,
    parse_open_order,
    parse_open_orders_page,
)
from polymarket._internal.actions.auth import parse_api_key_creds, parse_api_keys_response
from polymarket._internal.actions.clob import (
    parse_last_trade_price,
    parse_midpoint,
    parse_order_book,
    parse_order_books,
    parse_price,
    parse_spread,
)
from polymarket._internal.actions.orders.cancel import parse_cancel_orders_response
from polymarket._internal.actions.orders.post import parse_order_response, parse_order_responses
from polymarket.models.clob.market_events import parse_market_event
from polymarket.models.clob.user_events import parse_user_event
from polymarket.models.gamma.event import Event as SdkEvent
from polymarket.models.gamma.market import Market as SdkMarket
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from pmbot.polymarket.schemas import rest, ws
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader

D = Decimal


def _drain(sock: Connection) -> list[Any]:
    """Every frame queued before the answer to a PING (the sim answers in order)."""
    sock.send("PING")
    out: list[Any] = []
    while (raw := sock.recv(timeout=10)) != "PONG":
        frame = json.loads(raw)
        out.extend(frame if isinstance(frame, list) else [frame])
    return out


def _inside(sim: SimServer, token: str) -> D:
    book = sim.book(token)
    assert book is not None and book["bids"] and book["asks"]
    bid, ask = D(book["bids"][-1]["price"]), D(book["asks"][-1]["price"])
    return ask - D("0.01") if ask - bid > D("0.01") else ask


def test_thousands_of_sim_frames_parse_with_the_sdk(sim: SimServer) -> None:
    m = sim.current_market()
    tokens = [t for x in sim.markets() if not x["closed"] for t in x["token_ids"]]
    traders = [SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])]
    market_frames: list[Any] = []
    user_frames: list[Any] = []
    with ExitStack() as stack:
        for t in traders:
            stack.callback(t.close)
        mws = stack.enter_context(connect(f"{sim.ws_url}/ws/market", max_size=None))
        mws.send(json.dumps({"assets_ids": tokens, "type": "market", "custom_feature_enabled": True}))
        users = []
        for t in traders:
            u = stack.enter_context(connect(f"{sim.ws_url}/ws/user"))
            u.send(json.dumps({"auth": t.creds, "markets": [], "type": "user"}))
            users.append(u)
        maker, taker = traders
        sim.split(maker.address, m["condition_id"], 200)
        up = m["token_ids"][0]
        seconds = int(m["end"] - sim.now()) + 600  # through resolution, a new window's creation, and on
        for s in range(seconds):
            if s % 25 == 0 and sim.now() < m["end"] - 10:
                price = _inside(sim, up)
                if D("0.02") <= price <= D("0.98"):
                    maker.post_order(up, "SELL", price, D(5))
                    taker.post_order(up, "BUY", price, amount=(D(5) * price).quantize(D("0.01")), order_type="FOK")
                    rest_id = maker.post_order(up, "BUY", D("0.01"), D(5)).json().get("orderID")
                    if rest_id:
                        maker.request("DELETE", "/order", {"orderID": rest_id})
            sim.advance(1)
            market_frames += _drain(mws)
            for u in users:
                user_frames += _drain(u)
    kinds: Counter[str] = Counter()
    for frame in market_frames:
        event = parse_market_event(frame)  # the SDK's own discriminated union: raises on a bad frame
        kinds[event.type] += 1
        ws.market_event(frame)  # and pmbot's parser reads the same frames
    assert len(market_frames) >= 3000, kinds
    assert {"book", "price_change", "last_trade_price", "best_bid_ask", "tick_size_change"} <= set(kinds), kinds
    assert {"market_resolved", "new_market"} <= set(kinds), kinds
    user_kinds: Counter[str] = Counter()
    for frame in user_frames:
        user_kinds[parse_user_event(frame).type] += 1
        ws.user_event(frame)
    assert user_kinds["order"] >= 10 and user_kinds["trade"] >= 10, user_kinds


def test_sim_rest_bodies_parse_with_the_sdk(sim: SimServer) -> None:
    m = sim.current_market()
    up, down = m["token_ids"]
    maker, taker = SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])
    try:
        sim.split(maker.address, m["condition_id"], 50)
        price = _inside(sim, up)
        resting = maker.post_order(up, "SELL", price, D(10)).json()
        placed = parse_order_response(resting)
        assert placed.ok
        fill = taker.post_order(up, "BUY", price, amount=(D(10) * price).quantize(D("0.01")), order_type="FOK")
        filled = parse_order_response(fill.json())
        assert filled.ok and filled.status == "matched" and filled.trade_ids
        refused = taker.post_order(up, "SELL", D("0.99"), D(1000))  # a 400 the SDK's transport raises on
        assert refused.status_code == 400 and "not enough balance / allowance" in refused.json()["error"]
        batch = [maker.order_body(up, "BUY", D("0.02"), D(5)), maker.order_body(down, "BUY", D("0.02"), D(5))]
        many = parse_order_responses(maker.request("POST", "/orders", batch).json())
        assert all(r.ok for r in many)
        open_page = parse_open_orders_page(maker.get("/data/orders").json())
        assert {o.status for o in open_page.items} == {"ORDER_STATUS_LIVE"}  # REST: the raw constant
        assert all(rest.open_order(r).status == "LIVE" for r in maker.get("/data/orders").json()["data"])
        one = parse_open_order(maker.get(f"/data/order/{many[0].order_id}").json())  # type: ignore[union-attr]
        assert one.id == many[0].order_id  # type: ignore[union-attr]
        trades = parse_account_trades_page(taker.get("/data/trades").json())
        assert trades.items and all(t.status == "MATCHED" for t in trades.items)  # the SDK strips the prefix
        cancel = parse_cancel_orders_response(
            maker.request("DELETE", "/order", {"orderID": many[0].order_id}).json()  # type: ignore[union-attr]
        )
        assert cancel.canceled == (many[0].order_id,)  # type: ignore[union-attr]
        bal = parse_balance_allowance(maker.get("/balance-allowance", asset_type="CONDITIONAL", token_id=up).json())
        assert bal.balance == 40 * 10**6  # 50 split, 10 sold
        assert parse_balance_allowance(maker.get("/balance-allowance", asset_type="COLLATERAL").json()).balance > 0
        assert maker.creds["apiKey"] in parse_api_keys_response(maker.get("/auth/api-keys").json())
    finally:
        maker.close()
        taker.close()
    with httpx.Client(base_url=sim.url) as c:
        book = parse_order_book(c.get("/book", params={"token_id": up}).json())
        assert book.bids and book.asks
        books = parse_order_books(c.post("/books", json=[{"token_id": up}, {"token_id": down}]).json())
        assert len(books) == 2
        assert parse_price(c.get("/price", params={"token_id": up, "side": "BUY"}).json()) > 0
        assert 0 < parse_midpoint(c.get("/midpoint", params={"token_id": up}).json()) < 1
        assert parse_spread(c.get("/spread", params={"token_id": up}).json()) > 0
        last = parse_last_trade_price(c.get("/last-trade-price", params={"token_id": up}).json())
        assert last is not None and last.side == "BUY"
        for raw in c.get("/gamma/markets", params={"closed": "false", "limit": "20"}).json():
            assert SdkMarket.parse_response(raw).condition_id == raw["conditionId"]
        for raw in c.get("/gamma/events", params={"limit": "5"}).json():
            SdkEvent.parse_response(raw)
        from pmbot.polymarket.auth import L1Signer

        l1 = L1Signer(HARDHAT_KEYS[0], 137, sim.now)
        derived = c.get("/auth/derive-api-key", headers=l1.headers()).json()
        assert parse_api_key_creds(derived).key == derived["apiKey"]
        created = c.post("/auth/api-key", headers=l1.headers()).json()
        assert parse_api_key_creds(created).key == derived["apiKey"]
