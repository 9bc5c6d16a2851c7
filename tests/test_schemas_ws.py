"""Every recorded stream payload (ws_*, rtds_*, the docs-derived examples) parses into the right
typed events with exact Decimal values; plus the OrderFilled log decoder."""

from __future__ import annotations

import json
from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.errors import VenueError
from pmbot.polymarket.models import (
    BestBidAsk,
    BookSnapshot,
    CryptoPrice,
    LastTrade,
    MarketResolved,
    NewMarket,
    PriceChange,
    Side,
    TickSizeChange,
    TradeSource,
    UserOrderEvent,
    UserTradeEvent,
    WalletTrade,
)
from pmbot.polymarket.schemas import ws
from tests.samples import load, samples_dir

YES_2330 = "23305969272951306317157739183583008201155714184462027894470739210983097393455"
NO_1044 = "104425493878736059469967522531475345635535129482242136756374819053652959839920"


def test_every_stream_sample_parses() -> None:
    """No sample is left untested: each ws_*/rtds_* file yields at least one typed event."""
    root = samples_dir()
    files = sorted(p.name for p in root.iterdir() if p.name.startswith(("ws_", "rtds_")))
    assert len(files) >= 18
    for name in files:
        text = (root / name).read_text()
        payloads = (
            [json.loads(ln) for ln in text.splitlines() if ln.strip()]
            if name.endswith(".jsonl")
            else [json.loads(text)]
        )
        for payload in payloads:
            if name.startswith("ws_user"):
                events: list[Any] = ws.user_events(payload)
            elif name.startswith("ws_market"):
                events = ws.market_events(payload)
            else:
                events = [ev for m in ws.messages(payload) for ev in ws.rtds_events(m)]
            if name.startswith("rtds_equity"):
                assert events == [], name  # equity prices are not a topic we read
            else:
                assert events, name


# -------------------------------------------------------------------------------------- market


def test_book_levels_best_first_from_best_last_wire() -> None:
    (ev,) = ws.market_events(load("ws_market_book.json"))
    assert isinstance(ev, BookSnapshot)
    book = ev.book
    assert book.token_id == YES_2330
    assert book.market == "0x80c7ab790a5ab37e11c79a5a658d729ac29e6e17aa2d3fc859e4a78c0d896369"
    # The LAST wire element of each side is the best level.
    assert book.best_bid == D("0.61") and book.bids[0].size == D("3256.61")
    assert book.best_ask == D("0.62") and book.asks[0].size == D("163745.06")
    assert [lv.price for lv in book.bids] == [D("0.61"), D("0.6"), D("0.59"), D("0.58"), D("0.57")]
    assert [lv.price for lv in book.asks] == [D("0.62"), D("0.63"), D("0.64"), D("0.65"), D("0.66")]
    assert book.timestamp_ms == 1790272267688
    assert book.hash == "f2a3f4497a1adbf459d42efc04910240b2ca5563"
    assert book.tick_size == D("0.01")
    assert book.last_trade_price == D("0.390")
    assert book.spread == D("0.01")


def test_book_2024_has_no_tick_size() -> None:
    (ev,) = ws.market_events(load("ws_market_book_2024.json"))
    assert isinstance(ev, BookSnapshot)
    assert ev.book.best_bid == D("0.511") and ev.book.best_ask == D("0.514")
    assert ev.book.tick_size is None
    assert len(ev.book.bids) == 20 and len(ev.book.asks) == 20
    assert ev.book.timestamp_ms == 1728799418260


def test_price_change_current_format_carries_both_legs() -> None:
    (ev,) = ws.market_events(load("ws_market_price_change.json"))
    assert isinstance(ev, PriceChange)
    assert ev.timestamp_ms == 1790272269309
    yes, no = ev.changes
    assert (yes.token_id, yes.side, yes.price, yes.size) == (YES_2330, Side.BUY, D("0.59"), D("703988.22"))
    assert (yes.best_bid, yes.best_ask) == (D("0.61"), D("0.62"))
    assert yes.hash == "e30858562594f459ae40357303cca819b8519658"
    assert (no.token_id, no.side, no.price, no.size) == (NO_1044, Side.SELL, D("0.41"), D("703988.22"))
    assert (no.best_bid, no.best_ask) == (D("0.38"), D("0.39"))


