"""LocalBook: snapshots, level updates (size = new total, 0 removes), queries, and a property test
against a plain dict model."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.polymarket.book import LocalBook
from pmbot.polymarket.models import BookLevel, LevelChange, OrderBook, Side
from pmbot.polymarket.schemas import ws
from tests.samples import load

TOKEN = "23305969272951306317157739183583008201155714184462027894470739210983097393455"


def book_of(bids: list[tuple[str, str]], asks: list[tuple[str, str]], **kw: object) -> OrderBook:
    return OrderBook(
        token_id=TOKEN,
        market="0xm",
        bids=tuple(BookLevel(D(p), D(s)) for p, s in bids),
        asks=tuple(BookLevel(D(p), D(s)) for p, s in asks),
        timestamp_ms=1,
        **kw,  # type: ignore[arg-type]
    )


def change(side: Side, price: str, size: str, **kw: object) -> LevelChange:
    return LevelChange(token_id=TOKEN, side=side, price=D(price), size=D(size), **kw)  # type: ignore[arg-type]


def test_recorded_snapshot_then_recorded_changes() -> None:
    """The 2026 capture: book for 2330…, then three price_change messages for it."""
    msgs = ws.market_events(load("ws_market_messages_2026.json"))
    snap = msgs[1]
    book = LocalBook(TOKEN)
    assert not book.synced
    book.apply_snapshot(snap.book)  # type: ignore[union-attr]
    assert book.synced and (book.best_bid, book.best_ask) == (D("0.61"), D("0.62"))
    assert book.size_at(Side.BUY, D("0.59")) == D("704008.22")
    first = msgs[3]
    assert book.apply_changes([c for c in first.changes if c.token_id == TOKEN], first.timestamp_ms)  # type: ignore[union-attr]
    assert book.size_at(Side.BUY, D("0.59")) == D("703988.22")  # the new total, not a delta
    assert book.hash == "e30858562594f459ae40357303cca819b8519658"
    for pc in msgs[4:6]:
        assert book.apply_changes([c for c in pc.changes if c.token_id == TOKEN], pc.timestamp_ms)  # type: ignore[union-attr]
    assert book.size_at(Side.BUY, D("0.59")) == D("704942.22")
    assert book.size_at(Side.BUY, D("0.51")) == D("90")  # a new level below the others
    assert book.bids()[-1] == BookLevel(D("0.51"), D("90"))
    assert book.mismatches == 0 and book.timestamp_ms == 1790272269461


def test_zero_removes_level_and_best_moves() -> None:
    book = LocalBook(TOKEN)
    book.apply_snapshot(book_of([("0.40", "10"), ("0.45", "5")], [("0.55", "7"), ("0.50", "3")]))
    assert (book.best_bid, book.best_ask, book.spread, book.midpoint) == (D("0.45"), D("0.50"), D("0.05"), D("0.475"))
    book.apply_change(change(Side.BUY, "0.45", "0"))
    book.apply_change(change(Side.SELL, "0.50", "0"))
    assert (book.best_bid, book.best_ask) == (D("0.40"), D("0.55"))
    book.apply_change(change(Side.BUY, "0.48", "2"))
    assert book.best_bid == D("0.48")
    book.apply_change(change(Side.SELL, "0.99", "0"))  # removing an absent level is a no-op
    assert len(book) == 3
    book.apply_change(change(Side.SELL, "0.55", "0"))
    assert book.best_ask is None and book.spread is None and book.midpoint is None


def test_snapshot_replaces_state_and_drops_zero_levels() -> None:
    book = LocalBook(TOKEN)
    book.apply_snapshot(book_of([("0.1", "1")], [("0.9", "1")]))
    book.apply_change(change(Side.BUY, "0.2", "4"))
    book.apply_snapshot(book_of([("0.3", "2"), ("0.31", "0")], [("0.7", "5")], tick_size=D("0.01")))
    assert book.bids() == (BookLevel(D("0.3"), D("2")),)
    assert book.asks() == (BookLevel(D("0.7"), D("5")),)
    assert book.tick_size == D("0.01") and book.updates == 0


def test_queries_depth_and_snapshot() -> None:
    book = LocalBook(TOKEN, "0xm")
    book.apply_snapshot(book_of([("0.40", "10"), ("0.45", "5")], [("0.55", "7"), ("0.50", "3")]))
    assert book.depth(Side.BUY) == D("15")
    assert book.depth(Side.SELL, limit_price=D("0.52")) == D("3")
    assert book.depth(Side.BUY, limit_price=D("0.42")) == D("5")
    snap = book.snapshot(depth=1)
    assert snap.bids == (BookLevel(D("0.45"), D("5")),) and snap.asks == (BookLevel(D("0.50"), D("3")),)
    full = book.snapshot()
    assert [lv.price for lv in full.bids] == [D("0.45"), D("0.40")]
    assert [lv.price for lv in full.asks] == [D("0.50"), D("0.55")]
    assert full.best_bid == book.best_bid and full.best_ask == book.best_ask


def test_mismatch_against_reported_best_is_counted() -> None:
    book = LocalBook(TOKEN)
    book.apply_snapshot(book_of([("0.40", "10")], [("0.50", "3")]))
    # The venue says the best bid is now 0.41, but the change we got only touched 0.40: we missed one.
    assert not book.apply_changes([change(Side.BUY, "0.40", "9", best_bid=D("0.41"), best_ask=D("0.50"))])
    assert book.mismatches == 1
    # An empty side is reported as "0".
    assert book.apply_changes([change(Side.SELL, "0.50", "0", best_bid=D("0.40"), best_ask=D("0"))])
    assert book.mismatches == 1


def test_a_disagreement_is_warned_once_per_snapshot(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once per snapshot, not once per book: a book a snapshot fixed that goes wrong again is news again."""
    import logging

    from pmbot.polymarket import book as book_mod
    from pmbot.polymarket.book import warn_disagreement

    log = logging.getLogger("test.book")
    book = LocalBook(TOKEN)
    wrong = change(Side.BUY, "0.40", "9", best_bid=D("0.41"), best_ask=D("0.50"))
    t = [0.0]
    monkeypatch.setattr(book_mod, "_clock", lambda: t[0])
    with caplog.at_level(logging.WARNING, logger="test.book"):
        for _ in range(2):
            book.apply_snapshot(book_of([("0.40", "10")], [("0.50", "3")]))
            for _ in range(3):
                assert not book.apply_changes([wrong])
                warn_disagreement(log, "feed", book, wrong)
            t[0] += 61  # not more often than once a minute (tests/test_review3_fast_paths.py: a flapping book)
    assert book.mismatches == 6
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["feed", "feed"]


