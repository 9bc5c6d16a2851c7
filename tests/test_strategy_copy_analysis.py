"""`copy analyze`'s replay on hand-made histories: every figure below is computed by hand in the comments."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.polymarket.models import FeeSchedule
from pmbot.store.models import Side
from pmbot.strategies.copy import CopyStrategy
from pmbot.strategies.copy_analysis import (
    CopyRules,
    HistoryTrade,
    PricePoint,
    Resolution,
    VerdictRule,
    analyze,
)

D = Decimal


def trade(token: str, side: Side, price: str, size: str, ts: int, *, maker: bool | None = False) -> HistoryTrade:
    return HistoryTrade(
        token_id=token,
        condition_id="0x" + token[0],
        side=side,
        price=D(price),
        size=D(size),
        ts_ms=ts,
        maker=maker,
    )


# Market a (tokens a1, a2) and market b (b1, b2).
HISTORY = [
    trade("a1", Side.BUY, "0.40", "100", 0),  # taker: −40
    trade("b1", Side.BUY, "0.30", "200", 10_000, maker=True),  # maker: −60
    trade("a1", Side.SELL, "0.60", "50", 20_000),  # half of a1: +30
    trade("b2", Side.SELL, "0.50", "10", 30_000),  # never seen bought: no known cost
]
A_WINS = Resolution(condition_id="0xa", winning_token_id="a1", ts_ms=40_000)
B1_LOSES = Resolution(condition_id="0xb", winning_token_id="b2", ts_ms=40_000)
B1_WINS = Resolution(condition_id="0xb", winning_token_id="b1", ts_ms=40_000)


def test_a_losing_target_is_toxic_with_hand_computed_pnl() -> None:
    r = analyze(HISTORY, [A_WINS, B1_LOSES], slippage=D("0.01"))
    # Target: −40 − 60 + 30 + 50 (the 50 a1 left pay 1) + 0 (b1 lost) = −20; the b2 sale counts for nothing.
    assert r.target_pnl == D(-20)
    assert r.target_volume == D(135)  # 40 + 60 + 30 + 5
    assert r.maker_share == D(60) / D(135)
    # Copy at ratio 0.1, +/− one cent: buy 10 a1 @ 0.41 (−4.10), 20 b1 @ 0.31 (−6.20), sell half of ours,
    # 5 a1 @ 0.59 (+2.95), b2 skipped (no_position); a1 pays 5. −4.10 − 6.20 + 2.95 + 5 = −2.35.
    assert r.copy_pnl == D("-2.35")
    # Ideal (no slippage): −4 − 6 + 3 + 5 = −2.
    assert r.ideal_pnl == D(-2)
    assert r.copied == 3
    assert dict(r.skipped) == {"no_position": 1}
    assert r.share_kept is None  # the ideal did not earn
    assert r.verdict == "toxic"
    assert "toxic when the copy's PnL <= 0" in r.rule
    assert r.copy_volume == D("4.10") + D("6.20") + D("2.95")
    assert r.unresolved_markets == 0


def test_a_winning_target_with_little_maker_volume_is_copyable() -> None:
    r = analyze(HISTORY, [A_WINS, B1_WINS], slippage=D("0.01"))
    assert r.target_pnl == D(180)  # −20 + 200 for the b1 that now pay
    assert r.copy_pnl == D("17.65")  # −2.35 + 20
    assert r.ideal_pnl == D(18)
    assert r.share_kept == D("17.65") / D(18)
    assert r.verdict == "copyable"
    d = r.to_dict()
    assert d["copy_pnl"] == "17.65" and d["verdict"] == "copyable" and d["skipped"] == {"no_position": 1}


def test_maker_heavy_target_is_only_marginal() -> None:
    r = analyze(HISTORY, [A_WINS, B1_WINS], verdict_rule=VerdictRule(max_maker=D("0.4")))
    assert r.maker_share is not None and r.maker_share > D("0.4")
    assert r.verdict == "marginal"
    assert "< 40 % of the target's volume was maker fills" in r.rule


def test_price_path_after_the_delay_decides_the_fill() -> None:
    # a1's ask is 0.40 at t=0 and 0.45 from t=1.5 s: a 2 s copy meets 0.45 > its 0.41 limit (slippage) and
    # then has nothing to sell; a 1 s copy buys at 0.40.
    paths = {"a1": [PricePoint(0, D("0.39"), D("0.40")), PricePoint(1500, D("0.44"), D("0.45"))]}
    late = analyze(HISTORY, [A_WINS, B1_WINS], delay_ms=2000, price_paths=paths)
    assert dict(late.skipped) == {"no_position": 2, "slippage": 1}
    assert late.copy_pnl == D("13.80")  # only b1: −6.20 + 20
    assert late.share_kept == D("13.80") / D(18)
    early = analyze(HISTORY, [A_WINS, B1_WINS], delay_ms=1000, price_paths=paths)
    # Buy 10 a1 @ 0.40 (−4) and 20 b1 @ 0.31 (−6.20); the sale meets a 0.44 bid under its 0.59 limit
    # (slippage), so all 10 a1 and the 20 b1 pay at resolution: −4 − 6.20 + 10 + 20 = 19.80.
    assert dict(early.skipped) == {"no_position": 1, "slippage": 1}
    assert early.copy_pnl == D("19.80")


def test_unresolved_markets_are_marked() -> None:
    h = [trade("c1", Side.BUY, "0.50", "100", 0)]
    r = analyze(h, slippage=D(0))
    assert r.target_pnl == 0  # marked at its own last price
    assert r.unresolved_markets == 1
    r = analyze(h, slippage=D(0), marks={"c1": D("0.80")})
    assert r.target_pnl == D(30)
    assert r.copy_pnl == D(3)  # 10 shares, +0.30 each


def test_fixed_mode_caps_and_minimums_follow_the_live_rules() -> None:
    h = [
        trade("a1", Side.BUY, "0.50", "1000", 0),
        trade("a1", Side.BUY, "0.50", "1000", 1000),
        trade("a1", Side.BUY, "0.50", "1", 2000),
    ]
    rules = CopyRules(mode="fixed", fixed_usdc=D(20), max_per_market_usdc=D(30))
    r = analyze(h, [A_WINS], rules=rules, slippage=D(0))
    # 40 shares @ 0.50 (20 USDC), then 20 (10 of room left), then the market is full: cap.
    assert r.copied == 2
    assert dict(r.skipped) == {"cap": 1}
    assert r.copy_pnl == D(60) - D(30)
    small = analyze(h[2:], [A_WINS], slippage=D(0))  # 0.1 share: under the 1 USDC minimum
    assert dict(small.skipped) == {"min_size": 1}
    assert small.verdict == "marginal"  # nothing copied


def test_fees_are_charged_on_taker_fills() -> None:
    fees = {"0xa": FeeSchedule(rate=D("0.1"))}
    h = [trade("a1", Side.BUY, "0.50", "100", 0)]
    r = analyze(h, [A_WINS], fees=fees, slippage=D(0))
    # 100 × 0.1 × 0.25 = 2.5 fee for the target; 10 × 0.1 × 0.25 = 0.25 for the copy.
    assert r.target_pnl == D(50) - D("2.5")
    assert r.copy_pnl == D(5) - D("0.25")


def test_rules_from_the_strategy_config() -> None:
    cfg = CopyStrategy.validate_config({"target": "0x" + "ab" * 20, "mode": "percent", "percent": "5"})
    rules = CopyRules.from_config(cfg, balance=D(200))
    r = analyze([trade("a1", Side.BUY, "0.50", "10", 0)], [A_WINS], rules=rules, slippage=D(0))
    assert r.copy_pnl == D(20) - D(10)  # 5 % of 200 = 10 USDC: 20 shares @ 0.50 that pay 1


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="slippage"):
        analyze(HISTORY, slippage=D(1))
    with pytest.raises(ValueError, match="delay"):
        analyze(HISTORY, delay_ms=-1)


def test_ten_thousand_trades_replay() -> None:
    # Speed is measured in bench/bench_copy_analysis.py; here: it runs, and the copy never holds negative.
    rng = random.Random(7)
    h = [
        trade(
            rng.choice(["a1", "a2", "b1", "b2"]),
            rng.choice([Side.BUY, Side.BUY, Side.SELL]),
            f"0.{rng.randint(10, 90)}",
            str(rng.randint(1, 500)),
            i * 100,
            maker=rng.random() < 0.3,
        )
        for i in range(10_000)
    ]
    r = analyze(h, [A_WINS, B1_WINS])
    assert r.trades == 10_000
    assert r.copied + sum(r.skipped.values()) == 10_000


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a1", "a2"]),
            st.sampled_from([Side.BUY, Side.SELL]),
            st.integers(1, 99),
            st.integers(1, 3000),
        ),
        max_size=40,
    )
)
def test_zero_delay_zero_slippage_copy_is_the_ideal(steps: list[tuple[str, Side, int, int]]) -> None:
    h = [trade(t, s, str(D(p) / 100), str(n), i) for i, (t, s, p, n) in enumerate(steps)]
    r = analyze(h, [A_WINS], delay_ms=0, slippage=D(0))
    assert r.copy_pnl == r.ideal_pnl
    assert r.copy_volume >= 0
