"""The reconnecting stream loop every channel shares.

A stream runs one background task that connects, subscribes, reads, and on any drop (error, close
frame of any kind, failed handshake, or a feed that stays silent too long) reconnects with jittered,
capped exponential backoff and subscribes again. Parsed events and `StreamStatus` changes go into a
bounded queue that the consumer drains with `async for`. Keeping the reader independent of the
consumer means heartbeats, staleness and the market stream's local books stay current even when the
consumer is slow; if the consumer falls `queue_size` events behind, the oldest are dropped (counted).
An owner that fans events out itself (the run-all market hub) sets `sink` instead: every item is then
handed to `sink(item, arrival)` synchronously by the reader, with no queue and no task hop between.

Every item carries its arrival: `time.perf_counter()` when the bytes of its frame reached the process
(the production WebSocket connection stamps each message as the event loop reads it from the socket,
before any parsing); `current_arrival` is that of the item `__anext__` last returned. A status the
stream makes itself is stamped when it is made.

The reader does not run a whole burst of buffered frames before anyone else gets the loop: it yields
after each frame that emitted events (and after `YIELD_AFTER_S` of work without a pause), so consumers
act on the first frames of a burst while the rest are still being read (and the socket is read again,
which keeps the stamps honest). A yield costs one loop turn (~10 µs warm); without it, the frame that
triggers an entry waited for the rest of its burst (the best_bid_asks that follow a price_change, other
markets' frames) to be parsed before its feed saw it.

`WsStream` is the WebSocket flavour (CLOB market/user channels, RTDS): text heartbeats, JSON frames,
malformed frames skipped and counted. The chain stream plugs web3's own connection into `StreamBase`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from pmbot.errors import VenueError
from pmbot.polymarket.models import StreamState, StreamStatus
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.common import loads_venue
from pmbot.timeutil import Clock, now_ms

log = logging.getLogger("pmbot.polymarket.streams")

E = TypeVar("E")
YIELD_AFTER_S = 0.0005  # the reader's longest run of work before it lets other tasks have the loop
Sink = Callable[[Any, float], None]


class StreamError(VenueError):
    """A stream was misconfigured or used after close."""


class WsConnection(Protocol):
    """What the stream needs from a WebSocket connection (websockets' ClientConnection fits)."""

    async def send(self, message: str) -> None: ...

    async def recv(self) -> str | bytes: ...

    async def close(self) -> None: ...


Connector = Callable[[str], Awaitable[WsConnection]]


async def websockets_connect(url: str) -> WsConnection:
    """The production connector. websockets is imported here, not at module import: the CLI's
    import path must stay light."""
    from websockets.asyncio.client import connect

    # Protocol-level pings detect a dead TCP path; the venue's text PING keeps its idle timer happy.
    # Initial book dumps for many tokens come as one large array frame, hence the 16 MiB max_size.
    # No permessage-deflate: inflating every frame (and the venue deflating it) is CPU on the tick's path;
    # measured on the snipe tick → order benchmark, turning it off took p50 from 1.83 to 1.55 ms.
    conn: WsConnection = await connect(
        url,
        open_timeout=10,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
        max_size=16 * 2**20,
        compression=None,
        create_connection=_stamped_connection_class(),
    )
    return conn


_STAMPED: Any = None


def _stamped_connection_class() -> Any:
    """websockets' ClientConnection that notes when each message's first bytes were read from the socket
    (`arrivals`, one perf_counter() per complete data message, in order: what `recv()` returns next).
    `data_received` is asyncio's Protocol callback and `process_event` sees each parsed frame; both run
    before the message is queued for `recv()`, so queueing anywhere after the socket read is measured."""
    global _STAMPED
    if _STAMPED is None:
        from websockets.asyncio.client import ClientConnection
        from websockets.frames import Frame, Opcode

        class StampedConnection(ClientConnection):
            def __init__(self, *args: Any, **kw: Any) -> None:
                super().__init__(*args, **kw)
                self.arrivals: deque[float] = deque()
                self._read_at = 0.0
                self._message_at = 0.0

            def data_received(self, data: bytes) -> None:
                self._read_at = time.perf_counter()
                super().data_received(data)

            def process_event(self, event: Any) -> None:
                if isinstance(event, Frame) and self.response is not None:
                    if event.opcode is Opcode.TEXT or event.opcode is Opcode.BINARY:
                        self._message_at = self._read_at  # a fragmented message: its first fragment
                    if event.fin and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                        self.arrivals.append(self._message_at)
                super().process_event(event)

        _STAMPED = StampedConnection
    return _STAMPED


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: base·factor^(attempt−1), capped, with "equal jitter" (half fixed, half
    random) so a fleet of clients dropped together does not reconnect in lockstep."""

    base: float = 0.5
    cap: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        d = min(self.cap, self.base * self.factor ** max(attempt - 1, 0))
        return d / 2 + rng.uniform(0, d / 2)


@dataclass(slots=True)
class StreamCounters:
    """Cumulative, for metrics. `messages` counts decoded data frames, `events` what was emitted."""

    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    events: int = 0
    malformed: int = 0
    ignored: int = 0
    heartbeats: int = 0
    pongs: int = 0
    stale: int = 0
    dropped: int = 0


class _SilentFeedError(Exception):
    """The feed stayed silent past `stale_reconnect_after`: drop the connection and start over."""


_CLOSED = object()
CLOSED = _CLOSED  # what a `sink` receives when the stream closes


class StreamBase(Generic[E]):
    """Queue, counters, status reporting, lifecycle and the reconnect loop. Subclasses implement
    `_session()`: one connection's life, returning or raising when it ends."""

    name = "stream"

    def __init__(
        self,
        *,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        stale_after: float | None = 30.0,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
    ) -> None:
        if stale_after is not None and stale_after <= 0:
            raise StreamError(f"{self.name}: stale_after must be positive")
        if stale_reconnect_after is not None and (stale_after is None or stale_reconnect_after <= stale_after):
            raise StreamError(f"{self.name}: stale_reconnect_after must be longer than stale_after")
        self.clock = clock
        self.rng = rng or random.Random()
        self.backoff = backoff or Backoff()
        self.stale_after = stale_after
        self.stale_reconnect_after = stale_reconnect_after
        self.counters = StreamCounters()
        self.state: StreamState | None = None
        self._queue: asyncio.Queue[tuple[float, Any]] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._delivered = False  # the current connection produced data: reset the backoff
        # Set by an owner that dispatches items itself (MarketHub): `sink(item, arrival)` replaces the
        # queue. Set it before start(); it must not raise.
        self.sink: Sink | None = None
        self._rx: float | None = None  # the arrival of the frame being handled (None: not in a frame)
        self._last_data = 0.0  # loop time of the last data frame (the silence watch)
        self.current_arrival: float | None = None  # perf_counter() arrival of the item last returned

    # ---------------------------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start the background task (idempotent). Iterating or entering the context starts it too."""
        if self._closing:
            raise StreamError(f"{self.name}: stream is closed")
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"pmbot-{self.name}")
            self._task.add_done_callback(self._on_task_done)

    async def close(self) -> None:
        """Stop the task, close the connection, and end iteration once queued events are consumed."""
        if self._closing:
            return
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._put(_CLOSED)

    @property
    def closed(self) -> bool:
        return self._closing

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> E | StreamStatus:
        if self._task is None and not self._closing:
            self.start()
        if self._closing and self._queue.empty():
            raise StopAsyncIteration
        arrival, item = await self._queue.get()
        if item is _CLOSED:
            self._put(_CLOSED)  # so every other waiting consumer ends too
            raise StopAsyncIteration
        self.current_arrival = arrival
        if isinstance(item, BaseException):
            raise item
        return item

    def _on_task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug in the loop itself: surface it to the consumer, do not hang
            log.error("%s: stream task died: %r", self.name, exc)
            self._closing = True
            self._put(exc)
            self._put(_CLOSED)

    # ------------------------------------------------------------------------------------ emitting

    def _put(self, item: Any) -> None:
        rx = self._rx
        entry = (time.perf_counter() if rx is None else rx, item)
        if self.sink is not None:
            try:
                self.sink(item, entry[0])
            except Exception:  # a bug in the owner's dispatch: loud, and never taken for a bad message
                log.exception("%s: the sink failed on a %s", self.name, type(item).__name__)
            return
        try:
            self._queue.put_nowait(entry)
        except asyncio.QueueFull:
            self._queue.get_nowait()
            self.counters.dropped += 1
            if self.counters.dropped == 1 or self.counters.dropped % 1000 == 0:
                log.warning("%s: consumer is behind, dropped %d events so far", self.name, self.counters.dropped)
            self._queue.put_nowait(entry)

    def _emit(self, event: E) -> None:
        self.counters.events += 1
        self._put(event)

    def _status(self, state: StreamState, detail: str = "", attempt: int = 0) -> None:
        self.state = state
        self._put(
            StreamStatus(
                stream=self.name,
                state=state,
                timestamp_ms=now_ms(self.clock),
                detail=detail,
                attempt=attempt,
            )
        )

    def _connected(self, detail: str = "") -> None:
        self.counters.connects += 1
        self._status(StreamState.CONNECTED, detail)

    def _data_arrived(self) -> None:
        self._delivered = True
        if self.state is StreamState.STALE:
            self._status(StreamState.CONNECTED, "data resumed")

    def _guarded(self, handler: Callable[[Any], None], item: Any) -> None:
        """Run one message's handler; a payload we cannot read is counted and skipped, never fatal."""
        try:
            handler(item)
        except (VenueError, KeyError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
            self.counters.malformed += 1
            log.log(self._malformed_level(), "%s: skipped an unreadable message (%s): %.160r", self.name, exc, item)

    def _malformed_level(self) -> int:
        # A feed that turns bad would flood the log: warn for the first few and then every 100th.
        n = self.counters.malformed
        return logging.WARNING if n <= 3 or n % 100 == 0 else logging.DEBUG

    def _went_stale(self, silent_for: float) -> None:
        self.counters.stale += 1
        self._status(StreamState.STALE, f"no message for {silent_for:.1f}s")

    # ------------------------------------------------------------------------------------- running

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            self._delivered = False
            try:
                await self._session()
                reason = "connection closed"
            except asyncio.CancelledError:
                raise
            except _SilentFeedError as exc:
                reason = str(exc)
            except Exception as exc:  # every failure of one connection means: reconnect
                reason = _describe(exc)
                if not _expected(exc):
                    log.warning("%s: connection failed: %s", self.name, reason, exc_info=exc)
            finally:
                with contextlib.suppress(Exception):
                    self._disconnected()
            if self._closing:
                break
            attempt = 1 if self._delivered else attempt + 1
            self.counters.reconnects += 1
            delay = self.backoff.delay(attempt, self.rng)
            log.info("%s: %s; reconnecting in %.2fs (attempt %d)", self.name, reason, delay, attempt)
            self._status(StreamState.RECONNECTING, reason, attempt)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        raise NotImplementedError

    def _disconnected(self) -> None:
        """Hook: the connection is gone (the market stream marks its books unsynced)."""

    async def _recv_watching(self, recv: Callable[[], Awaitable[Any]], last_data: float) -> Any:
        """Await `recv()` while watching for silence since `last_data` (loop time): emits STALE once
        `stale_after` passes and raises `_SilentFeedError` after `stale_reconnect_after`."""
        loop = asyncio.get_running_loop()
        while True:
            if self.stale_after is None:
                deadline = None
            elif self.state is not StreamState.STALE:
                deadline = last_data + self.stale_after
            elif self.stale_reconnect_after is not None:
                deadline = last_data + self.stale_reconnect_after
            else:
                deadline = None
            watch = asyncio.timeout_at(deadline)
            try:
                async with watch:
                    return await recv()
            except TimeoutError:
                if not watch.expired():
                    raise  # recv() itself timed out: a connection failure, not silence
                silent = loop.time() - last_data
                if self.state is not StreamState.STALE:
                    self._went_stale(silent)
                else:
                    raise _SilentFeedError(f"silent for {silent:.1f}s") from None


class WsStream(StreamBase[E]):
    """A WebSocket channel: subscribe on connect, text heartbeat, JSON frames → `_handle_one(msg)`
    per message (a frame is one message or an array of them)."""

    heartbeat_text = "PING"

    def __init__(
        self,
        url: str,
        *,
        connect: Connector | None = None,
        heartbeat_interval: float = 10.0,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        stale_after: float | None = 30.0,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(
            clock=clock,
            rng=rng,
            backoff=backoff,
            stale_after=stale_after,
            stale_reconnect_after=stale_reconnect_after,
            queue_size=queue_size,
        )
        if not url.startswith(("ws://", "wss://")):
            raise StreamError(f"{self.name}: not a WebSocket URL: {url!r}")
        self.url = url
        self.heartbeat_interval = heartbeat_interval
        self._connect = connect or websockets_connect
        self._conn: WsConnection | None = None
        # Held while (re)subscribing on connect and while sending a dynamic (un)subscribe, so an id
        # added during a reconnect is neither lost nor sent twice.
        self._send_lock = asyncio.Lock()
        # Sees every decoded frame exactly as the venue sent it, before parsing: `pmbot record`
        # writes these to a scenario file.
        self.on_raw: Callable[[Any], None] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None

    async def reconnect(self) -> None:
        """Drop the current connection (the loop reconnects and subscribes again): for an owner that
        watches silence itself, e.g. a topic of a shared RTDS connection that went quiet while the
        socket still answers pings (pmbot.runner.rtds_hub)."""
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    # ------------------------------------------------------------------------- subclass interface

    def _subscribe_messages(self) -> Sequence[dict[str, Any]]:
        """What to send right after connecting (the full current subscription)."""
        return ()

    def _handle_one(self, item: Any) -> None:
        """One message of a decoded frame. Emit events with `_emit`; raise VenueError (or KeyError, …)
        for a payload that cannot be understood: the message is counted as malformed and skipped."""
        raise NotImplementedError

    # ---------------------------------------------------------------------------------- internals

    async def _send_control(self, message: dict[str, Any]) -> None:
        """Send a dynamic (un)subscribe if connected. The caller holds `_send_lock` and has already
        updated the desired state, so a send that fails is repaired by the next reconnect."""
        conn = self._conn
        if conn is None:
            return
        try:
            await conn.send(json.dumps(message))
        except Exception as exc:
            log.info("%s: control message not sent (%s); the reconnect will re-subscribe", self.name, _describe(exc))

    async def _session(self) -> None:
        conn = await self._connect(self.url)
        heartbeat: asyncio.Task[None] | None = None
        try:
            async with self._send_lock:
                for msg in self._subscribe_messages():
                    await conn.send(json.dumps(msg))
                self._conn = conn
            self._connected()
            heartbeat = asyncio.create_task(self._heartbeat(conn), name=f"pmbot-{self.name}-heartbeat")
            await self._read(conn)
        finally:
            self._conn = None
            if heartbeat is not None:
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await heartbeat
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2)

    async def _heartbeat(self, conn: WsConnection) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await conn.send(self.heartbeat_text)
            self.counters.heartbeats += 1

    async def _read(self, conn: WsConnection) -> None:
        """Read frames until the connection fails. Silence is watched by one timer per quiet period, not
        one per frame (`_recv_watching` arms a timeout around every recv, which costs more than reading
        a small frame): the timer is armed for the earliest time the feed could count as silent; when it
        fires and data came meanwhile, it is armed again from the last data."""
        loop = asyncio.get_running_loop()
        arrivals: deque[float] | None = getattr(conn, "arrivals", None)
        self._last_data = loop.time()
        while True:
            watch = asyncio.timeout_at(self._silence_deadline())
            try:
                async with watch:
                    await self._read_frames(conn, arrivals, watch)
            except TimeoutError:
                if not watch.expired():
                    raise  # recv() itself timed out: a connection failure, not silence
                silent = loop.time() - self._last_data
                if self.state is not StreamState.STALE:
                    if silent >= self.stale_after - 0.001:  # type: ignore[operator]  # a deadline implies it
                        self._went_stale(silent)
                elif self.stale_reconnect_after is not None and silent >= self.stale_reconnect_after - 0.001:
                    raise _SilentFeedError(f"silent for {silent:.1f}s") from None

    def _silence_deadline(self) -> float | None:
        if self.stale_after is None:
            return None
        if self.state is not StreamState.STALE:
            return self._last_data + self.stale_after
        if self.stale_reconnect_after is not None:
            return self._last_data + self.stale_reconnect_after
        return None

    async def _read_frames(self, conn: WsConnection, arrivals: deque[float] | None, watch: asyncio.Timeout) -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        ran_since = clock()
        while True:
            before = clock()
            frame = await conn.recv()
            now = clock()
            if now - before > 20e-6:  # recv waited, so the loop ran others meanwhile (a ready one takes ~2 µs)
                ran_since = now
            self._rx = arrivals.popleft() if arrivals else now
            emitted = self.counters.events
            try:
                data = self._ingest(frame)
            finally:
                self._rx = None
            if data:
                self._last_data = loop.time()
                if self.state is StreamState.STALE:
                    self._data_arrived()  # CONNECTED again: the silence timer starts from this frame
                    watch.reschedule(self._silence_deadline())
                else:
                    self._delivered = True
            if self.counters.events != emitted or clock() - ran_since >= YIELD_AFTER_S:
                # Let the consumers act on what this burst brought so far: at once after a frame that
                # emitted events (an entry's trigger is acted on before the rest of its burst is parsed:
                # the venue follows a price_change with a best_bid_ask per token, the RTDS and other
                # markets' frames of the same second come with it), else after YIELD_AFTER_S of work.
                await asyncio.sleep(0)
                ran_since = clock()

    def _ingest(self, frame: str | bytes) -> bool:
        """Decode and handle one frame. True when it was data (JSON), which resets staleness."""
        if isinstance(frame, bytes):
            try:
                frame = frame.decode("utf-8")
            except UnicodeDecodeError:
                self._malformed(frame, "not UTF-8")
                return False
        text = frame.strip()
        if not text or (len(text) == 4 and text.upper() == "PONG"):  # not upper() of every 3 kB frame
            self.counters.pongs += 1
            return False
        try:
            obj = loads_venue(text, "frame")  # NaN, overflow and deep nesting are malformed too
        except VenueError:
            self._malformed(frame, "not JSON")
            return False
        self.counters.messages += 1
        if self.on_raw is not None:
            self.on_raw(obj)
        for item in ws.messages(obj):  # one bad element of an array frame does not hide the others
            self._guarded(self._handle_one, item)
        return True

    def _malformed(self, frame: str | bytes, why: str) -> None:
        self.counters.malformed += 1
        log.log(self._malformed_level(), "%s: skipped a malformed frame (%s): %.120r", self.name, why, frame)


def _expected(exc: BaseException) -> bool:
    """Network-level failures are routine (logged at INFO); anything else is worth a traceback."""
    if isinstance(exc, OSError | TimeoutError | EOFError):
        return True
    return type(exc).__module__.split(".")[0] in ("websockets", "web3")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