PRICES = st.integers(min_value=1, max_value=99).map(lambda c: D(c) / 100)
SIZES = st.one_of(st.just(D(0)), st.integers(min_value=1, max_value=10**8).map(lambda n: D(n) / 100))
CHANGES = st.lists(st.tuples(st.sampled_from([Side.BUY, Side.SELL]), PRICES, SIZES), max_size=60)


@settings(max_examples=200, deadline=None)
@given(initial=CHANGES, changes=CHANGES)
def test_random_changes_match_dict_model(initial: list[tuple[Side, D, D]], changes: list[tuple[Side, D, D]]) -> None:
    model: dict[Side, dict[D, D]] = {Side.BUY: {}, Side.SELL: {}}
    for side, price, size in initial:
        if size:
            model[side][price] = size
    book = LocalBook(TOKEN)
    book.apply_snapshot(
        OrderBook(
            token_id=TOKEN,
            market="",
            bids=tuple(BookLevel(p, s) for p, s in model[Side.BUY].items()),
            asks=tuple(BookLevel(p, s) for p, s in model[Side.SELL].items()),
            timestamp_ms=0,
        )
    )
    for side, price, size in changes:
        book.apply_change(LevelChange(token_id=TOKEN, side=side, price=price, size=size))
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
        assert book.best_bid == max(model[Side.BUY], default=None)
        assert book.best_ask == min(model[Side.SELL], default=None)
    assert book.bids() == tuple(BookLevel(p, model[Side.BUY][p]) for p in sorted(model[Side.BUY], reverse=True))
    assert book.asks() == tuple(BookLevel(p, model[Side.SELL][p]) for p in sorted(model[Side.SELL]))


