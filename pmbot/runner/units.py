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
        self.decide_ns: list[int] = []  # event -> decision latency samples (bench), when enabled
        self.measure = False

    async def deliver(self, event: Event) -> None:
        self._beat()
        if self.measure and self._depth == 0:
            t0 = time.perf_counter_ns()
            self.view.apply(event)
            self.stats.events += 1
            out = self.strategy.handle(event)
            self.decide_ns.append(time.perf_counter_ns() - t0)
            if out:
                await self._process(out)
        else:
            await super().deliver(event)
        errors = self.strategy.metrics.errors
        if errors > self._errors_seen and self._depth == 0:
            self._errors_seen = errors
            raise StrategyCrashedError(f"strategy {self.strategy.name}: {self.strategy.health().last_error}")


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
        self.runner: SupervisedRunner | None = None

    # the Unit protocol -----------------------------------------------------------------------

    @property
    def heartbeat_ms(self) -> int | None:
        return self._beat_ms

    def _beat(self) -> None:
        self._beat_ms = int(time.time() * 1000)  # health time (see Host._now_ms)

    def pause(self, reason: str) -> None:
        self._paused = reason
        if self.runner is not None:
            self.runner.strategy.pause(reason)

    def resume(self) -> None:
        self._paused = None
        if self.runner is not None:
            self.runner.strategy.resume()

    def metrics(self) -> dict[str, Any]:
        total = self._past
        if self.runner is not None:
            total = total.add(self.runner.strategy.metrics)
        return total.view()

    def totals(self) -> UnitMetrics:
        return self._past if self.runner is None else self._past.add(self.runner.strategy.metrics)

    # helpers ---------------------------------------------------------------------------------

    def _runner(self, ctx: HostContext, strategy: Strategy[Any], view: Any) -> SupervisedRunner:
        if self._paused is not None:
            strategy.pause(self._paused)
        decisions = DecisionLog(ctx.store, mode=ctx.mode, run_id=ctx.run_id)

        def on_output(out: Output) -> None:
            for d in out.decisions:
                if d.kind is not DecisionKind.SKIP:
                    ctx.event(self.name, f"{d.kind.value} {d.reason} {d.condition_id[:12]}")

        runner = SupervisedRunner(strategy, view, ctx.executor, decisions, on_output=on_output, store=ctx.store,
                                  beat=self._beat)  # fmt: skip
        runner.measure = ctx.measure
        self.runner = runner
        return runner

    def _finished(self) -> None:
        if self.runner is not None:
            self._past = self._past.add(self.runner.strategy.metrics)
            self.runner = None


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
        runner = self._runner(ctx, SnipeStrategy(view, self.config, name=self.name), view)
        # live=False: the user channel and the reconciler are the host's (one for every unit)
        self.feed = LiveFeed(ctx.venue, runner, Translator(), ctx.executor, targets, clock=ctx.clock,
                             tick_s=ctx.tick_s, rediscover_s=ctx.rediscover_s, live=False)  # fmt: skip
        try:
            await self.feed.run(stop=stop)
        finally:
            self._finished()


class CopyUnit(_UnitBase):
    """One copy-trading instance over the copy runtime's feed: `make_feed(venue, runner, executor,
    targets, clock)` with `async run(duration_s, stop)`; `make_strategy(view)` and `targets` come from
    the copy runtime's config (see pmbot.commands.run_all_cmd)."""

    kind = "copy"

    def __init__(
        self,
        name: str,
        *,
        make_strategy: Callable[[Any], Strategy[Any]],
        make_view: Callable[[HostContext], Any],
        make_feed: Callable[..., Any],
        targets: Any,
    ) -> None:
        super().__init__(name)
        self.make_strategy = make_strategy
        self.make_view = make_view
        self.make_feed = make_feed
        self.targets = targets
        self.feed: Any = None

    async def prepare(self, ctx: HostContext) -> None:
        return None

    async def run(self, ctx: HostContext, stop: asyncio.Event) -> None:
        view = self.make_view(ctx)
        runner = self._runner(ctx, self.make_strategy(view), view)
        self.feed = self.make_feed(ctx.venue, runner, ctx.executor, self.targets, ctx.clock)
        try:
            await self.feed.run(duration_s=None, stop=stop)
        finally:
            self._finished()


def new_run_id() -> str:
    return secrets.token_hex(6)