def test_price_change_legacy_flat_format() -> None:
    (ev,) = ws.market_events(load("ws_market_price_change_legacy_2024.json"))
    assert isinstance(ev, PriceChange)
    (ch,) = ev.changes
    assert ch.token_id.startswith("4833104333")
    assert (ch.side, ch.price, ch.size) == (Side.SELL, D("0.514"), D("21574.08"))
    assert ch.best_bid is None and ch.best_ask is None
    assert ch.hash == "bf32b3746fff40c76c98021b7f3f07261169dd26"
    assert ev.timestamp_ms == 1723967931411


def test_last_trade_price_2026_and_2024() -> None:
    (new,) = ws.market_events(load("ws_market_last_trade_price.json"))
    assert isinstance(new, LastTrade)
    assert (new.price, new.size, new.side, new.fee_rate_bps) == (D("0.002"), D("20"), Side.SELL, 0)
    assert new.tx_hash == "0x8ed4b95efa408bf132aef99fcfa83d431c875abd61eb900d484299fc5f56682d"
    (old,) = ws.market_events(load("ws_market_last_trade_price_2024.json"))
    assert isinstance(old, LastTrade)
    assert (old.price, old.size, old.tx_hash, old.timestamp_ms) == (D("0.491"), D("85.36"), None, 1724564136087)


def test_tick_size_change() -> None:
    (ev,) = ws.market_events(load("ws_market_tick_size_change.json"))
    assert isinstance(ev, TickSizeChange)
    assert (ev.old_tick_size, ev.new_tick_size, ev.timestamp_ms) == (D("0.01"), D("0.001"), 1739068041853)


@pytest.mark.parametrize("name", ["ws_market_messages_2026.json", "ws_market_messages_2026.jsonl"])
def test_2026_capture_in_order(name: str) -> None:
    text = (samples_dir() / name).read_text()
    raw = [json.loads(ln) for ln in text.splitlines() if ln.strip()] if name.endswith(".jsonl") else json.loads(text)
    events = ws.market_events(raw)  # a JSON array (or 7 frames): one event per element
    assert [type(e).__name__ for e in events] == ["BookSnapshot"] * 3 + ["PriceChange"] * 3 + ["LastTrade"]
    book = events[0]
    assert isinstance(book, BookSnapshot)
    assert (book.book.best_bid, book.book.best_ask) == (D("0.002"), D("0.003"))
    pc = events[3]
    assert isinstance(pc, PriceChange)
    assert pc.changes[0].price == D("0.59") and pc.changes[0].size == D("703988.22")
    last_pc = events[5]
    assert isinstance(last_pc, PriceChange)
    assert last_pc.changes[0].price == D("0.51") and last_pc.changes[0].size == D("90")


def test_docs_examples_custom_features() -> None:
    root = samples_dir() / "docs_examples"
    (bba,) = ws.market_events(json.loads((root / "ws_market_best_bid_ask.json").read_text()))
    assert isinstance(bba, BestBidAsk)
    assert (bba.best_bid, bba.best_ask, bba.timestamp_ms) == (D("0.73"), D("0.77"), 1766789469958)
    (res,) = ws.market_events(json.loads((root / "ws_market_market_resolved.json").read_text()))
    assert isinstance(res, MarketResolved)
    assert res.winning_token_id.startswith("7604307375") and res.winning_outcome == "Yes"
    assert len(res.token_ids) == 2
    (new,) = ws.market_events(json.loads((root / "ws_market_new_market.json").read_text()))
    assert isinstance(new, NewMarket) and len(new.token_ids) == 2 and new.tick_size == D("0.01")
    (pc,) = ws.market_events(json.loads((root / "ws_market_price_change_docs_derived.json").read_text()))
    assert isinstance(pc, PriceChange) and len(pc.changes) == 3


