"""One set of market-channel connections for a whole process (`pmbot run-all`), shared by every feed.

`MarketHub` owns the market channel: the tokens of every consumer, counted by reference, sharded over as
many `MarketStream` connections as the venue's per-connection limit needs (`PER_CONNECTION` = 500
instruments). A consumer (`hub.consumer(tokens)`) looks like a `MarketStream` to its feed (`subscribe`,
`unsubscribe`, `books`, `async with` / `async for`, `close`), so `LiveFeed` and the copy feed run on it
unchanged: the host hands them a `SharedVenue`, whose `market_stream()` returns a consumer instead of a new
socket. Each event goes to the consumers that follow one of its tokens, in the order the shard received it;
a shard's `StreamStatus` goes to every consumer of that shard (a drop makes their books blind). Message
types in `skip_kinds` (default `best_bid_ask`, which no feed reads) are not delivered at all.

Delivery: the hub is each shard stream's `sink`, so the stream's reader hands every event to the hub as
soon as the stream's books hold it, and the hub appends it to each interested consumer's queue at once:
no stream queue and no pump task in between. A consumer's queue holds at most `queue_size` items; past
that the oldest are dropped (counted in `dropped`, as a stream does). Every item carries the arrival of
its frame (see pmbot.polymarket.streams.base); `current_arrival` is that of the item a consumer was last
given. A stream without a `sink` (a test double) is read by a pump task, with the same dispatch.

Why not one `MarketStream` per feed: N strategy instances on the same markets would open N sockets and
decode every frame N times, and the venue caps instruments per connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from typing import TYPE_CHECKING, Any, Self

from pmbot.polymarket.models import (
    BestBidAsk,
    BookSnapshot,
    LastTrade,
    MarketResolved,
    PriceChange,
    StreamState,
    StreamStatus,
    TickSizeChange,
)
from pmbot.polymarket.streams.base import CLOSED as STREAM_CLOSED
from pmbot.runner.consumer import hold, release

if TYPE_CHECKING:
    from pmbot.polymarket.book import LocalBook
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.models import OrderBook
    from pmbot.polymarket.streams import MarketStream

__all__ = ["PER_CONNECTION", "HubBooks", "HubConsumer", "MarketHub", "SharedVenue", "tokens_of"]

log = logging.getLogger("pmbot.runner")
PER_CONNECTION = 500  # the venue's instruments per market-channel connection
QUEUE_SIZE = 10_000  # items a consumer may fall behind before the oldest are dropped (a stream's default)
# Market-channel message types no feed of run-all reads (LiveFeed, the copy feed, follow_books): the venue
# sends a `best_bid_ask` per token whenever its top moves (with custom_feature_enabled, which run-all needs
# for `market_resolved`), two of every three messages. The shards skip them before building models.
SKIP_KINDS = frozenset({"best_bid_ask"})
_CLOSED = object()
REVIVE_S, REVIVE_MAX_S = 0.5, 30.0  # a dead shard's new stream: after 0.5 s, 1 s, 2 s … (each death) up to 30 s
FAILED = "failed"  # a shard whose stream task died (its `state`, beside StreamState's values and "connecting")


def tokens_of(item: Any) -> tuple[str, ...]:
    """The tokens a market-channel event is about (empty: not routable by token)."""
    if isinstance(item, BookSnapshot):
        return (item.book.token_id,)
    if isinstance(item, PriceChange):
        return tuple(dict.fromkeys(c.token_id for c in item.changes))
    if isinstance(item, LastTrade | TickSizeChange | BestBidAsk):
        return (item.token_id,)
    if isinstance(item, MarketResolved):
        return item.token_ids or (item.winning_token_id,)
    return ()


class _Shard:
    def __init__(self, index: int, stream: MarketStream) -> None:
        self.index = index
        self.stream = stream
        self.tokens: set[str] = set()
        self.task: asyncio.Task[None] | None = None
        self.last_message_ms: int | None = None
        self.state = "connecting"
        self.deaths = 0  # times its stream task died (each one revived on a new stream, later each time)

    @property
    def name(self) -> str:
        return f"market-{self.index}"


class _MergedBooks(Mapping[str, "LocalBook"]):
    """Every shard's `books`, read as one mapping (what `MarketStream.books` is for one connection)."""

    def __init__(self, hub: MarketHub) -> None:
        self._hub = hub

    def __getitem__(self, token: str) -> LocalBook:
        shard = self._hub._token_shard.get(token)
        if shard is None:
            raise KeyError(token)
        return shard.stream.books[token]

    def __iter__(self) -> Iterator[str]:
        for shard in self._hub.shards:
            yield from shard.stream.books

    def __len__(self) -> int:
        return sum(len(s.stream.books) for s in self._hub.shards)


