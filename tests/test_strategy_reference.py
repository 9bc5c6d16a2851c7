"""Resolution-rule parsing (on the recorded Gamma text and the documented TWAP text) and reference values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.sim.markets import DESCRIPTION, RESOLUTION_SOURCE
from pmbot.strategies.events import PriceSource, ReferencePrice
from pmbot.strategies.reference import ReferenceTracker, ResolutionRule, RuleKind, parse_resolution_rule
from tests.samples import load
from tests.strategy_kit import TWAP60_DESCRIPTION, TWAP60_SOURCE, D, chainlink

SPOT_BTC = ResolutionRule("btc/usd", RuleKind.SPOT)
TWAP_60 = ResolutionRule("btc/usd", RuleKind.TWAP, 60)
TWAP_30 = ResolutionRule("btc/usd", RuleKind.TWAP, 30)


def test_recorded_gamma_market_is_chainlink_spot() -> None:
    raw = load("gamma_market.json")
    assert parse_resolution_rule(raw["description"], raw["resolutionSource"]) == SPOT_BTC


def test_sim_market_text_is_chainlink_spot() -> None:
    assert parse_resolution_rule(DESCRIPTION, RESOLUTION_SOURCE) == SPOT_BTC


def test_eth_from_the_stream_url() -> None:
    text = DESCRIPTION.replace("BTC/USD", "ETH/USD").replace("btc-usd", "eth-usd")
    assert parse_resolution_rule(text, "https://data.chain.link/streams/eth-usd") == ResolutionRule(
        "eth/usd", RuleKind.SPOT
    )


@pytest.mark.parametrize(
    ("description", "source", "expected"),
    [
        (TWAP60_DESCRIPTION, TWAP60_SOURCE, TWAP_60),
        (TWAP60_DESCRIPTION, "Chainlink BTC/USD 30-second TWAP", TWAP_30),
        (TWAP60_DESCRIPTION + " The TWAP uses a 60 s window of BTC/USD.", "", TWAP_60),
        (TWAP60_DESCRIPTION + " BTC/USD 30 seconds TWAP", "", TWAP_30),
    ],
)
def test_twap_rules(description: str, source: str, expected: ResolutionRule) -> None:
    assert parse_resolution_rule(description, source) == expected


@pytest.mark.parametrize(
    ("description", "source"),
    [
        ("Resolves Up if the price goes up according to Binance BTC/USDT.", ""),  # not Chainlink
        (TWAP60_DESCRIPTION + " BTC/USD", ""),  # a TWAP with no window stated
        (TWAP60_DESCRIPTION, "Chainlink BTC/USD 5-second TWAP"),  # a window we do not know
        (TWAP60_DESCRIPTION, "Chainlink BTC/USD 30-second or 60-second TWAP"),  # ambiguous
        ("Chainlink data stream, resolves on the price of the coin.", ""),  # no symbol
        ("Chainlink BTC/USD and ETH/USD streams decide.", ""),  # two symbols
        ("", ""),
    ],
)
def test_unknown_rules_are_none(description: str, source: str) -> None:
    assert parse_resolution_rule(description, source) is None


def test_labels() -> None:
    assert SPOT_BTC.label == "chainlink btc/usd spot"
    assert TWAP_30.label == "chainlink btc/usd 30s twap"


# ------------------------------------------------------------------------------------------ tracker


def tracker(
    *obs: tuple[str, int], source: PriceSource = PriceSource.CHAINLINK, max_age_ms: int = 5_000
) -> ReferenceTracker:
    t = ReferenceTracker(max_age_ms=max_age_ms)
    for price, ts in obs:
        t.add(chainlink(price, ts, source))
    return t


def test_spot_is_the_observation_in_force_and_fresh() -> None:
    t = tracker(("100", 1_000), ("101", 2_000))
    assert t.value_at(SPOT_BTC, 1_999) == D(100)
    assert t.value_at(SPOT_BTC, 2_000) == D(101)
    assert t.value_at(SPOT_BTC, 7_000) == D(101)
    assert t.value_at(SPOT_BTC, 7_001) is None  # stale
    assert t.value_at(SPOT_BTC, 999) is None  # nothing yet


def test_opening_accepts_the_first_observation_just_after() -> None:
    t = tracker(("100", 3_000))
    assert t.value_at(SPOT_BTC, 0) is None  # the current value needs an observation at or before t
    assert t.value_at(SPOT_BTC, 0, opening=True) == D(100)  # an opening may come up to 5 s late
    assert t.value_at(SPOT_BTC, -3_000, opening=True) is None


def test_local_twap_by_hand() -> None:
    t = tracker(("100", 0), ("110", 40_000), ("120", 50_000), ("120", 58_000))
    # [0, 60 s]: 100 for 40 s, 110 for 10 s, 120 for 10 s
    assert t.value_at(TWAP_60, 60_000) == D(105)
    # [30 s, 60 s]: 100, 110, 120 for 10 s each
    assert t.value_at(TWAP_30, 60_000) == D(110)
    assert t.local_twap("btc/usd", 60, 60_000) == D(105)


def test_local_twap_needs_the_whole_window_and_a_fresh_price() -> None:
    t = tracker(("100", 0), ("110", 40_000))
    assert t.value_at(TWAP_60, 59_999) is None  # window starts before the first observation
    assert t.value_at(TWAP_60, 60_000) is None  # latest is 20 s old
    assert t.value_at(TWAP_30, 44_000) == (D(100) * 26 + D(110) * 4) / 30


def test_the_sources_own_twap_wins_while_fresh() -> None:
    t = tracker(("100", 0), ("110", 40_000), ("120", 50_000), ("120", 58_000))
    t.add(chainlink("107", 59_000, PriceSource.CHAINLINK_TWAP_60))
    assert t.value_at(TWAP_60, 60_000) == D(107)
    assert t.value_at(TWAP_30, 60_000) == D(110)  # a 60 s TWAP never stands in for the 30 s one
    assert t.value_at(TWAP_60, 65_000) is None  # own TWAP stale (6 s) and spot stale (7 s)
    t.add(chainlink("120", 64_000))
    assert t.value_at(TWAP_60, 65_000) == (D(100) * 35 + D(110) * 10 + D(120) * 15) / 60  # back to local


def test_symbols_and_sources_do_not_mix() -> None:
    t = tracker(("100", 0))
    t.add(chainlink("9", 0, PriceSource.BINANCE))
    t.add(ReferencePrice(symbol="ETH/USD", price=D(2000), ts_ms=0, source=PriceSource.CHAINLINK))
    assert t.value_at(SPOT_BTC, 0) == D(100)
    assert t.value_at(ResolutionRule("eth/usd", RuleKind.SPOT), 0) == D(2000)  # symbols are case-insensitive
    assert t.value_at(ResolutionRule("sol/usd", RuleKind.SPOT), 0) is None


def test_out_of_order_and_repeated_observations() -> None:
    t = tracker(("100", 0), ("120", 2_000), ("110", 1_000), ("121", 2_000))
    assert t.value_at(SPOT_BTC, 1_500) == D(110)
    assert t.value_at(SPOT_BTC, 2_000) == D(121)  # the later word for the same instant wins


def test_history_is_pruned_but_the_price_at_the_cutoff_kept() -> None:
    t = ReferenceTracker(horizon_ms=10_000)
    for s in range(2_000):
        t.add(chainlink(str(1000 + s), s * 1000))
    series = t._series[("btc/usd", PriceSource.CHAINLINK)]
    assert len(series.times) <= 10 + 256 + 2
    last = 1_999_000
    assert t.value_at(SPOT_BTC, last - 10_000) == D(1000 + 1989)
    assert t.local_twap("btc/usd", 10, last) is not None


@settings(max_examples=200, deadline=None)
@given(
    prices=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=40),
    gaps=st.lists(st.integers(min_value=1, max_value=4_000), min_size=40, max_size=40),
    window=st.sampled_from([30, 60]),
)
def test_local_twap_is_within_the_prices_it_averages(prices: list[int], gaps: list[int], window: int) -> None:
    t = ReferenceTracker(max_age_ms=5_000)
    ts = 0
    seen: list[tuple[int, Decimal]] = []
    for price, gap in zip(prices, gaps, strict=False):
        t.add(chainlink(str(price), ts))
        seen.append((ts, D(price)))
        ts += gap
    end = seen[-1][0]
    value = t.local_twap("btc/usd", window, end)
    if end < window * 1000:
        assert value is None
        return
    assert value is not None
    start = end - window * 1000
    in_force = [p for s, p in seen if s > start] + [next(p for s, p in reversed(seen) if s <= start)]
    assert min(in_force) <= value <= max(in_force)
    if len(set(prices)) == 1:
        assert value == D(prices[0])
