"""The sim checks domain "3" (ExchangeV3, V2 positions), domain "2" (V1 tokens) and deposit-wallet
(signature type 3) signatures with eth_account's generic encoder: pmbot's signer must agree with it,
and a signature under the wrong domain, by the wrong key or with a broken trailer is refused."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D

import pytest

from pmbot.polymarket import identity
from pmbot.polymarket.signing import EXCHANGE_V2, OrderSigner, domain_separator
from pmbot.sim.testing import SimServer, SimTrader

KEY = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a"  # Hardhat #5: public
OTHER = "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba"  # Hardhat #6
DEPOSIT_WALLET = "0x" + "d3" * 20


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(seed=31) as server:
        yield server


def _tokens(sim: SimServer) -> tuple[str, str]:
    v2 = sim.current_market()["token_ids"][0]
    v1 = next(m for m in sim.markets() if m["slug"] == "will-bitcoin-close-the-month-above-100k")["token_ids"][0]
    assert identity.protocol_of(v2) is identity.Protocol.V2 and identity.protocol_of(v1) is identity.Protocol.V1
    return v2, v1


def _trader(sim: SimServer, signer: OrderSigner) -> SimTrader:
    t = SimTrader(sim, KEY)
    t.signer = signer  # the API key stays the owner's (KEY)
    return t


def test_deposit_wallet_orders_rest_on_v2_and_v1_markets(sim: SimServer) -> None:
    t = _trader(sim, OrderSigner(KEY, signature_type=3, funder=DEPOSIT_WALLET))
    try:
        for token in _tokens(sim):
            r = t.post_order(token, "BUY", D("0.05"), D("10"))
            assert r.status_code == 200 and r.json()["status"] == "live", r.text
        bodies = sim.received_orders()
        assert [b["order"]["signatureType"] for b in bodies] == [3, 3]
        assert {b["order"]["signer"] for b in bodies} == {b["order"]["maker"] for b in bodies} == {DEPOSIT_WALLET}
    finally:
        t.close()


def test_eoa_orders_use_the_domain_their_id_selects(sim: SimServer) -> None:
    t = SimTrader(sim, KEY)
    try:
        for token in _tokens(sim):
            assert t.post_order(token, "BUY", D("0.05"), D("10")).json()["status"] == "live"
        # A V2 position signed under domain "2" (CTFExchangeV2) is not an ExchangeV3 order: refused.
        wrong = OrderSigner(KEY)
        wrong._domains[(True, False)] = domain_separator(EXCHANGE_V2)
        t.signer = wrong
        r = t.post_order(_tokens(sim)[0], "BUY", D("0.06"), D("10"))
        assert r.status_code == 400 and r.json() == {"error": "invalid signature"}
        assert len(sim.received_orders()) == 2
    finally:
        t.close()


@pytest.mark.parametrize("damage", ["other-key", "trailer", "signer-not-maker", "no-trailer"])
def test_broken_deposit_wallet_signatures_are_refused(sim: SimServer, damage: str) -> None:
    key = OTHER if damage == "other-key" else KEY
    t = _trader(sim, OrderSigner(key, signature_type=3, funder=DEPOSIT_WALLET))
    try:
        body = t.order_body(_tokens(sim)[0], "BUY", D("0.05"), D("10"))
        sig = body["order"]["signature"]
        if damage == "trailer":  # the contents hash in the trailer no longer matches the order
            body["order"]["signature"] = sig[:200] + ("0" if sig[200] != "0" else "1") + sig[201:]
        elif damage == "no-trailer":
            body["order"]["signature"] = sig[:132]
        elif damage == "signer-not-maker":
            body["order"]["signer"] = t.address
        r = t.request("POST", "/order", body)
        assert r.status_code == 400
        expected = "a deposit wallet order's signer has to be the wallet (the maker)"
        assert r.json() == {"error": expected if damage == "signer-not-maker" else "invalid signature"}
        assert sim.received_orders() == []
    finally:
        t.close()
