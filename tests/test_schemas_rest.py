"""Every recorded REST payload parses into typed models with exact values."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pmbot.errors import VenueError
from pmbot.polymarket.models import FeeSchedule, Side, TradeSource
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.schemas.common import epoch_ms, iso_ms
from tests.samples import load


def test_book_is_best_first_with_exact_decimals() -> None:
    b = rest.book(load("clob_book.json"))
    assert b.best_bid == Decimal("0.57") and b.best_ask == Decimal("0.58")
    assert b.bids[0].size == Decimal("145296.73") and b.asks[0].size == Decimal("259928.26")
    assert all(x.price > y.price for x, y in zip(b.bids, b.bids[1:], strict=False))
    assert all(x.price < y.price for x, y in zip(b.asks, b.asks[1:], strict=False))
    assert b.spread == Decimal("0.01") and b.tick_size == Decimal("0.01") and b.min_order_size == 5
    assert b.neg_risk is True and b.last_trade_price == Decimal("0.420") and b.timestamp_ms == 1790262939745
    assert b.market.startswith("0x80c7") and len(b.hash) == 40


def test_old_and_one_sided_books() -> None:
    old = rest.book(load("clob_book_2024.json"))
    assert old.tick_size is None and old.neg_risk is None and old.best_bid is not None
    one = rest.book(load("clob_book_one_sided.json"))
    assert one.bids == () and one.best_bid is None and one.spread is None
    assert one.best_ask == Decimal("0.001")


@pytest.mark.parametrize(
    "name", ["gamma_market.json", "gamma_market_closed_resolved.json", "gamma_market_sports_moneyline.json"]
)
def test_gamma_single_markets(name: str) -> None:
    m = rest.gamma_market(load(name))
    assert m.condition_id.startswith("0x") and len(m.outcomes) == 2
    assert all(o.token_id.isdigit() for o in m.outcomes)
    assert m.end_ms is not None and m.end_ms > 1_600_000_000_000


def test_gamma_up_down_market_fields() -> None:
    m = rest.gamma_market(load("gamma_market.json"))
    assert [o.outcome for o in m.outcomes] == ["Up", "Down"]
    assert m.outcomes[0].token_id.startswith("1042398980388071360")
    assert [o.price for o in m.outcomes] == [Decimal("0.505"), Decimal("0.495")]
    assert m.start_ms == iso_ms("2026-03-12T09:20:00Z") and m.end_ms == iso_ms("2026-03-12T09:25:00Z")
    assert m.tick_size == Decimal("0.01") and m.min_order_size == 5 and m.best_bid == Decimal("0.5")
    assert m.slug == "btc-updown-5m-1773307200" and not m.neg_risk


def test_gamma_closed_market_and_space_separated_dates() -> None:
    m = rest.gamma_market(load("gamma_market_closed_resolved.json"))
    assert m.closed and [o.price for o in m.outcomes] == [Decimal(1), Decimal(0)]
    assert iso_ms("2026-05-09 02:07:01+00") == iso_ms("2026-05-09T02:07:01Z")


def test_gamma_lists_and_fee_schedules() -> None:
    by_slug = rest.gamma_markets(load("gamma_markets_by_slug.json"))
    assert by_slug[0].fees == FeeSchedule(rate=Decimal("0.25"), exponent=2, taker_only=True)
    newest = rest.gamma_markets(load("gamma_markets_list_2026-09.json"))[0]
    assert newest.fees == FeeSchedule(rate=Decimal("0.05"), exponent=1, taker_only=True)
    assert newest.token_ids[0] == rest.book(load("clob_book.json")).token_id  # same market as the book


def test_fee_formula_rounds_to_five_places() -> None:
    crypto = FeeSchedule(rate=Decimal("0.07"))
    assert crypto.fee(Decimal(100), Decimal("0.5")) == Decimal("1.75000")  # the docs' worked example
    assert crypto.fee(Decimal(10), Decimal("0.99")) == Decimal("0.00693")
    assert FeeSchedule().fee(Decimal(100), Decimal("0.5")) == 0


def test_events_embed_markets() -> None:
    event = load("gamma_event.json")
    assert all(rest.gamma_market(m).condition_id for m in event["markets"])
    for e in load("gamma_events_list.json"):
        assert [rest.gamma_market(m) for m in e["markets"]]


def test_public_search_profiles() -> None:
    assert rest.search_profiles(load("gamma_public_search.json")) == []  # no profiles key at all
    assert rest.search_profiles(load("gamma_public_search_trimmed.json")) == []  # profiles: []
    raw = {"profiles": [{"proxyWallet": "0xABCDEF0000000000000000000000000000000001", "name": "x"}]}
    found = rest.search_profiles(raw)
    assert found[0].proxy_wallet == "0xabcdef0000000000000000000000000000000001" and found[0].name == "x"


def test_data_trades_keep_the_digits_sent() -> None:
    trades = [rest.data_trade(r) for r in load("data_trades.json")]
    assert trades[0].size == Decimal("3.28888") and trades[0].price == Decimal("0.9")
    assert trades[0].timestamp_ms == 1774166009000 and trades[0].side is Side.BUY
    assert trades[0].source is TradeSource.DATA_API and trades[0].wallet == trades[0].wallet.lower()
    assert Decimal("0.5699998232997013") in {t.price for t in trades}  # not rounded through a float


def test_activity_rows_of_every_type() -> None:
    rows = [rest.activity(r) for r in load("data_activity.json")]
    types = {r.type for r in rows}
    assert {"TRADE", "REDEEM", "REWARD", "MAKER_REBATE"} <= types
    rebate = next(r for r in rows if r.type == "MAKER_REBATE")
    assert rebate.token_id is None and rebate.side is None and rebate.as_trade() is None
    assert rebate.usdc_size == Decimal("3597.7603")
    trade = next(r for r in rows if r.type == "TRADE").as_trade()
    assert trade is not None and trade.source is TradeSource.DATA_API and trade.token_id.isdigit()
    assert all(rest.activity(r).as_trade() for r in load("data_activity_trades.json"))


def test_positions() -> None:
    p = rest.data_position(load("data_positions.json")[0])
    assert p.size == Decimal("271790.1") and p.avg_price == Decimal("0.8611") and not p.redeemable
    lost = rest.data_position(load("data_positions_redeemable.json")[0])
    assert lost.redeemable and lost.current_price == 0


def test_order_responses() -> None:
    live = rest.order_ack(load("clob_post_order_response_live.json"))
    assert live.accepted and live.status == "live" and live.making_amount is None and live.tx_hashes == ()
    matched = rest.order_ack(load("clob_post_order_response_matched.json"))
    assert matched.accepted and matched.status == "matched"
    assert matched.making_amount == Decimal("1.519999") and matched.taking_amount == Decimal("2.140844")
    fixed = rest.order_ack({"success": True, "orderID": "0x1", "status": "matched", "makingAmount": "100000000"})
    assert fixed.making_amount == Decimal(100)
    # success:true with an error message is a refusal, not an order
    refused = rest.order_ack({"success": True, "orderID": "", "errorMsg": "invalid amounts", "status": ""})
    assert not refused.accepted and refused.error == "invalid amounts"


def test_cancel_and_trade_rows() -> None:
    c = rest.cancel_result(load("clob_delete_order_response.json"))
    assert len(c.canceled) == 1 and c.not_canceled == {}
    t = rest.user_trade(load("clob_data_trade_row_2024.json"))
    assert t.status == "CONFIRMED" and t.trader_side in ("TAKER", "MAKER") and t.maker_order_ids
    assert t.match_ms is not None and t.match_ms % 1000 == 0  # seconds on the wire


def test_clob_markets() -> None:
    closed = rest.clob_market(load("clob_market_closed_2026.json"))
    # the wire says accepting_orders: true on this closed market; the parsed market does not trade (issue 11)
    assert closed.closed and not closed.accepting_orders and any(o.price == 1 for o in closed.outcomes)
    rows, cursor = rest.page(load("clob_markets_page_2024.json"), "markets")
    assert cursor == "MTAw" and all(rest.clob_market(r).condition_id for r in rows)
    assert rest.page({"data": [], "next_cursor": "LTE="}, "x") == ([], None)


def test_missing_ids_and_garbage_raise_venue_errors() -> None:
    with pytest.raises(VenueError, match="asset_id"):
        rest.book({"bids": [], "asks": []})
    with pytest.raises(VenueError):
        rest.gamma_market({"conditionId": "0x1", "clobTokenIds": "not json"})
    with pytest.raises(VenueError):
        rest.gamma_markets({"unexpected": 1})


def test_epoch_units() -> None:
    assert epoch_ms("1672290687") == 1672290687000 and epoch_ms("1672290687123") == 1672290687123
    assert epoch_ms(1774166009) == 1774166009000 and epoch_ms("") is None
    assert epoch_ms("2026-06-30") == iso_ms("2026-06-30T00:00:00Z")
