"""One strategy run against the venue (live, dry-run, or `pmbot sim` through the PMBOT_* URLs): targets
resolved first (bad input fails before anything is written), then the executor, the runner and the feed.

Strategy-agnostic: `make_strategy(view)` builds the strategy the command chose."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pmbot.errors import InputError
from pmbot.runner.core import DecisionLog, Runner
from pmbot.runner.feed import Translator
from pmbot.runner.live import LiveFeed, LocalFirstBooks, Targets, discover, resolve_market
from pmbot.runner.venue_clock import VenueClock
from pmbot.store.models import mode_name
from pmbot.strategies.base import Output, Strategy
from pmbot.strategies.memview import MemoryView

if TYPE_CHECKING:
    from pmbot.app import App
    from pmbot.executor.factory import ExecutorHandle
    from pmbot.polymarket.factory import Venue

__all__ = ["Session", "TargetSpec", "open_executor", "run_session"]


@dataclass(frozen=True)
class TargetSpec:
    token_id: str | None = None
    slug: str | None = None
    series: tuple[str, ...] = ()
    max_markets: int = 4
    horizon_s: int = 20 * 60


@dataclass
class Session:
    """What a running (then finished) session exposes to the command's view."""

    run_id: str
    mode: str
    clock: Callable[[], float] | None = None  # the venue's clock (epoch seconds) the run follows
    runner: Runner | None = None
    feed: LiveFeed | None = None
    extra: dict[str, Any] = field(default_factory=dict)


async def run_session(
    app: App,
    make_strategy: Callable[[MemoryView], Strategy[Any]],
    spec: TargetSpec,
    *,
    dry_run: bool,
    duration_s: float | None,
    stop: asyncio.Event,
    on_output: Callable[[Output], None] | None = None,
    on_ready: Callable[[Session], None] | None = None,
    tick_s: float = 0.25,
    rediscover_s: float = 30.0,
    clock: Callable[[], float] | None = None,
    prearm: bool = True,
) -> Session:
    """Run `make_strategy(view)` against the venue until `stop`, `duration_s` (wall seconds) or a stream
    failure. Every part of the run (discovery, the view, the executor, the feed) reads `clock`: by default
    a `VenueClock` on the venue's `GET /time` (the wall clock against Polymarket, the sim's accelerated
    clock against `pmbot sim serve --speed N`), sampled for as long as the run lasts. With `prearm` the
    orders the strategy anticipates are signed and recorded ahead and fired on the tick (Runner)."""
    mode = mode_name(dry_run)
    session = Session(run_id=secrets.token_hex(6), mode=mode)
    async with app.venue() as venue, contextlib.AsyncExitStack() as stack:
        if clock is None:
            venue_clock = VenueClock(venue.clob.server_time, wall=app.clock)
            sampler = await venue_clock.start()  # before discovery: "ending soon" is the venue's soon
            stack.push_async_callback(_cancel, sampler)
            clock = venue_clock
        session.clock = clock
        await _run(
            app,
            make_strategy,
            spec,
            session,
            venue,
            clock,
            stop=stop,
            dry_run=dry_run,
            duration_s=duration_s,
            on_output=on_output,
            on_ready=on_ready,
            tick_s=tick_s,
            rediscover_s=rediscover_s,
            prearm=prearm,
        )
    return session


async def open_executor(
    app: App, venue: Venue, *, dry_run: bool, clock: Callable[[], float], translator: Translator
) -> ExecutorHandle:
    """The executor of a single-strategy command (`pmbot snipe`, `pmbot copy`), started: the wallet lock
    in the user's lock directory, the command's clock, and in dry-run a paper exchange that reads the
    feed's own books first (`translator`, REST when it has none). The caller closes the handle."""
    from pmbot.executor.books import VenueBooks
    from pmbot.executor.factory import build_executor
    from pmbot.executor.lock import user_lock_dir

    handle = await build_executor(
        app.settings,
        app.store,
        venue,
        dry_run=dry_run,
        lock_dir=user_lock_dir(),
        clock=clock,
        books=LocalFirstBooks(translator, VenueBooks(venue.clob)) if dry_run else None,
    )
    try:
        await handle.executor.start()
    except BaseException:
        await handle.close()
        raise
    return handle


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _run(
    app: App,
    make_strategy: Callable[[MemoryView], Strategy[Any]],
    spec: TargetSpec,
    session: Session,
    venue: Venue,
    clock: Callable[[], float],
    *,
    stop: asyncio.Event,
    dry_run: bool,
    duration_s: float | None,
    on_output: Callable[[Output], None] | None,
    on_ready: Callable[[Session], None] | None,
    tick_s: float,
    rediscover_s: float,
    prearm: bool,
) -> None:
    targets = Targets(max_markets=spec.max_markets, horizon_s=spec.horizon_s)
    if spec.token_id is not None or spec.slug is not None:
        targets.markets.append(await resolve_market(venue, token_id=spec.token_id, slug=spec.slug))
    if spec.series:
        now_ms = int(clock() * 1000)
        due, unknown = await discover(venue, spec.series, now_ms, spec.horizon_s * 1000, spec.max_markets)
        if unknown:
            raise InputError(
                f"unknown series {', '.join(sorted(unknown))}: no open market on Gamma",
                hint="series are market slug prefixes such as btc-updown-15m",
            )
        targets.series = list(spec.series)
        targets.markets += due
    translator = Translator()
    handle = await open_executor(app, venue, dry_run=dry_run, clock=clock, translator=translator)
    try:
        executor = handle.executor
        view = MemoryView(clock=lambda: int(clock() * 1000))
        strategy = make_strategy(view)
        decisions = DecisionLog(app.store, mode=session.mode, run_id=session.run_id)
        runner = Runner(strategy, view, executor, decisions, on_output=on_output, store=app.store, prearm=prearm)
        feed = LiveFeed(
            venue,
            runner,
            translator,
            executor,
            targets,
            clock=clock,
            tick_s=tick_s,
            rediscover_s=rediscover_s,
            live=not dry_run,
        )
        session.runner, session.feed = runner, feed
        if on_ready is not None:
            on_ready(session)
        await feed.run(duration_s=duration_s, stop=stop)
    finally:
        await handle.close()
