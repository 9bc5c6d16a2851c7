"""Issue 11, items 7, 8, 10: activity that is not a trade and placeholder names, closed markets that
still say accepting_orders, profiles per the SDK's model, the CLOB batch reads and JSON 404s.

pmbot's side from the recordings; the sim's side over real sockets, checked with the SDK's parsers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from polymarket._internal.actions.clob import (
    parse_last_trade_prices,
    parse_midpoints,
    parse_prices,
    parse_spreads,
)
from polymarket.models.gamma.profile import PublicProfile
from polymarket.models.gamma.search import Profile as SdkProfile

from pmbot.lookup import whois
from pmbot.polymarket.factory import Venue, build_venue
from pmbot.polymarket.schemas import rest
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from tests.samples import load
from tests.test_executor import FAST, settings_for

# --------------------------------------------------------------------------- 7. non-trade activity


def test_recorded_non_trade_activity_parses_as_cash_rows() -> None:
    rows = [rest.activity(r) for r in load("data_activity.json")]
    kinds = {a.type for a in rows}
    assert {"TRADE", "REDEEM", "REWARD", "MAKER_REBATE"} <= kinds
    for a in rows:
        if a.type == "TRADE":
            assert a.side is not None and a.token_id and a.price > 0
        else:  # price 0, asset "", side "", outcomeIndex 999
            assert a.side is None and a.token_id is None and a.price == 0 and a.size == a.usdc_size


def test_placeholder_names_are_no_names() -> None:
    rows = load("data_trades.json")
    placeholders = [r for r in rows if str(r.get("name", "")).startswith("0x")]
    assert placeholders, "the recording has a wallet without a username"
    for r in placeholders:
        assert rest.data_trade(r).name is None and rest.activity(r).name is None
    named = next(r for r in rows if r.get("name") and not str(r["name"]).startswith("0x"))
    assert rest.data_trade(named).name == named["name"]
    assert rest.display_name("0xabc-123") == "0xabc-123"  # only the exact placeholder form is dropped


@pytest.fixture
async def venue(sim: SimServer, tmp_path: Path) -> AsyncIterator[Venue]:
    v = build_venue(settings_for(sim, f"sqlite:///{tmp_path / 'v.db'}"), clock=sim.now, retry=FAST, timeout=2.0)
    yield v
    await v.aclose()


async def test_sim_activity_has_redeem_and_rebate_rows_and_whois_shows_them(sim: SimServer, venue: Venue) -> None:
    m = sim.current_market()
    up = m["token_ids"][0]
    maker, taker = SimTrader(sim, HARDHAT_KEYS[1]), SimTrader(sim, HARDHAT_KEYS[2])
    try:
        sim.split(maker.address, m["condition_id"], 20)  # holds 20 Up and 20 Down
        book = sim.book(up)
        assert book is not None
        ask = Decimal(book["asks"][-1]["price"])
        inside = ask - Decimal("0.01") if ask - Decimal(book["bids"][-1]["price"]) > Decimal("0.01") else ask
        assert maker.post_order(up, "SELL", inside, Decimal(10)).json()["status"] in ("live", "matched")
        took = taker.post_order(up, "BUY", inside, amount=Decimal(10) * inside, order_type="FOK").json()
        assert took["status"] == "matched"
        sim.advance(m["end"] - sim.now() + 90)  # resolved, redeemed, rebate paid
        report = await whois(venue, maker.address, 50)
    finally:
        maker.close()
        taker.close()
    kinds = [a["type"] for a in report["activity"]]
    assert "REDEEM" in kinds and "MAKER_REBATE" in kinds and "TRADE" in kinds
    redeem = next(a for a in report["activity"] if a["type"] == "REDEEM")
    assert redeem["side"] is None and redeem["token_id"] is None and redeem["price"] == 0
    assert redeem["size"] == redeem["usdc_size"] >= 10  # at least the 10 winning shares still held
    assert report["name"] is None  # the wallet has no username: its 0x…-ms placeholder is not shown as one
    async with httpx.AsyncClient(base_url=sim.url) as c:
        raw = (await c.get("/data-api/activity", params={"user": maker.address.lower()})).json()
        cash = [r for r in raw if r["type"] != "TRADE"]
        assert cash and all(r["outcomeIndex"] == 999 and r["asset"] == "" and r["price"] == 0 for r in cash)
        rebate = next(r for r in cash if r["type"] == "MAKER_REBATE")
        assert rebate["conditionId"] == "" and rebate["title"] == ""
        assert all(r["name"].startswith(maker.address + "-") for r in raw)  # 0x<Checksummed>-<ms>
        only = (await c.get("/data-api/activity", params={"user": maker.address, "type": "REDEEM"})).json()
        assert [r["type"] for r in only] == ["REDEEM"]


# ---------------------------------------------------------------------------------- 8. closed markets


def test_recorded_closed_markets_do_not_accept_orders() -> None:
    clob = rest.clob_market(load("clob_market_closed_2026.json"))
    gamma = rest.gamma_market(load("gamma_market_closed_resolved.json"))
    assert load("clob_market_closed_2026.json")["accepting_orders"] is True  # what the wire says
    assert clob.closed and not clob.accepting_orders
    assert gamma.closed and not gamma.accepting_orders
    open_one = rest.clob_market(dict(load("clob_market_closed_2026.json"), closed=False, enable_order_book=True))
    assert open_one.accepting_orders


async def test_sim_closed_market_says_accepting_and_pmbot_does_not_trust_it(sim: SimServer, venue: Venue) -> None:
    old = next(m for m in sim.markets() if m["closed"])
    async with httpx.AsyncClient(base_url=sim.url) as c:
        raw = (await c.get(f"/markets/{old['condition_id']}")).json()
        g = (await c.get("/gamma/markets", params={"slug": old["slug"]})).json()
    assert raw["closed"] is True and raw["accepting_orders"] is True and raw["enable_order_book"] is False
    assert g[0]["closed"] is True and g[0]["acceptingOrders"] is True
    parsed = await venue.clob.market(old["condition_id"])
    assert parsed.closed and not parsed.accepting_orders
    (gm,) = rest.gamma_markets(g)
    assert not gm.accepting_orders


# --------------------------------------------------------------------------- 10. profiles and routes


def test_sim_profiles_follow_the_sdk_models(sim: SimServer) -> None:
    whale = sim.whale_address.lower()
    image = "https://polymarket-upload.s3.us-east-2.amazonaws.com/profile-image-1.png"
    sim.call(lambda v: v.profiles[whale].update(profileImage=image))
    with httpx.Client(base_url=sim.url) as c:
        body = c.get("/gamma/public-search", params={"q": "distinct", "search_profiles": "true"}).json()
        (p,) = body["profiles"]
        sdk = SdkProfile.model_validate(p)
        assert sdk.profile_image_optimized is not None and sdk.profile_image_optimized.image_url_source == image
        assert sdk.wallet == whale and sdk.id
        assert rest.search_profiles(body)[0].proxy_wallet == whale
        pub = c.get("/gamma/public-profile", params={"address": whale}).json()
        public = PublicProfile.model_validate(pub)
        assert public.wallet == whale and public.name == p["name"] and public.users
        missing = c.get("/gamma/public-profile", params={"address": "0x" + "0" * 40})
        assert missing.status_code == 404 and missing.json()["error"]


def test_sim_batch_reads_parse_with_the_sdk(sim: SimServer) -> None:
    up, down = sim.current_market()["token_ids"]
    t = SimTrader(sim, HARDHAT_KEYS[2])
    try:
        assert t.post_order(up, "BUY", Decimal("0.99"), amount=Decimal(5), order_type="FOK").json()["status"]
    finally:
        t.close()
    book = sim.book(up)
    assert book is not None
    bid, ask = Decimal(book["bids"][-1]["price"]), Decimal(book["asks"][-1]["price"])
    with httpx.Client(base_url=sim.url) as c:
        prices = parse_prices(
            c.post("/prices", json=[{"token_id": up, "side": "BUY"}, {"token_id": up, "side": "SELL"}]).json()
        )
        assert prices[up] == {"BUY": bid, "SELL": ask}
        mids = parse_midpoints(c.post("/midpoints", json=[{"token_id": up}, {"token_id": down}]).json())
        assert mids[up] == (bid + ask) / 2 and set(mids) == {up, down}
        spreads = parse_spreads(c.post("/spreads", json=[{"token_id": up}]).json())
        assert spreads[up] == ask - bid
        (last,) = [x for x in parse_last_trade_prices(c.post("/last-trades-prices", json=[{"token_id": up}]).json())]
        assert last.asset_id == up and last.side == "BUY"
        hist = c.get("/prices-history", params={"market": up, "fidelity": "1"}).json()["history"]
        assert hist and all(isinstance(h["t"], int) and isinstance(h["p"], float | int) for h in hist)
        assert all(0 <= h["p"] <= 1 for h in hist)
        bad = c.post("/prices", json=[{"token_id": up, "side": "UP"}])
        assert bad.status_code == 400 and bad.json() == {"error": "Invalid side"}


def test_unknown_routes_answer_json(sim: SimServer) -> None:
    with httpx.Client(base_url=sim.url) as c:
        for path in ("/nope", "/gamma/nope", "/data-api/nope", "/data/nope"):
            r = c.get(path)
            assert r.status_code == 404 and r.headers["content-type"].startswith("application/json")
            assert r.json() == {"error": "not found"}
        r = c.put("/book")
        assert r.status_code == 405 and r.json()["error"]
        r = c.get("/book", params={"token_id": "1"})  # a route's own 404 keeps its message
        assert r.status_code == 404 and "orderbook" in r.json()["error"].lower()
