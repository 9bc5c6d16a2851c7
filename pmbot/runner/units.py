"""The strategy units `pmbot run-all` supervises (the `Unit` protocol of pmbot.runner.supervisor).

- `SnipeUnit`: one sniper instance (`[[strategies]] kind = "snipe"`): a `Runner` over a `LiveFeed` whose
  market channel is a consumer of the host's `MarketHub`, on the host's shared executor.
- `CopyUnit`: one copy-trading instance (`kind = "copy"`), over the copy runtime's feed
  (pmbot.runner.copy_*), on the same executor and hub.

A unit is rebuilt from its config at every (re)start: a fresh strategy, whose intent keys are the same as
before the crash (deterministic), so the executor answers "duplicate" for anything already sent. The
strategy's own guard (`on_error` pauses a strategy whose code raised) is turned into a crash here
(`StrategyCrashedError`), so the supervisor restarts it on a clean state, with backoff, and stops it if it
keeps failing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pmbot.errors import InputError, PmbotError
from pmbot.runner.core import DecisionLog, Runner
from pmbot.strategies.base import DecisionKind, MetricsSnapshot, Output
from pmbot.strategies.events import BookChanged, TradePrinted

if TYPE_CHECKING:
    from pmbot.runner.host import HostContext
    from pmbot.strategies.base import Strategy
    from pmbot.strategies.events import Event

__all__ = ["CopyUnit", "SnipeUnit", "StrategyCrashedError", "SupervisedRunner", "UnitMetrics"]

log = logging.getLogger("pmbot.runner")
_ZERO = Decimal(0)


class StrategyCrashedError(PmbotError):
    """The strategy's code raised (its base class paused it): the supervisor restarts the unit."""


