"""The fast V2 signer against py-clob-client-v2 (the official client) on identical inputs."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from py_clob_client_v2.order_builder.builder import ROUNDING_CONFIG, OrderBuilder
from py_clob_client_v2.order_utils.exchange_order_builder_v2 import ExchangeOrderBuilderV2
from py_clob_client_v2.order_utils.model.order_data_v2 import OrderDataV2, order_to_json_v2
from py_clob_client_v2.order_utils.model.side import Side as LibSide
from py_clob_client_v2.signer import Signer

from pmbot.errors import InputError
from pmbot.polymarket.signing import (
    EXCHANGE_V2,
    NEG_RISK_EXCHANGE_V2,
    SIDE_BUY,
    SIDE_SELL,
    Amounts,
    OrderSigner,
    limit_amounts,
    market_amounts,
)

# Hardhat's first test account: public, holds nothing.
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"


def lib_sign(
    amounts: Amounts,
    side: int,
    salt: int,
    ts: int,
    neg_risk: bool,
    token: str = TOKEN,
    funder: str | None = None,
    sig_type: int = 0,
) -> dict:
    builder = ExchangeOrderBuilderV2(
        NEG_RISK_EXCHANGE_V2 if neg_risk else EXCHANGE_V2, 137, Signer(KEY, 137), generate_salt=lambda: str(salt)
    )
    signed = builder.build_signed_order(
        OrderDataV2(
            maker=funder or ADDRESS,
            signer=ADDRESS,
            tokenId=token,
            makerAmount=str(amounts.maker_amount),
            takerAmount=str(amounts.taker_amount),
            side=LibSide.BUY if side == SIDE_BUY else LibSide.SELL,
            signatureType=sig_type,
            timestamp=str(ts),
        )
    )
    return order_to_json_v2(signed, owner="api-key-uuid", order_type="GTC")


def test_known_vector_from_the_research_notes() -> None:
    signer = OrderSigner(KEY)
    assert signer.address == ADDRESS
    order = signer.sign(TOKEN, SIDE_BUY, Amounts(50_000_000, 100_000_000), salt=123456789, timestamp_ms=1700000000000)
    assert order.order_hash == "0x54fb63a3e2cadd2376911ff6a8d6cfb2c61b96838263144cd16a8493c5e1da3f"
    assert order.signature.startswith("0xe54f918304907e70df19a980")


@settings(max_examples=60, deadline=None)
@given(
    maker=st.integers(1, 10**12),
    taker=st.integers(1, 10**12),
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    salt=st.integers(0, 2**53),
    ts=st.integers(1_600_000_000_000, 1_900_000_000_000),
    neg_risk=st.booleans(),
    # V1 ids only: this builder is hard-wired to domain "2"; V2 position ids (domain "3") are
    # checked against polymarket-client in test_protocol_v2_signing.py.
    token=st.integers(1, 2**256 - 1).filter(lambda n: n & (((1 << 64) - 1) << 40) != 0).map(str),
    proxy=st.sampled_from([None, "0x" + "ab" * 20]),
)
def test_wire_body_is_byte_identical_to_py_clob_client_v2(maker, taker, side, salt, ts, neg_risk, token, proxy) -> None:
    sig_type = 0 if proxy is None else 2
    ours = OrderSigner(KEY, signature_type=sig_type, funder=proxy).sign(
        token, side, Amounts(maker, taker), neg_risk=neg_risk, salt=salt, timestamp_ms=ts
    )
    theirs = lib_sign(Amounts(maker, taker), side, salt, ts, neg_risk, token, proxy, sig_type)
    assert ours.to_wire("api-key-uuid", "GTC") == theirs


@pytest.mark.parametrize(
    ("tick", "side", "price", "size", "maker", "taker"),
    [  # vectors checked against the installed py-clob-client-v2
        ("0.01", SIDE_BUY, "0.50", "100", 50000000, 100000000),
        ("0.01", SIDE_BUY, "0.57", "10.123", 5768400, 10120000),
        ("0.01", SIDE_SELL, "0.57", "10.123", 10120000, 5768400),
        ("0.01", SIDE_SELL, "0.56", "5", 5000000, 2800000),
        ("0.001", SIDE_BUY, "0.123", "7.77", 955710, 7770000),
        ("0.0001", SIDE_BUY, "0.1234", "5.33", 657722, 5330000),
    ],
)
def test_limit_amounts(tick: str, side: int, price: str, size: str, maker: int, taker: int) -> None:
    assert limit_amounts(side, D(price), D(size), tick) == Amounts(maker, taker)


@settings(max_examples=200, deadline=None)
@given(
    tick=st.sampled_from(sorted(ROUNDING_CONFIG)),
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    steps=st.integers(1, 10_000),
    cents=st.integers(500, 1_000_000),
)
def test_limit_amounts_match_the_library_where_its_floats_are_exact(tick, side, steps, cents) -> None:
    t = D(tick)
    price = t * steps
    if not t <= price <= 1 - t:
        return
    size = D(cents) / 100
    ours = limit_amounts(side, price, size, tick)
    _side, lib_maker, lib_taker = OrderBuilder(Signer(KEY, 137)).get_order_amounts(
        LibSide.BUY if side == SIDE_BUY else LibSide.SELL, float(size), float(price), ROUNDING_CONFIG[tick]
    )
    # The library floors floats (10.13 * 100 = 1012.999…); where it does, ours is the exact one.
    if float(size) * 100 == int(float(size) * 100):
        assert (ours.maker_amount, ours.taker_amount) == (lib_maker, lib_taker)


def test_market_amounts_respect_server_precision() -> None:
    a = market_amounts(SIDE_BUY, D("10"), D("0.57"), "0.01")
    assert a == Amounts(10_000_000, 17_543_800)  # 17.5438 shares: 4 dp, rounded down; priced at 0.57 not 0.56
    b = market_amounts(SIDE_BUY, D("25"), D("0.333"), "0.001")
    assert b.taker_amount % 100 == 0  # at most 4 decimals (py-clob-client-v2 issue 99 sends 5)


@pytest.mark.parametrize(("price", "size"), [("0.555", "10"), ("0", "10"), ("1", "10"), ("0.5", "4.99")])
def test_bad_limit_orders_are_refused(price: str, size: str) -> None:
    with pytest.raises(InputError):
        limit_amounts(SIDE_BUY, D(price), D(size), "0.01")


def test_key_never_in_repr() -> None:
    s = OrderSigner(KEY)
    assert KEY[2:] not in repr(s) and ADDRESS in repr(s)
    with pytest.raises(InputError) as e:
        OrderSigner("0x" + "00" * 32)
    assert "00" * 32 not in e.value.one_line()