def test_market_message_errors_are_venue_errors() -> None:
    with pytest.raises(VenueError):
        ws.market_event({"event_type": "book", "bids": [], "asks": []})  # no asset_id
    with pytest.raises(VenueError):
        ws.market_event({"event_type": "price_change", "price_changes": [{"price": "0.5", "side": "BUY"}]})
    with pytest.raises(VenueError):
        ws.market_event("PONG")
    assert ws.market_event({"event_type": "something_new"}) is None


# ---------------------------------------------------------------------------------------- user


def test_user_order_placement_and_cancellation() -> None:
    (placed,) = ws.user_events(load("ws_user_order_placement.json"))
    assert isinstance(placed, UserOrderEvent)
    assert placed.order_id == "0x0f76f4dc6eaf3332f4100f2e8a0b4a927351dd64646b7bb12f37df775c657a78"
    assert (placed.type, placed.status, placed.side) == ("PLACEMENT", "LIVE", Side.BUY)
    assert (placed.price, placed.original_size, placed.size_matched) == (D("0.513"), D("5"), D("0"))
    assert placed.timestamp_ms == 1725842520990
    assert placed.created_ms == 1725842520000  # created_at is seconds here
    assert placed.maker_address == "0xa3d82ed56f4c68d2328fb8c29e568ba2caf7d7c8"
    assert placed.order_type == "GTC" and placed.outcome == "Yes" and placed.associate_trades == ()
    (cancel,) = ws.user_events(load("ws_user_order_cancellation.json"))
    assert isinstance(cancel, UserOrderEvent)
    assert (cancel.type, cancel.status, cancel.size_matched) == ("CANCELLATION", "CANCELED", D("5"))


def test_user_order_fok_killed_quirks() -> None:
    (ev,) = ws.user_events(load("ws_user_order_fok_killed_ANONYMIZED.json"))
    assert isinstance(ev, UserOrderEvent)
    assert ev.status == "CANCELED_order couldn't be fully filled. FOK orders are fully filled or killed."
    assert ev.status.startswith("CANCELED")
    assert ev.size_matched == D(0)  # ""
    assert ev.created_ms is None  # ""
    assert ev.outcome is None  # ""
    assert ev.order_type == "FOK" and ev.associate_trades == ()
    assert ev.timestamp_ms == 1777824065000


def test_user_order_venue_cancel_created_in_ms() -> None:
    (ev,) = ws.user_events(load("ws_user_order_venue_cancel_ANONYMIZED.json"))
    assert isinstance(ev, UserOrderEvent)
    assert (ev.type, ev.status) == ("CANCELLATION", "INVALID")
    assert ev.created_ms == 1774377384000  # ms on the wire here, not seconds


def test_user_trade_taker_matched() -> None:
    (ev,) = ws.user_events(load("ws_user_trade_taker_matched_2024.json"))
    assert isinstance(ev, UserTradeEvent)
    t = ev.trade
    assert (t.trade_id, t.status, t.trader_side) == ("f50e8ab2-652d-4dc8-9c82-8e46197fe98d", "MATCHED", "TAKER")
    assert (t.side, t.price, t.size) == (Side.BUY, D("0.52"), D("5"))
    assert t.match_ms == 1725958681000 and ev.timestamp_ms == 1725958682125
    assert t.tx_hash == "0xa667ef3b363b70731c59e3d4fff50d7bdb3d6b165d49e448032cab68c82e3c66"
    (maker,) = ev.maker_orders
    assert maker.matched_amount == D("5") and maker.price == D("0.52") and maker.side is None
    assert maker.maker_address == "0x629bc4a1e53e1d475beb7ea3d388791e96dd995a"
    assert t.maker_order_ids == (maker.order_id,)
    assert ev.owner == "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe"


def test_user_trade_maker_many_makers_cross_asset() -> None:
    (ev,) = ws.user_events(load("ws_user_trade_maker_many_makers_2024.json"))
    assert isinstance(ev, UserTradeEvent)
    assert ev.trade.status == "MINED" and ev.trade.trader_side == "MAKER"
    assert len(ev.maker_orders) == 6
    ours = [m for m in ev.maker_orders if m.owner == "3e2c94ca-8124-c4c1-c7ea-be1ea21b71fe"]
    assert [(m.matched_amount, m.price) for m in ours] == [(D("5"), D("0.518"))]
    assert {m.outcome for m in ev.maker_orders} == {"Yes", "No"}


