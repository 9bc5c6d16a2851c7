"""The `pmbot run-all` host: every strategy unit in one process, on one event loop, sharing one executor
(of the chosen mode), one set of venue connections (`MarketHub`: one market channel for all tokens,
sharded at the venue's 500 instruments per connection; `RtdsHub`: one RTDS connection for every sniper's
reference prices and every copy feed's activity; `ChainHub`: one log subscription for every copy target;
one user channel in live) and the store. The units reach them through `HostVenue` (`market_stream` and
`rtds_stream` hand out hub consumers) and the context's `chain_hub` / `rtds_hub`; `pmbot snipe` and
`pmbot copy` keep streams of their own.

    host = Host(app, units, dry_run=True, settings=RunAllSettings(...))
    await host.run(stop=stop_event, duration_s=None)

`run` in order: a run-all lock per wallet and mode (a second run-all refuses with one line), each unit's
`prepare` (bad targets fail before anything is written), the executor (`start` reconciles what an earlier
run left), then in the background: the supervised units, the executor's work (`follow_books` on the hub,
the settler; live: `follow_user`, `run_reconciler`, heartbeats from `start`), the control channel
(pause / resume within 1 s; the status entry `pmbot status` reads, every second), metrics snapshots into
execution_logs and the Prometheus exporter. It returns after `stop` (SIGINT / SIGTERM), the duration, or
when every unit has ended, once the shutdown (see `shutdown`) is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pmbot.errors import ConfigError, PmbotError, StoreError, VenueError
from pmbot.polymarket.models import MarketResolved
from pmbot.runner.chain_hub import ChainHub
from pmbot.runner.hub import HubBooks, MarketHub, SharedVenue
from pmbot.runner.rtds_hub import RtdsConsumer, RtdsHub
from pmbot.runner.supervisor import Supervisor, SupervisorPolicy, Unit
from pmbot.runner.units import new_run_id
from pmbot.store.models import mode_name

if TYPE_CHECKING:
    from pmbot.app import App
    from pmbot.control import ControlChannel
    from pmbot.executor.engine import Executor
    from pmbot.executor.factory import ExecutorHandle
    from pmbot.metrics_http import MetricsExporter
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.streams import MarketStream, RtdsSubscription, UserStream
    from pmbot.store.base import Store

__all__ = ["Host", "HostContext", "HostOptions", "HostVenue", "RunAllLock", "RunAllLockedError"]

log = logging.getLogger("pmbot.runner")


class RunAllLockedError(PmbotError):
    default_hint = "stop the other run-all first (`pmbot status` shows it), or use another database"


class RunAllLock:
    """One run-all per wallet and mode: flock on `run-all-<mode>-<hash of wallet>.lock` in the user's lock
    directory and beside a SQLite database (the executor's wallet lock, for the run-all itself: a dry-run
    executor locks only its own paper run, so without this two dry-run run-alls would both start)."""

    def __init__(self, lock_dir: Path, mode: str, wallet: str, database_url: str) -> None:
        from pmbot.executor.lock import FileWalletLock

        self.mode = mode
        self._lock = FileWalletLock(lock_dir, f"run-all:{mode}:{wallet}", database_url=database_url)

    def acquire(self) -> None:
        from pmbot.executor.lock import WalletLockedError

        try:
            self._lock.acquire()
        except WalletLockedError as e:
            pid = re.search(r"pid (\S+)\)", e.message)
            if pid is None:
                raise
            raise RunAllLockedError(f"another pmbot run-all ({self.mode}) is running (pid {pid.group(1)})") from None

    def release(self) -> None:
        self._lock.release()


@dataclass
class HostOptions:
    cancel_on_shutdown: bool = True  # config run_all.on_shutdown: "cancel" resting orders, or "leave" them
    snapshot_interval_s: float = 300.0
    status_interval_s: float = 1.0
    metrics_interval_s: float = 2.0
    settle_every_s: float = 60.0
    shutdown_timeout_s: float = 10.0
    tick_s: float = 0.25
    rediscover_s: float = 30.0
    policy: SupervisorPolicy = field(default_factory=SupervisorPolicy)
    per_connection: int = 500
    measure: bool = False  # bench: sample event -> decision latency
    # Trade on the venue's clock (pmbot.runner.venue_clock: GET /time, the wall clock against Polymarket,
    # the sim's accelerated clock against `pmbot sim serve --speed N`); off: the App's clock (tests).
    venue_clock: bool = True
    follow_books: bool = True  # the executor's follow_books on every token of the hub (paper fills, resolutions)


@dataclass
class HostContext:
    """What a unit gets: the shared parts of the process."""

    app: App
    venue: Venue  # a SharedVenue: the real adapter, with the hub's market channel
    executor: Executor
    hub: MarketHub
    store: Store
    mode: str
    run_id: str
    clock: Callable[[], float]
    tick_s: float
    rediscover_s: float
    events: deque[tuple[int, str, str]]
    measure: bool = False
    wall: Callable[[], float] = time.time  # health time: heartbeats, events
    rtds_hub: RtdsHub | None = None  # the one RTDS connection (the venue's rtds_stream hands out its consumers)
    chain_hub: ChainHub | None = None  # the one chain log subscription (None: no PMBOT_RPC_WS_URL)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def event(self, name: str, text: str) -> None:
        """A line for the dashboard's last events (and the log)."""
        self.events.append((int(self.wall() * 1000), name, text))


