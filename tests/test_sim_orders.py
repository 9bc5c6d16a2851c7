"""Auth and trading on the sim over HTTP: L1/L2 checks, independent signature verification, order
types, cancels, order/trade queries, fees and HTTP faults."""

from __future__ import annotations

import base64
from decimal import Decimal as D

import httpx
import pytest
from eth_account import Account
from polymarket._internal.actions.auth import build_l1_auth_headers
from polymarket._internal.l1_auth import sign_api_key_auth

from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader

FOK_MSG = "order couldn't be fully filled. FOK orders are fully filled or killed."
FAK_MSG = "no orders found to match with FAK order. FAK orders are partially filled or killed if no match is found."


@pytest.fixture
def alice(sim: SimServer) -> SimTrader:
    t = SimTrader(sim, HARDHAT_KEYS[0])
    yield t
    t.close()


@pytest.fixture
def bob(sim: SimServer) -> SimTrader:
    t = SimTrader(sim, HARDHAT_KEYS[1])
    yield t
    t.close()


def tokens(sim: SimServer) -> tuple[str, str]:
    up, down = sim.current_market()["token_ids"]
    return up, down


def best(sim: SimServer, token: str) -> tuple[D, D]:
    book = sim.book(token)
    assert book is not None
    return D(book["bids"][-1]["price"]), D(book["asks"][-1]["price"])


def size_at(sim: SimServer, token: str, side: str, price: D) -> D:
    book = sim.book(token)
    assert book is not None
    return sum((D(x["size"]) for x in book[side] if D(x["price"]) == price), D(0))


# -- L1 / L2 auth -------------------------------------------------------------------------------
def l1_headers(key: str, *, nonce: int, timestamp: int) -> dict[str, str]:
    """L1 headers as polymarket-client (the official SDK) builds them."""
    return build_l1_auth_headers(
        sign_api_key_auth(Account.from_key(key), chain_id=137, timestamp=timestamp, nonce=nonce)
    )


def test_l1_create_and_derive_give_the_same_deterministic_creds(sim: SimServer) -> None:
    headers = l1_headers(HARDHAT_KEYS[0], nonce=0, timestamp=int(sim.now()))
    created = httpx.post(f"{sim.url}/auth/api-key", headers=headers).json()
    derived = httpx.get(f"{sim.url}/auth/derive-api-key", headers=headers).json()
    assert created == derived and set(created) == {"apiKey", "secret", "passphrase"}
    assert len(base64.urlsafe_b64decode(created["secret"])) == 32
    assert created == sim.creds(Account.from_key(HARDHAT_KEYS[0]).address, 0)
    other_nonce = httpx.get(
        f"{sim.url}/auth/derive-api-key", headers=l1_headers(HARDHAT_KEYS[0], nonce=1, timestamp=1)
    ).json()
    assert other_nonce["apiKey"] != created["apiKey"]


def test_l1_rejects_a_signature_from_another_wallet_and_missing_headers(sim: SimServer) -> None:
    headers = l1_headers(HARDHAT_KEYS[1], nonce=0, timestamp=1)
    headers["POLY_ADDRESS"] = Account.from_key(HARDHAT_KEYS[0]).address  # claims alice, signed by bob
    r = httpx.post(f"{sim.url}/auth/api-key", headers=headers)
    assert r.status_code == 401 and r.json() == {"error": "Invalid L1 Request headers"}
    assert httpx.post(f"{sim.url}/auth/api-key").status_code == 401


