"""One RTDS connection for a whole process (`pmbot run-all`), shared by every feed that reads it.

`RtdsHub` owns one `RtdsStream`: the subscriptions of every consumer, counted by reference and merged
(the sniper's `crypto_prices_chainlink` / TWAP topics, one per symbol, and the copy feeds' `activity`), and
the union of the wallets the activity consumers follow (the stream's client-side filter: None when one of
them wants every trader). A consumer (`hub.consumer(subscriptions, wallets=…)`) looks like an `RtdsStream`
to its feed (`subscribe`, `unsubscribe`, `follow`, `unfollow`, `async with` / `async for`, `close`), so
`LiveFeed` and the copy feed run on it unchanged: the host's venue hands one out from `rtds_stream()`.

Routing: a price goes to the consumers with a subscription that matches its topic and symbol
(`RtdsSubscription.matches`), an activity trade to those with an activity subscription whose wallets
include its trader. The stream's `StreamStatus` goes to every consumer (a drop makes all of them blind; they
resume with the reconnect, which subscribes the merged set again).

Silence per topic: a consumer may give `stale_after` / `stale_reconnect_after` (the copy feed's activity
watchdog). On a shared socket the other topics keep the connection busy, so the hub watches the consumer's
own topics: silent for `stale_after`, the consumer gets a STALE status (and CONNECTED when its data
resumes); for `stale_reconnect_after`, the connection is dropped and made again (what the consumer's own
stream would have done).

Why not one `RtdsStream` per feed: N strategy instances would open N sockets, each decoding every trade
on Polymarket (the activity topic cannot be filtered by trader at the venue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pmbot.polymarket.models import StreamState, StreamStatus, WalletTrade
from pmbot.runner.consumer import CLOSED, QueuedConsumer, hold, release

if TYPE_CHECKING:
    from pmbot.polymarket.streams import RtdsStream, RtdsSubscription
    from pmbot.polymarket.streams.base import StreamCounters

__all__ = ["RtdsConsumer", "RtdsHub"]

log = logging.getLogger("pmbot.runner")
_WATCH_EVERY_S = 0.5


class RtdsHub:
    """`make_stream(subscriptions)` opens the connection (`venue.rtds_stream`); `now_ms` stamps health."""

    name = "rtds"

    def __init__(
        self,
        make_stream: Callable[[list[RtdsSubscription]], RtdsStream],
        *,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self._make = make_stream
        self._now_ms = now_ms or (lambda: 0)
        self._mono = time.monotonic  # the stream's `topic_seen` clock
        self.stream: RtdsStream | None = None
        self._refs: dict[RtdsSubscription, int] = {}
        self._consumers: list[RtdsConsumer] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self._watch: asyncio.Task[None] | None = None
        self.state = "off"
        self.last_message_ms: int | None = None
        self._connected_at = self._mono()
        self.events = 0
        self.reconnects_forced = 0

    # ------------------------------------------------------------------------------ consumers

    def consumer(
        self,
        subscriptions: Iterable[RtdsSubscription] = (),
        *,
        wallets: Iterable[str] | None = None,
        name: str = "",
        stale_after: float | None = None,
        stale_reconnect_after: float | None = None,
    ) -> RtdsConsumer:
        """An RtdsStream-like view. `wallets`: the traders whose activity it gets (None: every trader)."""
        c = RtdsConsumer(self, list(dict.fromkeys(subscriptions)), wallets, name=name, stale_after=stale_after,
                         stale_reconnect_after=stale_reconnect_after)  # fmt: skip
        return c

    @property
    def subscriptions(self) -> tuple[RtdsSubscription, ...]:
        return tuple(self._refs)

    @property
    def consumers(self) -> tuple[RtdsConsumer, ...]:
        return tuple(self._consumers)

    def _wallet_filter(self) -> set[str] | None:
        """The stream's activity filter: the union of the activity consumers' wallets (None: one wants all)."""
        out: set[str] = set()
        for c in self._consumers:
            if not any(s.topic == "activity" for s in c.subs):
                continue
            if c.wallets is None:
                return None
            out |= c.wallets
        return out

    async def _attach(self, c: RtdsConsumer, subs: list[RtdsSubscription]) -> None:
        """`subs`: the consumer's subscriptions when it started (any later one comes through `_add`)."""
        async with self._lock:
            if self._closed:
                return
            self._consumers.append(c)
            await self._add_locked(subs)

    async def _detach(self, c: RtdsConsumer) -> None:
        async with self._lock:
            with contextlib.suppress(ValueError):
                self._consumers.remove(c)
            await self._remove_locked(c.subs)

    async def _add(self, subs: Iterable[RtdsSubscription]) -> None:
        async with self._lock:
            await self._add_locked(subs)

    async def _remove(self, subs: Iterable[RtdsSubscription]) -> None:
        async with self._lock:
            await self._remove_locked(subs)

    async def _add_locked(self, subs: Iterable[RtdsSubscription]) -> None:
        if self._closed:
            return
        new = hold(self._refs, subs)
        if self.stream is None:
            self._open()
            return
        self.stream.set_wallets(self._wallet_filter())
        if new:
            await self.stream.subscribe(new)

    async def _remove_locked(self, subs: Iterable[RtdsSubscription]) -> None:
        gone = release(self._refs, subs)
        if self.stream is None or self._closed:
            return
        if gone:
            await self.stream.unsubscribe(gone)
        self.stream.set_wallets(self._wallet_filter())

    def _rewallet(self) -> None:
        if self.stream is not None:
            self.stream.set_wallets(self._wallet_filter())

    def _open(self) -> None:
        stream = self.stream = self._make(list(self._refs))
        stream.set_wallets(self._wallet_filter())
        self.state = "connecting"
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._pump(stream), name="pmbot-rtds-hub")
        if self._watch is None:
            self._watch = loop.create_task(self._watchdog(), name="pmbot-rtds-watch")

    # ------------------------------------------------------------------------------------ pump

    async def _pump(self, stream: RtdsStream) -> None:
        try:
            async with stream:
                async for item in stream:
                    if isinstance(item, StreamStatus):
                        self.state = item.state.value
                        if item.state is StreamState.CONNECTED and item.detail != "data resumed":
                            self._connected_at = self._mono()
                        for c in list(self._consumers):
                            c._status(item)
                        continue
                    now_ms = self._now_ms()
                    self.last_message_ms = now_ms
                    self.events += 1
                    for c in list(self._consumers):
                        if c.wants(item):
                            c._data(item)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a stream bug: every consumer must hear of it
            log.error("rtds: stream task died: %r", e)
            self._dead(stream)
            for c in list(self._consumers):
                c._put(e)
            return
        self._dead(stream)

    def _dead(self, stream: RtdsStream) -> None:
        """The stream ended (closed, or its task died): the next subscription opens a new one, rather than
        joining a connection that will never deliver again (the feeds restart their sources)."""
        if self.stream is stream:
            self.stream = None
            self.state = "off" if self._closed else "ended"

    async def _watchdog(self) -> None:
        """Silence per consumer, over its own topics (see the module docstring)."""
        while True:
            await asyncio.sleep(_WATCH_EVERY_S)
            if self.state != StreamState.CONNECTED.value and self.state != StreamState.STALE.value:
                continue
            now = self._mono()
            reconnect = False
            for c in list(self._consumers):
                if c.stale_after is None or not c.subs:
                    continue
                seen = self.stream.topic_seen if self.stream is not None else {}
                since = max([self._connected_at, c.started_at, *(seen.get(s.topic, 0.0) for s in c.subs)])
                silent = now - since
                if c.stale_reconnect_after is not None and silent >= c.stale_reconnect_after:
                    reconnect = True
                elif silent >= c.stale_after and not c.stale:
                    c.stale = True
                    c._put(self._status_of(StreamState.STALE, f"no {c.topics_text} for {silent:.1f}s"))
                elif silent < c.stale_after and c.stale:
                    c.stale = False
                    c._put(self._status_of(StreamState.CONNECTED, "data resumed"))
            if reconnect and self.stream is not None:
                self.reconnects_forced += 1
                log.info("rtds: a consumer's topics went silent; reconnecting the shared connection")
                self._connected_at = now
                await self.stream.reconnect()

    def _status_of(self, state: StreamState, detail: str) -> StreamStatus:
        return StreamStatus(stream=self.name, state=state, timestamp_ms=self._now_ms(), detail=detail)

    # ------------------------------------------------------------------------------------ views

    def health(self) -> dict[str, int | None]:
        """Stream name -> epoch ms of its last data message: the connection, then each topic."""
        if self.stream is None and self.state == "off":
            return {}
        out: dict[str, int | None] = {"rtds": self.last_message_ms}
        seen = self.stream.topic_seen if self.stream is not None else {}
        mono, wall = self._mono(), self._now_ms()
        for topic in sorted({s.topic for s in self._refs} | set(seen)):
            at = seen.get(topic)
            out[f"rtds:{topic}"] = None if at is None else wall - int((mono - at) * 1000)
        return out

    def states(self) -> dict[str, str]:
        return {} if self.state == "off" else {"rtds": self.state}

    async def close(self) -> None:
        self._closed = True
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for c in list(self._consumers):
            c._put(CLOSED)


