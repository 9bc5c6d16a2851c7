"""Issue 11, items 2 and 6: one taker trade carries many makers (the venue's grouping), and the market
channel follows trades with a `book` snapshot that local books resync from."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from polymarket.models.clob.user_events import parse_user_event

from pmbot.polymarket.models import BookSnapshot
from pmbot.polymarket.schemas import rest, ws
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store.models import OrderStatus, OrderType, Query, Side
from tests.samples import load
from tests.test_executor import Rig, intent, rig  # noqa: F401  (fixture)

D = Decimal


def _inside_ask(sim: SimServer, token: str) -> D:
    """A price inside the spread on the ask side: only orders placed there rest at it."""
    book = sim.book(token)
    assert book is not None
    bid, ask = D(book["bids"][-1]["price"]), D(book["asks"][-1]["price"])
    assert ask - bid > D("0.01"), "the sim's spread is two ticks wide at this seed and time"
    return ask - D("0.01")


# -------------------------------------------------------------------------- 2. one trade, many makers


def test_recorded_many_maker_trade_parses_as_one_trade() -> None:
    raw = load("ws_user_trade_maker_many_makers_2024.json")
    ev = ws.user_trade(raw)
    t = ev.trade
    assert len(t.maker_orders) == 6 and sum(m.matched_amount for m in t.maker_orders) == t.size == D("1096.87")
    mine = t.maker_entry("0xb222c67c2d1e6c01eace5ca2b830cf3a0e6f5ef079270781e5ebd42a86722578")
    assert mine is not None and mine.matched_amount == D("394.46") and mine.price == D("0.518")
    cross = t.maker_entry("0x3b67d584e1e7ad29b06bda373449638898aa87f0c9fd52a34bdbfb1325a6c184")
    assert cross is not None and cross.price == D("0.482") and cross.token_id != t.token_id  # the other outcome


def test_sim_groups_one_taker_order_at_one_price_into_one_trade(sim: SimServer) -> None:
    m = sim.current_market()
    up = m["token_ids"][0]
    a, b, taker = (SimTrader(sim, k) for k in HARDHAT_KEYS)
    try:
        price = _inside_ask(sim, up)
        for t, n in ((a, 7), (b, 5)):
            sim.split(t.address, m["condition_id"], n)
            assert t.post_order(up, "SELL", price, D(n)).json()["status"] == "live"
        r = taker.post_order(up, "BUY", price, amount=D(12) * price, order_type="FOK").json()
        assert r["status"] == "matched" and D(r["takingAmount"]) == 12
        (trade_id,) = r["tradeIDs"]  # one trade, not one per maker
        (row,) = taker.get("/data/trades").json()["data"]
        assert row["id"] == trade_id and row["size"] == "12" and row["trader_side"] == "TAKER"
        assert sorted(mo["matched_amount"] for mo in row["maker_orders"]) == ["5", "7"]
        for maker, amount in ((a, "7"), (b, "5")):
            (seen,) = maker.get("/data/trades").json()["data"]
            assert seen["id"] == trade_id and seen["trader_side"] == "MAKER" and seen["maker_address"] == maker.address
            parsed = rest.user_trade(seen)
            own = next(mo for mo in parsed.maker_orders if mo.maker_address == maker.address.lower())
            assert own.matched_amount == D(amount)
        sim.advance(3)  # mined: OrderFilled logs, one per maker order and one for the taker's whole fill
        logs = [lg for lg in sim.chain_logs() if lg["transactionHash"] in {row["transaction_hash"]}]
        assert len(logs) == 3
        taker_log = next(lg for lg in logs if lg["topics"][1] == row["taker_order_id"])
        shares = int(taker_log["data"][2 + 64 * 3 : 2 + 64 * 4], 16)  # takerAmountFilled of a BUY: shares
        assert shares == 12 * 10**6
    finally:
        for t in (a, b, taker):
            t.close()


async def test_executor_taker_fill_against_many_makers_is_one_fill(rig: Rig) -> None:  # noqa: F811
    sim = rig.sim
    m = sim.current_market()
    up = m["token_ids"][0]
    makers = [SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])]
    try:
        price = _inside_ask(sim, up)
        for t in makers:
            sim.split(t.address, m["condition_id"], 5)
            assert t.post_order(up, "SELL", price, D(5)).json()["status"] == "live"
        ex = (await rig.executor(dry_run=False)).executor
        res = await ex.submit(intent(sim, "take", price=str(price), size="10", order_type=OrderType.FOK))
        assert res.status is OrderStatus.FILLED and res.filled_size == 10
        (trade,) = rig.store.list_trades(Query(dry_run=False))  # one taker trade, one fill
        assert trade.fill.size == 10 and trade.fill.liquidity == "taker" and trade.fill.price == price
        assert await ex.reconcile() == {}  # nothing left open, nothing counted twice
        assert len(rig.store.list_trades(Query(dry_run=False))) == 1
    finally:
        for t in makers:
            t.close()


async def test_executor_maker_fill_inside_a_many_maker_trade_counts_only_its_own(rig: Rig) -> None:  # noqa: F811
    sim = rig.sim
    m = sim.current_market()
    up = m["token_ids"][0]
    book = sim.book(up)
    assert book is not None
    price = D(book["bids"][-1]["price"]) + D("0.01")  # a new best bid
    ex = (await rig.executor(dry_run=False)).executor
    mine = await ex.submit(intent(sim, "mk", side=Side.BUY, price=str(price), size="6"))
    assert mine.status is OrderStatus.LIVE
    other, taker = SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])
    try:
        assert other.post_order(up, "BUY", price, D(5)).json()["status"] == "live"  # behind ours at the level
        sim.split(taker.address, m["condition_id"], 11)
        r = taker.post_order(up, "SELL", price, D(11)).json()
        assert r["status"] == "matched" and len(r["tradeIDs"]) == 1
    finally:
        other.close()
        taker.close()
    assert await ex.reconcile() == {"filled": 1}
    (fill,) = rig.store.list_trades(Query(dry_run=False))
    assert fill.fill.size == 6 and fill.fill.liquidity == "maker"  # our entry, not the trade's 11
    assert fill.fill.trade_id.startswith(r["tradeIDs"][0] + ":")


# ------------------------------------------------------------------------- 6. book after trades


def test_local_book_resyncs_from_a_book_message_mid_stream() -> None:
    from pmbot.polymarket.streams import MarketStream

    msgs = load("ws_market_messages_2026.json")
    books = [x for x in msgs if x["event_type"] == "book"]
    token = books[0]["asset_id"]
    stream = MarketStream("ws://127.0.0.1:9", [token])
    for x in msgs:
        stream._handle_one(x)
    last = [b for b in books if b["asset_id"] == token][-1]
    stream._handle_one(dict(last, bids=[{"price": "0.3", "size": "9"}], asks=[{"price": "0.9", "size": "1"}]))
    local = stream.books[token]
    assert local.synced and local.best_bid == D("0.3") and local.best_ask == D("0.9")  # replaced, not merged
    assert [lv.price for lv in local.bids()] == [D("0.3")]


async def test_sim_sends_a_book_after_a_trade_and_the_local_book_matches_rest(rig: Rig) -> None:  # noqa: F811
    sim = rig.sim
    up = sim.current_market()["token_ids"][0]
    stream = rig.venue.market_stream([up])
    snaps: list[BookSnapshot] = []

    async def pump() -> None:
        async for ev in stream:
            if isinstance(ev, BookSnapshot):
                snaps.append(ev)

    task = asyncio.create_task(pump())
    taker = SimTrader(sim, HARDHAT_KEYS[2])
    try:
        async with asyncio.timeout(10):
            while not snaps:  # the subscription's initial dump
                await asyncio.sleep(0.01)
            before = len(snaps)
            r = await asyncio.to_thread(taker.post_order, up, "BUY", D("0.99"), amount=D(5), order_type="FOK")
            assert r.json()["status"] == "matched"
            while len(snaps) == before:
                await asyncio.sleep(0.01)
        rest_book = sim.book(up)
        assert rest_book is not None
        local = stream.books[up]
        assert local.best_ask == D(rest_book["asks"][-1]["price"]) and local.best_bid == D(
            rest_book["bids"][-1]["price"]
        )
        assert snaps[-1].book.hash == rest_book["hash"]
    finally:
        taker.close()
        await stream.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_sim_many_maker_user_frames_parse_with_the_sdk(sim: SimServer) -> None:
    import json

    from websockets.sync.client import connect

    m = sim.current_market()
    up = m["token_ids"][0]
    a, b, taker = (SimTrader(sim, k) for k in HARDHAT_KEYS)
    try:
        with connect(f"{sim.ws_url}/ws/user") as u:
            u.send(json.dumps({"auth": taker.creds, "markets": [], "type": "user"}))
            u.send("PING")
            assert u.recv(timeout=5) == "PONG"
            price = _inside_ask(sim, up)
            for t in (a, b):
                sim.split(t.address, m["condition_id"], 5)
                t.post_order(up, "SELL", price, D(5))
            taker.post_order(up, "BUY", price, amount=D(10) * price, order_type="FOK")
            u.send("PING")
            frames = []
            while (raw := u.recv(timeout=5)) != "PONG":
                frames.append(json.loads(raw))
        trades = [parse_user_event(f) for f in frames if f.get("event_type") == "trade"]
        (trade,) = trades
        assert trade.type == "trade" and len(trade.payload.maker_orders or ()) == 2
    finally:
        for t in (a, b, taker):
            t.close()
