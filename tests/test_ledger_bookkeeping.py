"""pmbot.store.ledger's fill bookkeeping, the one copy both SQL backends call: book_fills (positions,
marks, trade rows), load_books / position_rows (the row round trip) and the settlement helpers."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.errors import InputError
from pmbot.store import ledger, rows
from pmbot.store.models import Fill, Position, PositionState, Side, TradeKind

T0 = 1_795_000_000_000


def fill(n: int, side: Side, price: str, size: str, *, token: str = "tok", fee: str = "0", kind=TradeKind.FILL) -> Fill:
    return Fill(
        trade_id=f"t{n}",
        strategy="snipe",
        token_id=token,
        condition_id="0xc" if n == 0 else "",
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        dry_run=True,
        ts=T0 + n,
        market="m" if n == 0 else "",
        outcome="Up",
        kind=kind,
    )


FILLS = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 99).map(lambda c: f"0.{c:02d}"),
        st.integers(1, 5000).map(lambda c: str(D(c) / 100)),
        st.sampled_from(["a", "b"]),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(spec=FILLS)
def test_book_fills_is_ledger_apply_in_order_and_round_trips(spec) -> None:
    batch = [fill(i, side, price, size, token=tok) for i, (side, price, size, tok) in enumerate(spec)]
    micros = [rows.fill_micros(f) for f in batch]
    books: dict = {}
    meta: dict = {}
    trades, positions = ledger.book_fills(batch, micros, books, meta)
    expect: dict[str, ledger.Book] = {}
    for f, (p, s, fee) in zip(batch, micros, strict=True):
        ledger.apply(expect.setdefault(f.token_id, ledger.Book()), f.side, f.kind, p, s, fee)
    assert {k[1]: b for k, b in books.items()} == expect
    assert [t[0] for t in trades] == [f.trade_id for f in batch]
    # position rows read back (BOOK_COLUMNS order) give the same books: the next batch starts from them
    cols = [c.strip() for c in rows.POSITION_COLUMNS.split(",")]
    as_rows = [dict(zip(cols, r, strict=True)) for r in positions]
    book_cols = [c.strip() for c in rows.BOOK_COLUMNS.split(",")]
    again, again_meta = ledger.load_books([tuple(r[c] for c in book_cols) for r in as_rows])
    assert again == books and again_meta == meta
    for k, m in meta.items():
        assert m["updated_at"] == max(f.ts for f in batch if f.token_id == k[1])
        last = [mi[0] for f, mi in zip(batch, micros, strict=True) if f.token_id == k[1]][-1]
        assert m["mark"] == last


def test_existing_skips_known_and_repeated_trade_ids() -> None:
    a, b = fill(1, Side.BUY, "0.50", "10"), fill(2, Side.BUY, "0.60", "10")
    batch = [a, b, a]
    existing = {"t2"}
    trades, positions = ledger.book_fills(batch, [rows.fill_micros(f) for f in batch], {}, {}, existing)
    assert [t[0] for t in trades] == ["t1"] and existing == {"t1", "t2"}
    assert positions[0][6] == 10_000_000  # size_micro: one fill of 10, not two


def test_meta_keeps_known_names_reopens_and_redeem_is_no_mark() -> None:
    batch = [
        fill(0, Side.BUY, "0.40", "10"),
        fill(1, Side.SELL, "0.50", "10"),
        fill(2, Side.BUY, "0.30", "5"),
        fill(3, Side.SELL, "1", "5", kind=TradeKind.REDEEM),
    ]
    books: dict = {}
    meta: dict = {}
    ledger.book_fills(batch, [rows.fill_micros(f) for f in batch], books, meta)
    ((k, m),) = meta.items()
    assert (m["condition_id"], m["market"], m["opened_at"]) == ("0xc", "m", T0 + 2)  # re-opened at t2
    assert m["mark"] == 300_000  # the last fill's price, not the payout
    assert books[k].state is PositionState.RESOLVED and books[k].realized == 1_000_000 + 3_500_000


def test_an_impossible_trade_names_the_fill() -> None:
    bad = fill(7, Side.BUY, "0.5", "1", kind=TradeKind.REDEEM)
    with pytest.raises(InputError, match="fill t7"):
        ledger.book_fills([bad], [rows.fill_micros(bad)], {}, {})


def test_redemptions_take_the_next_free_id_and_owe_live_payouts() -> None:
    p = Position(
        strategy="s", token_id="tok", dry_run=False, size=D("10"), cost=D("4"), realized_pnl=D(0),
        state=PositionState.OPEN, condition_id="0xc", market="m", outcome="Up",
    )  # fmt: skip
    first = ledger.redemption(p, D(1), T0)
    assert first.trade_id == "redeem:s:tok:0" and first.metadata == {"redeemable": True}
    taken = {"redeem:s:tok:0", "redeem:s:tok:0:2"}
    (again,) = ledger.unpaid_redemptions([first], lambda ids: {i for i in ids if i in taken})
    assert again.trade_id == "redeem:s:tok:0:3"
    assert ledger.redeemable_owed([again], D(1)) == [(10_000_000, "s", "tok")]
    assert ledger.redeemable_owed([again], D(0)) == []
    paper = ledger.redemption(dataclasses.replace(p, dry_run=True), D(1), T0)
    assert ledger.redeemable_owed([paper], D(1)) == [] and "redeemable" not in paper.metadata