class RtdsConsumer(QueuedConsumer["RtdsHub"]):
    """What a feed sees in place of its own RtdsStream (see the module docstring)."""

    name = "rtds"

    def __init__(
        self,
        hub: RtdsHub,
        subscriptions: list[RtdsSubscription],
        wallets: Iterable[str] | None,
        *,
        name: str,
        stale_after: float | None,
        stale_reconnect_after: float | None,
    ) -> None:
        super().__init__(hub)  # a consumer that falls 10 000 items behind loses the oldest
        self.subs: dict[RtdsSubscription, None] = dict.fromkeys(subscriptions)
        self.wallets: set[str] | None = None if wallets is None else {w.lower() for w in wallets}
        self.label = name
        self.stale_after = stale_after
        self.stale_reconnect_after = stale_reconnect_after
        self.stale = False
        self.started_at = 0.0
        self.events = 0

    # the RtdsStream surface ----------------------------------------------------------------------

    @property
    def subscriptions(self) -> tuple[RtdsSubscription, ...]:
        return tuple(self.subs)

    @property
    def counters(self) -> StreamCounters | None:
        stream = self._hub.stream
        return None if stream is None else stream.counters

    @property
    def topics_text(self) -> str:
        return ", ".join(sorted({s.topic for s in self.subs}))

    async def subscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        new = [s for s in dict.fromkeys(subscriptions) if s not in self.subs]
        if not new:
            return
        self.subs.update(dict.fromkeys(new))
        if self._started and not self._closed:
            await self._hub._add(new)

    async def unsubscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        gone = [s for s in dict.fromkeys(subscriptions) if s in self.subs]
        for s in gone:
            del self.subs[s]
        if gone and self._started and not self._closed:
            await self._hub._remove(gone)

    def follow(self, wallets: Iterable[str]) -> None:
        self.wallets = (self.wallets or set()) | {w.lower() for w in wallets}
        self._hub._rewallet()

    def unfollow(self, wallets: Iterable[str]) -> None:
        if self.wallets is not None:
            self.wallets -= {w.lower() for w in wallets}
            self._hub._rewallet()

    def wants(self, item: Any) -> bool:
        if isinstance(item, WalletTrade) and self.wallets is not None and item.wallet.lower() not in self.wallets:
            return False
        return any(s.matches(item) for s in self.subs)

    # lifecycle -------------------------------------------------------------------------------

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        self.started_at = self._hub._mono()
        await self._hub._attach(self, list(self.subs))  # taken now: a subscribe from here on is counted by itself
        state = self._hub.state
        if self._hub.stream is not None and state in (StreamState.CONNECTED.value, StreamState.STALE.value):
            # joined a connection that is up already: it will not say CONNECTED again
            self._put(self._hub._status_of(StreamState.CONNECTED, "joined the shared connection"))

    def _status(self, st: StreamStatus) -> None:
        if st.state is StreamState.CONNECTED:
            self.stale = False
        self._put(st)

    def _data(self, item: Any) -> None:
        self.events += 1
        self._put(item)
