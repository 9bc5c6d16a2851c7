"""The copy strategy's rules, driven with lists of events (no sockets, no clock): it mirrors the target's
fills with the right outcome and size, once whichever sources saw them, and records the stable skip reason
of the first guard that refuses."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pmbot.errors import ConfigError
from pmbot.executor.intents import intent_key
from pmbot.store.models import OrderStatus, OrderType, Side
from pmbot.strategies.base import Decision, DecisionKind, MarketInfo
from pmbot.strategies.copy import COPIED, CopyMemoryView, CopyStrategy, SkipReason, copy_limit, seen_times
from pmbot.strategies.events import OrderResult, TargetSource, TimerTick
from tests.strategy_kit import (
    COPY_CID,
    NO,
    T0,
    WHALE,
    YES,
    D,
    Driver,
    book,
    copy_market,
    own_fill,
    target_fill,
)

WINDOW = 2  # default aggregate_ms


def copier(
    m: MarketInfo | None = None,
    *,
    balance: str = "1000",
    view_tags: dict[str, list[str]] | None = None,
    target_positions: dict[str, Decimal] | None = None,
    **config: Any,
) -> Driver:
    view = CopyMemoryView(
        [m or copy_market()], balance=D(balance), tags=view_tags or {}, target_positions=target_positions or {}
    )
    config.setdefault("target", WHALE)
    return Driver(CopyStrategy(view, config), view)


def settle(d: Driver, at: int) -> Driver:
    """Close every aggregation window: the runner's TimerTick at next_wakeup_ms()."""
    return d.feed([TimerTick(ts_ms=at)])


def decide(d: Driver, *fills: Any) -> Driver:
    d.feed(fills)
    last = max(f.seen_ts_ms for f in fills)
    return settle(d, last + WINDOW)


def skip_of(d: Driver) -> Decision:
    skips = [x for x in d.decisions if x.kind is DecisionKind.SKIP]
    assert skips, f"no skip; decisions: {d.decisions}"
    return skips[-1]


# ------------------------------------------------------------------------------------------ mirror


def test_mirrors_a_buy_with_the_right_outcome_and_size() -> None:
    d = decide(copier(), target_fill("chain", token=NO, price="0.40", size="200", log=7))
    (intent,) = d.intents
    assert intent.token_id == NO
    assert intent.side is Side.BUY
    assert intent.size == D("20")  # ratio 0.1 of 200 shares
    assert intent.price == D("0.41")  # target price + one tick
    assert intent.order_type is OrderType.FAK
    assert intent.condition_id == COPY_CID
    assert intent.meta["outcome"] == "No"
    (sig,) = d.signals()
    assert sig.reason == COPIED
    assert sig.intent_key == intent.key
    assert sig.detail["tx_hash"] == "0xt1"
    assert sig.detail["log_index"] == "7"
    assert sig.detail["target_ts_ms"] == str(T0)
    assert sig.detail["seen_chain_ms"] == str(T0 + 50)
    assert sig.detail["outcome"] == "No"
    assert intent.signal_ms == T0 + 50 + WINDOW


def test_decides_at_once_without_an_aggregation_window() -> None:
    d = copier(aggregate_ms=0).feed([target_fill("rtds")])
    assert len(d.intents) == 1
    assert d.strategy.next_wakeup_ms() is None  # type: ignore[attr-defined]


def test_waits_for_its_window_and_says_when_to_wake() -> None:
    d = copier().feed([target_fill("chain", seen=T0 + 10)])
    assert d.intents == []
    assert d.strategy.next_wakeup_ms() == T0 + 10 + WINDOW  # type: ignore[attr-defined]
    settle(d, T0 + 11)
    assert d.intents == []
    settle(d, T0 + 12)
    assert len(d.intents) == 1


