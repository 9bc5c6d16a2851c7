"""Issue 12 item 4: the venue's numbers are not trusted.

A hostile venue on 127.0.0.1 answers `book` / `markets` / `whois` with NaN, Infinity, 1e999999999, a
5000-digit timestamp, 200 000 nested brackets, a free ask, a crossed or negative book: each is one
`error:` line and exit 2, never "this is a bug". And a live order's fills can never exceed what it
signed: a /data/trades row of 10^12 shares on a 5-share order is refused, not recorded.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from pmbot.cli import main
from pmbot.errors import VenueError
from pmbot.executor.fill_bounds import fill_violation, matched_within_order
from pmbot.executor.intents import OrderIntent
from pmbot.polymarket.schemas import rest, ws
from pmbot.polymarket.schemas.common import dec, epoch_ms, loads_venue
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import Fill, OrderStatus, OrderType, Query, Side
from tests.hostile import Forward, HostileVenue
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
WALLET = "0x" + "ab" * 20


def invoke(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


@pytest.fixture
def evil(monkeypatch: pytest.MonkeyPatch) -> Iterator[HostileVenue]:
    """A hostile venue with no upstream: every URL points at it."""
    with HostileVenue() as venue:
        monkeypatch.setenv("PMBOT_CLOB_URL", venue.url)
        monkeypatch.setenv("PMBOT_GAMMA_URL", venue.url + "/gamma")
        monkeypatch.setenv("PMBOT_DATA_URL", venue.url + "/data-api")
        yield venue


def _book(bids: str = '[{"price":"0.4","size":"10"}]', asks: str = '[{"price":"0.6","size":"10"}]', **kw: str) -> str:
    extra = "".join(f',"{k}":{v}' for k, v in kw.items())
    return f'{{"asset_id":"{TOKEN}","market":"0xabc","bids":{bids},"asks":{asks},"timestamp":"1795000000000"{extra}}}'


NESTED = "[" * 200_000 + "]" * 200_000

HOSTILE_BOOKS = {
    "NaN price": _book(asks='[{"price":NaN,"size":"10"}]'),
    "Infinity size": _book(asks='[{"price":"0.6","size":Infinity}]'),
    "huge exponent": _book(asks='[{"price":1e999999999,"size":"10"}]'),
    "huge exponent text": _book(asks='[{"price":"0.6","size":"1e999999999"}]'),
    "NaN text": _book(asks='[{"price":"NaN","size":"10"}]'),
    "5000-digit timestamp": _book(timestamp='"' + "9" * 5000 + '"'),
    "5000-digit number": _book(timestamp="9" * 5000),
    "nested brackets": NESTED,
    "nested in a field": _book(hash=NESTED),
    "free ask": _book(asks='[{"price":"0","size":"100"}]'),
    "price above 1": _book(asks='[{"price":"1.5","size":"100"}]'),
    "negative size": _book(bids='[{"price":"0.4","size":"-10"}]'),
    "zero size": _book(bids='[{"price":"0.4","size":"0"}]'),
    "crossed": _book(bids='[{"price":"0.7","size":"10"}]', asks='[{"price":"0.6","size":"10"}]'),
    "levels not a list": _book(asks='"0.6"'),
    "level not an object": _book(asks='["0.6"]'),
}


@pytest.mark.parametrize("name", list(HOSTILE_BOOKS))
def test_hostile_book_is_one_error_line_not_a_bug(evil: HostileVenue, name: str) -> None:
    evil.answer("GET", "/book", HOSTILE_BOOKS[name])
    code, out = invoke("book", TOKEN)
    assert code == 2, out
    assert "bug" not in out and "Traceback" not in out
    assert out.startswith("error: ") and len(out.strip().splitlines()) == 1, out


def test_free_ask_gives_no_paper_fill(evil: HostileVenue, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    evil.answer("GET", "/book", HOSTILE_BOOKS["free ask"])
    code, out = invoke("order", "buy", TOKEN, "--price", "0.5", "--size", "100", "--type", "FOK")
    assert code == 2 and "between 0 and 1" in out, out
    store = open_store(db_url)
    try:
        assert store.list_trades(Query()) == [] and store.list_orders() == []
    finally:
        store.close()


def _market(**fields: Any) -> dict[str, Any]:
    m = {
        "conditionId": "0x" + "cd" * 32,
        "question": "Bitcoin up or down?",
        "slug": "btc-up",
        "clobTokenIds": json.dumps([TOKEN, "2"]),
        "outcomes": '["Up","Down"]',
        "outcomePrices": '["0.5","0.5"]',
        "endDate": "2099-01-01T00:00:00Z",
        "active": True,
        "closed": False,
    }
    m.update(fields)
    return m


HOSTILE_MARKETS = {
    "NaN outcome price": json.dumps([_market(outcomePrices='["NaN","0.5"]')]),
    "Infinity in JSON": json.dumps([_market()]).replace('"active": true', '"active": true, "bestBid": Infinity'),
    "huge end date": json.dumps([_market(endDate="9" * 5000)]),
    "nested outcome list": json.dumps([_market(outcomes=NESTED)]),
    "nested body": NESTED,
    "fee exponent overflow": json.dumps([_market(feeSchedule={"rate": "0.02", "exponent": "1e999999999"})]),
    "best ask 7": json.dumps([_market(bestAsk="7")]),
}


@pytest.mark.parametrize("name", list(HOSTILE_MARKETS))
def test_hostile_markets_is_one_error_line_not_a_bug(evil: HostileVenue, name: str) -> None:
    evil.answer("GET", "/gamma/markets", HOSTILE_MARKETS[name])
    evil.answer("POST", "/books", "[]")
    code, out = invoke("markets")
    assert code == 2, out
    assert "bug" not in out and "Traceback" not in out, out


HOSTILE_ACTIVITY = {
    "NaN size": '[{"proxyWallet":"%s","type":"TRADE","timestamp":1795000000,"size":NaN,"price":"0.5"}]',
    "5000-digit timestamp": '[{"proxyWallet":"%s","type":"TRADE","timestamp":' + "7" * 5000 + ',"size":"1"}]',
    "1e999999999 usdc": '[{"proxyWallet":"%s","type":"TRADE","timestamp":1795000000,"usdcSize":1e999999999}]',
    "price 3": '[{"proxyWallet":"%s","type":"TRADE","timestamp":1795000000,"size":"1","price":"3"}]',
    "nested": NESTED.replace("%", ""),
}


@pytest.mark.parametrize("name", list(HOSTILE_ACTIVITY))
def test_hostile_whois_is_one_error_line_not_a_bug(evil: HostileVenue, name: str) -> None:
    body = HOSTILE_ACTIVITY[name]
    evil.answer("GET", "/data-api/activity", body.replace("%s", WALLET) if "%s" in body else body)
    code, out = invoke("whois", WALLET)
    assert code == 2, out
    assert "bug" not in out and "Traceback" not in out, out


# ------------------------------------------------------------------------------ parsers directly


@pytest.mark.parametrize(
    "text", ["NaN", "Infinity", "-Infinity", "[1e999999999]", "9" * 5000, NESTED, '{"a":' * 100_000 + "1"]
)
def test_loads_venue_refuses_what_json_should_not_hold(text: str) -> None:
    with pytest.raises(VenueError):
        loads_venue(text, "test")


@pytest.mark.parametrize("value", ["NaN", "sNaN", "Infinity", "-inf", "1e999999999", "1e-999999999", "9" * 70, 10**20])
def test_numbers_must_be_finite_and_sane(value: object) -> None:
    with pytest.raises(VenueError):
        dec(value)


@pytest.mark.parametrize("value", ["9" * 5000, 10**30, float("nan"), float("inf"), "-" + "9" * 30, "99999999999999999"])
def test_timestamps_must_be_sane(value: object) -> None:
    with pytest.raises(VenueError):
        epoch_ms(value)


def test_sane_numbers_still_parse_exactly() -> None:
    assert dec("0.5699998232997013") == Decimal("0.5699998232997013")
    assert dec(0.57) == Decimal("0.57") and dec(61035) == Decimal(61035)
    assert epoch_ms("1795000000") == 1_795_000_000_000 and epoch_ms(1_795_000_000_123) == 1_795_000_000_123


@pytest.mark.parametrize(
    "row",
    [
        {"size": "1000000000000", "price": "0.5"},
        {"size": "-5", "price": "0.5"},
        {"size": "5", "price": "0"},
        {"size": "5", "price": "NaN"},
        {"size": "5", "price": "1"},
    ],
)
def test_user_trade_rows_are_checked(row: dict[str, str]) -> None:
    base = {"id": "t1", "taker_order_id": "0x1", "asset_id": TOKEN, "side": "BUY", "status": "MATCHED"}
    with pytest.raises(VenueError):
        rest.user_trade({**base, **row})


def test_ws_levels_are_checked_but_zero_size_removes_a_level() -> None:
    change = {"asset_id": TOKEN, "side": "BUY", "price": "0.5", "size": "0"}
    assert ws.level_change(change, "price_change").size == 0
    for bad in ({"price": "0"}, {"price": "NaN"}, {"size": "-1"}, {"size": "1e999999999"}):
        with pytest.raises(VenueError):
            ws.level_change({**change, **bad}, "price_change")


# ------------------------------------------------------------------- fills never exceed the order


def _intent(
    side: Side = Side.BUY, order_type: OrderType = OrderType.GTC, price: str = "0.5", size: str = "5"
) -> OrderIntent:
    return OrderIntent(
        key="k",
        strategy="manual",
        token_id=TOKEN,
        condition_id="0xabc",
        side=side,
        price=Decimal(price),
        size=Decimal(size),
        order_type=order_type,
        signal_ms=0,
    )


def _f(size: str, price: str, trade_id: str = "t1", side: Side = Side.BUY) -> Fill:
    return Fill(trade_id, "manual", TOKEN, side, Decimal(price), Decimal(size), False, 0)


def test_fill_bounds() -> None:
    assert fill_violation(_intent(), [_f("5", "0.5")]) is None
    assert fill_violation(_intent(), [_f("2", "0.5"), _f("3", "0.45", "t2")]) is None
    assert fill_violation(_intent(), [_f("5", "0.5"), _f("5", "0.5")]) is None  # one trade seen twice
    assert "signed" in (fill_violation(_intent(), [_f("1000000000000", "0.5")]) or "")
    assert "signed" in (fill_violation(_intent(), [_f("3", "0.5"), _f("3", "0.5", "t2")]) or "")
    assert "above the limit" in (fill_violation(_intent(), [_f("1", "0.6")]) or "")
    # a market BUY may get more shares at a better price, never spend more USDC than it signed
    fok = _intent(order_type=OrderType.FOK)
    assert fill_violation(fok, [_f("6", "0.4")]) is None
    assert "USDC" in (fill_violation(fok, [_f("6", "0.45")]) or "")
    sell = _intent(Side.SELL)
    assert fill_violation(sell, [_f("5", "0.55", side=Side.SELL)]) is None
    assert fill_violation(sell, [_f("5.01", "0.55", side=Side.SELL)]) is not None
    assert fill_violation(sell, [_f("1", "0.4", side=Side.SELL)]) is not None
    assert matched_within_order(_intent(), Decimal("1e12")) == 5
    assert matched_within_order(fok, Decimal("1e12")) == Decimal("0.5") * 5 / Decimal("0.001")


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


@pytest.mark.parametrize("inflated_size", ["1000000000000", "1000"])
def test_live_fills_above_the_signed_order_are_not_recorded(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, db_url: str, inflated_size: str
) -> None:
    # 10^12 shares is refused by the schema (not a sane size), 1000 by the executor (more than signed)
    token = live_sim.current_market()["token_ids"][0]
    ask = live_sim.book(token)["asks"][-1]["price"]  # type: ignore[index]
    order = ("order", "buy", token, "--price", ask, "--size", "5", "--type", "FOK", "--live", "--yes", "--json")

    async def inflated(request: web.Request, forward: Forward) -> web.StreamResponse:
        status, body = await forward()
        for row in body.get("data", []):
            row["size"] = inflated_size  # on a 5-share order
        return web.json_response(body, status=status)

    with HostileVenue(upstream=live_sim.url) as evil:
        evil.override("GET", "/data/trades", inflated)
        monkeypatch.setenv("PMBOT_CLOB_URL", evil.url)
        code, out, err = invoke_split(*order)
    assert code == 0, out + err
    view = json.loads(out)
    assert view["status"] == OrderStatus.UNKNOWN.value and Decimal(view["filled"]) == 0, view
    assert "refused" in err or "sane" in err, err  # said why, on stderr
    store = open_store(db_url)
    try:
        assert store.list_trades(Query(dry_run=False)) == []
        assert store.list_positions(Query(dry_run=False)) == []
    finally:
        store.close()
    # the truth back: the next order is not refused by a phantom position
    monkeypatch.setenv("PMBOT_CLOB_URL", live_sim.url)
    code, out, err = invoke_split(*order)
    assert code == 0, out + err
    assert json.loads(out)["status"] == OrderStatus.FILLED.value
    store = open_store(db_url)
    try:
        trades = store.list_trades(Query(dry_run=False))
        assert trades and sum(t.fill.size for t in trades) <= 5 * 2
    finally:
        store.close()


def invoke_split(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("frame", [NESTED, '{"event_type":"book","x":NaN}', '[{"price": 1e999999999}]'])
def test_stream_frames_that_json_should_not_hold_are_malformed_not_fatal(frame: str) -> None:
    import sys

    from pmbot.polymarket.streams import MarketStream

    # The condition under which deep JSON used to segfault: py_ecc (which some eth-account versions pull
    # in) raises the recursion limit to 100 000 at import. Set it the same way, whatever is installed.
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(max(before, 100_000))
    try:
        stream = MarketStream("ws://127.0.0.1:9/ws", [TOKEN])
        assert stream._ingest(frame) is False
        assert stream.counters.malformed == 1
    finally:
        sys.setrecursionlimit(before)