def test_l2_accepts_a_valid_hmac_and_rejects_tampering(sim: SimServer, alice: SimTrader) -> None:
    assert alice.get("/data/orders").json()["data"] == []
    for breaker in (
        {"POLY_SIGNATURE": "AAAA" + alice.l2_headers("GET", "/data/orders")["POLY_SIGNATURE"][4:]},
        {"POLY_PASSPHRASE": "wrong"},
        {"POLY_ADDRESS": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
        {"POLY_API_KEY": "00000000-0000-0000-0000-000000000000"},
    ):
        headers = {**alice.l2_headers("GET", "/data/orders"), **breaker}
        r = alice.http.get("/data/orders", headers=headers)
        assert r.status_code == 401 and r.json() == {"error": "Unauthorized/Invalid api key"}
    # The HMAC covers the path without the query, as polymarket-client signs it.
    assert alice.get("/data/orders", market="0x00").status_code == 200


# The official SDK (polymarket-client) trading on the sim: tests/test_protocol_v2_sdk_sim.py.


# -- signature and order validation ------------------------------------------------------------
def test_a_tampered_order_is_rejected_and_never_placed(sim: SimServer, alice: SimTrader) -> None:
    up, _ = tokens(sim)
    body = alice.order_body(up, "BUY", D("0.30"), D("10"))
    body["order"]["makerAmount"] = str(int(body["order"]["makerAmount"]) + 1_000_000)
    r = alice.request("POST", "/order", body)
    assert r.status_code == 400 and r.json() == {"error": "invalid signature"}
    assert sim.received_orders() == []


def test_signer_and_owner_must_belong_to_the_api_key(sim: SimServer, alice: SimTrader, bob: SimTrader) -> None:
    up, _ = tokens(sim)
    bobs_order = bob.order_body(up, "BUY", D("0.30"), D("10"))
    bobs_order["owner"] = alice.creds["apiKey"]
    r = alice.request("POST", "/order", bobs_order)
    assert r.json() == {"error": "the order signer address has to be the address of the API KEY"}
    mine = alice.order_body(up, "BUY", D("0.30"), D("10"))
    mine["owner"] = bob.creds["apiKey"]
    assert alice.request("POST", "/order", mine).json() == {
        "error": "the order owner has to be the owner of the API KEY"
    }


def test_tick_size_minimum_size_duplicates_and_unknown_tokens(sim: SimServer, alice: SimTrader) -> None:
    up, _ = tokens(sim)
    r = alice.request("POST", "/order", body := alice.order_body(up, "BUY", D("0.305"), D("10"), tick="0.001"))
    oid = r.json()["error"].split()[1]
    assert r.status_code == 400
    assert r.json() == {"error": f"order {oid} is invalid. Price (0.305) breaks minimum tick size rule: 0.01"}
    assert oid.startswith("0x") and len(oid) == 66
    small = alice.order_body(up, "BUY", D("0.30"), D("5"))
    small["order"]["takerAmount"], small["order"]["makerAmount"] = "4000000", "1200000"
    # Re-sign through the trader is not possible with size < 5 (our signer refuses), so sign by hand:
    from pmbot.polymarket.signing import SIDE_BUY, Amounts

    signed = alice.signer.sign(up, SIDE_BUY, Amounts(1_200_000, 4_000_000), timestamp_ms=1, salt=1)
    r = alice.request("POST", "/order", signed.to_wire(alice.creds["apiKey"], "GTC"))
    assert r.json() == {"error": f"order {signed.order_hash} is invalid. Size (4) lower than the minimum: 5"}
    ok = alice.order_body(up, "BUY", D("0.30"), D("10"))
    first = alice.request("POST", "/order", ok).json()
    assert first["status"] == "live"
    assert alice.request("POST", "/order", ok).json() == {"error": f"order {first['orderID']} is invalid. Duplicated."}
    unknown = alice.order_body("1234567890", "BUY", D("0.30"), D("10"))
    assert alice.request("POST", "/order", unknown).status_code == 404
    assert body  # the tick-rule order was signed for real (the error is the venue's, not ours)


# -- order types --------------------------------------------------------------------------------
def test_gtc_rests_on_the_book_until_canceled(sim: SimServer, alice: SimTrader) -> None:
    up, down = tokens(sim)
    bid, _ = best(sim, up)
    price = bid - D("0.02")
    before = size_at(sim, up, "bids", price)
    resp = alice.post_order(up, "BUY", price, D("12.5")).json()
    assert resp == {
        "errorMsg": "",
        "orderID": resp["orderID"],
        "takingAmount": "",
        "makingAmount": "",
        "status": "live",
        "success": True,
    }
    assert size_at(sim, up, "bids", price) == before + D("12.5")
    assert size_at(sim, down, "asks", 1 - price) == before + D("12.5")  # mirrored on the Down book
    [row] = alice.get("/data/orders").json()["data"]
    assert row["id"] == resp["orderID"] and row["status"] == "ORDER_STATUS_LIVE" and row["original_size"] == "12.5"
    assert row["price"] == str(price.normalize()) and row["outcome"] == "Up" and row["order_type"] == "GTC"
    r = alice.request("DELETE", "/order", {"orderID": resp["orderID"]}).json()
    assert r == {"not_canceled": {}, "canceled": [resp["orderID"]]}
    assert size_at(sim, up, "bids", price) == before
    again = alice.request("DELETE", "/order", {"orderID": resp["orderID"]}).json()
    assert again["canceled"] == [] and resp["orderID"] in again["not_canceled"]
    assert alice.get(f"/data/order/{resp['orderID']}").json()["status"] == "ORDER_STATUS_CANCELED"


def test_fok_fills_completely_or_not_at_all(sim: SimServer, bob: SimTrader) -> None:
    up, _ = tokens(sim)
    _, ask = best(sim, up)
    ask_size = size_at(sim, up, "asks", ask)
    book_before = sim.book(up)
    too_big = bob.post_order(up, "BUY", ask, amount=(ask_size + 50) * ask, order_type="FOK")
    assert too_big.status_code == 400 and too_big.json() == {"error": FOK_MSG}
    assert sim.book(up)["asks"] == book_before["asks"]  # killed: nothing traded
    spend = (D(10) * ask).quantize(D("0.01"))
    r = bob.post_order(up, "BUY", ask, amount=spend, order_type="FOK").json()
    assert r["status"] == "matched" and r["success"] is True and r["errorMsg"] == ""
    assert D(r["makingAmount"]) <= spend and D(r["takingAmount"]) * ask == D(r["makingAmount"])
    assert len(r["transactionsHashes"]) == 1 and len(r["tradeIDs"]) == 1
    assert size_at(sim, up, "asks", ask) == ask_size - D(r["takingAmount"])
    [trade] = bob.get("/data/trades").json()["data"]
    assert (
        trade["id"] == r["tradeIDs"][0]
        and trade["trader_side"] == "TAKER"
        and trade["status"] == "TRADE_STATUS_MATCHED"
    )
    assert bob.get(f"/data/order/{r['orderID']}").json()["status"] == "ORDER_STATUS_MATCHED"


def test_marketable_orders_have_a_dollar_minimum_not_the_share_minimum(sim: SimServer, bob: SimTrader) -> None:
    """As the venue: a FOK/FAK needs $1 (a BUY's signed USDC), only an order that can rest needs 5 shares."""
    token, ask = max(((t, best(sim, t)[1]) for t in tokens(sim)), key=lambda ta: ta[1])  # ask >= ~0.5
    r = bob.post_order(token, "BUY", ask, amount=D("1.20"), order_type="FAK").json()
    assert r["status"] == "matched" and D(r["takingAmount"]) < 5
    r = bob.post_order(token, "BUY", ask, amount=D("0.99"), order_type="FAK")
    assert r.status_code == 400 and "lower than the minimum: 1" in r.json()["error"]


def test_fak_takes_what_is_there_and_fails_when_nothing_crosses(sim: SimServer, bob: SimTrader) -> None:
    up, _ = tokens(sim)
    bid, ask = best(sim, up)
    top = size_at(sim, up, "asks", ask)
    # Worst price = the best ask, budget for more than that level holds: partial fill at one level.
    r = bob.post_order(up, "BUY", ask, amount=((top + 100) * ask).quantize(D("0.01")), order_type="FAK").json()
    assert r["status"] == "matched" and D(r["takingAmount"]) == top
    none = bob.post_order(up, "BUY", bid - D("0.05"), amount=D("10"), order_type="FAK")
    assert none.status_code == 400 and none.json() == {"error": FAK_MSG}
    sell = bob.post_order(up, "SELL", bid, amount=D("7"), order_type="FAK").json()
    assert sell["status"] == "matched" and sell["makingAmount"] == "7"
    assert D(sell["takingAmount"]) == 7 * bid


def test_post_only_never_takes(sim: SimServer, alice: SimTrader) -> None:
    up, _ = tokens(sim)
    bid, ask = best(sim, up)
    crossing = alice.post_order(up, "BUY", ask, D("10"), post_only=True)
    assert crossing.status_code == 400 and crossing.json() == {"error": "invalid post-only order: order crosses book"}
    assert alice.post_order(up, "BUY", bid, D("10"), post_only=True).json()["status"] == "live"


def test_a_down_buy_matches_up_bids_at_the_mirrored_price(sim: SimServer, bob: SimTrader) -> None:
    up, down = tokens(sim)
    up_bid, _ = best(sim, up)
    _, down_ask = best(sim, down)
    assert down_ask == 1 - up_bid
    r = bob.post_order(down, "BUY", down_ask, amount=D("5") * down_ask * 2, order_type="FOK").json()
    assert r["status"] == "matched"
    [trade] = bob.get("/data/trades").json()["data"]
    assert trade["asset_id"] == down and D(trade["price"]) == down_ask
    assert trade["maker_orders"][0]["asset_id"] == up and D(trade["maker_orders"][0]["price"]) == up_bid


def test_makers_and_takers_see_their_own_side_and_fees_are_taker_only(
    sim: SimServer, alice: SimTrader, bob: SimTrader
) -> None:
    up, _ = tokens(sim)
    bid, ask = best(sim, up)
    inside = ask - D("0.01") if ask - bid > D("0.01") else ask
    sim.split(alice.address, sim.current_market()["condition_id"], 20)  # the venue sells only shares held
    rest = alice.post_order(up, "SELL", inside, D("20")).json()
    assert rest["status"] in ("live", "matched")
    take = bob.post_order(up, "BUY", inside, amount=(D(20) * inside), order_type="FOK").json()
    assert take["status"] == "matched"
    alice_view = alice.get("/data/trades").json()["data"]
    bob_view = bob.get("/data/trades").json()["data"]
    assert [t["trader_side"] for t in alice_view] == ["MAKER"] and [t["trader_side"] for t in bob_view] == ["TAKER"]
    assert alice_view[0]["id"] == bob_view[0]["id"]
    assert alice_view[0]["maker_orders"][0]["order_id"] == rest["orderID"]
    fee, shares, price = sim.call(lambda v: (lambda t: (t.fee, t.size, t.price))(v.engine.trades[bob_view[0]["id"]]))
    assert fee == (shares * D("0.07") * price * (1 - price)).quantize(D("0.00001"))
    assert alice.get(f"/data/order/{rest['orderID']}").json()["status"] == "ORDER_STATUS_MATCHED"


def test_batch_orders_and_batch_cancels(sim: SimServer, alice: SimTrader) -> None:
    up, down = tokens(sim)
    bid, _ = best(sim, up)
    good = [alice.order_body(up, "BUY", bid - D("0.03"), D("10")), alice.order_body(down, "BUY", D("0.05"), D("10"))]
    bad = alice.order_body(up, "BUY", D("0.2"), D("10"))
    bad["order"]["signature"] = "0x" + "11" * 65
    out = alice.request("POST", "/orders", [*good, bad]).json()
    assert [o["success"] for o in out] == [True, True, False] and out[2]["errorMsg"] == "invalid signature"
    too_many = alice.request("POST", "/orders", [good[0]] * 16)
    assert too_many.status_code == 400 and too_many.json() == {
        "error": "Too many orders in payload: 16, max allowed: 15"
    }
    ids = [o["orderID"] for o in out[:2]]
    assert alice.request("DELETE", "/orders", [ids[0]]).json()["canceled"] == [ids[0]]
    more = alice.request("POST", "/orders", [alice.order_body(up, "BUY", D("0.02"), D("10"))]).json()
    by_market = alice.request("DELETE", "/cancel-market-orders", {"asset_id": down}).json()
    assert by_market["canceled"] == [ids[1]]
    assert alice.request("DELETE", "/cancel-all").json()["canceled"] == [more[0]["orderID"]]
    assert alice.get("/data/orders").json()["data"] == []


# -- faults -------------------------------------------------------------------------------------
def test_rate_limit_server_error_and_path_specific_faults(sim: SimServer) -> None:
    up, _ = tokens(sim)
    sim.set_faults(rate_limit=2, retry_after=3)
    for _ in range(2):
        r = httpx.get(f"{sim.url}/book", params={"token_id": up})
        assert r.status_code == 429 and r.headers["Retry-After"] == "3" and r.json() == {"error": "Too Many Requests"}
    assert httpx.get(f"{sim.url}/book", params={"token_id": up}).status_code == 200
    sim.set_faults(server_error=1, server_error_path="/midpoint")
    assert httpx.get(f"{sim.url}/book", params={"token_id": up}).status_code == 200  # other paths unaffected
    assert httpx.get(f"{sim.url}/midpoint", params={"token_id": up}).status_code == 500
    assert httpx.get(f"{sim.url}/midpoint", params={"token_id": up}).status_code == 200
    r = httpx.post(f"{sim.url}/_sim/faults", json={"rate_limit": 1, "latency_ms": 1})
    assert r.json()["rate_limit"] == 1
    assert httpx.post(f"{sim.url}/_sim/faults", json={"clear": True}).json()["rate_limit"] == 0
    assert httpx.post(f"{sim.url}/_sim/faults", json={"nope": 1}).status_code == 400


def test_an_accepted_order_whose_response_never_arrives_exists(sim: SimServer, alice: SimTrader) -> None:
    up, _ = tokens(sim)
    sim.set_faults(drop_order_responses=1)
    body = alice.order_body(up, "BUY", D("0.10"), D("10"))
    with pytest.raises(httpx.TransportError):
        alice.request("POST", "/order", body)
    [row] = alice.get("/data/orders").json()["data"]
    assert row["price"] == "0.1" and row["status"] == "ORDER_STATUS_LIVE"
    # Only the next POST /order was affected.
    assert alice.post_order(up, "BUY", D("0.11"), D("10")).json()["status"] == "live"