def test_same_fill_from_all_three_sources_is_one_intent() -> None:
    chain = target_fill("chain", log=3, seen=T0 + 2000)
    rtds = target_fill("rtds", seen=T0 + 300)  # RTDS first, with the tx hash but no log index
    data = target_fill("data_api", ts=T0 // 1000 * 1000, seen=T0 + 4000)
    d = decide(copier(), rtds)
    d.feed([chain, data])
    assert len(d.intents) == 1
    sig = d.signals()[0]
    assert sig.detail["first_source"] == "rtds"
    dups = [x for x in d.decisions if x.reason == SkipReason.DUPLICATE]
    assert [x.detail["source"] for x in dups] == ["chain", "data_api"]
    assert dups[0].detail["seen_ms"] == str(T0 + 2000)
    assert dups[1].detail["seen_data_api_ms"] == str(T0 + 4000)
    assert {x.detail["copied_key"] for x in dups} == {d.intents[0].key}
    assert dups[-1].detail["log_index"] == "3"  # the chain's log index, learnt later, names the fill
    assert seen_times(dups[-1].detail) == {
        TargetSource.RTDS: T0 + 300,
        TargetSource.CHAIN: T0 + 2000,
        TargetSource.DATA_API: T0 + 4000,
    }
    assert seen_times(sig.detail) == {TargetSource.RTDS: T0 + 300}
    assert sig.ts_ms - int(sig.detail["target_ts_ms"]) == 300 + WINDOW  # target fill -> our order


def test_same_fill_without_tx_hashes_matches_by_asset_side_size_and_price() -> None:
    d = decide(copier(), target_fill("rtds", tx="", seen=T0 + 100))
    d.feed([target_fill("data_api", tx="", ts=T0 - 400, seen=T0 + 3000)])  # the API's clock rounds to seconds
    d.feed([target_fill("chain", log=1, seen=T0 + 2100)])  # then the chain names the tx
    assert len(d.intents) == 1
    assert d.skips() == [SkipReason.DUPLICATE, SkipReason.DUPLICATE]


def test_split_pieces_of_one_taker_order_match_the_chains_aggregate() -> None:
    # The chain has one aggregate log of 100; the Data API shows the match as one trade per maker level.
    d = decide(copier(), target_fill("chain", log=4, size="100", price="0.50"))
    d.feed(
        [
            target_fill("data_api", tx="", size="60", price="0.49", seen=T0 + 3000),
            target_fill("data_api", tx="", size="40", price="0.52", seen=T0 + 3000),
        ]
    )
    assert len(d.intents) == 1
    assert d.skips() == [SkipReason.DUPLICATE, SkipReason.DUPLICATE]


def test_several_logs_of_one_order_within_the_window_are_one_decision() -> None:
    d = copier().feed(
        [
            target_fill("chain", log=1, size="30", price="0.50", seen=T0 + 10),
            target_fill("chain", log=2, size="70", price="0.60", seen=T0 + 11),
        ]
    )
    settle(d, T0 + 10 + WINDOW)
    (intent,) = d.intents
    assert intent.size == D("10")  # 0.1 × (30 + 70)
    assert intent.price == D("0.58")  # volume-weighted 0.57 + one tick
    sig = d.signals()[0]
    assert sig.detail["parts"] == "2"
    assert sig.detail["target_size"] == "100"


def test_pieces_and_the_aggregate_inside_one_window_are_one_decision_sized_by_the_first_source() -> None:
    d = copier().feed(
        [
            target_fill("rtds", size="60", price="0.49", seen=T0 + 10),
            target_fill("rtds", size="40", price="0.52", seen=T0 + 10),
            target_fill("chain", log=9, size="100", price="0.50", seen=T0 + 11),
        ]
    )
    settle(d, T0 + 10 + WINDOW)
    (intent,) = d.intents
    assert intent.size == D("10")
    sig = d.signals()[0]
    assert sig.detail["sources"] == "rtds,chain"
    assert sig.detail["seen_rtds_ms"] == str(T0 + 10)
    assert sig.detail["seen_chain_ms"] == str(T0 + 11)
    assert sig.detail["log_index"] == "9"
    assert d.skips() == []


def test_a_late_piece_of_a_decided_order_is_never_topped_up() -> None:
    d = decide(copier(), target_fill("rtds", size="60"))
    d.feed([target_fill("rtds", size="40", price="0.52", seen=T0 + 500)])
    assert len(d.intents) == 1
    s = skip_of(d)
    assert s.reason == SkipReason.DUPLICATE
    assert s.detail["redelivery"] == "false"


def test_a_later_distinct_fill_is_a_new_decision() -> None:
    d = decide(copier(), target_fill("chain", tx="0xa", log=1))
    decide(d, target_fill("chain", tx="0xb", log=1, ts=T0 + 500, seen=T0 + 600))
    assert len(d.intents) == 2
    assert d.intents[0].key != d.intents[1].key


def test_same_source_redelivery_is_a_duplicate() -> None:
    f = target_fill("rtds")
    d = decide(copier(), f)
    d.feed([f])
    assert len(d.intents) == 1
    assert skip_of(d).reason == SkipReason.DUPLICATE
    assert skip_of(d).detail["redelivery"] == "true"


def test_fills_of_other_wallets_are_ignored() -> None:
    d = decide(copier(), target_fill(target="0x" + "cd" * 20))
    assert d.intents == []
    assert d.decisions == []


def test_key_comes_from_the_fill_identity() -> None:
    d = decide(copier(), target_fill("rtds", tx="0xABC"))
    fill_id = f"tx:{WHALE}:0xabc:{YES}:BUY"
    assert d.intents[0].key == intent_key("copy", COPY_CID, fill_id, WHALE, YES, "BUY")
    assert d.signals()[0].detail["fill_id"] == fill_id


def test_address_in_any_case_is_the_same_target() -> None:
    d = decide(copier(target=WHALE.upper().replace("0X", "0x")), target_fill(target=WHALE.upper().replace("0X", "0x")))
    assert len(d.intents) == 1


def test_username_with_resolved_address() -> None:
    d = decide(copier(target="distinct-baguette", address=WHALE), target_fill())
    assert len(d.intents) == 1


# --------------------------------------------------------------------------------------- sizing


def test_fixed_usdc_per_trade() -> None:
    d = decide(copier(mode="fixed", fixed_usdc="10"), target_fill(price="0.49", size="5000"))
    (intent,) = d.intents
    assert intent.price == D("0.50")
    assert intent.size == D("20")  # 10 USDC at the 0.50 limit


def test_percent_of_balance() -> None:
    d = decide(copier(mode="percent", percent="2", balance="500"), target_fill(price="0.24"))
    (intent,) = d.intents
    assert intent.size == D("40")  # 2 % of 500 = 10 USDC at 0.25


def test_slippage_setting_sets_the_limit_on_tick() -> None:
    d = decide(copier(max_slippage="0.025", max_book_move="0.1"), target_fill(price="0.50"))
    assert d.intents[0].price == D("0.52")  # 0.525 rounded down to the tick


def test_copy_limit_rounds_in_our_favour_and_stays_inside_the_range() -> None:
    tick = D("0.01")
    assert copy_limit(Side.BUY, D("0.503"), tick, tick) == D("0.51")
    assert copy_limit(Side.SELL, D("0.503"), tick, tick) == D("0.50")
    assert copy_limit(Side.BUY, D("0.995"), D("0.02"), tick) == D("0.99")
    assert copy_limit(Side.SELL, D("0.01"), D("0.02"), tick) == D("0.01")


def test_per_trade_cap_shrinks_the_order() -> None:
    d = decide(copier(max_per_trade_usdc="5"), target_fill(price="0.49", size="1000"))
    (intent,) = d.intents
    assert intent.size == D("10")  # 100 wanted; 5 USDC at 0.50
    assert d.signals()[0].detail["capped_by"] == "max_per_trade_usdc"


def test_caps_count_the_taker_fee() -> None:
    """Review: two buys of 1.99 and 1.95 at a 4 USDC market cap cost 4.05 with fees. At 0.50 with rate 0.25 a
    share costs 0.50 + 0.0625 fee: 5 USDC buys 8.88 shares, not 10."""
    from pmbot.polymarket.models import FeeSchedule

    m = copy_market(fees=FeeSchedule(rate=D("0.25")))
    d = decide(copier(m, max_per_trade_usdc="5"), target_fill(price="0.49", size="1000"))
    (intent,) = d.intents
    assert intent.size == D("8.88") and intent.size * D("0.5625") <= 5
    assert d.signals()[0].detail["capped_by"] == "max_per_trade_usdc"


def test_per_market_cap_counts_held_cost_and_open_buys() -> None:
    d = decide(copier(max_per_market_usdc="30", mode="fixed", fixed_usdc="20"), target_fill(tx="0xa", price="0.49"))
    first = d.intents[0]
    assert first.size * first.price == D("20")
    # The first order is still open (no result yet): only 10 USDC of room is left.
    decide(d, target_fill(tx="0xb", price="0.49", ts=T0 + 100, seen=T0 + 200))
    assert d.intents[1].size == D("20")  # 10 USDC at 0.50
    assert d.signals()[1].detail["capped_by"] == "max_per_market_usdc"
    # Both filled: the market is full, the next one is a cap skip.
    d.feed([own_fill(first, T0 + 300), own_fill(d.intents[1], T0 + 301)])
    decide(d, target_fill(tx="0xc", price="0.49", ts=T0 + 400, seen=T0 + 500))
    assert len(d.intents) == 2
    assert skip_of(d).reason == SkipReason.CAP


def test_total_cap() -> None:
    other = copy_market(condition_id="0xother", outcomes=copy_market().outcomes, slug="other")
    view = CopyMemoryView([copy_market(), other])
    d = Driver(CopyStrategy(view, {"target": WHALE, "max_total_usdc": "15", "mode": "fixed", "fixed_usdc": "10"}), view)
    decide(d, target_fill(tx="0xa", price="0.49"))
    d.feed([own_fill(d.intents[0], T0 + 100)])
    decide(d, target_fill(tx="0xb", price="0.49", cid="0xother", ts=T0 + 200, seen=T0 + 300))
    assert d.intents[1].size == D("10")  # 5 USDC of room at 0.50
    assert d.signals()[1].detail["capped_by"] == "max_total_usdc"


def test_zero_cap_stops_buys() -> None:
    d = decide(copier(max_per_trade_usdc="0"), target_fill())
    assert d.intents == []
    assert skip_of(d).reason == SkipReason.CAP


def test_rejected_order_frees_its_cap_room() -> None:
    d = decide(copier(max_per_market_usdc="10", mode="fixed", fixed_usdc="10"), target_fill(tx="0xa", price="0.49"))
    d.feed([OrderResult(key=d.intents[0].key, status=OrderStatus.REJECTED, ts_ms=T0 + 100)])
    decide(d, target_fill(tx="0xb", price="0.49", ts=T0 + 200, seen=T0 + 300))
    assert len(d.intents) == 2
    assert "capped_by" not in d.signals()[1].detail


def test_under_the_marketable_minimum_is_min_size() -> None:
    d = decide(copier(), target_fill(price="0.49", size="10"))  # 1 share at 0.50 = 0.50 USDC
    assert d.intents == []
    s = skip_of(d)
    assert s.reason == SkipReason.MIN_SIZE
    assert "minimum" in s.detail["why"]


def test_round_up_to_the_minimum_when_configured() -> None:
    d = decide(copier(round_up_to_min=True), target_fill(price="0.49", size="10"))
    (intent,) = d.intents
    assert intent.size == D("2")  # 1 USDC at 0.50
    assert d.signals()[0].detail["capped_by"] == "round_up_to_min"


def test_round_up_never_passes_a_cap() -> None:
    d = decide(copier(round_up_to_min=True, max_per_trade_usdc="0.8"), target_fill(price="0.49", size="10"))
    assert d.intents == []
    assert skip_of(d).reason == SkipReason.CAP


def test_resting_orders_need_the_markets_minimum_shares() -> None:
    d = decide(copier(order_type="GTC"), target_fill(price="0.49", size="40"))  # 4 shares < 5
    assert skip_of(d).reason == SkipReason.MIN_SIZE
    d = decide(copier(order_type="GTC"), target_fill(price="0.49", size="50"))
    assert d.intents[0].size == D("5")
    assert d.intents[0].order_type is OrderType.GTC


# ----------------------------------------------------------------------------------------- sells


def _bought(d: Driver, size: str = "200", price: str = "0.49") -> Any:
    decide(d, target_fill(tx="0xbuy", price=price, size=size))
    intent = d.intents[-1]
    d.feed([own_fill(intent, T0 + 100)])
    return intent


def test_sell_mirrors_the_targets_reduction_in_proportion() -> None:
    d = copier()
    _bought(d)  # the whale bought 200, we 20
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="50", ts=T0 + 1000, seen=T0 + 1100))
    sell = d.intents[-1]
    assert sell.side is Side.SELL
    assert sell.size == D("5")  # the whale sold a quarter: so do we
    assert sell.price == D("0.59")  # target price minus one tick


