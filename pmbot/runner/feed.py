"""Adapter events (pmbot.polymarket.models, as the streams and a scenario file yield them) → strategy
events (pmbot.strategies.events). The one translation live, dry-run, the sim and backtest share.

`Translator` keeps a local book per armed token (from `book` snapshots and `price_change` updates),
so a `BookChanged` always carries the token's full book, best first."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from pmbot.polymarket.book import LocalBook, warn_disagreement
from pmbot.polymarket.models import (
    BookSnapshot,
    CryptoPrice,
    LastTrade,
    LevelChange,
    MarketResolved,
    OrderBook,
    PriceChange,
    StreamState,
    StreamStatus,
    TickSizeChange,
)
from pmbot.strategies import events as ev
from pmbot.strategies.events import PriceSource

__all__ = ["BookResync", "Translator", "price_source"]

log = logging.getLogger("pmbot.runner.feed")

_SOURCES = {s.value: s for s in PriceSource}


def price_source(topic: str) -> PriceSource | None:
    return _SOURCES.get(topic)


class Translator:
    """Converts adapter events for the tokens of `markets` (token id → condition id)."""

    def __init__(self, tokens: dict[str, str] | None = None) -> None:
        self.tokens: dict[str, str] = dict(tokens or {})
        self.books: dict[str, LocalBook] = {}
        # Tokens whose book changes become BookChanged events; None: all. A backtest keeps the books of
        # markets not armed yet current without building events nobody looks at.
        self.emit: set[str] | None = None
        # Tokens whose local book a message contradicted (its best bid/ask is not ours: an update was
        # missed). Such a book is blind until its next snapshot; the owner of the stream takes these and
        # asks the venue for one (`take_resync`, MarketStream.resync).
        self.resync: set[str] = set()

    def current(self, token_id: str, ts_ms: int) -> ev.BookChanged | None:
        """The token's book as a BookChanged (e.g. for a view that starts following it), or None."""
        book = self.books.get(token_id)
        cid = self.tokens.get(token_id)
        if book is None or cid is None or not book.synced:
            return None
        return self._changed(book, cid, ts_ms)

    def add_tokens(self, tokens: dict[str, str]) -> None:
        self.tokens.update(tokens)

    def remove_tokens(self, token_ids: Iterable[str]) -> None:
        for t in token_ids:
            self.tokens.pop(t, None)
            self.books.pop(t, None)

    def blind(self, ts_ms: int) -> list[ev.BookChanged]:
        """The market channel dropped or went stale: every book is unknown until its next snapshot. Returns
        an empty BookChanged per token, so no strategy acts on a book that may no longer be there."""
        out = []
        for token, book in self.books.items():
            if book.synced:
                book.synced = False
                cid = self.tokens.get(token)
                if cid is not None:
                    out.append(self._empty(token, cid, ts_ms))
        return out

    def take_resync(self) -> list[str]:
        """The tokens found contradicted since the last call (see `resync`), still followed and blind."""
        wanted, self.resync = self.resync, set()
        return [t for t in wanted if t in self.tokens and t in self.books and not self.books[t].synced]

    def order_book(self, token_id: str) -> OrderBook | None:
        """The local book (for the paper exchange), or None before its first snapshot."""
        book = self.books.get(token_id)
        return book.snapshot() if book is not None and book.synced else None

    def translate(self, item: object, ts_ms: int) -> list[ev.Event]:
        """The strategy events of one adapter event; `ts_ms` is the runner's clock when it arrived."""
        if isinstance(item, BookSnapshot):
            token = item.book.token_id
            cid = self.tokens.get(token)
            if cid is None:
                return []
            book = self.books.get(token)
            if book is None:
                book = self.books[token] = LocalBook(token, item.book.market)
            book.apply_snapshot(item.book)
            if self.emit is not None and token not in self.emit:
                return []
            return [self._changed(book, cid, ts_ms)]
        if isinstance(item, PriceChange):
            touched: dict[str, tuple[LocalBook, LevelChange]] = {}
            for ch in item.changes:
                book = self.books.get(ch.token_id)
                if book is None or not book.synced or ch.token_id not in self.tokens:
                    continue  # no snapshot yet, or blind since a drop: the next snapshot replaces it all
                book.apply_change(ch, item.timestamp_ms)
                touched[ch.token_id] = (book, ch)
            emit = self.emit
            out: list[ev.Event] = []
            for t, (b, last) in touched.items():
                if not b.check_best(last):
                    # The feed's stream keeps no books (the Translator's are the feed's): its check is made
                    # here. A book the venue contradicts is wrong somewhere, maybe at the best ask an entry
                    # would take: no strategy may act on it. Blind until a snapshot replaces it (its
                    # changes are ignored meanwhile, as after a drop), and the strategy sees it empty.
                    warn_disagreement(log, "feed", b, last)
                    b.synced = False
                    self.resync.add(t)
                    if emit is None or t in emit:
                        out.append(self._empty(t, self.tokens[t], ts_ms))
                    continue
                if emit is None or t in emit:
                    out.append(self._changed(b, self.tokens[t], ts_ms))
            return out
        if isinstance(item, CryptoPrice):
            source = price_source(item.topic)
            if source is None:
                return []
            return [
                ev.ReferencePrice(symbol=item.symbol.lower(), price=item.value, ts_ms=item.timestamp_ms, source=source)
            ]
        if isinstance(item, LastTrade):
            cid = self.tokens.get(item.token_id)
            if cid is None:
                return []
            return [
                ev.TradePrinted(
                    token_id=item.token_id,
                    condition_id=cid,
                    price=item.price,
                    size=item.size,
                    side=item.side,
                    ts_ms=ts_ms,
                )
            ]
        if isinstance(item, MarketResolved):
            if item.winning_token_id not in self.tokens and not set(item.token_ids) & set(self.tokens):
                return []
            return [ev.MarketResolved(condition_id=item.market, winning_token_id=item.winning_token_id, ts_ms=ts_ms)]
        if isinstance(item, TickSizeChange):
            book = self.books.get(item.token_id)
            if book is not None:
                book.tick_size = item.new_tick_size
        return []

    @staticmethod
    def _empty(token: str, cid: str, ts_ms: int) -> ev.BookChanged:
        """A book shown as unknown: nothing on either side, so no rule can take from it."""
        return ev.BookChanged(token_id=token, condition_id=cid, bids=(), asks=(), ts_ms=ts_ms)

    @staticmethod
    def _changed(book: LocalBook, cid: str, ts_ms: int) -> ev.BookChanged:
        return ev.BookChanged(token_id=book.token_id, condition_id=cid, bids=book.bids(), asks=book.asks(), ts_ms=ts_ms)


