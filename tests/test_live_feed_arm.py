"""LiveFeed.arm on a refresh: an armed market re-read unchanged keeps the MarketInfo object the view holds
(a strategy keys its per-market work on it: the sniper's entry terms and edges, worked out ahead of the
window, must still be there on the entry's event); a changed one replaces it. And the market stream skips
the message types no consumer of this feed reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pmbot.polymarket.streams import MarketStream
from pmbot.runner.feed import Translator
from pmbot.runner.live import LiveFeed, Targets, skip_unread_kinds
from pmbot.strategies.memview import MemoryView
from tests.strategy_kit import CID, market


class _Runner:
    def __init__(self) -> None:
        self.view = MemoryView([])


async def test_an_unchanged_market_keeps_its_object_a_changed_one_replaces_it() -> None:
    runner = _Runner()
    none: Any = None
    feed = LiveFeed(none, runner, Translator(), none, Targets())  # type: ignore[arg-type]
    first = market()
    await feed.arm([first])
    assert runner.view.market(CID) is first and feed.armed[CID] is first
    await feed.arm([replace(first)])  # refresh: an equal copy from Gamma
    assert runner.view.market(CID) is first and feed.armed[CID] is first
    closed = replace(first, accepting_orders=False)
    await feed.arm([closed])
    assert runner.view.market(CID) is closed and feed.armed[CID] is closed
    assert feed.translator.tokens == {t: CID for t in first.token_ids}


def test_the_market_stream_skips_best_bid_ask_and_keeps_what_it_skipped_before() -> None:
    stream = MarketStream("ws://127.0.0.1:9/ws")
    stream.skip_kinds = frozenset({"new_market"})
    skip_unread_kinds(stream)
    assert stream.skip_kinds == {"new_market", "best_bid_ask"}
    skip_unread_kinds(object())  # a double without the attribute: left alone