def test_user_trade_maker_confirmed_2025_seconds_timestamp() -> None:
    (ev,) = ws.user_events(load("ws_user_trade_maker_confirmed_2025.json"))
    assert isinstance(ev, UserTradeEvent)
    assert ev.trade.status == "CONFIRMED" and ev.trade.side is Side.SELL
    assert ev.timestamp_ms == 1762776436000  # 10 digits on the wire → seconds
    assert all(m.side is Side.BUY for m in ev.maker_orders)
    assert sum(m.matched_amount for m in ev.maker_orders) == ev.trade.size == D("15")


def test_user_trade_docs_matchtime_key() -> None:
    msg = {
        "asset_id": "5211",
        "event_type": "trade",
        "id": "28c4d2eb",
        "last_update": "1672290701",
        "maker_orders": [
            {
                "asset_id": "5211",
                "matched_amount": "10",
                "order_id": "0xff35",
                "outcome": "YES",
                "owner": "9180014b",
                "price": "0.57",
            }
        ],
        "market": "0xbd31",
        "matchtime": "1672290701",
        "outcome": "YES",
        "owner": "9180014b",
        "price": "0.57",
        "side": "BUY",
        "size": "10",
        "status": "MATCHED",
        "taker_order_id": "0x06bc",
        "timestamp": "1672290701",
        "trade_owner": "9180014b",
        "type": "TRADE",
    }
    (ev,) = ws.user_events(msg)
    assert isinstance(ev, UserTradeEvent)
    assert ev.trade.match_ms == 1672290701000
    assert ev.trade.maker_order_ids == ("0xff35",)


# ---------------------------------------------------------------------------------------- RTDS


def test_rtds_activity_trades_all_and_filtered() -> None:
    rows = load("rtds_activity_trades.json")
    trades = [ev for m in rows for ev in ws.rtds_events(m)]
    assert len(trades) == 5 and all(isinstance(t, WalletTrade) for t in trades)
    first = trades[0]
    assert isinstance(first, WalletTrade)
    assert first.source is TradeSource.RTDS
    assert first.wallet == "0xf5848342fc388908f2d25a9012cc18a0ad193979"  # lowercased from EIP-55
    assert (first.side, first.price, first.size) == (Side.BUY, D("0.03"), D("1030.92"))
    assert first.timestamp_ms == 1790272257000  # payload timestamp is seconds
    assert first.tx_hash == "0x94cfdfa3bd63a11cf2fd697932ee615b6bcfb36f7ee65da9762012e88b6c5bca"
    assert first.slug == "unl-and-mal-2026-09-24-mal" and first.outcome == "No"
    # The complementary legs share a tx hash but differ in token: distinct keys.
    assert trades[0].key != trades[1].key and trades[0].tx_hash == trades[1].tx_hash
    # Client-side wallet filter: the followed wallet is given in any case.
    followed = {"0x09BED1976600971FD9F9DB454A9C302C7A559C32".lower()}
    kept = [ev for m in rows for ev in ws.rtds_events(m, followed)]
    assert [t.name for t in kept if isinstance(t, WalletTrade)] == ["Momo63"]


def test_rtds_crypto_prices_update_and_snapshot() -> None:
    (upd,) = ws.rtds_events(load("rtds_crypto_prices_update.json"))
    assert upd == CryptoPrice(topic="crypto_prices", symbol="btcusdt", value=D("61035.86"), timestamp_ms=1780730269000)
    snap = ws.rtds_events(load("rtds_crypto_prices_subscribe_snapshot.json"))
    assert [(p.value, p.timestamp_ms) for p in snap if isinstance(p, CryptoPrice)] == [
        (D("61164.12"), 1780726209000),
        (D("61161.07"), 1780726210000),
        (D("61150.89"), 1780726211000),
    ]