class MarketHub:
    """`make_stream(tokens)` opens one connection (`venue.market_stream`); `now_ms` stamps stream health."""

    def __init__(
        self,
        make_stream: Callable[[list[str]], MarketStream],
        *,
        per_connection: int = PER_CONNECTION,
        now_ms: Callable[[], int] | None = None,
        queue_size: int = QUEUE_SIZE,
        skip_kinds: Iterable[str] = SKIP_KINDS,
    ) -> None:
        if per_connection < 1:
            raise ValueError("per_connection must be at least 1")
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._make = make_stream
        self.per_connection = per_connection
        self.queue_size = queue_size
        self.skip_kinds = frozenset(skip_kinds)
        self._now_ms = now_ms or (lambda: 0)
        self.shards: list[_Shard] = []
        self._refs: dict[str, int] = {}
        self._token_shard: dict[str, _Shard] = {}
        self._consumers: list[HubConsumer] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._revivals: set[asyncio.Task[None]] = set()
        self.books: Mapping[str, LocalBook] = _MergedBooks(self)
        self.first_subscription_ms: int | None = None
        self.events = 0

    # ------------------------------------------------------------------------------ consumers

    def consumer(
        self,
        token_ids: Iterable[str] = (),
        *,
        every_token: bool = False,
        name: str = "",
        accept: Callable[[Any, tuple[str, ...]], bool] | None = None,
    ) -> HubConsumer:
        """A MarketStream-like view. `every_token`: sees every token of the hub (the executor's
        follow_books), without adding any; `accept(item, tokens)`, if given, picks which of those events
        it gets (so a consumer that needs few of them does not queue every one)."""
        c = HubConsumer(
            self, list(dict.fromkeys(map(str, token_ids))), every_token=every_token, name=name, maxlen=self.queue_size
        )
        c.accept = accept
        self._consumers.append(c)
        return c

    def _detach(self, c: HubConsumer) -> None:
        with contextlib.suppress(ValueError):
            self._consumers.remove(c)

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(self._refs)

    # ----------------------------------------------------------------------------- subscriptions

    async def add(self, tokens: Iterable[str]) -> None:
        async with self._lock:
            if self._closed:
                return
            new = hold(self._refs, tokens)
            if not new:
                return
            # fill the open shards first, then open new connections of at most per_connection tokens
            by_shard: dict[int, list[str]] = {}
            fresh: list[list[str]] = []
            for t in new:
                shard = next((s for s in self.shards if len(s.tokens) < self.per_connection), None)
                if shard is not None:
                    shard.tokens.add(t)
                    self._token_shard[t] = shard
                    by_shard.setdefault(shard.index, []).append(t)
                    continue
                if not fresh or len(fresh[-1]) >= self.per_connection:
                    fresh.append([])
                fresh[-1].append(t)
            for index, ts in by_shard.items():
                await self.shards[index].stream.subscribe(ts)
            for ts in fresh:
                shard = _Shard(len(self.shards), self._make(ts))
                shard.tokens.update(ts)
                for t in ts:
                    self._token_shard[t] = shard
                self.shards.append(shard)
                self._start(shard)
            if self.first_subscription_ms is None:
                self.first_subscription_ms = self._now_ms()

    async def resync(self, tokens: Iterable[str]) -> None:
        """Fresh snapshots of these tokens from their shards' connections (MarketStream.resync): every
        consumer of a token gets the snapshot, and its books are replaced by it."""
        by_shard: dict[int, list[str]] = {}
        for t in tokens:
            shard = self._token_shard.get(t)
            if shard is not None:
                by_shard.setdefault(shard.index, []).append(t)
        for index, ts in by_shard.items():
            await self.shards[index].stream.resync(ts)

    async def remove(self, tokens: Iterable[str]) -> None:
        async with self._lock:
            gone: dict[int, list[str]] = {}
            for t in release(self._refs, tokens):
                shard = self._token_shard.pop(t, None)
                if shard is not None:
                    shard.tokens.discard(t)
                    gone.setdefault(shard.index, []).append(t)
            for index, ts in gone.items():
                if not self._closed:
                    await self.shards[index].stream.unsubscribe(ts)

    # ------------------------------------------------------------------------------------ pump

    def _start(self, shard: _Shard) -> None:
        stream = shard.stream
        if hasattr(stream, "skip_kinds"):
            stream.skip_kinds = self.skip_kinds
        if hasattr(stream, "sink") and hasattr(stream, "start"):
            stream.sink = partial(self._dispatch, shard)
            stream.start()
        else:
            shard.task = asyncio.get_running_loop().create_task(self._pump(shard), name=f"pmbot-{shard.name}")

    async def _pump(self, shard: _Shard) -> None:
        """For a stream that only iterates (no `sink`): the same dispatch, from a task."""
        try:
            async with shard.stream as stream:
                async for item in stream:
                    self._dispatch(shard, item, getattr(stream, "current_arrival", None) or time.perf_counter())
        except asyncio.CancelledError:
            raise
        except Exception as e:
            self._dispatch(shard, e, time.perf_counter())

    def _dispatch(self, shard: _Shard, item: Any, arrival: float) -> None:
        """One item of `shard`, in the order the shard's reader produced it, into each interested consumer's
        queue. Runs inside the stream's reader (its `sink`): it must not raise."""
        if type(item) is StreamStatus:
            shard.state = item.state.value
            for c in list(self._consumers):
                if c.every_token or not c.tokens or not c.tokens.isdisjoint(shard.tokens):
                    c._put(item, arrival)
            return
        if isinstance(item, BaseException):  # the stream's task died: every consumer must hear of it
            shard.deaths += 1
            delay = min(REVIVE_S * 2 ** (shard.deaths - 1), REVIVE_MAX_S)
            log.error("%s: stream task died: %r; a new connection in %.1f s", shard.name, item, delay)
            shard.state = FAILED  # not its last status ("connected"): nothing reads this connection any more
            for c in list(self._consumers):
                c._put(item, arrival)
            if not self._closed:
                task = asyncio.get_running_loop().create_task(
                    self._revive(shard, delay), name=f"pmbot-{shard.name}-revive"
                )
                self._revivals.add(task)
                task.add_done_callback(self._revivals.discard)
            return
        if item is STREAM_CLOSED:
            return  # the hub closes its consumers itself (close())
        shard.last_message_ms = self._now_ms()
        self.events += 1
        tokens = tokens_of(item)
        for c in self._consumers:
            if c.every_token:
                accept = c.accept
                if accept is not None:
                    try:
                        if not accept(item, tokens):
                            continue
                    except Exception as e:  # a filter is an optimisation: when it fails, deliver
                        log.error("%s: consumer %s: accept failed: %r", shard.name, c.label or "?", e)
                c._put(item, arrival)
            elif not c.tokens.isdisjoint(tokens):
                c._put(item, arrival)

    async def _revive(self, shard: _Shard, delay: float) -> None:
        """A shard whose stream task died gets a new stream of its tokens, so that its tokens (others may
        still hold them: run-all feeds share tokens) are followed again; the consumers heard of the death
        and their feeds start over, their books blind until the new connection's snapshots."""
        await asyncio.sleep(delay)
        async with self._lock:
            if self._closed or shard.state != FAILED:
                return
            old = shard.stream
            with contextlib.suppress(Exception):
                await old.close()
            shard.stream = self._make(sorted(shard.tokens))
            shard.state = "connecting"
            self._start(shard)

    def health(self) -> dict[str, int | None]:
        """Stream name -> epoch ms of its last data message (None: nothing yet)."""
        return {s.name: s.last_message_ms for s in self.shards}

    def states(self) -> dict[str, str]:
        return {s.name: s.state for s in self.shards}

    async def close(self) -> None:
        self._closed = True
        for task in list(self._revivals):
            task.cancel()
        for s in self.shards:
            with contextlib.suppress(Exception):
                await s.stream.close()
        for s in self.shards:
            if s.task is not None:
                s.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await s.task
        for c in list(self._consumers):
            c._put(_CLOSED)


