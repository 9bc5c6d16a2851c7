"""The fast signer's known vector and its amount rules against polymarket-client (the unified official
SDK). Signatures and wire bodies against the SDK, for V1 and V2 ids and signature types 0-3:
tests/test_protocol_v2_signing.py."""

from __future__ import annotations

import os
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polymarket._internal.actions.orders.context import _ROUNDING_BY_TICK
from polymarket._internal.actions.orders.limit import _compute_limit_order_amounts

from pmbot.errors import InputError
from pmbot.polymarket.signing import (
    ROUNDING,
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


def test_known_vector_from_the_research_notes() -> None:
    signer = OrderSigner(KEY)
    assert signer.address == ADDRESS
    order = signer.sign(TOKEN, SIDE_BUY, Amounts(50_000_000, 100_000_000), salt=123456789, timestamp_ms=1700000000000)
    assert order.order_hash == "0x54fb63a3e2cadd2376911ff6a8d6cfb2c61b96838263144cd16a8493c5e1da3f"
    assert order.signature.startswith("0xe54f918304907e70df19a980")


@pytest.mark.parametrize(
    ("tick", "side", "price", "size", "maker", "taker"),
    [  # vectors checked against py-clob-client-v2 1.2.1 and polymarket-client 0.14
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


@settings(max_examples=300, deadline=None)
@given(
    tick=st.sampled_from(sorted(ROUNDING)),
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    steps=st.integers(1, 10_000),
    size=st.decimals(5, 100_000, places=4),
)
def test_limit_amounts_are_polymarket_clients(tick: str, side: int, steps: int, size: D) -> None:
    """The SDK computes in Decimal (limit.py `_compute_limit_order_amounts`), so every on-grid order
    must come out the same, sizes with more places than the tick allows included (both round down)."""
    t = D(tick)
    price = t * steps
    if not t <= price <= 1 - t or size.quantize(D("0.01"), rounding="ROUND_DOWN") < 5:
        return
    ours = limit_amounts(side, price, size, tick)
    theirs = _compute_limit_order_amounts(
        price=price, size=size, side="BUY" if side == SIDE_BUY else "SELL", tick_size=t
    )
    assert (ours.maker_amount, ours.taker_amount) == theirs


def test_the_tick_table_is_the_sdks() -> None:
    assert {D(k): v for k, v in ROUNDING.items()} == {
        k: (c.price, c.size, c.amount) for k, c in _ROUNDING_BY_TICK.items()
    }


def test_market_amounts_respect_server_precision() -> None:
    a = market_amounts(SIDE_BUY, D("10"), D("0.57"), "0.01")
    assert a == Amounts(10_000_000, 17_543_800)  # 17.5438 shares: 4 dp, rounded down; priced at 0.57 not 0.56
    b = market_amounts(SIDE_BUY, D("25"), D("0.333"), "0.001")
    assert b.taker_amount % 100 == 0  # at most 4 decimals (py-clob-client-v2 issue 99 sent 5)


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


NOW_MS = 1_764_000_000_000


def test_salts_are_drawn_ahead_unique_and_below_the_timestamp() -> None:
    s = OrderSigner(KEY)
    salts = [s.sign(TOKEN, SIDE_BUY, Amounts(1_000_000, 5_000_000), timestamp_ms=NOW_MS + i).salt for i in range(600)]
    assert len(set(salts)) == len(salts)  # 600 draws of 40 bits: a repeat would be a broken pool
    assert all(0 <= x < 2**40 < NOW_MS for x in salts)
    # an explicit salt is used as given; a timestamp before 2**40 ms keeps the exact range below it
    assert s.sign(TOKEN, SIDE_BUY, Amounts(1, 2), salt=7, timestamp_ms=NOW_MS).salt == 7
    assert all(s.sign(TOKEN, SIDE_BUY, Amounts(1, 2), timestamp_ms=10).salt < 10 for _ in range(50))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_draws_its_own_salts() -> None:
    s = OrderSigner(KEY)
    s.sign(TOKEN, SIDE_BUY, Amounts(1, 2), timestamp_ms=NOW_MS)  # the pool is filled in the parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its first salt goes to the parent
        try:
            salt = s.sign(TOKEN, SIDE_BUY, Amounts(1, 2), timestamp_ms=NOW_MS).salt
            os.write(write, str(salt).encode())
        finally:
            os._exit(0)
    os.close(write)
    child = int(os.read(read, 64))
    os.close(read)
    os.waitpid(pid, 0)
    parent = s.sign(TOKEN, SIDE_BUY, Amounts(1, 2), timestamp_ms=NOW_MS).salt  # the pool's next, drawn before the fork
    assert child != parent


def test_an_unknown_side_is_refused() -> None:
    with pytest.raises(InputError, match="side 2"):
        OrderSigner(KEY).sign(TOKEN, 2, Amounts(1, 2), timestamp_ms=NOW_MS)
