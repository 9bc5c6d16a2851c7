"""Review of LiveFeed.arm's "an unchanged market keeps its MarketInfo": Gamma's outcomePrices move with the
market, and nothing a strategy reads comes from them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pmbot.polymarket.models import Outcome
from pmbot.runner.feed import Translator
from pmbot.runner.live import LiveFeed, Targets
from pmbot.strategies.memview import MemoryView
from tests.strategy_kit import CID, DOWN, UP, D, market


class _Runner:
    def __init__(self) -> None:
        self.view = MemoryView([])


async def test_a_refresh_that_only_moved_the_outcome_prices_keeps_the_market_object() -> None:
    """Every refresh of a live market reads new outcomePrices (Gamma's mid of each outcome): the market's
    terms are the same, so the object the view (and the sniper's worked-out terms) hold is kept; a change
    that matters (a winner, a closed market) still replaces it."""
    runner = _Runner()
    none: Any = None
    feed = LiveFeed(none, runner, Translator(), none, Targets())  # type: ignore[arg-type]
    first = market(outcomes=(Outcome(UP, "Up", D("0.93")), Outcome(DOWN, "Down", D("0.07"))))
    await feed.arm([first])
    moved = replace(first, outcomes=(Outcome(UP, "Up", D("0.96")), Outcome(DOWN, "Down", D("0.04"))))
    await feed.arm([moved])
    assert runner.view.market(CID) is first and feed.armed[CID] is first
    won = replace(first, outcomes=(Outcome(UP, "Up", D("1"), winner=True), Outcome(DOWN, "Down", D("0"), winner=False)))
    await feed.arm([won])
    assert runner.view.market(CID) is won
    closed = replace(won, closed=True)
    await feed.arm([closed])
    assert runner.view.market(CID) is closed