def test_rtds_chainlink_and_unknown_topics() -> None:
    msg = {
        "topic": "crypto_prices_chainlink",
        "type": "update",
        "timestamp": 1,
        "payload": {"symbol": "btc/usd", "timestamp": 1780730269000, "value": 61035.5},
    }
    assert ws.rtds_events(msg) == [CryptoPrice("crypto_prices_chainlink", "btc/usd", D("61035.5"), 1780730269000)]
    assert ws.rtds_events({"topic": "comments", "type": "comment_created", "payload": {}}) == []
    with pytest.raises(VenueError):
        ws.rtds_events({"topic": "crypto_prices", "type": "update", "payload": {"value": 1}})  # no symbol


# --------------------------------------------------------------------------------------- chain

WHALE = "0x56687bf447db6ffa42ffe2204a05edaa20f55839"
OTHER = "0x1111111111111111111111111111111111111111"
TX = "0x" + "ab" * 32


def filled_log(
    *, maker: str, taker: str, side: int, token: int, maker_amount: int, taker_amount: int, fee: int = 0
) -> dict[str, Any]:
    words = [side, token, maker_amount, taker_amount, fee, 0, 0]
    return {
        "address": ws.CTF_EXCHANGE_V2,
        "topics": [ws.ORDER_FILLED_TOPIC, "0x" + "11" * 32, ws.address_topic(maker), ws.address_topic(taker)],
        "data": "0x" + b"".join(w.to_bytes(32, "big") for w in words).hex(),
        "transactionHash": TX,
        "logIndex": "0x3",
        "removed": False,
    }


def test_order_filled_buy_as_maker() -> None:
    # A BUY filled for 5.2 pUSD → 10 shares: price 0.52.
    log = filled_log(
        maker=WHALE, taker=ws.CTF_EXCHANGE_V2, side=0, token=123, maker_amount=5_200_000, taker_amount=10_000_000
    )
    t = ws.order_filled(log, [WHALE.upper().replace("0X", "0x")], 1_795_000_000_000)
    assert t is not None
    assert (t.source, t.wallet, t.token_id, t.side) == (TradeSource.CHAIN, WHALE, "123", Side.BUY)
    assert (t.size, t.price) == (D(10), D("0.52"))
    assert t.tx_hash == TX and t.timestamp_ms == 1_795_000_000_000


def test_order_filled_sell_and_counterparty_logs() -> None:
    # OTHER's SELL of 20 shares for 19.4 pUSD, matched against the followed wallet's taker order.
    log = filled_log(maker=OTHER, taker=WHALE, side=1, token=7, maker_amount=20_000_000, taker_amount=19_400_000)
    m = ws.order_filled(log, {OTHER}, 0)
    assert m is not None and (m.wallet, m.side, m.size, m.price) == (OTHER, Side.SELL, D(20), D("0.97"))
    # For WHALE this is the counterparty's fill (its own fill is the log where it is the maker).
    assert ws.order_filled(log, {WHALE}, 0) is None
    assert ws.order_filled(log, {"0x" + "22" * 20}, 0) is None


def test_order_filled_bytes_removed_and_bad_logs() -> None:
    log = filled_log(maker=WHALE, taker=OTHER, side=0, token=1, maker_amount=1_000_000, taker_amount=2_000_000)
    as_bytes = {
        **log,
        "topics": [bytes.fromhex(t[2:]) for t in log["topics"]],
        "data": bytes.fromhex(log["data"][2:]),
        "transactionHash": bytes.fromhex(TX[2:]),
    }
    t = ws.order_filled(as_bytes, {WHALE}, 0)
    assert t is not None and t.price == D("0.5") and t.tx_hash == TX
    assert ws.order_filled({**log, "removed": True}, {WHALE}, 0) is None
    with pytest.raises(VenueError):
        ws.order_filled({**log, "topics": ["0x" + "00" * 32, *log["topics"][1:]]}, {WHALE}, 0)
    with pytest.raises(VenueError):
        ws.order_filled({**log, "data": "0x1234"}, {WHALE}, 0)