class SupervisedRunner(Runner):
    """A Runner that reports a heartbeat and turns a strategy error into a crash of its unit."""

    def __init__(self, *args: Any, beat: Callable[[], None], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._beat = beat
        self._errors_seen = 0
        # bench (`measure`): market event's arrival in the hub -> the strategy's decision, in ns
        self.decide_ns: list[int] = []
        self.handle_ns: list[int] = []  # the decision alone: view updated, strategy run
        self.measure = False
        self.arrival: Callable[[], float | None] = lambda: None
        self.crashed = ""  # set when the strategy's code raised (the unit restarts it)

    @property
    def busy(self) -> bool:
        """Inside an Output's sends: intents the strategy made that the executor may not hold yet."""
        return self._depth > 0

    async def deliver(self, event: Event) -> None:
        self._beat()
        if self.measure and self._depth == 0 and isinstance(event, BookChanged | TradePrinted):
            arrived = self.arrival()
            t0 = time.perf_counter()
            self.view.apply(event)
            self.stats.events += 1
            out = self.strategy.handle(event)
            t1 = time.perf_counter()
            self.handle_ns.append(int((t1 - t0) * 1e9))
            if arrived is not None:
                self.decide_ns.append(int((t1 - arrived) * 1e9))
            if out:
                await self._process(out)
        else:
            await super().deliver(event)
        errors = self.strategy.metrics.errors
        if errors > self._errors_seen and self._depth == 0:
            self._errors_seen = errors
            self.crashed = f"strategy {self.strategy.name}: {self.strategy.health().last_error}"
            raise StrategyCrashedError(self.crashed)


@dataclass
class UnitMetrics:
    """What one unit did since run-all started, across its restarts."""

    signals: int = 0
    skips: int = 0
    intents: int = 0
    fills: int = 0
    rejected: int = 0
    errors: int = 0
    fees: Decimal = _ZERO
    pnl: Decimal = _ZERO
    wins: int = 0
    losses: int = 0
    skip_reasons: dict[str, int] = field(default_factory=dict)

    def add(self, m: MetricsSnapshot) -> UnitMetrics:
        reasons = dict(self.skip_reasons)
        for k, v in m.skips.items():
            reasons[k] = reasons.get(k, 0) + v
        return UnitMetrics(
            signals=self.signals + m.signals,
            skips=self.skips + sum(m.skips.values()),
            intents=self.intents + m.intents,
            fills=self.fills + m.fills,
            rejected=self.rejected + m.rejected,
            errors=self.errors + m.errors,
            fees=self.fees + m.fees,
            pnl=self.pnl + m.realized_pnl,
            wins=self.wins + m.wins,
            losses=self.losses + m.losses,
            skip_reasons=reasons,
        )

    def view(self) -> dict[str, Any]:
        return {
            "signals": self.signals,
            "skips": self.skips,
            "intents": self.intents,
            "fills": self.fills,
            "rejected": self.rejected,
            "errors": self.errors,
            "fees": str(self.fees),
            "pnl": str(self.pnl),
            "wins": self.wins,
            "losses": self.losses,
        }


class _UnitBase:
    kind = "unit"

    def __init__(self, name: str) -> None:
        self.name = name
        self._paused: str | None = None
        self._beat_ms: int | None = None
        self._past = UnitMetrics()  # finished runs (before a restart)
        self.runners: list[SupervisedRunner] = []

    @property
    def runner(self) -> SupervisedRunner | None:
        return self.runners[0] if self.runners else None

    # the Unit protocol -----------------------------------------------------------------------

    @property
    def heartbeat_ms(self) -> int | None:
        return self._beat_ms

    def _beat(self) -> None:
        self._beat_ms = int(time.time() * 1000)  # health time (see Host._now_ms)

    def pause(self, reason: str) -> None:
        self._paused = reason
        for r in self.runners:
            r.strategy.pause(reason)

    def resume(self) -> None:
        self._paused = None
        for r in self.runners:
            r.strategy.resume()

    def metrics(self) -> dict[str, Any]:
        return self.totals().view()

    def totals(self) -> UnitMetrics:
        total = self._past
        for r in self.runners:
            total = total.add(r.strategy.metrics)
        return total

    # helpers ---------------------------------------------------------------------------------

    def _runner(
        self,
        ctx: HostContext,
        strategy: Strategy[Any],
        view: Any,
        decisions: DecisionLog | None = None,
        *,
        prearm: bool = False,
    ) -> SupervisedRunner:
        if self._paused is not None:
            strategy.pause(self._paused)
        log_ = decisions or DecisionLog(ctx.store, mode=ctx.mode, run_id=ctx.run_id)

        def on_output(out: Output) -> None:
            for d in out.decisions:
                if d.kind is not DecisionKind.SKIP:
                    ctx.event(self.name, f"{d.kind.value} {d.reason} {d.condition_id[:12]}")

        runner = SupervisedRunner(strategy, view, ctx.executor, log_, on_output=on_output, store=ctx.store,
                                  prearm=prearm, beat=self._beat)  # fmt: skip
        runner.measure = ctx.measure
        self.runners.append(runner)
        return runner

    def _finished(self) -> None:
        for r in self.runners:
            self._past = self._past.add(r.strategy.metrics)
        self.runners = []


class SnipeUnit(_UnitBase):
    """`config`: a validated SnipeConfig; `series` / `max_markets` / `horizon_s`: the --auto targets;
    `token_ids` / `slugs`: fixed markets (tests, the bench)."""

    kind = "snipe"

    def __init__(
        self,
        name: str,
        config: Any,
        *,
        series: tuple[str, ...] = (),
        max_markets: int = 4,
        horizon_s: int = 20 * 60,
        token_ids: tuple[str, ...] = (),
        slugs: tuple[str, ...] = (),
    ) -> None:
        super().__init__(name)
        self.config = config
        self.series = series
        self.max_markets = max_markets
        self.horizon_s = horizon_s
        self.token_ids = token_ids
        self.slugs = slugs
        self.feed: Any = None

    async def prepare(self, ctx: HostContext) -> None:
        """Before anything is written: the targets exist (InputError otherwise)."""
        await self._targets(ctx, check=True)

    async def _targets(self, ctx: HostContext, *, check: bool) -> Any:
        from pmbot.runner.live import Targets, discover, resolve_market

        targets = Targets(max_markets=self.max_markets, horizon_s=self.horizon_s)
        for t in self.token_ids:
            targets.markets.append(await resolve_market(ctx.venue, token_id=t))
        for s in self.slugs:
            targets.markets.append(await resolve_market(ctx.venue, slug=s))
        if self.series:
            due, unknown = await discover(ctx.venue, self.series, ctx.now_ms(), self.horizon_s * 1000, self.max_markets)
            if unknown and check:
                raise InputError(
                    f"strategy {self.name}: unknown series {', '.join(sorted(unknown))}: no open market on Gamma",
                    hint="series are market slug prefixes such as btc-updown-15m",
                )
            targets.series = list(self.series)
            targets.markets += due
        return targets

    async def run(self, ctx: HostContext, stop: asyncio.Event) -> None:
        from pmbot.runner.feed import Translator
        from pmbot.runner.live import LiveFeed
        from pmbot.strategies.memview import MemoryView
        from pmbot.strategies.snipe import SnipeStrategy

        targets = await self._targets(ctx, check=False)
        view = MemoryView(clock=ctx.now_ms)
        # pre-armed entries (signed and recorded before the window, fired on the tick), as `pmbot snipe`
        runner = self._runner(ctx, SnipeStrategy(view, self.config, name=self.name), view, prearm=True)
        # live=False: the user channel and the reconciler are the host's (one for every unit)
        self.feed = feed = LiveFeed(ctx.venue, runner, Translator(), ctx.executor, targets, clock=ctx.clock,
                                    tick_s=ctx.tick_s, rediscover_s=ctx.rediscover_s, live=False)  # fmt: skip
        runner.arrival = lambda: getattr(feed.market_stream, "current_arrival", None)
        try:
            await self.feed.run(stop=stop)
        finally:
            self._finished()


class CopyUnit(_UnitBase):
    """One copy-trading instance (`kind = "copy"`): the copy runtime's `CopyFeed` (pmbot.runner.copy_feed)
    over the host's venue (its market channel is a hub consumer) and executor, one CopyStrategy + Runner
    per target, restored from the store at every (re)start as `run_copy_session` does. The feed's own
    user channel and reconciler are off (`live=False`): the host runs one of each for every unit.

    The feed guards its sources (a source that fails is restarted inside the feed), so a strategy error
    does not surface as an exception: the unit watches its runners and crashes itself when one failed."""

    kind = "copy"

    def __init__(self, name: str, settings: Any, requests: list[Any], *, sources: Any = None) -> None:
        super().__init__(name)
        self.settings = settings
        self.requests = requests
        self.sources = sources
        self.resolved: list[Any] | None = None
        self.feed: Any = None

    async def prepare(self, ctx: Any) -> None:
        """Targets resolved (a username through Gamma) and their rules validated, before anything is written."""
        from pmbot.runner.copy_session import resolve_targets

        self.resolved = await resolve_targets(ctx.venue, self.requests, self.settings)

    def _open_chain(self, ctx: HostContext) -> Callable[[set[str]], Any] | None:
        """The feed's chain source: a consumer of the host's one log subscription (None: its own)."""
        hub = getattr(ctx, "chain_hub", None)
        if hub is None:
            return None
        return lambda wallets: hub.consumer(wallets, name=self.name)

    def _open_rtds(self, ctx: HostContext) -> Callable[[set[str], float], Any] | None:
        """The feed's RTDS source: a consumer of the host's one RTDS connection (None: its own)."""
        hub = getattr(ctx, "rtds_hub", None)
        if hub is None:
            return None
        from pmbot.polymarket.streams import RtdsSubscription

        def open_(wallets: set[str], silence: float) -> Any:
            return hub.consumer([RtdsSubscription.activity()], wallets=wallets, name=self.name,
                                stale_after=silence, stale_reconnect_after=silence * 2)  # fmt: skip

        return open_

    async def run(self, ctx: HostContext, stop: asyncio.Event) -> None:
        from pmbot.executor.lock import CopyTargetLock, user_lock_dir
        from pmbot.runner import copy_session as cs
        from pmbot.runner.copy_feed import ALL_SOURCES, CopyFeed, MarketCache
        from pmbot.strategies.events import TargetSource

        cfg = self.settings
        resolved = self.resolved
        if resolved is None:
            resolved = await cs.resolve_targets(ctx.venue, self.requests, cfg)
        markets = MarketCache(ctx.venue, clock=ctx.clock)
        try:
            await markets.preload()
        except PmbotError as e:
            log.warning("copy: market preload failed: %s", e.one_line())
        balance = await cs.copy_balance(ctx.venue, ctx.executor, ctx.app, ctx.mode != "live")
        target_lock = CopyTargetLock(
            user_lock_dir(), ctx.mode, [t.wallet for t in resolved], database_url=ctx.app.settings.database_url
        )
        try:
            target_lock.acquire()  # one copier per target and mode on this database (`pmbot copy` takes it too)
            built = await cs.build_copy_runners(
                ctx.venue, ctx.store, ctx.executor, resolved, mode=ctx.mode, run_id=ctx.run_id, clock=ctx.clock,
                balance=balance, markets=markets, make_runner=lambda strategy, view, dlog: self._runner(
                    ctx, strategy, view, dlog),
            )  # fmt: skip
            chosen = tuple(TargetSource(str(s).replace("onchain", "chain")) for s in (self.sources or cfg.sources))
            self.feed = CopyFeed(
                ctx.venue, built.runners, ctx.executor, resolved, clock=ctx.clock, sources=chosen or ALL_SOURCES,
                poll_s=float(cfg.poll_s), rtds_silence_s=float(cfg.rtds_silence_s), tick_s=ctx.tick_s, live=False,
                store=ctx.store, mode=ctx.mode, catch_up_from_ms=built.catch_up_from_ms, markets=markets,
                follow_tokens=built.follow_tokens, open_chain=self._open_chain(ctx), open_rtds=self._open_rtds(ctx),
            )  # fmt: skip
            feed = self.feed
            for r in self.runners:
                r.arrival = lambda: getattr(feed.market_stream, "current_arrival", None)
            inner = asyncio.Event()
            task = asyncio.create_task(self.feed.run(stop=inner), name=f"copy-feed-{self.name}")
            try:
                while not task.done():
                    crashed = next((r.crashed for r in self.runners if r.crashed), None)
                    if stop.is_set() or crashed:
                        inner.set()
                        await task
                        if crashed and not stop.is_set():
                            raise StrategyCrashedError(crashed)
                        break
                    await asyncio.wait([task], timeout=0.2)
                    self._beat()
                task.result()
            finally:
                inner.set()
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
        finally:
            target_lock.release()
            self._finished()


def new_run_id() -> str:
    return secrets.token_hex(6)
