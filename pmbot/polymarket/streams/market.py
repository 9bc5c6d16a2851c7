"""The CLOB market channel (`{clob_ws_url}/market`): books, level changes, trades, tick sizes,
best bid/ask and resolutions for a set of tokens, plus a local order book per token."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from pmbot.polymarket.book import LocalBook, warn_disagreement
from pmbot.polymarket.models import BookSnapshot, LastTrade, LevelChange, PriceChange, TickSizeChange
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.ws import MarketEvent
from pmbot.polymarket.streams.base import Backoff, Clock, Connector, WsStream, log


class MarketStream(WsStream[MarketEvent]):
    """`async for ev in MarketStream(url, tokens)` yields BookSnapshot, PriceChange, LastTrade,
    TickSizeChange, BestBidAsk, MarketResolved and StreamStatus.

    `books[token_id]` is kept current from `book` snapshots and `price_change` updates before the
    event is queued, so it is never behind the events the consumer has seen. A token's book appears
    with its first snapshot; changes that arrive before it are ignored (the snapshot supersedes them).
    On a drop every book is marked `synced=False`; the venue re-sends a snapshot per token after the
    automatic re-subscribe, which replaces the old state.
    """

    name = "market"

    def __init__(
        self,
        clob_ws_url: str,
        token_ids: Iterable[str] = (),
        *,
        connect: Connector | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        heartbeat_interval: float = 10.0,
        stale_after: float | None = 30.0,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
        on_tick_size: Callable[[str, Decimal], None] | None = None,
    ) -> None:
        """`on_tick_size(token_id, new_tick)` is called on every `tick_size_change`, before the event is
        queued: the venue changes a market's tick near the extremes (price above 0.96 or below 0.04:
        0.01 → 0.001), exactly where snipes trade, so the tick cache the signer and the price checks read
        (MarketParamsCache.set_tick_size) must follow it mid-window."""
        super().__init__(
            clob_ws_url.rstrip("/") + "/market",
            connect=connect,
            heartbeat_interval=heartbeat_interval,
            clock=clock,
            rng=rng,
            backoff=backoff,
            stale_after=stale_after,
            stale_reconnect_after=stale_reconnect_after,
            queue_size=queue_size,
        )
        self._tokens: dict[str, None] = dict.fromkeys(str(t) for t in token_ids)  # ordered set
        self.books: dict[str, LocalBook] = {}
        self._on_tick_size = on_tick_size
        # Message types (`event_type`) skipped right after decoding, counted as ignored: an owner whose
        # consumers read none of them (the run-all hub and `best_bid_ask`, two thirds of the messages)
        # does not pay for their models. They never touch the books.
        self.skip_kinds: frozenset[str] = frozenset()
        # False: `books` is not kept (stays empty) for an owner that keeps its own from the same events
        # (LiveFeed's Translator): each change applied once, not once here before the event is queued and
        # again by the owner. The tick-size callback still runs.
        self.keep_books = True

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(self._tokens)

    async def subscribe(self, token_ids: Iterable[str]) -> None:
        """Add tokens without reconnecting. Their snapshots arrive like on connect."""
        async with self._send_lock:
            new = [t for t in map(str, token_ids) if t not in self._tokens]
            if not new:
                return
            self._tokens.update(dict.fromkeys(new))
            await self._send_control({"assets_ids": new, "operation": "subscribe", "custom_feature_enabled": True})

    async def unsubscribe(self, token_ids: Iterable[str]) -> None:
        """Drop tokens and their books."""
        async with self._send_lock:
            gone = [t for t in map(str, token_ids) if t in self._tokens]
            if not gone:
                return
            for t in gone:
                del self._tokens[t]
                self.books.pop(t, None)
            await self._send_control({"assets_ids": gone, "operation": "unsubscribe"})

    async def resync(self, token_ids: Iterable[str]) -> None:
        """Ask the venue for fresh snapshots of subscribed tokens whose books are known to be wrong (a
        missed update): an unsubscribe and a subscribe on the wire, whose dump is the snapshot (the
        venue dumps only tokens new to the connection). The subscription itself does not change; until
        the snapshot arrives those books are unsynced here (their changes ignored). Not connected: the
        reconnect's subscribe dumps every token anyway."""
        async with self._send_lock:
            tokens = [t for t in dict.fromkeys(map(str, token_ids)) if t in self._tokens]
            if not tokens:
                return
            for t in tokens:
                book = self.books.get(t)
                if book is not None:
                    book.synced = False
            await self._send_control({"assets_ids": tokens, "operation": "unsubscribe"})
            await self._send_control({"assets_ids": tokens, "operation": "subscribe", "custom_feature_enabled": True})

    # ---------------------------------------------------------------------------------- internals

    def _subscribe_messages(self) -> list[dict[str, Any]]:
        return [{"assets_ids": list(self._tokens), "type": "market", "custom_feature_enabled": True}]

    def _disconnected(self) -> None:
        for book in self.books.values():
            book.synced = False

    def _handle_one(self, item: Any) -> None:
        if self.skip_kinds and type(item) is dict and item.get("event_type") in self.skip_kinds:
            self.counters.ignored += 1
            return
        ev = ws.market_event(item)
        if ev is None:
            self.counters.ignored += 1
            return
        if not self.keep_books:
            if isinstance(ev, TickSizeChange) and self._on_tick_size is not None and ev.new_tick_size > 0:
                self._on_tick_size(ev.token_id, ev.new_tick_size)
        elif isinstance(ev, BookSnapshot):
            token = ev.book.token_id
            if token in self._tokens:
                book = self.books.get(token)
                if book is None:
                    book = self.books[token] = LocalBook(token, ev.book.market)
                book.apply_snapshot(ev.book)
        elif isinstance(ev, PriceChange):
            self._apply_price_change(ev)
        elif isinstance(ev, TickSizeChange):
            if (book := self.books.get(ev.token_id)) is not None:
                book.tick_size = ev.new_tick_size
            if self._on_tick_size is not None and ev.new_tick_size > 0:
                self._on_tick_size(ev.token_id, ev.new_tick_size)
        elif isinstance(ev, LastTrade) and (book := self.books.get(ev.token_id)) is not None:
            book.last_trade_price = ev.price
        self._emit(ev)

    def _apply_price_change(self, ev: PriceChange) -> None:
        """Each change into its token's book, then per token the book against the venue's best bid/ask of
        that token's LAST change (LocalBook.apply_changes, without grouping the changes first)."""
        books = self.books
        ts = ev.timestamp_ms
        last: dict[str, LevelChange] = {}
        for ch in ev.changes:
            book = books.get(ch.token_id)
            if book is None:
                continue  # no snapshot yet (or a token we did not ask for)
            book.apply_change(ch, ts)
            last[ch.token_id] = ch
        for token, ch in last.items():
            book = books[token]
            if not book.check_best(ch):
                warn_disagreement(log, "market", book, ch)