def test_sell_follows_the_targets_holding_from_its_snapshot() -> None:
    # The whale held 600 before we started: its buy of 200 makes 800; selling 400 is half.
    d = copier(target_positions={YES: D(600)})
    _bought(d)
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="400", ts=T0 + 1000, seen=T0 + 1100))
    assert d.intents[-1].size == D("10")


def test_sell_never_more_than_we_hold() -> None:
    d = copier()
    _bought(d)
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="1000", ts=T0 + 1000, seen=T0 + 1100))
    assert d.intents[-1].size == D("20")


def test_open_sells_count_against_what_we_hold() -> None:
    d = copier()
    _bought(d)
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="200", ts=T0 + 1000, seen=T0 + 1100))
    assert d.intents[-1].size == D("20")  # everything, not yet filled
    decide(d, target_fill(tx="0xs2", side=Side.SELL, price="0.60", size="100", ts=T0 + 2000, seen=T0 + 2100))
    assert len(d.intents) == 2
    assert skip_of(d).reason == SkipReason.NO_POSITION


def test_a_failed_sell_gives_the_shares_back() -> None:
    d = copier()
    _bought(d)
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="100", ts=T0 + 1000, seen=T0 + 1100))
    first = d.intents[-1]
    d.feed([OrderResult(key=first.key, status=OrderStatus.CANCELLED, ts_ms=T0 + 1200)])  # FAK: nothing filled
    decide(d, target_fill(tx="0xs2", side=Side.SELL, price="0.60", size="100", ts=T0 + 2000, seen=T0 + 2100))
    assert d.intents[-1].size == D("20")  # the whale is out (it sold 200 of its 200): so are we


