from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmbot.money import div_round, fmt, from_micro, mul_micro, to_micro
from pmbot.store import ledger
from pmbot.store.models import PositionState, Side, TradeKind


def test_micro_round_trip_and_refusals() -> None:
    assert to_micro("0.97") == 970_000 and from_micro(970_000) == D("0.97")
    with pytest.raises(ValueError, match="6 decimal"):
        to_micro("0.0000001")
    assert to_micro("0.0000005", exact=False) == 0 and to_micro("0.0000015", exact=False) == 2
    with pytest.raises(TypeError):
        to_micro(0.1)  # type: ignore[arg-type]
    assert fmt(D("10.500000")) == "10.5" and fmt(D("100")) == "100" and fmt(D("0.5"), 2) == "0.50"


@given(st.integers(-(10**15), 10**15), st.integers(1, 10**12))
def test_div_round_is_half_even(n: int, d: int) -> None:
    exact = D(n) / D(d)
    assert div_round(n, d) == int(exact.quantize(D(1), rounding="ROUND_HALF_EVEN"))


@given(st.integers(0, 10**6), st.integers(0, 10**12))
def test_mul_micro_matches_decimal(price: int, size: int) -> None:
    exact = from_micro(price) * from_micro(size)
    assert from_micro(mul_micro(price, size)) == exact.quantize(D("0.000001"), rounding="ROUND_HALF_EVEN")


trades = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 10**6), st.integers(1, 10**9), st.integers(0, 10**5)
    ),
    max_size=40,
)


@given(trades)
def test_ledger_conserves_cash(seq: list[tuple[Side, int, int, int]]) -> None:
    """Realized PnL + cost still held == sells - buys - fees, exactly; size never negative."""
    book = ledger.Book()
    cash = 0
    for side, price, size, fee in seq:
        notional, _ = ledger.apply(book, side, TradeKind.FILL, price, size, fee)
        cash += (notional if side is Side.SELL else -notional) - fee
        assert book.size >= 0 and book.cost >= 0
        assert book.size > 0 or book.cost == 0  # no cost basis without shares
        if side is Side.SELL and book.size == 0:
            assert book.state is PositionState.CLOSED
    assert book.realized - book.cost == cash