class HubConsumer:
    """What a feed sees in place of its own MarketStream (see the module docstring)."""

    name = "market"

    def __init__(
        self, hub: MarketHub, tokens: list[str], *, every_token: bool, name: str, maxlen: int = QUEUE_SIZE
    ) -> None:
        self._hub = hub
        self.tokens: set[str] = set()
        self._initial = tokens
        self.every_token = every_token
        self.label = name
        self._queue: deque[tuple[float, Any]] = deque()
        self._maxlen = maxlen
        self.dropped = 0
        # perf_counter() when the frame of the item last returned reached the process (its socket read)
        self.current_arrival: float | None = None
        self._ready = asyncio.Event()
        self._started = False
        self._closed = False
        self.accept: Callable[[Any, tuple[str, ...]], bool] | None = None

    @property
    def books(self) -> Mapping[str, LocalBook]:
        return self._hub.books

    @property
    def state(self) -> StreamState | None:
        """As `MarketStream.state`: the worst state of the shards that hold this consumer's tokens (stale, then
        reconnecting, which a failed shard also reads as); CONNECTED only when every one of them is; None when
        none has a connection yet (or one of them not yet). A consumer that starts on a shard connected long
        ago gets no StreamStatus of its own, so its feed reads this."""
        states = {s.state for s in self._hub.shards if not s.tokens.isdisjoint(self.tokens)}
        if not states:
            return None
        if StreamState.STALE.value in states:
            return StreamState.STALE
        # reconnecting, or FAILED (its task died: blind until `_revive` gives it a new stream)
        if states - {StreamState.CONNECTED.value, "connecting"}:
            return StreamState.RECONNECTING
        # a shard not connected yet: not "connected" for all the consumer's books
        return StreamState.CONNECTED if states == {StreamState.CONNECTED.value} else None

    @property
    def token_ids(self) -> tuple[str, ...]:
        return tuple(self.tokens)

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        initial, self._initial = self._initial, []
        await self.subscribe(initial)

    async def subscribe(self, token_ids: Iterable[str]) -> None:
        if not self._started:
            self._initial += [t for t in map(str, token_ids) if t not in self._initial]
            return
        new = [t for t in dict.fromkeys(map(str, token_ids)) if t not in self.tokens]
        if not new:
            return
        self.tokens.update(new)
        await self._hub.add(new)
        # a token another consumer follows already has its snapshot: replay it, as a connect would
        for t in new:
            book = self._hub.books.get(t)
            if book is not None and book.synced:
                self._put(BookSnapshot(book=book.snapshot()))

    async def unsubscribe(self, token_ids: Iterable[str]) -> None:
        gone = [t for t in dict.fromkeys(map(str, token_ids)) if t in self.tokens]
        self.tokens.difference_update(gone)
        if gone:
            await self._hub.remove(gone)

    async def resync(self, token_ids: Iterable[str]) -> None:
        """Fresh snapshots of followed tokens (see MarketHub.resync)."""
        await self._hub.resync([t for t in dict.fromkeys(map(str, token_ids)) if t in self.tokens])

    def _put(self, item: Any, arrival: float | None = None) -> None:
        if self._closed:
            return
        queue = self._queue
        if len(queue) >= self._maxlen and item is not _CLOSED:
            queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                who = self.label or "a consumer"
                log.warning("market hub: %s is behind, dropped %d events so far", who, self.dropped)
        queue.append((time.perf_counter() if arrival is None else arrival, item))
        if not self._ready.is_set():
            self._ready.set()

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        if not self._started:
            await self._start()
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        self.current_arrival, item = self._queue.popleft()
        if item is _CLOSED:
            self._closed = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._hub._detach(self)
        tokens, self.tokens = list(self.tokens), set()
        with contextlib.suppress(Exception):
            await self._hub.remove(tokens)
        self._ready.set()


class HubBooks:
    """The paper exchange's BookSource: the hub's local book when synced, else REST (`fallback`)."""

    def __init__(self, hub: MarketHub, fallback: Any) -> None:
        self._hub = hub
        self._fallback = fallback

    async def book(self, token_id: str) -> OrderBook:
        local = self._hub.books.get(token_id)
        if local is not None and local.synced:
            return local.snapshot()
        result: OrderBook = await self._fallback.book(token_id)
        return result


class SharedVenue:
    """The venue as a feed sees it inside run-all: everything delegates to the real adapter, except
    `market_stream`, which is a consumer of the process's one `MarketHub`."""

    def __init__(self, venue: Venue, hub: MarketHub) -> None:
        self._venue = venue
        self.hub = hub

    def market_stream(self, token_ids: Iterable[str] = ()) -> HubConsumer:
        return self.hub.consumer(token_ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)
