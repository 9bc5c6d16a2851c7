"""One chain log subscription for every copy target of a process (`pmbot run-all`).

`ChainHub` owns one RPC connection (the copy feed's maker-only `ChainFillStream`): one `eth_subscribe("logs")`
whose maker topic lists every followed wallet, counted by reference. A consumer (`hub.consumer(wallets)`)
looks like the copy feed's own chain stream (`follow`, `unfollow`, `wallets`, `async with` / `async for`,
`close`), so `CopyFeed._chain_loop` runs on it unchanged; each `ChainSighting` goes to the consumers that
follow its wallet, each `StreamStatus` to every consumer.

A wallet added or removed while connected replaces the subscription without a gap: the new filter is
subscribed before the old one is dropped (`ChainFillStream._resubscribe`), and a log both deliver is
passed on once (the stream de-duplicates by transaction and log index). Fills made while disconnected
are not replayed by `eth_subscribe`: the copy feed's Data API source catches those up, as it does for a
connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import Any

from pmbot.polymarket.models import StreamState, StreamStatus
from pmbot.runner.consumer import CLOSED, QueuedConsumer, hold, release

__all__ = ["ChainConsumer", "ChainHub"]

log = logging.getLogger("pmbot.runner")


class ChainHub:
    """`make_stream(wallets)` opens the connection (the copy feed's chain stream class)."""

    name = "chain"

    def __init__(self, make_stream: Callable[[list[str]], Any], *, now_ms: Callable[[], int] | None = None) -> None:
        self._make = make_stream
        self._now_ms = now_ms or (lambda: 0)
        self.stream: Any = None
        self._refs: dict[str, int] = {}
        self._consumers: list[ChainConsumer] = []
        self._lock = asyncio.Lock()
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        self.state = "off"
        self.last_message_ms: int | None = None
        self.events = 0

    def consumer(self, wallets: Iterable[str] = (), *, name: str = "") -> ChainConsumer:
        return ChainConsumer(self, wallets, name=name)

    @property
    def wallets(self) -> tuple[str, ...]:
        return tuple(self._refs)

    @property
    def consumers(self) -> tuple[ChainConsumer, ...]:
        return tuple(self._consumers)

    async def _attach(self, c: ChainConsumer, wallets: list[str]) -> None:
        """`wallets`: the consumer's when it started (any later one comes through `_add`)."""
        async with self._lock:
            if self._closed:
                return
            self._consumers.append(c)
            await self._add_locked(wallets)

    async def _detach(self, c: ChainConsumer) -> None:
        async with self._lock:
            with contextlib.suppress(ValueError):
                self._consumers.remove(c)
            await self._remove_locked(c.wallets)

    async def _add(self, wallets: Iterable[str]) -> None:
        async with self._lock:
            await self._add_locked(wallets)

    async def _remove(self, wallets: Iterable[str]) -> None:
        async with self._lock:
            await self._remove_locked(wallets)

    async def _add_locked(self, wallets: Iterable[str]) -> None:
        if self._closed:
            return
        new = hold(self._refs, wallets)
        if self.stream is None:
            self.stream = self._make(list(self._refs))
            self.state = "connecting"
            self._task = asyncio.get_running_loop().create_task(self._pump(self.stream), name="pmbot-chain-hub")
        elif new:
            await self.stream.follow(new)

    async def _remove_locked(self, wallets: Iterable[str]) -> None:
        gone = release(self._refs, wallets)
        if gone and self.stream is not None and not self._closed:
            await self.stream.unfollow(gone)

    async def _pump(self, stream: Any) -> None:
        try:
            async with stream:
                async for item in stream:
                    if isinstance(item, StreamStatus):
                        self.state = item.state.value
                        for c in list(self._consumers):
                            c._put(item)
                        continue
                    self.last_message_ms = self._now_ms()
                    self.events += 1
                    trade = getattr(item, "trade", item)
                    wallet = str(getattr(trade, "wallet", "")).lower()
                    for c in list(self._consumers):
                        if wallet in c.wallets:
                            c._put(item)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a stream bug: every consumer must hear of it
            log.error("chain: stream task died: %r", e)
            self._dead(stream)
            for c in list(self._consumers):
                c._put(e)
            return
        self._dead(stream)

    def _dead(self, stream: Any) -> None:
        """The stream ended (closed, or its task died): the next subscription opens a new one, rather than
        joining a connection that will never deliver again (the copy feeds restart their chain source)."""
        if self.stream is stream:
            self.stream = None
            self.state = "off" if self._closed else "ended"

    def health(self) -> dict[str, int | None]:
        return {} if self.state == "off" else {"chain": self.last_message_ms}

    def states(self) -> dict[str, str]:
        return {} if self.state == "off" else {"chain": self.state}

    async def close(self) -> None:
        self._closed = True
        if self.stream is not None:
            with contextlib.suppress(Exception):
                await self.stream.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for c in list(self._consumers):
            c._put(CLOSED)


class ChainConsumer(QueuedConsumer["ChainHub"]):
    """What a copy feed sees in place of its own chain stream."""

    name = "chain"

    def __init__(self, hub: ChainHub, wallets: Iterable[str], *, name: str) -> None:
        super().__init__(hub)
        self._wallets: set[str] = {w.lower() for w in wallets}
        self.label = name

    @property
    def wallets(self) -> frozenset[str]:
        return frozenset(self._wallets)

    @property
    def counterparty_fills(self) -> int:
        return int(getattr(self._hub.stream, "counterparty_fills", 0))

    async def follow(self, wallets: Iterable[str]) -> None:
        new = {w.lower() for w in wallets} - self._wallets
        if not new:
            return
        self._wallets |= new
        if self._started and not self._closed:
            await self._hub._add(sorted(new))

    async def unfollow(self, wallets: Iterable[str]) -> None:
        gone = {w.lower() for w in wallets} & self._wallets
        if not gone:
            return
        self._wallets -= gone
        if self._started and not self._closed:
            await self._hub._remove(sorted(gone))

    async def _start(self) -> None:
        if self._started:
            return
        self._started = True
        await self._hub._attach(self, sorted(self._wallets))  # taken now: a follow from here on is counted by itself
        if self._hub.state in (StreamState.CONNECTED.value, StreamState.STALE.value):
            # joined a connection that is up already: it will not say CONNECTED again
            self._put(StreamStatus(stream="chain", state=StreamState.CONNECTED, timestamp_ms=self._hub._now_ms(),
                                   detail="joined the shared subscription"))  # fmt: skip
