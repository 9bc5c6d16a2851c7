"""The sniper's rules, driven with lists of events (no sockets, no clock): it buys when every rule agrees
and records the stable skip reason of the first rule that does not."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmbot.errors import ConfigError
from pmbot.executor.intents import intent_key
from pmbot.money import fmt
from pmbot.polymarket.models import FeeSchedule, Outcome
from pmbot.store.models import OrderStatus, OrderType, Side
from pmbot.strategies.base import DecisionKind, MarketInfo
from pmbot.strategies.events import MarketResolved, OrderResult, PriceSource
from pmbot.strategies.memview import MemoryView
from pmbot.strategies.snipe import (
    SkipReason,
    SnipeConfig,
    SnipeStrategy,
    edge_limit,
    entry_edge,
    walk_asks,
)
from tests.strategy_kit import (
    CID,
    CRYPTO_FEES,
    DOWN,
    END,
    OPEN_PRICE,
    START,
    TWAP60_DESCRIPTION,
    TWAP60_SOURCE,
    UP,
    D,
    Driver,
    book,
    chainlink,
    fill,
    market,
    reference_path,
    tick,
)

NOW = END - 30_000  # 30 s left: inside the default 60 s window
UP_PRICE = OPEN_PRICE * D("1.001")  # +0.1 %: clearly Up
DOWN_PRICE = OPEN_PRICE * D("0.999")


def sniper(m: MarketInfo | None = None, **config: Any) -> Driver:
    view = MemoryView([m or market()])
    return Driver(SnipeStrategy(view, config), view)


def in_band(ts: int = NOW, up_ask: str = "0.95", up_size: str = "100", down_ask: str = "0.06") -> list[Any]:
    return [book(UP, ts, asks=[(up_ask, up_size)]), book(DOWN, ts, asks=[(down_ask, "100")], bids=[("0.04", "100")])]


def confirmed(ts: int = NOW, price: Decimal = UP_PRICE) -> list[Any]:
    return reference_path(OPEN_PRICE, price, ts)


# ------------------------------------------------------------------------------------------ buys


def test_buys_the_leading_side_when_every_rule_agrees() -> None:
    d = sniper().feed(confirmed()).feed(in_band())
    assert len(d.intents) == 1
    intent = d.intents[0]
    assert intent.token_id == UP
    assert intent.side is Side.BUY
    assert intent.order_type is OrderType.FOK
    assert intent.price == D("0.99")  # the band ceiling is the limit
    assert intent.size == D("10.10")  # 10 USDC at the limit, down to 2 decimals
    assert intent.key == intent_key("snipe", CID, END, UP)  # market + window + side
    assert intent.signal_ms == NOW
    (signal,) = d.signals()
    assert signal.intent_key == intent.key
    assert signal.detail["outcome"] == "Up"
    assert signal.detail["rule"] == "chainlink btc/usd spot"
    assert d.strategy.metrics.signals == 1
    assert d.strategy.metrics.intents == 1


def test_buys_down_when_down_leads_and_the_reference_fell() -> None:
    events = [
        book(UP, NOW, asks=[("0.06", "100")]),
        book(DOWN, NOW, asks=[("0.96", "100")]),
    ]
    d = sniper().feed(confirmed(price=DOWN_PRICE)).feed(events)
    assert [i.token_id for i in d.intents] == [DOWN]


def test_fak_and_size_in_shares() -> None:
    d = sniper(order_type="FAK", shares="20").feed(confirmed()).feed(in_band())
    (intent,) = d.intents
    assert intent.order_type is OrderType.FAK
    assert intent.size == D("20")


def test_window_edges_are_inclusive_at_the_window_and_exclusive_at_the_stop() -> None:
    at_open = END - 60_000
    d = sniper().feed(confirmed(at_open)).feed(in_band(at_open))
    assert len(d.intents) == 1
    just_before_stop = END - 2_001
    d = sniper().feed(confirmed(just_before_stop)).feed(in_band(just_before_stop))
    assert len(d.intents) == 1


def test_timer_tick_enters_without_a_book_change() -> None:
    early = END - 90_000
    d = sniper(confirm_reference=False).feed(in_band(early))
    assert d.intents == []
    assert d.last_skip() == SkipReason.TOO_EARLY
    d.feed([tick(NOW)])
    assert len(d.intents) == 1


# --------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("ask", ["0.85", "0.899", "0.991"])
def test_outside_band(ask: str) -> None:
    d = sniper(m=market(tick_size=D("0.001"))).feed(confirmed()).feed(in_band(up_ask=ask))
    assert d.intents == []
    assert d.last_skip() == SkipReason.OUTSIDE_BAND
    assert d.decisions[-1].detail["ask"] == ask


def test_no_asks_at_all_is_outside_band() -> None:
    d = sniper().feed(confirmed()).feed([book(UP, NOW, bids=[("0.97", "10")]), book(DOWN, NOW, bids=[("0.02", "5")])])
    assert d.intents == []
    assert d.last_skip() == SkipReason.OUTSIDE_BAND


def test_too_early() -> None:
    ts = END - 60_001
    d = sniper().feed(confirmed(ts)).feed(in_band(ts))
    assert d.intents == []
    assert d.last_skip() == SkipReason.TOO_EARLY


@pytest.mark.parametrize("left_ms", [2_000, 1_000, 0, -5_000])
def test_too_late(left_ms: int) -> None:
    ts = END - left_ms
    d = sniper().feed(confirmed(ts)).feed(in_band(ts))
    assert d.intents == []
    assert d.last_skip() == SkipReason.TOO_LATE


def test_not_accepting_orders() -> None:
    d = sniper(m=market(accepting_orders=False)).feed(confirmed()).feed(in_band())
    assert d.intents == []
    assert d.last_skip() == SkipReason.NOT_ACCEPTING


def test_stops_when_the_market_stops_accepting() -> None:
    d = sniper().feed(confirmed())
    d.view.set_market(market(accepting_orders=False))
    d.feed(in_band())
    assert d.last_skip() == SkipReason.NOT_ACCEPTING
    d.view.set_market(market())
    d.feed([tick(NOW + 1)])
    assert len(d.intents) == 1


def test_depth_short_at_or_under_the_limit() -> None:
    # 10.10 shares wanted; 5 at 0.95 and plenty at 0.995 (above the 0.99 limit: does not count).
    events = [
        book(DOWN, NOW, asks=[("0.06", "100")]),
        book(UP, NOW, asks=[("0.95", "5"), ("0.995", "1000")]),
    ]
    d = sniper(m=market(tick_size=D("0.001"))).feed(confirmed()).feed(events)
    assert d.intents == []
    assert d.last_skip() == SkipReason.DEPTH_SHORT
    assert d.decisions[-1].detail["depth"] == "5"


def test_min_depth_is_a_floor_of_its_own() -> None:
    d = sniper(min_depth="50").feed(confirmed()).feed(in_band(up_size="40"))
    assert d.last_skip() == SkipReason.DEPTH_SHORT
    d = sniper(min_depth="50").feed(confirmed()).feed(in_band(up_size="50"))
    assert len(d.intents) == 1


def test_edge_after_fees_below_min() -> None:
    # At 0.995: 1 - 0.995 = 0.005 before fees, and the 0.072 crypto fee takes ~0.00036 a share.
    m = market(tick_size=D("0.001"))
    d = sniper(m=m, max_price="0.999").feed(confirmed()).feed(in_band(up_ask="0.995"))
    assert d.intents == []
    assert d.last_skip() == SkipReason.EDGE_BELOW_MIN
    # The same book in a fee-free market passes: the fee came from the market's schedule, not a constant.
    free = market(tick_size=D("0.001"), fees=FeeSchedule())
    d = sniper(m=free, max_price="0.999").feed(confirmed()).feed(in_band(up_ask="0.995"))
    assert len(d.intents) == 1


def test_edge_uses_the_market_exponent_schedule() -> None:
    # A pre-V2 style schedule: rate 0.25, exponent 2. At 0.99: fee/share = 0.25 × (0.99 × 0.01)² ≈ 0.0000245.
    m = market(fees=FeeSchedule(rate=D("0.25"), exponent=2))
    d = sniper(m=m, min_edge="0.0099").feed(confirmed()).feed(in_band(up_ask="0.99"))
    assert len(d.intents) == 1
    d = sniper(m=market(), min_edge="0.0099").feed(confirmed()).feed(in_band(up_ask="0.99"))
    assert d.last_skip() == SkipReason.EDGE_BELOW_MIN


def test_limit_is_lowered_so_a_fill_at_the_limit_keeps_the_edge() -> None:
    m = market(tick_size=D("0.001"))
    d = sniper(m=m, max_price="0.999").feed(confirmed()).feed(in_band(up_ask="0.98"))
    (intent,) = d.intents
    # 0.994: 0.006 - 0.072*0.994*0.006 = 0.00557 >= 0.005; 0.995 would leave 0.00464.
    assert intent.price == D("0.994")
    assert entry_edge(m.fees, intent.price, intent.size) >= D("0.005")


def test_reference_disagrees_inside_the_margin() -> None:
    barely_up = OPEN_PRICE * D("1.0004")  # +0.04 % < the 0.05 % margin
    d = sniper().feed(confirmed(price=barely_up)).feed(in_band())
    assert d.intents == []
    assert d.last_skip() == SkipReason.REFERENCE_DISAGREES
    assert d.decisions[-1].detail["open"] == "100000"


def test_reference_disagrees_with_the_side() -> None:
    d = sniper().feed(confirmed(price=DOWN_PRICE)).feed(in_band())
    assert d.last_skip() == SkipReason.REFERENCE_DISAGREES


def test_ties_go_to_up() -> None:
    flat = confirmed(price=OPEN_PRICE)
    d = sniper(reference_margin="0").feed(flat).feed(in_band())
    assert [i.token_id for i in d.intents] == [UP]
    down_leads = [book(UP, NOW, asks=[("0.05", "100")]), book(DOWN, NOW, asks=[("0.96", "100")])]
    d = sniper(reference_margin="0").feed(flat).feed(down_leads)
    assert d.intents == []
    assert d.last_skip() == SkipReason.REFERENCE_DISAGREES


def test_reference_unknown_rule_refuses_with_a_warning() -> None:
    m = market(description="Resolves Up if the price goes up, per our data.", resolution_source="")
    d = sniper(m=m).feed(confirmed()).feed(in_band())
    assert d.intents == []
    assert d.last_skip() == SkipReason.REFERENCE_UNKNOWN
    assert d.warnings() == [SkipReason.REFERENCE_UNKNOWN]
    d.feed(in_band(NOW + 100))
    assert d.warnings() == [SkipReason.REFERENCE_UNKNOWN]  # warned once per market


def test_reference_unknown_without_fresh_prices() -> None:
    stale = [p for p in confirmed() if p.ts_ms <= NOW - 10_000]
    d = sniper().feed(stale).feed(in_band())
    assert d.last_skip() == SkipReason.REFERENCE_UNKNOWN
    assert d.decisions[-1].detail["why"] == "no fresh reference price"


def test_reference_unknown_without_an_opening_price() -> None:
    late_start = [chainlink(UP_PRICE, ts) for ts in range(START + 60_000, NOW + 1, 1000)]
    d = sniper().feed(late_start).feed(in_band())
    assert d.last_skip() == SkipReason.REFERENCE_UNKNOWN
    assert d.decisions[-1].detail["why"] == "no opening price"


def test_known_price_to_beat_overrides_the_stream() -> None:
    late_start = [chainlink(UP_PRICE, ts) for ts in range(START + 60_000, NOW + 1, 1000)]
    d = sniper(m=market(reference_open=OPEN_PRICE)).feed(late_start).feed(in_band())
    assert len(d.intents) == 1


def test_exchange_prices_never_confirm_a_chainlink_market() -> None:
    binance = [chainlink(UP_PRICE, ts, PriceSource.BINANCE) for ts in range(START - 5_000, NOW + 1, 1000)]
    d = sniper().feed(binance).feed(in_band())
    assert d.last_skip() == SkipReason.REFERENCE_UNKNOWN


def test_twap_market_confirms_on_the_twap_not_the_spot() -> None:
    m = market(description=TWAP60_DESCRIPTION, resolution_source=TWAP60_SOURCE)
    # Spot jumped +0.1 % only 5 s ago: the local 60 s TWAP has moved ~0.008 %, inside the margin.
    spot = [chainlink(OPEN_PRICE, ts) for ts in range(START - 70_000, NOW - 5_000, 1000)]
    spot += [chainlink(UP_PRICE, ts) for ts in range(NOW - 5_000, NOW + 1, 1000)]
    d = sniper(m=m).feed(spot).feed(in_band())
    assert d.last_skip() == SkipReason.REFERENCE_DISAGREES
    assert d.decisions[-1].detail["rule"] == "chainlink btc/usd 60s twap"
    # With the source's own 60 s TWAP stream saying +0.1 %, it agrees.
    twap = [
        chainlink(OPEN_PRICE, START, PriceSource.CHAINLINK_TWAP_60),
        chainlink(UP_PRICE, NOW, PriceSource.CHAINLINK_TWAP_60),
    ]
    d.feed(twap).feed([tick(NOW + 1)])
    assert len(d.intents) == 1


def test_reference_confirmation_only_for_up_down_markets() -> None:
    m = market(outcomes=(Outcome(UP, "Yes"), Outcome(DOWN, "No")), description="Will it rain?", resolution_source="")
    d = sniper(m=m).feed(in_band())
    assert len(d.intents) == 1


def test_confirmation_off_is_warned_at_start() -> None:
    d = sniper(confirm_reference=False).feed(in_band())
    assert len(d.intents) == 1
    assert d.warnings() == ["reference_confirmation_off"]


def test_paused_records_paused_then_buys_after_resume() -> None:
    d = sniper().feed(confirmed()).clear()
    d.strategy.pause("operator")
    d.feed(in_band())
    assert d.intents == []
    assert d.skips() == [SkipReason.PAUSED]
    d.strategy.resume()
    d.feed([tick(NOW + 1)])
    assert len(d.intents) == 1


# ---------------------------------------------------------------------------- idempotency & PnL


def test_a_thousand_duplicate_signals_make_one_intent() -> None:
    d = sniper().feed(confirmed()).clear()
    for i in range(1000):
        d.feed(in_band(NOW + i))  # every book update says "buy"
    keys = {i.key for i in d.intents}
    assert len(d.intents) == 1
    assert len(keys) == 1
    assert d.strategy.metrics.signals == 1
    # The repeats are one recorded `already_entered`, not a thousand rows.
    assert d.skips() == [SkipReason.ALREADY_ENTERED]


def test_fresh_strategy_gives_the_same_key_for_the_same_signal() -> None:
    a = sniper().feed(confirmed()).feed(in_band())
    b = sniper().feed(confirmed()).feed(in_band(NOW + 5))
    assert a.intents[0].key == b.intents[0].key  # a restart re-derives the key: the executor dedupes


def test_a_late_flip_is_a_recorded_loss() -> None:
    d = sniper().feed(confirmed()).feed(in_band())
    (intent,) = d.intents
    f = fill(intent, NOW + 50, price=D("0.95"))
    d.feed([OrderResult(key=intent.key, status=OrderStatus.FILLED, ts_ms=NOW + 50, filled_size=intent.size), f])
    assert d.view.position(UP) == intent.size
    d.feed([MarketResolved(condition_id=CID, winning_token_id=DOWN, ts_ms=END + 5_000)])  # Down won after all
    m = d.strategy.metrics
    assert (m.fills, m.wins, m.losses) == (1, 0, 1)
    assert m.realized_pnl == -(D("0.95") * intent.size + f.fee)
    assert m.win_rate == 0
    assert m.fees == f.fee
    # Nothing more happens in a resolved market.
    before = len(d.decisions)
    d.feed([tick(END + 6_000)])
    assert len(d.decisions) == before


def test_a_win_realizes_the_remaining_cents() -> None:
    d = sniper().feed(confirmed()).feed(in_band())
    (intent,) = d.intents
    f = fill(intent, NOW + 50, price=D("0.95"))
    d.feed([f, f])  # the same fill delivered twice is booked once
    d.feed([MarketResolved(condition_id=CID, winning_token_id=UP, ts_ms=END + 5_000)])
    m = d.strategy.metrics
    assert (m.fills, m.wins, m.losses) == (1, 1, 0)
    assert m.realized_pnl == intent.size * (1 - D("0.95")) - f.fee
    assert m.win_rate == 1


def test_skips_are_recorded_on_change_not_per_event() -> None:
    d = sniper().feed(confirmed())
    before = dict(d.strategy.metrics.skips)
    d.clear()
    for i in range(50):
        d.feed(in_band(NOW + i, up_ask="0.85"))
    assert d.skips() == [SkipReason.OUTSIDE_BAND]
    d.feed(in_band(NOW + 60, up_ask="0.93"))
    assert len(d.intents) == 1
    d.feed(in_band(NOW + 61, up_ask="0.94"))
    assert d.skips() == [SkipReason.OUTSIDE_BAND, SkipReason.ALREADY_ENTERED]
    after = d.strategy.metrics.skips
    assert {k: after[k] - before.get(k, 0) for k in after} == {"too_early": 0, "outside_band": 1, "already_entered": 1}


def test_two_markets_by_hand_one_win_one_late_flip() -> None:
    """A hand-made scenario: two consecutive 15-minute markets, each entered at its best ask; the first
    resolves Up (won), the second flips to Down in the last seconds (lost). PnL computed by hand."""
    second = market(
        condition_id="0xsecond", outcomes=(Outcome("333", "Up"), Outcome("444", "Down")), start_ms=END,
        end_ms=END + 900_000, slug="btc-updown-15m-1800000000",
    )  # fmt: skip
    view = MemoryView([market(), second])
    d = Driver(SnipeStrategy(view, {}), view)
    prices = [chainlink(OPEN_PRICE if ts <= START else UP_PRICE, ts) for ts in range(START - 70_000, END + 1, 1000)]
    prices += [chainlink(UP_PRICE * D("1.001"), ts) for ts in range(END + 1000, END + 870_001, 1000)]
    d.feed([c for c in prices if c.ts_ms <= NOW])
    d.feed([book(UP, NOW, asks=[("0.95", "100")]), book(DOWN, NOW, asks=[("0.06", "100")])])
    (a,) = d.intents
    d.feed([fill(a, NOW + 40, price=D("0.95"))])
    d.feed([MarketResolved(condition_id=CID, winning_token_id=UP, ts_ms=END + 1_000)])
    now2 = END + 870_000
    d.feed([c for c in prices if NOW < c.ts_ms <= now2])
    d.feed([
        book("333", now2, asks=[("0.96", "100")], cid="0xsecond"),
        book("444", now2, asks=[("0.05", "100")], cid="0xsecond"),
    ])  # fmt: skip
    b = d.intents[1]
    assert (b.token_id, b.price, b.size) == ("333", D("0.99"), D("10.10"))
    d.feed([fill(b, now2 + 40, price=D("0.96"))])
    d.feed([MarketResolved(condition_id="0xsecond", winning_token_id="444", ts_ms=END + 901_000)])

    m = d.strategy.metrics
    # A: 10.10 × (1 − 0.95) − fee(10.10 × 0.072 × 0.95 × 0.05 = 0.034542 → 0.03454) = 0.47046
    # B: −10.10 × 0.96 − fee(10.10 × 0.072 × 0.96 × 0.04 = 0.02792448 → 0.02792) = −9.72392
    assert (m.signals, m.intents, m.fills, m.wins, m.losses) == (2, 2, 2, 1, 1)
    assert m.fees == D("0.03454") + D("0.02792")
    assert m.realized_pnl == D("0.47046") - D("9.72392")
    assert m.win_rate == D("0.5")


# ------------------------------------------------------------------------------------------- config


def _config_error(**raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        SnipeStrategy.validate_config(raw)
    return info.value.message.splitlines()


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"min_price": "0"}, "min_price"),
        ({"min_price": "1"}, "min_price"),
        ({"max_price": "1.2"}, "max_price"),
        ({"min_price": "0.98", "max_price": "0.95"}, "max_price"),
        ({"window_s": 0}, "window_s"),
        ({"window_s": -5}, "window_s"),
        ({"stop_s": 60}, "stop_s"),
        ({"window_s": 10, "stop_s": 15}, "stop_s"),
        ({"shares": "5", "usdc": "10"}, "usdc"),
        ({"order_type": "GTC"}, "order_type"),
        ({"windw_s": 30}, "windw_s"),
    ],
)
def test_bad_config_is_one_clear_line(raw: dict[str, Any], key: str) -> None:
    (line,) = _config_error(**raw)
    assert line.startswith(f"[snipe] {key}: ")


def test_every_bad_key_gets_its_own_line() -> None:
    lines = _config_error(min_price="-1", window_s=0, min_edge="2")
    assert [ln.split(":")[0] for ln in lines] == ["[snipe] window_s", "[snipe] min_price", "[snipe] min_edge"]


def test_config_is_validated_at_start() -> None:
    view = MemoryView([market()])
    strategy = SnipeStrategy(view, {"window_s": 5, "stop_s": 5})
    with pytest.raises(ConfigError, match=r"\[snipe\] stop_s: must be less than window_s \(5\)"):
        strategy.start()


def test_defaults() -> None:
    cfg = SnipeConfig()
    assert (cfg.window_s, cfg.stop_s, cfg.min_price, cfg.max_price) == (60, 2, D("0.90"), D("0.99"))
    assert (cfg.order_type, cfg.min_edge, cfg.reference_margin) == ("FOK", D("0.005"), D("0.0005"))


# ---------------------------------------------------------------------------------- properties

_any_price = st.integers(min_value=1, max_value=999).map(lambda n: D(n) / 1000)
_late_price = st.integers(min_value=880, max_value=999).map(lambda n: D(n) / 1000)  # where snipes happen
_prices = st.one_of(_late_price, _any_price)
_schedules = st.builds(
    FeeSchedule,
    rate=st.integers(min_value=0, max_value=300).map(lambda n: D(n) / 1000),
    exponent=st.integers(min_value=1, max_value=2),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fees=_schedules,
    ask=_prices,
    extra=st.lists(st.tuples(_prices, st.integers(min_value=1, max_value=500)), max_size=4),
    size=st.integers(min_value=1, max_value=400),
    min_edge=st.integers(min_value=0, max_value=50).map(lambda n: D(n) / 1000),
    band=st.tuples(_prices, _prices).map(sorted),
    in_usdc=st.booleans(),
)
def test_never_admits_an_entry_without_the_edge(
    fees: FeeSchedule, ask: Decimal, extra: list[tuple[Decimal, int]], size: int, min_edge: Decimal,
    band: list[Decimal], in_usdc: bool,
) -> None:  # fmt: skip
    asks = sorted([(ask, D(size))] + [(p, D(q)) for p, q in extra if p > ask])
    m = market(tick_size=D("0.001"), fees=fees)
    sizing = {"usdc": D(size) / 2} if in_usdc else {"shares": D(size)}
    d = sniper(m=m, min_price=band[0], max_price=band[1], min_edge=min_edge, confirm_reference=False, **sizing)
    d.feed([book(UP, NOW, asks=[(str(p), str(q)) for p, q in asks])])  # the only book: Up leads
    if not d.intents:
        return
    (intent,) = d.intents
    assert band[0] <= ask <= band[1]
    assert intent.price <= band[1]
    # Any fill at or under the limit, at any single price, keeps min_edge a share after the schedule's fee …
    for p in {lv for lv, _ in asks if lv <= intent.price} | {intent.price}:
        assert intent.size * (1 - p) - fees.fee(intent.size, p) >= min_edge * intent.size
    # … and so does the fill the book would actually give: never a negative-edge entry.
    up_book = d.view.book(UP)
    assert up_book is not None
    filled, cost, fee = walk_asks(up_book.asks, intent.price, intent.size, fees)
    assert filled - cost - fee >= 0


@settings(max_examples=300, deadline=None)
@given(fees=_schedules, ceiling=_prices, floor=_prices, min_edge=st.integers(0, 100).map(lambda n: D(n) / 1000))
def test_edge_limit_is_the_highest_admissible_tick(
    fees: FeeSchedule, ceiling: Decimal, floor: Decimal, min_edge: Decimal
) -> None:
    tick_ = D("0.001")
    shares = D(10)
    limit = edge_limit(fees, ceiling, floor, tick_, min_edge, lambda _p: shares)
    if limit is None:
        p = ceiling
        while p >= floor:
            assert entry_edge(fees, p, shares) < min_edge
            p -= tick_
        return
    assert floor <= limit <= ceiling
    assert limit % tick_ == 0
    assert entry_edge(fees, limit, shares) >= min_edge
    nxt = limit + tick_
    assert nxt > ceiling or entry_edge(fees, nxt, shares) < min_edge


def test_walk_asks_stops_at_the_limit_and_the_size() -> None:
    from tests.strategy_kit import levels

    asks = levels(("0.95", "3"), ("0.96", "4"), ("0.99", "100"))
    assert walk_asks(asks, D("0.96"), D("10"), FeeSchedule()) == (D(7), D("0.95") * 3 + D("0.96") * 4, D(0))
    filled, cost, fee = walk_asks(asks, D("0.99"), D("5"), CRYPTO_FEES)
    assert (filled, cost) == (D(5), D("0.95") * 3 + D("0.96") * 2)
    assert fee == CRYPTO_FEES.fee(D(3), D("0.95")) + CRYPTO_FEES.fee(D(2), D("0.96"))


def test_decisions_carry_market_and_token() -> None:
    d = sniper().feed(confirmed()).feed(in_band(up_ask="0.85"))
    skip = d.decisions[-1]
    assert skip.kind is DecisionKind.SKIP
    assert (skip.condition_id, skip.token_id, skip.strategy, skip.ts_ms) == (CID, UP, "snipe", NOW)


# ------------------------------------------------------------------- terms worked out ahead


def test_terms_worked_out_ahead_give_the_same_entry_and_follow_a_replaced_market() -> None:
    """The entry's limit, size, key and rule are worked out once per MarketInfo (in anticipate, ahead of the
    window); a market replaced with other fees gives new terms, exactly what a fresh sniper would send."""
    from dataclasses import replace

    d = sniper().feed(confirmed())
    (ahead, _) = d.strategy.anticipate(NOW)
    d.feed(in_band())
    (entry,) = d.intents
    for name in ("key", "token_id", "price", "size", "order_type"):
        assert getattr(entry, name) == getattr(ahead, name)

    steep = replace(market(), fees=FeeSchedule(rate=D(1), exponent=1))
    d = sniper(min_price="0.80").feed(confirmed())
    d.strategy.anticipate(NOW)  # terms at the old fees
    d.view.set_market(steep)  # the runner's refresh replaced the market: the fees went up
    d.feed(in_band(up_ask="0.80"))
    fresh = sniper(m=steep, min_price="0.80").feed(confirmed()).feed(in_band(up_ask="0.80"))
    old_fees = sniper(min_price="0.80").feed(confirmed()).feed(in_band(up_ask="0.80"))
    (got,), (want,), (before,) = d.intents, fresh.intents, old_fees.intents
    assert (got.price, got.size, got.key) == (want.price, want.size, want.key)
    assert got.price < before.price == D("0.99")  # the steeper fee lowered the limit


def test_an_unknown_rule_parsed_ahead_still_warns_once_at_the_first_check() -> None:
    m = market(description="Resolves Up if the price goes up, per our data.", resolution_source="")
    d = sniper(m=m).feed(confirmed())
    d.strategy.anticipate(NOW)  # parses the market's text ahead: no output (anticipate is pure)
    assert d.warnings() == []
    d.feed(in_band())
    assert d.intents == [] and d.last_skip() == SkipReason.REFERENCE_UNKNOWN
    d.feed(in_band(NOW + 100))
    assert d.warnings() == [SkipReason.REFERENCE_UNKNOWN]


@pytest.mark.parametrize("ask", ["0.90", "0.95", "0.99", "0.951", "0.80"])
def test_edges_and_opening_worked_out_ahead_give_the_same_decisions(ask: str) -> None:
    """anticipate() works out ahead what the entry's event would (each in-band tick's edge, the window's
    opening reference): the entry, or the skip, and their details are exactly a fresh sniper's, off-tick
    asks included (computed on the spot, as before)."""
    ahead = sniper(min_price="0.90").feed(confirmed())
    ahead.strategy.anticipate(NOW)
    strategy = ahead.strategy
    assert isinstance(strategy, SnipeStrategy)
    st_ = strategy._markets[CID]
    assert st_.terms is not None and st_.opening == OPEN_PRICE
    edges = st_.terms.edges
    assert set(edges) == {D("0.90") + D("0.01") * i for i in range(10)}
    for price, edge in edges.items():
        assert edge == entry_edge(CRYPTO_FEES, price, st_.terms.shares_at_ceiling)
    fresh = sniper(min_price="0.90").feed(confirmed())
    for d in (ahead.clear(), fresh.clear()):
        d.feed(in_band(up_ask=ask))
    assert [(i.key, i.price, i.size, dict(i.meta)) for i in ahead.intents] == [
        (i.key, i.price, i.size, dict(i.meta)) for i in fresh.intents
    ]
    assert [(x.kind, x.reason, dict(x.detail)) for x in ahead.decisions] == [
        (x.kind, x.reason, dict(x.detail)) for x in fresh.decisions
    ]


def test_the_entrys_detail_is_one_read_only_mapping_with_every_number_as_text() -> None:
    """The entry's detail is formatted when first read (after the intent went out), the same text as
    before: one read-only mapping shared by the signal and the intent (neither copies it)."""
    import json

    d = sniper().feed(confirmed()).feed(in_band())
    (intent,) = d.intents
    (signal,) = d.signals()
    assert intent.meta is signal.detail and len(signal.detail) == 9
    text = dict(signal.detail)
    assert list(text) == ["outcome", "ask", "limit", "edge", "depth", "seconds_left", "rule", "reference", "open"]
    assert (text["outcome"], text["ask"], text["limit"], text["depth"], text["seconds_left"]) == (
        "Up",
        "0.95",
        "0.99",
        "100",
        "30",
    )
    fee = CRYPTO_FEES.fee(D("10.10"), D("0.95"))  # the walk: 10.10 shares at 0.95
    assert text["edge"] == fmt(((D("10.10") - D("9.595") - fee) / D("10.10")).quantize(D("0.000001")))
    assert (text["reference"], text["open"]) == (fmt(UP_PRICE), fmt(OPEN_PRICE))
    assert json.loads(json.dumps(dict(intent.meta))) == text and "0.95" in repr(signal.detail)
    with pytest.raises(TypeError):
        signal.detail["ask"] = "0.5"  # type: ignore[index]