def test_target_sell_of_something_never_copied_is_no_position() -> None:
    d = decide(copier(), target_fill(side=Side.SELL, price="0.60"))
    assert d.intents == []
    assert skip_of(d).reason == SkipReason.NO_POSITION


def test_buys_only_filters_sells() -> None:
    d = copier(buys_only=True)
    _bought(d)
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="100", ts=T0 + 1000, seen=T0 + 1100))
    assert len(d.intents) == 1
    assert skip_of(d).reason == SkipReason.FILTERED


# ---------------------------------------------------------------------------------------- guards


def test_stale_fill_is_skipped() -> None:
    d = decide(copier(), target_fill(ts=T0, seen=T0 + 30_001))
    assert d.intents == []
    assert skip_of(d).reason == SkipReason.STALE
    d = decide(copier(), target_fill(ts=T0, seen=T0 + 29_990))
    assert len(d.intents) == 1


def test_a_fill_dated_beyond_max_age_in_the_future_is_stale() -> None:
    """Review: Data API rows dated minutes ahead of our clock were copied at a price the book had left."""
    d = decide(copier(), target_fill(ts=T0 + 31_000, seen=T0))
    assert d.intents == [] and skip_of(d).reason == SkipReason.STALE
    assert "in the future" in skip_of(d).detail["why"]
    d = decide(copier(), target_fill(ts=T0 + 2_000, seen=T0))  # a little clock skew still copies
    assert len(d.intents) == 1


