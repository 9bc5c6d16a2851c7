"""The sim's REST surface over real sockets: every route answers in the recorded samples' shapes."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from pmbot.sim.testing import SimServer

SAMPLES = Path("/work/shared/polymarket-samples")
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason="recorded samples not available")


def sample(name: str) -> Any:
    return json.loads((SAMPLES / name).read_text())


@pytest.fixture
def http(sim: SimServer) -> httpx.Client:
    with httpx.Client(base_url=sim.url, timeout=10) as client:
        yield client


@needs_samples
def test_book_matches_the_recorded_shape_and_is_best_last(sim: SimServer, http: httpx.Client) -> None:
    up, down = sim.current_market()["token_ids"]
    book = http.get("/book", params={"token_id": up}).json()
    rec = sample("clob_book.json")
    assert list(book) == list(rec)  # same keys, same order
    for key in ("timestamp", "hash", "min_order_size", "tick_size", "last_trade_price"):
        assert isinstance(book[key], str)
    assert isinstance(book["neg_risk"], bool)
    assert len(book["hash"]) == 40
    bids = [Decimal(x["price"]) for x in book["bids"]]
    asks = [Decimal(x["price"]) for x in book["asks"]]
    assert bids == sorted(bids) and asks == sorted(asks, reverse=True)  # best level LAST on both sides
    assert bids[-1] < asks[-1]
    assert all(isinstance(x["size"], str) for x in book["bids"] + book["asks"])
    # The Down book mirrors the Up book: Up bid p ↔ Down ask 1 − p with the same size.
    mirror = http.get("/book", params={"token_id": down}).json()
    assert [(1 - Decimal(x["price"]), x["size"]) for x in mirror["asks"]] == [
        (Decimal(x["price"]), x["size"]) for x in book["bids"]
    ]


def test_book_hash_is_the_venues_sha1(sim: SimServer, http: httpx.Client) -> None:
    """The venue's book `hash`: SHA1 of the compact JSON summary in this key order with `hash` set
    to "" (py-clob-client-v2 1.2.1 `utilities.generate_orderbook_summary_hash`, which checked it;
    polymarket-client does not read it). Restated here so the check outlives that package."""
    book = http.get("/book", params={"token_id": sim.current_market()["token_ids"][0]}).json()
    keys = ("market", "asset_id", "timestamp", "hash", "bids", "asks", "min_order_size", "tick_size", "neg_risk")
    payload = {k: "" if k == "hash" else book[k] for k in (*keys, "last_trade_price")}
    payload["bids"] = [{"price": o["price"], "size": o["size"]} for o in book["bids"]]
    payload["asks"] = [{"price": o["price"], "size": o["size"]} for o in book["asks"]]
    serialized = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha1(serialized.encode(), usedforsecurity=False).hexdigest() == book["hash"]


def test_books_price_midpoint_and_market_parameters(sim: SimServer, http: httpx.Client) -> None:
    cur = sim.current_market()
    up, down = cur["token_ids"]
    book = http.get("/book", params={"token_id": up}).json()
    best_bid, best_ask = book["bids"][-1]["price"], book["asks"][-1]["price"]
    both = http.post("/books", json=[{"token_id": up}, {"token_id": down}]).json()
    assert [b["asset_id"] for b in both] == [up, down]
    assert http.get("/price", params={"token_id": up, "side": "BUY"}).json() == {"price": best_bid}
    assert http.get("/price", params={"token_id": up, "side": "SELL"}).json() == {"price": best_ask}
    mid = http.get("/midpoint", params={"token_id": up}).json()
    assert Decimal(mid["mid"]) == (Decimal(best_bid) + Decimal(best_ask)) / 2
    assert http.get("/tick-size", params={"token_id": up}).json() == {"minimum_tick_size": 0.01}
    assert http.get("/neg-risk", params={"token_id": up}).json() == {"neg_risk": False}
    assert http.get("/fee-rate", params={"token_id": up}).json() == {"base_fee": 1000}
    ltp = http.get("/last-trade-price", params={"token_id": up}).json()
    assert set(ltp) == {"price", "side"}
    info = http.get(f"/clob-markets/{cur['condition_id']}").json()
    assert info["fd"] == {"r": 0.07, "e": 1, "to": True}
    assert info["mos"] == 5 and info["mts"] == 0.01
    assert [t["t"] for t in info["t"]] == [up, down] and [t["o"] for t in info["t"]] == ["Up", "Down"]
    assert http.get("/time").json() == int(sim.now())
    assert http.get("/version").json() == {"version": 2}
    assert http.get("/ok").status_code == 200


def test_unknown_token_is_404_with_an_error_body(http: httpx.Client) -> None:
    r = http.get("/book", params={"token_id": "123"})
    assert r.status_code == 404 and set(r.json()) == {"error"}
    assert http.get("/tick-size", params={"token_id": "123"}).status_code == 404


@needs_samples
def test_clob_markets_are_cursor_paged_like_the_recording(sim: SimServer, http: httpx.Client) -> None:
    first = http.get("/markets").json()
    rec = sample("clob_markets_page_2024.json")
    assert set(first) == set(rec)
    assert first["next_cursor"] == "LTE="  # everything fits in one page
    assert first["count"] == len(first["data"]) == len(sim.markets())
    one = http.get(f"/markets/{sim.current_market()['condition_id']}").json()
    assert set(one) == set(sample("clob_market_closed_2026.json"))
    assert [t["outcome"] for t in one["tokens"]] == ["Up", "Down"]
    assert isinstance(one["minimum_tick_size"], float) and isinstance(one["minimum_order_size"], int)
    assert http.get("/markets", params={"next_cursor": "LTE="}).json()["data"] == []


@needs_samples
def test_gamma_market_shape_and_double_encoded_fields(sim: SimServer, http: httpx.Client) -> None:
    cur = sim.current_market()
    [m] = http.get("/gamma/markets", params={"slug": cur["slug"]}).json()
    assert set(sample("gamma_markets_by_slug.json")[0]) <= set(m)
    assert set(sample("gamma_market.json")) <= set(m)
    assert set(sample("gamma_markets_by_slug.json")[0]["events"][0]) <= set(m["events"][0])
    assert json.loads(m["clobTokenIds"]) == cur["token_ids"]
    assert json.loads(m["outcomes"]) == ["Up", "Down"]
    assert m["outcomes"] == '["Up", "Down"]'  # Gamma's json.dumps spacing
    assert sum(Decimal(p) for p in json.loads(m["outcomePrices"])) == 1
    assert m["slug"] == f"btc-updown-15m-{cur['start']}" and cur["start"] % 900 == 0
    assert m["question"].startswith("Bitcoin Up or Down - November 18, 6:00AM-6:15AM ET")
    assert m["eventStartTime"] == "2026-11-18T11:00:00Z" and m["endDate"] == "2026-11-18T11:15:00Z"
    assert m["feeSchedule"] == {"exponent": 1, "rate": 0.07, "takerOnly": True, "rebateRate": 0.2}
    assert m["orderPriceMinTickSize"] == 0.01 and m["orderMinSize"] == 5 and m["negRisk"] is False
    assert isinstance(m["bestBid"], float) and m["bestBid"] < m["bestAsk"]
    assert m["events"][0]["series"][0]["slug"] == "btc-up-or-down-15m"
    # A V2 market: Gamma shows the 31-byte condition id; the CLOB's 32-byte one is it + "00".
    assert m["version"] == "v2" and m["positionIds"] == cur["token_ids"]
    assert http.get(f"/gamma/markets/{m['id']}").json()["conditionId"] + "00" == cur["condition_id"]
    assert http.get(f"/gamma/markets/slug/{cur['slug']}").json()["id"] == m["id"]


def test_gamma_market_listing_filters_and_order(sim: SimServer, http: httpx.Client) -> None:
    open_ = http.get("/gamma/markets", params={"order": "endDate", "ascending": "true"}).json()
    # current + 3 upcoming + the standing V1 market; closed omitted = open only
    assert [m["closed"] for m in open_] == [False] * 5
    ends = [m["endDate"] for m in open_]
    assert ends == sorted(ends)
    closed = http.get("/gamma/markets", params={"closed": "true"}).json()
    assert len(closed) == 3 and all(json.loads(m["outcomePrices"]) in (["1", "0"], ["0", "1"]) for m in closed)
    window = http.get(
        "/gamma/markets",
        params={"end_date_min": "2026-11-18T11:15:00Z", "end_date_max": "2026-11-18T11:30:00Z", "closed": "false"},
    ).json()
    assert [m["endDate"] for m in window] == ["2026-11-18T11:15:00Z", "2026-11-18T11:30:00Z"]
    two = [m["slug"] for m in sim.markets()[:2]]
    by_slug = http.get("/gamma/markets", params=[("slug", two[0]), ("slug", two[1])]).json()
    assert sorted(m["slug"] for m in by_slug) == sorted(two)
    token = sim.current_market()["token_ids"][1]
    assert len(http.get("/gamma/markets", params={"clob_token_ids": token}).json()) == 1
    listed = [m["id"] for m in http.get("/gamma/markets").json()]
    assert [m["id"] for m in http.get("/gamma/markets", params={"limit": 2, "offset": 1}).json()] == listed[1:3]


@needs_samples
def test_gamma_events_and_public_search_find_the_whale(sim: SimServer, http: httpx.Client) -> None:
    cur = sim.current_market()
    [ev] = http.get("/gamma/events", params={"slug": cur["slug"]}).json()
    assert set(sample("gamma_event.json")) <= set(ev)
    assert ev["markets"][0]["conditionId"] + "00" == cur["condition_id"]  # Gamma: 31-byte V2 form
    assert http.get(f"/gamma/events/slug/{cur['slug']}").json()["id"] == ev["id"]
    found = http.get("/gamma/public-search", params={"q": "distinct-baguette", "search_profiles": "true"}).json()
    assert set(found) == set(sample("gamma_public_search_trimmed.json"))
    [profile] = found["profiles"]
    assert profile["name"] == "distinct-baguette"
    assert profile["proxyWallet"] == sim.whale_address.lower()
    plain = http.get("/gamma/public-search", params={"q": "bitcoin up or down"}).json()
    series = [m for m in sim.markets() if m["slug"].startswith("btc-updown-15m-")]  # not the V1 monthly market
    assert "profiles" not in plain and plain["pagination"]["totalResults"] == len(series)


@needs_samples
def test_data_api_rows_follow_the_recordings(sim: SimServer, http: httpx.Client) -> None:
    sim.advance(30)  # the whale trades every few seconds
    whale = sim.whale_address
    trades = http.get("/data-api/trades", params={"user": whale}).json()
    assert trades, "the whale should have traded within 30 s"
    row = trades[0]
    assert set(row) == set(sample("data_trades.json")[0])
    assert row["proxyWallet"] == whale.lower()
    assert isinstance(row["size"], int | float) and isinstance(row["price"], float)
    assert isinstance(row["timestamp"], int) and row["timestamp"] <= sim.now()
    assert [r["timestamp"] for r in trades] == sorted((r["timestamp"] for r in trades), reverse=True)
    activity = http.get("/data-api/activity", params={"user": whale}).json()
    assert set(activity[0]) == set(sample("data_activity_trades.json")[0])
    assert {a["type"] for a in activity} == {"TRADE"}
    assert abs(activity[0]["usdcSize"] - activity[0]["size"] * activity[0]["price"]) < 1e-6
    positions = http.get("/data-api/positions", params={"user": whale}).json()
    assert set(positions[0]) == set(sample("data_positions.json")[0])
    assert isinstance(positions[0]["eventId"], str) and len(positions[0]["endDate"]) == 10
    assert http.get("/data-api/activity").status_code == 400  # user is required
    everyone = http.get("/data-api/trades", params={"limit": 500}).json()
    assert len(everyone) >= len(trades)


def test_admin_state_and_manual_advance(sim: SimServer, http: httpx.Client) -> None:
    state = http.get("/_sim/state").json()
    assert state["manual_clock"] is True and state["whale"]["name"] == "distinct-baguette"
    assert state["current_market"] == sim.current_market()["slug"] and len(state["markets"]) == 8  # 7 windows + 1 V1
    before = sim.now()
    assert http.post("/_sim/advance", json={"seconds": 12}).json() == {"now": before + 12}
    assert http.get("/time").json() == int(before + 12)
    assert http.get("/_sim/state").json()["trades"] > 0  # the whale traded meanwhile
    assert http.post("/_sim/advance", json={"seconds": -1}).status_code == 400