@settings(max_examples=200, deadline=None)
@given(changes=CHANGES, mid=st.integers(min_value=2, max_value=98))
def test_consistent_input_keeps_book_uncrossed(changes: list[tuple[Side, D, D]], mid: int) -> None:
    """Input where bids stay below `mid` and asks at or above it never crosses the book."""
    book = LocalBook(TOKEN)
    book.apply_snapshot(OrderBook(TOKEN, "", (), (), 0))
    cut = D(mid) / 100
    for side, price, size in changes:
        if (side is Side.BUY) != (price < cut):
            continue
        book.apply_change(LevelChange(token_id=TOKEN, side=side, price=price, size=size))
        if book.best_bid is not None and book.best_ask is not None:
            assert book.best_bid < book.best_ask
            assert book.spread is not None and book.spread > 0


@settings(max_examples=200, deadline=None)
@given(initial=CHANGES, changes=CHANGES, depth=st.one_of(st.none(), st.integers(min_value=0, max_value=5)))
def test_levels_read_between_changes_are_never_stale(
    initial: list[tuple[Side, D, D]], changes: list[tuple[Side, D, D]], depth: int | None
) -> None:
    """The levels handed out are cached per side until the next change: reading after every change (a
    size-only change included, which keeps the order but not the level) must always see the model."""
    model: dict[Side, dict[D, D]] = {Side.BUY: {}, Side.SELL: {}}
    for side, price, size in initial:
        if size:
            model[side][price] = size
    book = LocalBook(TOKEN)
    # unsorted on purpose: a snapshot's order is not trusted
    book.apply_snapshot(book_of([(str(p), str(s)) for p, s in model[Side.BUY].items()],
                                [(str(p), str(s)) for p, s in model[Side.SELL].items()]))  # fmt: skip
    for side, price, size in changes:
        before = book.bids(), book.asks()
        book.apply_change(change(side, str(price), str(size)))
        if size:
            model[side][price] = size
        else:
            model[side].pop(price, None)
        bids = tuple(BookLevel(p, model[Side.BUY][p]) for p in sorted(model[Side.BUY], reverse=True))
        asks = tuple(BookLevel(p, model[Side.SELL][p]) for p in sorted(model[Side.SELL]))
        assert book.bids(depth) == bids[:depth] and book.asks(depth) == asks[:depth]
        assert book.snapshot().bids == bids and book.snapshot().asks == asks
        assert (book.bids(), book.asks()) == (bids, asks)
        if (bids, asks) == before:
            assert book.bids() == before[0]  # an unchanged book reads the same
    assert len(book) == len(model[Side.BUY]) + len(model[Side.SELL])


def test_cached_levels_are_reused_until_a_change_and_a_size_change_rebuilds_them() -> None:
    book = LocalBook(TOKEN)
    book.apply_snapshot(book_of([("0.40", "10"), ("0.45", "5")], [("0.55", "7")]))
    first = book.bids()
    assert book.bids() is first  # no change: the same tuple, nothing rebuilt
    asks = book.asks()
    book.apply_change(change(Side.BUY, "0.40", "11"))  # same prices, new size
    assert book.bids() is not first and book.bids() == (BookLevel(D("0.45"), D(5)), BookLevel(D("0.40"), D(11)))
    assert book.asks() is asks  # the other side was not touched
    book.apply_change(change(Side.BUY, "0.40", "11"))  # the same total again: nothing to rebuild
    assert book.size_at(Side.BUY, D("0.40")) == 11 and book.updates == 2
    book.apply_change(change(Side.BUY, "0.45", "0"))
    assert book.best_bid == D("0.40") and book.bids() == (BookLevel(D("0.40"), D(11)),)
    book.apply_change(change(Side.BUY, "0.450", "3"))  # 0.450 == 0.45: one level whatever the spelling
    book.apply_change(change(Side.BUY, "0.45", "4"))
    assert book.bids() == (BookLevel(D("0.45"), D(4)), BookLevel(D("0.40"), D(11))) and len(book) == 3
    book.clear()
    assert book.bids() == () and book.best_bid is None and not book.synced