def test_max_age_has_a_ceiling() -> None:
    from pmbot.errors import ConfigError
    from pmbot.strategies.copy import CopyStrategy

    with pytest.raises(ConfigError):
        CopyStrategy.validate_config({"target": "0x" + "ab" * 20, "max_age_s": "1e9"})


def test_max_age_is_configurable() -> None:
    d = decide(copier(max_age_s="5"), target_fill(ts=T0, seen=T0 + 6000))
    assert skip_of(d).reason == SkipReason.STALE


def test_book_moved_past_the_limit_is_slippage() -> None:
    d = copier()
    d.feed([book(YES, T0, asks=[("0.53", "100")], bids=[("0.50", "100")], cid=COPY_CID)])
    decide(d, target_fill(price="0.50"))
    assert d.intents == []
    s = skip_of(d)
    assert s.reason == SkipReason.SLIPPAGE
    assert s.detail["book_move"] == "0.03"


def test_book_inside_the_limit_copies() -> None:
    d = copier()
    d.feed([book(YES, T0, asks=[("0.51", "100")], bids=[("0.50", "100")], cid=COPY_CID)])
    decide(d, target_fill(price="0.50"))
    assert len(d.intents) == 1
    assert d.signals()[0].detail["best_ask"] == "0.51"


def test_max_book_move_is_its_own_threshold() -> None:
    d = copier(max_book_move="0.005")
    d.feed([book(YES, T0, asks=[("0.51", "100")], bids=[("0.50", "100")], cid=COPY_CID)])
    decide(d, target_fill(price="0.50"))
    assert skip_of(d).reason == SkipReason.SLIPPAGE


def test_wide_spread_is_slippage() -> None:
    d = copier(max_spread="0.05")
    d.feed([book(YES, T0, asks=[("0.50", "100")], bids=[("0.40", "100")], cid=COPY_CID)])
    decide(d, target_fill(price="0.50"))
    s = skip_of(d)
    assert s.reason == SkipReason.SLIPPAGE
    assert "spread" in s.detail["why"]


def test_sell_guard_looks_at_the_bids() -> None:
    d = copier()
    _bought(d)
    d.feed([book(YES, T0 + 500, asks=[("0.60", "100")], bids=[("0.55", "100")], cid=COPY_CID)])
    decide(d, target_fill(tx="0xs1", side=Side.SELL, price="0.60", size="100", ts=T0 + 1000, seen=T0 + 1100))
    assert skip_of(d).reason == SkipReason.SLIPPAGE


def test_no_book_is_allowed_unless_required() -> None:
    d = decide(copier(), target_fill())
    assert d.signals()[0].detail["book"] == "unknown"
    d = decide(copier(require_book=True), target_fill())
    assert skip_of(d).reason == SkipReason.SLIPPAGE


def test_empty_side_of_the_book_is_slippage() -> None:
    d = copier()
    d.feed([book(YES, T0, bids=[("0.50", "100")], cid=COPY_CID)])
    decide(d, target_fill())
    assert skip_of(d).reason == SkipReason.SLIPPAGE


def test_unknown_and_closed_markets() -> None:
    d = decide(copier(), target_fill(cid="0xnowhere"))
    assert skip_of(d).reason == SkipReason.UNKNOWN_MARKET
    d = decide(copier(m=copy_market(accepting_orders=False)), target_fill())
    assert skip_of(d).reason == SkipReason.NOT_ACCEPTING