class BookResync:
    """Gets a fresh snapshot for each book a `Translator` found contradicted (`Translator.resync`): asks
    the market stream (`resync(tokens)`: MarketStream, or a run-all hub's consumer) without waiting for
    it, and asks again every `every_s` while the book is still blind (a request or its answer can be
    lost). `check(stream)` runs after each translated market message: a set test when nothing is wrong.

    A book that flaps (contradicted again soon after the snapshot that fixed it) is asked for later each
    time: `every_s` × 2, × 4, … up to `max_backoff_s` after its last ask, back to at once when it held for
    `flap_window_s`. Asked at once each time, a book the venue keeps contradicting cost an unsubscribe and a
    subscribe a second, per token, for as long as it lasted; it stays blind meanwhile (nothing trades on it)."""

    def __init__(
        self,
        translator: Translator,
        *,
        every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        flap_window_s: float = 30.0,
        max_backoff_s: float = 60.0,
    ):
        self.translator = translator
        self.every_s = every_s
        self.flap_window_s = flap_window_s
        self.max_backoff_s = max_backoff_s
        self._clock = clock
        self._last_ask: dict[str, float] = {}  # token → when its snapshot was last asked for (kept after it came)
        self._flaps: dict[str, int] = {}  # token → times in a row it went wrong again within flap_window_s
        self._asked: dict[str, float] = {}  # blind token → when its snapshot was last asked for (or postponed to)
        # blind token → when it went blind or was last asked for: a postponement (a new connection's dump
        # given its every_s) never delays an ask past 2 × every_s from here, so a channel that reconnects
        # faster than every_s (a flapping shard) cannot keep a book blind that its dumps never bring
        self._since: dict[str, float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests = 0  # tokens asked for, in all

    def check(self, stream: Any) -> None:
        tr = self.translator
        if tr.resync:
            now = self._clock()
            for t in tr.take_resync():  # synced books found wrong: each one a new contradiction
                self._contradicted(t, now)
        if not self._asked:
            return
        now = self._clock()
        due: list[str] = []
        since = self._since
        for t, at in list(self._asked.items()):
            book = tr.books.get(t)
            if book is None or book.synced or t not in tr.tokens:  # its snapshot came, or it is not followed
                del self._asked[t]
                since.pop(t, None)
                continue
            first = since.setdefault(t, now)
            if now - at >= self.every_s or now - first >= 2 * self.every_s:
                self._asked[t] = since[t] = self._last_ask[t] = now
                due.append(t)
        resync = getattr(stream, "resync", None)
        if due and resync is not None:
            self.requests += len(due)
            log.info("asking the venue for fresh snapshots of %d blind book(s)", len(due))
            task = asyncio.ensure_future(self._ask(resync, due))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _contradicted(self, token: str, now: float) -> None:
        """A book newly found contradicted: asked for at once, or, when it flaps, at its backoff."""
        last = self._last_ask.get(token)
        if last is None or now - last >= self.flap_window_s:
            self._flaps.pop(token, None)
            self._asked[token] = -math.inf
            return
        flaps = self._flaps[token] = self._flaps.get(token, 0) + 1
        due = last + min(self.every_s * 2**flaps, self.max_backoff_s)
        # check() asks when now - asked >= every_s or now - since >= 2 × every_s: both first hold at `due`
        self._asked[token] = due - self.every_s
        self._since[token] = due - 2 * self.every_s
        if len(self._last_ask) > 4 * max(len(self.translator.tokens), 64):  # tokens no longer followed
            for t in [t for t in self._last_ask if t not in self.translator.tokens]:
                self._last_ask.pop(t, None)
                self._flaps.pop(t, None)

    def status(self, item: StreamStatus, stream: Any) -> None:
        """A market-channel status, after the feed blinded its books for it (`Translator.blind`, on any
        state but CONNECTED). A blinded book comes back only from a snapshot, and not every status brings
        one: STALE is a silent but live connection (when data resumes, no re-subscribe dumps the books), and
        a run-all feed whose tokens span shards blinds them all for one shard's drop, while only that
        shard's re-subscribe dumps its own. So the blind books are asked for: at once when STALE (the dump
        also ends the silence), else after `every_s` (a reconnect's dump comes first and makes it moot); a
        new connection (CONNECTED) gives its dump `every_s` before anything is asked again."""
        tr, asked = self.translator, self._asked
        now = self._clock()
        if item.state is StreamState.CONNECTED:
            since, every = self._since, self.every_s
            for t in asked:
                asked[t] = now
                if now - since.setdefault(t, now) >= 2 * every:  # blind through a long outage: this dump
                    since[t] = now - every  # gets its every_s too, and no more
            return
        at = -math.inf if item.state is StreamState.STALE else now
        for t, b in tr.books.items():
            if not b.synced and t in tr.tokens:
                asked[t] = at
                self._since.setdefault(t, now)
        if item.state is StreamState.STALE:
            self.check(stream)

    @staticmethod
    async def _ask(resync: Callable[[list[str]], Any], tokens: list[str]) -> None:
        try:
            await resync(tokens)
        except Exception as e:  # asked again after every_s while the books stay blind
            log.warning("fresh snapshots not asked for: %s", e)
