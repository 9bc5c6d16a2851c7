"""What the RTDS and chain hubs' consumers share: the queue a hub fills and a feed reads.

A consumer looks like a stream to its feed (`async with` / `async for` / `close`); its hub calls `_put`
with each event routed to it, a `StreamStatus`, an exception (raised to the reader) or `CLOSED` (the end).
A consumer that falls `maxlen` items behind loses the oldest. The market hub's consumer (hub.py) keeps
its own queue: its items carry their socket arrival, and it counts what it drops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterable
from typing import Any, Generic, Protocol, Self, TypeVar

__all__ = ["CLOSED", "QueuedConsumer", "hold", "release"]

CLOSED = object()  # what a hub puts last: the reader's `async for` ends


class _Hub(Protocol):
    async def _detach(self, consumer: Any) -> None: ...


H = TypeVar("H", bound=_Hub)
K = TypeVar("K")


def hold(refs: dict[K, int], keys: Iterable[K]) -> list[K]:
    """Count one more reference to each of `keys` (a hub's subscriptions or wallets, shared by its
    consumers); returns those newly held, for the hub to subscribe on its connection."""
    new = []
    for k in keys:
        n = refs.get(k, 0)
        refs[k] = n + 1
        if n == 0:
            new.append(k)
    return new


def release(refs: dict[K, int], keys: Iterable[K]) -> list[K]:
    """Count one reference fewer to each of `keys`; returns those no consumer holds any more."""
    gone = []
    for k in keys:
        n = refs.get(k, 0)
        if n > 1:
            refs[k] = n - 1
        elif refs.pop(k, None) is not None:
            gone.append(k)
    return gone


class QueuedConsumer(Generic[H]):
    def __init__(self, hub: H, *, maxlen: int = 10_000) -> None:
        self._hub = hub
        self._queue: deque[Any] = deque(maxlen=maxlen)
        self._ready = asyncio.Event()
        self._started = False
        self._closed = False

    async def _start(self) -> None:
        """Attach to the hub (once); called by `async with` or the first `__anext__`."""
        raise NotImplementedError

    def _put(self, item: Any) -> None:
        if self._closed:
            return
        self._queue.append(item)
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
        item = self._queue.popleft()
        if item is CLOSED:
            self._closed = True
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._started:
            with contextlib.suppress(Exception):
                await self._hub._detach(self)
        self._ready.set()