def test_market_filter_by_slug_or_condition() -> None:
    d = decide(copier(markets=("will-it-copy",)), target_fill())
    assert len(d.intents) == 1
    d = decide(copier(markets=(COPY_CID.upper(),)), target_fill())
    assert len(d.intents) == 1
    d = decide(copier(markets=("another",)), target_fill())
    assert skip_of(d).reason == SkipReason.FILTERED


def test_tags_filter_with_view_tags() -> None:
    d = decide(copier(view_tags={COPY_CID: ["crypto", "bitcoin"]}, tags=("Bitcoin",)), target_fill())
    assert len(d.intents) == 1
    d = decide(copier(view_tags={COPY_CID: ["politics"]}, tags=("bitcoin",)), target_fill())
    assert skip_of(d).reason == SkipReason.FILTERED


def test_min_target_size_and_maker_filters() -> None:
    d = decide(copier(min_target_usdc="100"), target_fill(price="0.50", size="100"))
    assert skip_of(d).reason == SkipReason.FILTERED
    d = decide(copier(copy_maker_fills=False), target_fill(maker=True))
    assert skip_of(d).reason == SkipReason.FILTERED
    d = decide(copier(copy_maker_fills=False), target_fill(maker=False))
    assert len(d.intents) == 1


def test_paused_strategy_records_the_fill_and_sends_nothing() -> None:
    d = copier()
    d.strategy.pause("operator")
    decide(d, target_fill())
    assert d.intents == []
    s = skip_of(d)
    assert s.reason == SkipReason.PAUSED
    assert s.detail["tx_hash"] == "0xt1"


def test_every_decision_names_the_fill_and_its_times() -> None:
    d = copier()
    decide(d, target_fill(tx="0xa", seen=T0 + 10))
    decide(d, target_fill(tx="0xb", side=Side.SELL, ts=T0 + 10, seen=T0 + 20))  # no_position
    decide(d, target_fill(tx="0xc", ts=T0 - 60_000, seen=T0 + 30))  # stale
    d.feed([target_fill("rtds", tx="0xa", seen=T0 + 40)])  # duplicate
    assert [x.reason for x in d.decisions] == [COPIED, "no_position", "stale", "duplicate"]
    for x in d.decisions:
        assert x.detail["tx_hash"].startswith("0x")
        assert x.detail["target_ts_ms"]
        assert any(k.startswith("seen_") and k.endswith("_ms") for k in x.detail)


# ------------------------------------------------------------------------------------ restart


def test_restart_restores_decisions_no_double_copy_and_stale_skips() -> None:
    d = copier()
    decide(d, target_fill("rtds", tx="", seen=T0 + 100))  # copied before the crash, seen by RTDS only
    decide(d, target_fill("chain", tx="0xq", log=2, size="300", ts=T0 + 100, seen=T0 + 300))
    assert len(d.intents) == 2
    stored = d.decisions
    wm = d.strategy.watermark(TargetSource.CHAIN)  # type: ignore[attr-defined]
    assert wm == T0 + 100

    # Restart 15 s later; the Data API backfill from the watermark (less the window) sends everything again,
    # plus one fill we missed while down and one too old to copy.
    view = CopyMemoryView([copy_market()])
    s2 = CopyStrategy(view, {"target": WHALE})
    d2 = Driver(s2, view)
    assert s2.restore(stored) == 2
    later = T0 + 15_000
    d2.feed(
        [
            target_fill("data_api", tx="0xp", ts=T0, seen=later),  # the RTDS fill: tx learnt now
            target_fill("data_api", tx="0xq", size="300", ts=T0 + 100, seen=later),
            target_fill("data_api", tx="0xmissed", size="50", ts=T0 + 12_000, seen=later),
            target_fill("data_api", tx="0xold", size="50", ts=later - 31_000, seen=later),
        ]
    )
    settle(d2, later + WINDOW)
    assert [i.size for i in d2.intents] == [D(5)]  # only the missed one
    reasons = {x.detail["tx_hash"]: x.reason for x in d2.decisions}
    assert reasons["0xmissed"] == COPIED
    assert reasons["0xold"] == SkipReason.STALE
    dups = [x for x in d2.decisions if x.reason == SkipReason.DUPLICATE]
    assert len(dups) == 2


def test_restore_refuses_a_key_sent_before_even_without_the_detail_match() -> None:
    d = decide(copier(), target_fill("chain", log=1))
    stored = d.decisions
    view = CopyMemoryView([copy_market()])
    s2 = CopyStrategy(view, {"target": WHALE})
    d2 = Driver(s2, view)
    s2.restore(stored)
    decide(d2, target_fill("chain", log=1, seen=T0 + 5000))
    assert d2.intents == []
    assert skip_of(d2).reason == SkipReason.DUPLICATE