class HostVenue(SharedVenue):
    """SharedVenue with the process's one RTDS connection too: `rtds_stream()` (what `LiveFeed` opens for
    its reference prices) is a consumer of the host's `RtdsHub`."""

    def __init__(self, venue: Venue, hub: MarketHub, rtds: RtdsHub) -> None:
        super().__init__(venue, hub)
        self.rtds_hub = rtds

    def rtds_stream(
        self, subscriptions: Sequence[RtdsSubscription] = (), wallets: Sequence[str] | None = None
    ) -> RtdsConsumer:
        return self.rtds_hub.consumer(subscriptions, wallets=wallets)


def copy_chain_hub(venue: Venue, clock: Callable[[], float], now_ms: Callable[[], int]) -> ChainHub | None:
    """The chain hub on the copy feed's maker-only stream, or None without a Polygon RPC (the feeds then
    report their chain source unavailable, as `pmbot copy` does)."""
    rpc = venue.settings.rpc_ws_url
    if not rpc:
        return None
    from pmbot.runner.copy_feed import copy_chain_stream_class

    cls = copy_chain_stream_class()
    return ChainHub(lambda wallets: cls(rpc, wallets, clock=clock, rng=venue.rng), now_ms=now_ms)


class Host:
    def __init__(
        self,
        app: App,
        units: Sequence[Unit],
        *,
        dry_run: bool,
        options: HostOptions | None = None,
        exporter: MetricsExporter | None = None,
        lock_dir: Path | None = None,
    ) -> None:
        self.app = app
        self.units = list(units)
        self.dry_run = dry_run
        self.mode = mode_name(dry_run)
        self.options = options or HostOptions()
        self.exporter = exporter
        self.lock_dir = lock_dir
        self.run_id = new_run_id()
        self.events: deque[tuple[int, str, str]] = deque(maxlen=50)
        self.ctx: HostContext | None = None
        self.supervisor: Supervisor | None = None
        self.handle: ExecutorHandle | None = None
        self.control: ControlChannel | None = None
        self.hub: MarketHub | None = None
        self.rtds_hub: RtdsHub | None = None
        self.chain_hub: ChainHub | None = None
        self.started_ms: int | None = None  # the trading clock's (stats since then)
        self.started_wall_ms: int | None = None
        self.wall: Callable[[], float] = time.time
        self.clock: Callable[[], float] = app.clock  # the trading clock (the venue's, once synced)
        self.ready = asyncio.Event()  # set once every unit is started (the dashboard waits for it)
        self.state = "starting"
        self.shutdown_s: float | None = None
        self._stopping = False
        self._user_last_ms: int | None = None
        self._venue: Any = None
        self.on_prepared: Callable[[], None] | None = None  # after the checks, before anything is written

    def _now_ms(self) -> int:
        """Health time (heartbeats, stream ages, uptime, events): the wall clock, whatever the venue's
        clock says, because `pmbot status` in another terminal compares it with its own."""
        return int(self.wall() * 1000)

    def event(self, name: str, text: str) -> None:
        self.events.append((self._now_ms(), name, text))
        logging.getLogger(f"pmbot.strategy.{name}" if name != "run-all" else "pmbot.runner").info("%s", text)

    # ------------------------------------------------------------------------------------- run

    async def run(self, *, stop: asyncio.Event, duration_s: float | None = None) -> None:
        from pmbot.control import ControlChannel
        from pmbot.executor.books import VenueBooks
        from pmbot.executor.factory import build_executor
        from pmbot.executor.lock import user_lock_dir

        app, settings = self.app, self.app.settings
        lock_dir = self.lock_dir or user_lock_dir()
        if not self.dry_run and settings.private_key is None:
            raise ConfigError("--live needs a wallet key", hint="set PMBOT_PRIVATE_KEY in the environment or .env")
        async with app.venue() as venue, contextlib.AsyncExitStack() as stack:
            self._venue = venue
            if self.options.venue_clock:
                await self._sync_clock(venue, stack)
            hub = self.hub = MarketHub(venue.market_stream, per_connection=self.options.per_connection,
                                       now_ms=self._now_ms)  # fmt: skip
            rtds = self.rtds_hub = RtdsHub(venue.rtds_stream, now_ms=self._now_ms)
            self.chain_hub = copy_chain_hub(venue, self.clock, self._now_ms)
            shared = HostVenue(venue, hub, rtds)
            wallet = "paper"
            if not self.dry_run:
                from pmbot.polymarket.signing import OrderSigner

                assert settings.private_key is not None
                wallet = settings.funder or OrderSigner(settings.private_key.get_secret_value()).address
            for u in self.units:  # bad targets: one line, exit 2, nothing written (venue reads only)
                prepare = getattr(u, "prepare", None)
                if prepare is not None:
                    await prepare(_PrepareContext(app, cast("Venue", shared), self.mode, self.clock))
            lock = RunAllLock(lock_dir, self.mode, wallet, settings.database_url)
            lock.acquire()
            try:
                if self.on_prepared is not None:
                    self.on_prepared()
                self.handle = await build_executor(
                    settings, app.store, venue, dry_run=self.dry_run, lock_dir=lock_dir, clock=self.clock,
                    books=HubBooks(hub, VenueBooks(venue.clob)) if self.dry_run else None,
                )  # fmt: skip
                try:
                    await self._run(venue, shared, hub, stop, duration_s, ControlChannel)
                finally:
                    await self.handle.close()  # drains what was taken, stores the executor's metrics
                    await hub.close()
                    await rtds.close()
                    if self.chain_hub is not None:
                        await self.chain_hub.close()
            finally:
                lock.release()

    async def _sync_clock(self, venue: Any, stack: contextlib.AsyncExitStack) -> None:
        try:
            from pmbot.runner.venue_clock import VenueClock
        except ImportError:  # a build without it: the App's clock
            return
        vc = VenueClock(venue.clob.server_time, wall=self.app.clock)
        await vc.sync()  # before discovery: "ending soon" is the venue's soon
        sampler = asyncio.create_task(vc.run(), name="venue-clock")

        async def cancel() -> None:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sampler

        stack.push_async_callback(cancel)
        self.clock = vc

    async def _run(
        self,
        venue: Any,
        shared: SharedVenue,
        hub: MarketHub,
        stop: asyncio.Event,
        duration_s: float | None,
        control_cls: type[ControlChannel],
    ) -> None:
        assert self.handle is not None
        app, opts = self.app, self.options
        executor = self.handle.executor
        await executor.start()
        self.started_ms = int(self.clock() * 1000)
        self.started_wall_ms = self._now_ms()
        ctx = self.ctx = HostContext(
            app=app, venue=cast("Venue", shared), executor=executor, hub=hub, store=app.store, mode=self.mode,
            run_id=self.run_id, clock=self.clock, tick_s=opts.tick_s, rediscover_s=opts.rediscover_s,
            events=self.events, measure=opts.measure, wall=self.wall, rtds_hub=self.rtds_hub,
            chain_hub=self.chain_hub,
        )  # fmt: skip
        sup = self.supervisor = Supervisor(self.units, ctx, policy=opts.policy, now_ms=self._now_ms,
                                           on_event=self.event)  # fmt: skip
        control = self.control = control_cls(app.store, [u.name for u in self.units], mode=self.mode,
                                             clock=self.wall, command="run-all")  # fmt: skip
        with contextlib.suppress(StoreError):
            sup.apply(control.poll())  # a pause that outlived the last process holds from the first event
        self.state = "running"
        background = [
            asyncio.create_task(control.watch(sup.apply, stop=stop), name="run-all-control"),
            asyncio.create_task(self._status_loop(stop), name="run-all-status"),
            asyncio.create_task(self._snapshot_loop(stop), name="run-all-snapshots"),
            asyncio.create_task(
                self._guard(executor.run_settler(venue, opts.settle_every_s), "settler"), name="run-all-settler"
            ),
        ]
        if opts.follow_books:
            books = executor.follow_books(_as_stream(self._books_consumer()))
            background.append(asyncio.create_task(self._guard(books, "books"), name="run-all-books"))
        if self.exporter is not None:
            background.append(asyncio.create_task(self._metrics_loop(stop), name="run-all-metrics"))
        if not self.dry_run:
            background.append(asyncio.create_task(self._guard(self._follow_user(venue), "user"), name="run-all-user"))
            background.append(asyncio.create_task(self._guard(executor.run_reconciler(), "reconciler"),
                                                  name="run-all-reconciler"))  # fmt: skip
        sup.start()
        self.ready.set()
        self.event("run-all", f"{self.mode}: {len(self.units)} strategies started")
        try:
            await self._wait(stop, duration_s)
        finally:
            await self.shutdown(background)

    async def _wait(self, stop: asyncio.Event, duration_s: float | None) -> None:
        assert self.supervisor is not None
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return
            if self.supervisor.all_done:
                return  # every unit ended (done, or crashed for good)
            wait = 0.2 if deadline is None else max(0.0, min(0.2, deadline - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def _guard(self, work: Any, name: str) -> None:
        """A background job of the executor: a failure is logged (and the job restarted), never the end."""
        delay = 1.0
        while True:
            try:
                await work
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("run-all: %s stopped (%s); restarting it in %gs", name, e, delay)
                self.event("run-all", f"{name} failed: {e}")
            await asyncio.sleep(delay)
            delay = min(30.0, delay * 2)
            work = self._restart(name)
            if work is None:
                return

    def _books_consumer(self) -> Any:
        """The executor's follow_books sees resolutions, and (dry-run) the books of tokens it rests paper
        orders in: not every event of the process (the feeds handle those), so it queues almost nothing."""
        assert self.hub is not None
        assert self.handle is not None
        paper = self.handle.executor.paper

        def accept(item: Any, tokens: tuple[str, ...]) -> bool:
            if isinstance(item, MarketResolved):
                return True
            return paper is not None and any(paper.open_orders(t) for t in tokens)

        return self.hub.consumer(every_token=True, accept=accept, name="follow_books")

    def _restart(self, name: str) -> Any:
        assert self.handle is not None
        assert self.hub is not None
        ex = self.handle.executor
        if name == "books":
            return ex.follow_books(_as_stream(self._books_consumer()))
        if name == "reconciler":
            return ex.run_reconciler()
        return None

    async def _follow_user(self, venue: Any) -> None:
        assert self.handle is not None
        ex = self.handle.executor
        while True:
            stream = venue.user_stream()
            try:
                await ex.follow_user(cast("UserStream", _Stamped(stream, self)))
            finally:
                with contextlib.suppress(Exception):
                    await stream.close()
            await asyncio.sleep(1.0)

    # ----------------------------------------------------------------------------------- views

    def streams(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        # the market shards, the one RTDS connection (and its topics), the log subscription
        for shared in (self.hub, self.rtds_hub, self.chain_hub):
            if shared is not None:
                out.update(shared.health())
        if not self.dry_run:
            out["user"] = self._user_last_ms
        # the copy feeds' sources (chain, rtds, data_api): their last target fill, in the venue's time
        venue_now, wall_now = int(self.clock() * 1000), self._now_ms()
        for u in self.units:
            health = getattr(getattr(u, "feed", None), "health", None)
            if not isinstance(health, dict):
                continue
            for source, h in health.items():
                last = getattr(h, "last_event_ms", None)
                out[f"{u.name}:{source}"] = None if last is None else wall_now - max(0, venue_now - int(last))
        return out

    def stream_states(self) -> dict[str, str]:
        """Stream name -> its connection state (connected, reconnecting, stale): the market shards, RTDS, chain."""
        out: dict[str, str] = {}
        for shared in (self.hub, self.rtds_hub, self.chain_hub):
            if shared is not None:
                out.update(shared.states())
        return out

    def kill_switch(self) -> dict[str, Any] | None:
        if self.handle is None:
            return None
        ks = self.handle.executor.risk.kill_switch
        return {"tripped": ks.tripped, "reason": ks.reason}

    def open_orders(self) -> int | None:
        if self.handle is None:
            return None
        return int(self.handle.executor.risk.exposure().open_orders)

    def publish_status(self) -> None:
        if self.control is None or self.supervisor is None:
            return
        self.control.publish_status(
            self.supervisor.statuses(),
            streams=self.streams(),
            kill_switch=self.kill_switch(),
            open_orders=self.open_orders(),
            extra={"run_id": self.run_id, "strategies_of": {u.name: u.kind for u in self.units}},
        )

    async def _status_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.publish_status()
            except StoreError as e:
                log.warning("run-all: status not published: %s", e.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.status_interval_s)

    async def _snapshot_loop(self, stop: asyncio.Event) -> None:
        from pmbot.monitor import snapshot_loop

        assert self.handle is not None
        assert self.supervisor is not None
        ex, sup = self.handle.executor, self.supervisor
        await snapshot_loop(self.app.store, lambda: [ex], sup.statuses, stop=stop,
                            interval_s=self.options.snapshot_interval_s, started_ms=self.started_ms,
                            streams=self.streams, clock=self.clock)  # fmt: skip

    def update_metrics(self) -> None:
        if self.exporter is None or self.handle is None or self.supervisor is None:
            return
        from pmbot.store.models import Query

        ex = self.handle.executor
        self.exporter.update(
            executors={self.mode: (ex.metrics, ex.risk.exposure())},
            stats=self.app.store.stats(Query(since=self.started_ms)),
            streams=self.streams(),
            strategies=self.supervisor.states(),
            now_ms=self._now_ms(),
        )

    async def _metrics_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                self.update_metrics()
            except StoreError as e:
                log.warning("run-all: metrics not updated: %s", e.message)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.options.metrics_interval_s)

    # -------------------------------------------------------------------------------- shutdown

    async def shutdown(self, background: list[asyncio.Task[Any]]) -> None:
        """In order: no new intent (every unit paused at once), the units stopped (what they sent is
        finished by the executor, which answers every intent it took), resting orders cancelled (config
        `run_all.on_shutdown = "cancel"`; "leave" keeps live ones: the paper book cannot outlive the
        process), resolutions settled, the final metrics snapshot and status stored. Every step has a
        deadline: the whole takes at most `shutdown_timeout_s` (the executor's own close follows)."""
        if self._stopping:
            return
        self._stopping = True
        self.state = "stopping"
        began = time.monotonic()
        sup = self.supervisor
        assert sup is not None
        assert self.handle is not None
        budget = self.options.shutdown_timeout_s
        sup.pause_all("shutting down")
        with contextlib.suppress(Exception):
            self.publish_status()
        left = lambda: max(0.5, budget - (time.monotonic() - began) - 1.0)  # noqa: E731
        # Intents made before the pause reach the executor before any unit is stopped: a unit cancelled
        # between its strategy's decision and the executor's write-ahead would lose them.
        settle_by = time.monotonic() + min(3.0, left())
        while self._sending() and time.monotonic() < settle_by:
            await asyncio.sleep(0.005)
        await sup.stop(timeout_s=min(4.0, left()))
        for t in background:
            t.cancel()
        for t in background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        ex = self.handle.executor
        if self.options.cancel_on_shutdown and not self.dry_run:
            # the sweep keeps its own deadline (and leaves what it could not settle `unknown`); this one
            # only guards against a sweep that overruns it
            sweep_s = min(4.0, left())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancel_resting(ex, sweep_s), sweep_s + 1.0)
        with contextlib.suppress(TimeoutError, VenueError, PmbotError):
            await asyncio.wait_for(ex.settle_resolved(self._venue), min(2.0, left()))
        self._final_records()
        self.shutdown_s = time.monotonic() - began
        self.state = "stopped"

    def _sending(self) -> bool:
        return any(getattr(r, "busy", False) for u in self.units for r in getattr(u, "runners", ()))

    async def _cancel_resting(self, ex: Executor, timeout_s: float) -> None:
        """Every resting order of this executor's wallet, cancelled within `timeout_s` (the executor's
        sweep: in-flight POSTs first, one DELETE for all, then the records; what it cannot settle in time
        is left `unknown` for the next start, never `live`)."""
        sweep = await ex.cancel_resting(why="run-all shut down", timeout_s=timeout_s)
        if sweep.cancelled:
            self.event("run-all", f"cancelled {len(sweep.cancelled)} resting orders")
        left = sweep.open
        if left or sweep.in_flight:
            log.warning("run-all: %d orders not settled at shutdown (%s), %d still being sent; the next start "
                        "reconciles them", len(left), ", ".join(sorted({s.value for s in left.values()})),
                        len(sweep.in_flight))  # fmt: skip

    def _final_records(self) -> None:
        from pmbot.monitor import snapshot_metrics

        assert self.handle is not None
        assert self.supervisor is not None
        for u in self.units:
            runner = getattr(u, "runner", None)
            if runner is not None:
                with contextlib.suppress(Exception):
                    runner.decisions.flush()
        try:
            snapshot_metrics(self.app.store, [self.handle.executor], self.supervisor.statuses(),
                             started_ms=self.started_ms, streams=self.streams(), kind="final",
                             clock=self.clock)  # fmt: skip
        except StoreError as e:
            log.warning("run-all: final metrics not stored: %s", e.message)
        with contextlib.suppress(Exception):
            self.update_metrics()
        if self.control is not None:
            with contextlib.suppress(StoreError):
                self.publish_status()
                self.control.close("stopped")

    def abort(self) -> None:
        """A second signal: leave now. Everything an order needs is already durable (the executor's
        write-ahead commits before a POST); what is flushed here is the reports (decisions, status)."""
        for u in self.units:
            runner = getattr(u, "runner", None)
            if runner is not None:
                with contextlib.suppress(Exception):
                    runner.decisions.flush()
        if self.control is not None:
            with contextlib.suppress(Exception):
                self.control.close("interrupted")
        with contextlib.suppress(Exception):
            self.app.close()
        os._exit(130)


def _as_stream(consumer: Any) -> MarketStream:
    # A HubConsumer has every part of MarketStream a consumer uses (iteration, books, subscribe, close).
    return cast("MarketStream", consumer)


@dataclass
class _PrepareContext:
    """What `prepare` sees: the venue and the clock, no executor yet (nothing may be written)."""

    app: App
    venue: Venue
    mode: str
    clock: Callable[[], float]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)


class _Stamped:
    """A user stream whose messages stamp the host's stream health."""

    def __init__(self, stream: Any, host: Host) -> None:
        self._stream = stream
        self._host = host

    def __aiter__(self) -> _Stamped:
        self._it = self._stream.__aiter__()
        return self

    async def __anext__(self) -> Any:
        item = await self._it.__anext__()
        self._host._user_last_ms = self._host._now_ms()
        return item