def test_address_topic_round_trip() -> None:
    assert ws.topic_address(ws.address_topic(WHALE)) == WHALE
    assert len(ws.address_topic(WHALE)) == 66
    with pytest.raises(VenueError):
        ws.address_topic("0x1234")


# ------------------------------------------------------------------- remembered numbers (the hot path)


def _entry(**kw: Any) -> dict[str, Any]:
    e = {
        "asset_id": "t1",
        "price": "0.5",
        "size": "10",
        "side": "BUY",
        "hash": "h",
        "best_bid": "0.5",
        "best_ask": "0.6",
    }
    e.update(kw)
    return e


def test_a_remembered_number_is_checked_per_field_and_a_bad_one_is_refused_every_time() -> None:
    """price_change entries read their numbers through per-text memos: what passed one check must not
    pass another (0 and 1 are fine as a reported best, never as a level's price), and a refused text is
    refused again, not remembered."""
    ok = ws.level_change(_entry(best_bid="0", best_ask="1"), "e")
    assert (ok.best_bid, ok.best_ask) == (D(0), D(1))
    for bad in ("0", "1", "1.5", "-0.1", "NaN", "1e999999", [], {}):
        for _ in range(2):
            with pytest.raises(VenueError):
                ws.level_change(_entry(price=bad), "e")
    for bad_size in ("-1", "1e11", "x", []):
        for _ in range(2):
            with pytest.raises(VenueError):
                ws.level_change(_entry(size=bad_size), "e")
    assert ws.level_change(_entry(size="0"), "e").size == 0  # 0 removes the level: fine as a size
    for bad_side in ("HOLD", None, [], 3):
        with pytest.raises(VenueError):
            ws.level_change(_entry(side=bad_side), "e")
    # numbers sent as JSON numbers (not remembered) read the same as their text
    a, b = ws.level_change(_entry(price=0.25, size=3), "e"), ws.level_change(_entry(price="0.25", size="3"), "e")
    assert (a.price, a.size, a.side) == (b.price, b.size, b.side) == (D("0.25"), D(3), Side.BUY)
    assert ws.level_change(_entry(side="sell"), "e").side is Side.SELL  # the slow path still reads lower case


def test_the_memos_stay_bounded() -> None:
    for i in range(ws._MEMO_MAX + 10):
        ws.level_change(_entry(size=f"{i + 1}.5"), "e")
    assert len(ws._LEVEL_SIZES) <= ws._MEMO_MAX
    assert ws.level_change(_entry(size="7.5"), "e").size == D("7.5")


def test_loads_venue_reads_bytes_and_refuses_a_bom_like_json_loads() -> None:
    from pmbot.polymarket.schemas.common import loads_venue

    assert loads_venue(b'{"a": "0.5"}', "f") == {"a": "0.5"}
    assert loads_venue('{"a": "0.5"}'.encode("utf-16"), "f") == {"a": "0.5"}
    with pytest.raises(VenueError):
        loads_venue('\ufeff{"a": 1}', "f")
    with pytest.raises(VenueError):
        loads_venue('{"a": NaN}', "f")
    with pytest.raises(VenueError):
        loads_venue(b"\xff\xfe\xfa", "f")


SIZE_TEXTS = st.one_of(
    st.from_regex(r"\A[0-9]{0,12}(\.[0-9]{0,15})?\Z"),
    st.sampled_from(["0", "0.0", "-0", "+1", " 1", "1 ", ".5", "5.", "1e5", "1E-40", "NaN", "Infinity", "١٢", "²",
                     "9999999999.9999999999999", "10000000000", "10000000000.5", "0" * 30, "1" * 25]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(text=SIZE_TEXTS)
def test_the_level_size_fast_path_reads_exactly_what_the_full_check_reads(text: str) -> None:
    from pmbot.polymarket.schemas.common import shares

    try:
        want: D | None = shares(text, "e", allow_zero=True)
    except VenueError:
        want = None
    if want is None:
        with pytest.raises(VenueError):
            ws._level_size(text, "e")
    else:
        got = ws._level_size(text, "e")
        assert got == want and str(got) == str(want)
