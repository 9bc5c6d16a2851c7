"""LiveFeed.arm on a refresh: an armed market re-read unchanged keeps the MarketInfo object the view holds
(a strategy keys its per-market work on it: the sniper's entry terms and edges, worked out ahead of the
window, must still be there on the entry's event); a changed one replaces it. And the market stream skips
the message types no consumer of this feed reads."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from pmbot.polymarket.streams import MarketStream
from pmbot.runner.feed import Translator
from pmbot.runner.live import LiveFeed, Targets, lean_market_stream
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


def test_the_feeds_own_market_stream_skips_best_bid_ask_and_keeps_no_books_of_its_own() -> None:
    stream = MarketStream("ws://127.0.0.1:9/ws")
    stream.skip_kinds = frozenset({"new_market"})
    lean_market_stream(stream)
    assert stream.skip_kinds == {"new_market", "best_bid_ask"} and stream.keep_books is False
    lean_market_stream(object())  # a double (or a run-all hub consumer) without the attributes: left alone


def test_a_stream_without_books_emits_the_same_events_and_still_follows_the_tick() -> None:
    """keep_books=False changes nothing the feed sees: the same events, in order (the Translator keeps the
    books from them); only the stream's own `books` stay empty. The tick-size callback still runs."""
    import json

    frames = [
        {"event_type": "book", "asset_id": "7", "market": CID, "timestamp": "1795000000000", "hash": "0x1",
         "bids": [{"price": "0.4", "size": "10"}], "asks": [{"price": "0.6", "size": "10"}]},
        {"event_type": "price_change", "market": CID, "timestamp": "1795000000100", "price_changes": [
            {"asset_id": "7", "price": "0.5", "size": "3", "side": "BUY", "hash": "0x2", "best_bid": "0.5",
             "best_ask": "0.6"}]},
        {"event_type": "tick_size_change", "asset_id": "7", "market": CID, "old_tick_size": "0.01",
         "new_tick_size": "0.001", "timestamp": "1795000000200"},
        {"event_type": "last_trade_price", "asset_id": "7", "market": CID, "price": "0.6", "size": "1",
         "side": "BUY", "timestamp": "1795000000300"},
    ]  # fmt: skip
    seen: dict[bool, list[Any]] = {}
    ticks: dict[bool, list[tuple[str, Any]]] = {}
    for keep in (True, False):
        ticks[keep] = []
        stream = MarketStream("ws://127.0.0.1:9/ws", ["7"], on_tick_size=lambda t, v, k=keep: ticks[k].append((t, v)))
        stream.keep_books = keep
        for f in frames:
            stream._ingest(json.dumps(f))
        seen[keep] = [stream._queue.get_nowait()[1] for _ in range(stream._queue.qsize())]
        assert bool(stream.books) is keep
    assert seen[True] == seen[False] and len(seen[False]) == 4
    assert ticks[True] == ticks[False] and len(ticks[False]) == 1