def test_watermark_stays_below_a_fill_still_in_its_window() -> None:
    d = decide(copier(), target_fill("chain", tx="0xa", log=1, ts=T0))
    d.feed([target_fill("chain", tx="0xb", log=1, ts=T0 + 1000, seen=T0 + 1100)])
    s = d.strategy
    assert s.watermark(TargetSource.CHAIN) == T0  # type: ignore[attr-defined]
    assert s.watermark(TargetSource.RTDS) is None  # type: ignore[attr-defined]
    d.feed([target_fill("chain", tx="0xc", log=1, ts=T0 + 900, seen=T0 + 1101)])  # joins 0xb's window
    settle(d, T0 + 1100 + WINDOW)
    assert s.watermark(TargetSource.CHAIN) == T0 + 1000  # type: ignore[attr-defined]
    out = s.stop()
    assert out.intents == ()


def test_stop_drops_fills_in_their_window_without_recording() -> None:
    d = copier().feed([target_fill("chain", tx="0xa", log=1, ts=T0 + 500)])
    out = d.strategy.stop()
    assert out.intents == () and out.decisions == ()


# ------------------------------------------------------------------------------------- config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"target": WHALE, "mode": "double"}, "[copy] mode:"),
        ({"target": WHALE, "ratio": "0"}, "[copy] ratio: Input should be greater than 0"),
        ({"target": WHALE, "ratio": "-1"}, "[copy] ratio:"),
        ({"target": WHALE, "max_per_trade_usdc": "-1"}, "[copy] max_per_trade_usdc:"),
        ({"target": WHALE, "max_per_market_usdc": "-5"}, "[copy] max_per_market_usdc:"),
        ({"target": WHALE, "max_total_usdc": "-5"}, "[copy] max_total_usdc:"),
        ({"target": WHALE, "max_slippage": "1"}, "[copy] max_slippage: must be in [0, 1)"),
        ({"target": WHALE, "max_slippage": "-0.01"}, "[copy] max_slippage: must be in [0, 1)"),
        ({"target": "0x1234"}, "[copy] target: not a wallet address"),
        ({"target": "0x" + "g" * 40}, "[copy] target: not a wallet address"),
        ({"target": "has space"}, "[copy] target: must be a 0x wallet address or a Polymarket username"),
        ({"target": "distinct-baguette"}, "is a username: resolve it"),
        ({"target": "distinct-baguette", "address": "0xabc"}, "[copy] address: not a wallet address"),
        ({}, "[copy] target: Field required"),
        ({"target": WHALE, "sizing": "x"}, "[copy] sizing: unknown key"),
    ],
)
def test_config_errors_are_one_clear_line(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        CopyStrategy.validate_config(config)
    lines = err.value.message.splitlines()
    assert len(lines) == 1, lines
    assert message in lines[0]


def test_config_accepts_an_address_or_a_resolved_name() -> None:
    cfg = CopyStrategy.validate_config({"target": WHALE.upper().replace("0X", "0x")})
    assert cfg.wallet == WHALE
    cfg = CopyStrategy.validate_config({"target": "distinct-baguette", "address": WHALE})
    assert cfg.wallet == WHALE
    assert cfg.max_age_ms == 30_000


def test_malformed_target_fill_is_a_warning_not_an_order() -> None:
    d = decide(copier(), target_fill(size="0"))
    d.feed([target_fill(tx="0xz", price="1.5", seen=T0 + 100)])
    settle(d, T0 + 200)
    assert d.intents == []
    assert d.warnings() == ["malformed_target_fill", "malformed_target_fill"]


# --------------------------------------------------------------------------------------- properties

_price = st.integers(min_value=5, max_value=95).map(lambda c: D(c) / 100)
_size = st.integers(min_value=1, max_value=5000).map(lambda n: D(n) / 10)
_step = st.tuples(
    st.sampled_from([Side.BUY, Side.BUY, Side.SELL]),
    st.sampled_from([YES, NO]),
    _price,
    _size,
    st.sampled_from(["fill", "part", "cancel", "open"]),  # what becomes of our order
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(_step, min_size=1, max_size=25),
    mode=st.sampled_from(["ratio", "fixed", "percent"]),
    per_trade=st.sampled_from(["3", "10", "25"]),
    per_market=st.sampled_from(["5", "20", "60"]),
    total=st.sampled_from(["10", "40", "1000"]),
    round_up=st.booleans(),
)
def test_never_sells_more_than_held_and_never_exceeds_caps(
    steps: list[tuple[Side, str, Decimal, Decimal, str]],
    mode: str,
    per_trade: str,
    per_market: str,
    total: str,
    round_up: bool,
) -> None:
    other = copy_market(condition_id="0xother", slug="other")
    view = CopyMemoryView([copy_market(), other], balance=D(300))
    cfg = {
        "target": WHALE,
        "mode": mode,
        "ratio": "0.2",
        "fixed_usdc": "4",
        "percent": "3",
        "max_per_trade_usdc": per_trade,
        "max_per_market_usdc": per_market,
        "max_total_usdc": total,
        "round_up_to_min": round_up,
        "aggregate_ms": 0,
    }
    d = Driver(CopyStrategy(view, cfg), view)
    open_notional: dict[str, Decimal] = {}  # our unsettled buys (USDC at their limit)
    open_sells: dict[str, Decimal] = {}  # our unsettled sells (shares per token)
    for n, (side, token, price, size, fate) in enumerate(steps):
        cid = COPY_CID if n % 2 == 0 else "0xother"
        ts = T0 + n * 10_000
        before = len(d.intents)
        d.feed([target_fill(tx=f"0x{n}", token=token, cid=cid, side=side, price=str(price), size=str(size), ts=ts)])
        new = d.intents[before:]
        assert len(new) <= 1
        if not new:
            continue
        intent = new[0]
        event(f"{intent.side} intent")
        if d.signals()[-1].detail.get("capped_by", "").startswith("max_"):
            event("capped")
        if intent.side is Side.BUY:
            assert intent.notional <= D(per_trade)
            held_cost = view.exposure(cid) + sum(v for k, v in open_notional.items() if k.startswith(cid))
            assert held_cost + intent.notional <= D(per_market)
            assert view.exposure(None) + sum(open_notional.values()) + intent.notional <= D(total)
        else:
            assert intent.size <= view.position(intent.token_id) - open_sells.get(intent.token_id, D(0))
        filled = {"fill": intent.size, "part": (intent.size / 2).quantize(D("0.01")), "cancel": D(0), "open": None}[
            fate
        ]
        if filled is None:  # stays open: it still counts against caps and holdings
            if intent.side is Side.BUY:
                open_notional[f"{cid}:{intent.key}"] = intent.notional
            else:
                open_sells[intent.token_id] = open_sells.get(intent.token_id, D(0)) + intent.size
            continue
        events: list[Any] = []
        if filled > 0:
            events.append(own_fill(intent, ts + 1, size=filled))
        events.append(
            OrderResult(
                key=intent.key,
                status=OrderStatus.FILLED if filled == intent.size else OrderStatus.CANCELLED,
                ts_ms=ts + 2,
                filled_size=filled,
            )
        )
        d.feed(events)
        assert view.position(intent.token_id) >= 0


@settings(max_examples=80, deadline=None)
@given(
    seen_by=st.lists(
        st.lists(st.sampled_from(["chain", "rtds", "data_api"]), min_size=1, max_size=3, unique=True),
        min_size=1,
        max_size=8,
    ),
    order=st.randoms(use_true_random=False),
    window=st.sampled_from([0, 2]),
)
def test_each_fill_is_copied_once_whatever_sources_saw_it_in_any_order(
    seen_by: list[list[str]], order: Any, window: int
) -> None:
    sightings = []
    for n, sources in enumerate(seen_by):
        for src in sources:
            sightings.append(
                target_fill(src, tx=f"0x{n:04x}", log=n if src == "chain" else None, ts=T0 + n * 2000, size="100")
            )
    order.shuffle(sightings)
    d = copier(aggregate_ms=window, max_total_usdc=None, max_per_market_usdc=None)
    for k, s in enumerate(sightings):
        d.feed([replace(s, seen_ts_ms=T0 + 20_000 + k)])
    settle(d, T0 + 30_000)
    assert len(d.intents) == len(seen_by)
    assert len({i.key for i in d.intents}) == len(seen_by)
    # Every sighting is accounted for: a later one as a `duplicate`, one inside the window on the decision.
    joined = sum(len(x.detail["sources"].split(",")) - 1 for x in d.signals())
    assert d.skips().count(SkipReason.DUPLICATE) + joined == len(sightings) - len(seen_by)


def test_restore_before_start_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="start"):
        CopyStrategy(CopyMemoryView([copy_market()]), {"target": WHALE}).restore([])


def test_forgotten_after_the_retention_a_late_sighting_is_stale_not_a_copy() -> None:
    d = decide(copier(), target_fill("chain", log=1))
    late = T0 + 10 * 60_000  # far past the retention (4 × max(30 s, 10 s) + 60 s)
    d.feed([TimerTick(ts_ms=late)])  # prunes
    assert not list(d.strategy._dedup)  # type: ignore[attr-defined]
    decide(d, target_fill("data_api", seen=late + 1))
    assert len(d.intents) == 1
    assert skip_of(d).reason == SkipReason.STALE
