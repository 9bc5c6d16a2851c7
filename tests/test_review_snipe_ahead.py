"""Review of the sniper's work done ahead (anticipate → _prepare): it must not settle anything the entry's
own event would decide differently."""

from __future__ import annotations

from pmbot.strategies.snipe import SkipReason, SnipeStrategy
from tests.strategy_kit import END, OPEN_PRICE, UP, D, Driver, book, chainlink, market
from tests.test_strategy_snipe import in_band, sniper

SHORT_START = END - 300_000  # a 5-minute window
BEFORE = OPEN_PRICE * D("0.99")  # the reference just before the window opened
LATER = OPEN_PRICE * D("0.995")  # in the entry window: below the opening (Down), above BEFORE (Up)


def _run(anticipate: bool) -> Driver:
    m = market(start_ms=SHORT_START, slug="btc-updown-5m")
    # window_s 290: the orders are armed from 320 s before the end, 20 s before the market opens
    d = sniper(m=m, window_s=290)
    pre = SHORT_START - 3_000
    d.feed([chainlink(BEFORE, ts) for ts in range(pre - 10_000, pre + 1, 1000)])
    if anticipate:
        strategy = d.strategy
        assert isinstance(strategy, SnipeStrategy)
        assert strategy.anticipate(pre)  # inside the arming lead: both sides armed
    now = SHORT_START + 60_000  # 240 s left: in the window
    refs = [chainlink(OPEN_PRICE if ts <= SHORT_START else LATER, ts) for ts in range(pre + 1000, now + 1, 1000)]
    d.feed(refs).clear()
    d.feed(in_band(now))  # Up leads at 0.95
    return d


def test_the_opening_is_not_fixed_before_the_market_opens() -> None:
    """anticipate() ran 3 s before the window's opening: the reference it had then is not the opening
    price. The entry must compare against the real opening (100000: the reference fell, Up disagrees),
    exactly as a sniper that did not anticipate."""
    fresh = _run(anticipate=False)
    assert fresh.intents == [] and fresh.last_skip() == SkipReason.REFERENCE_DISAGREES
    ahead = _run(anticipate=True)
    assert [i.token_id for i in ahead.intents] == [i.token_id for i in fresh.intents]
    assert ahead.last_skip() == SkipReason.REFERENCE_DISAGREES


def test_a_first_look_before_the_opening_does_not_fix_it_either() -> None:
    """The same through the tick's own path: a window longer than the market (window_s 400 on a 5-minute
    market) evaluates a book before the opening; the opening price must not be the one seen then."""
    m = market(start_ms=SHORT_START, slug="btc-updown-5m")
    d = sniper(m=m, window_s=400)
    pre = SHORT_START - 3_000
    d.feed([chainlink(BEFORE, ts) for ts in range(pre - 10_000, pre + 1, 1000)])
    d.feed([book(UP, pre, asks=[("0.95", "100")])])  # before the opening: no entry
    assert d.intents == []
    now = SHORT_START + 60_000
    refs = [chainlink(OPEN_PRICE if ts <= SHORT_START else LATER, ts) for ts in range(pre + 1000, now + 1, 1000)]
    d.feed(refs).feed(in_band(now))  # each reference re-evaluates the Up book at 0.95
    assert d.intents == [] and d.last_skip() == SkipReason.REFERENCE_DISAGREES
