"""Supervision of the strategy units of `pmbot run-all`: each unit runs in its own task, a unit that raises
is restarted with backoff, and one that crashed `max_crashes` times within `window_s` is stopped, all
without touching the others. Pause / resume (the control channel) reach the unit at once.

A unit is anything with the `Unit` protocol: `kind`, `name`, `async run(ctx, stop)` (runs until `stop`
is set; returning on its own means it is done), `pause(reason)` / `resume()` (synchronous: a paused unit
sends no new intent from the moment `pause` returns), `heartbeat_ms` (its last sign of life) and
`metrics()` (what the dashboard shows). `SnipeUnit` and `CopyUnit` (pmbot.runner.units) are the two kinds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pmbot.control import Command, StrategyStatus
from pmbot.logs import strategy_context

__all__ = ["Supervisor", "SupervisorPolicy", "Unit", "UnitState"]

log = logging.getLogger("pmbot.runner")


@runtime_checkable
class Unit(Protocol):
    kind: str
    name: str

    async def run(self, ctx: Any, stop: asyncio.Event) -> None: ...

    def pause(self, reason: str) -> None: ...

    def resume(self) -> None: ...

    @property
    def heartbeat_ms(self) -> int | None: ...

    def metrics(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class SupervisorPolicy:
    max_crashes: int = 3  # this many crashes ...
    window_s: float = 600.0  # ... within this long: the unit is stopped
    backoff_s: float = 1.0  # first restart delay, doubled per crash in the window
    backoff_max_s: float = 30.0


@dataclass
class UnitState:
    unit: Unit
    state: str = "starting"  # starting | running | paused | restarting | crashed | stopped
    paused: bool = False
    restarts: int = 0
    crashes: deque[float] = field(default_factory=deque)  # monotonic times of recent crashes
    last_error: str = ""
    detail: str = ""
    task: asyncio.Task[None] | None = None
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    beat_ms: int | None = None

    def status(self) -> StrategyStatus:
        beat = self.unit.heartbeat_ms
        if beat is None or (self.beat_ms is not None and self.beat_ms > beat):
            beat = self.beat_ms
        return StrategyStatus(state=self.state, heartbeat_ms=beat, detail=self.detail, restarts=self.restarts)


class Supervisor:
    def __init__(
        self,
        units: Iterable[Unit],
        ctx: Any,
        *,
        policy: SupervisorPolicy | None = None,
        now_ms: Callable[[], int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.policy = policy or SupervisorPolicy()
        self.units: dict[str, UnitState] = {}
        for u in units:
            if u.name in self.units:
                raise ValueError(f"two strategy units named {u.name!r}")
            self.units[u.name] = UnitState(u)
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._mono = monotonic
        self._on_event = on_event or (lambda name, text: None)

    # ---------------------------------------------------------------------------------- running

    def start(self) -> None:
        for st in self.units.values():
            if st.task is None:
                st.task = asyncio.get_running_loop().create_task(self._supervise(st), name=f"unit-{st.unit.name}")

    async def _supervise(self, st: UnitState) -> None:
        unit = st.unit
        with strategy_context(unit.name):  # its log lines (and the executor's about its orders) go to its file
            while not st.stop.is_set():
                st.state = "paused" if st.paused else "running"
                st.beat_ms = self._now_ms()
                try:
                    if st.paused:
                        unit.pause("paused by the operator")
                    await unit.run(self.ctx, st.stop)
                except asyncio.CancelledError:
                    raise
                except Exception as e:
                    if st.stop.is_set():
                        break  # failed while stopping: not a crash to restart from
                    delay = self._crashed(st, e)
                    if delay is None:
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(st.stop.wait(), delay)
                    if not st.stop.is_set():
                        st.restarts += 1
                        self._on_event(unit.name, f"restarted (restart {st.restarts})")
                    continue
                break  # returned: stopped, or done on its own
            if st.state != "crashed":
                st.state = "stopped"

    def _crashed(self, st: UnitState, e: Exception) -> float | None:
        """Record a crash; the restart delay, or None when the unit is stopped for good."""
        now = self._mono()
        p = self.policy
        st.crashes.append(now)
        while st.crashes and st.crashes[0] < now - p.window_s:
            st.crashes.popleft()
        st.last_error = f"{type(e).__name__}: {e}"
        n = len(st.crashes)
        if n >= p.max_crashes:
            st.state = "crashed"
            st.detail = f"{n} crashes in {p.window_s / 60:g} min: stopped (last: {st.last_error})"[:300]
            log.error("strategy %s: %s", st.unit.name, st.detail)
            self._on_event(st.unit.name, st.detail)
            return None
        delay = min(p.backoff_max_s, p.backoff_s * 2 ** (n - 1))
        st.state = "restarting"
        st.detail = f"crash {n}: {st.last_error}; restart in {delay:g}s"[:300]
        log.warning("strategy %s crashed (%s); restarting in %gs", st.unit.name, st.last_error, delay)
        self._on_event(st.unit.name, f"crashed: {st.last_error}")
        return delay

    # ---------------------------------------------------------------------------------- control

    def apply(self, commands: list[Command]) -> None:
        """Pause / resume from the control channel: synchronous, so it holds from the next event on."""
        for c in commands:
            st = self.units.get(c.strategy)
            if st is None:
                continue
            if c.action == "pause":
                st.paused = True
                st.unit.pause("paused by the operator")
                if st.state == "running":
                    st.state = "paused"
                self._on_event(c.strategy, "paused by the operator")
            elif c.action == "resume":
                st.paused = False
                st.unit.resume()
                if st.state == "paused":
                    st.state = "running"
                self._on_event(c.strategy, "resumed")

    def pause_all(self, reason: str) -> None:
        """Shutdown: no unit emits another intent (their signals become `paused` skips)."""
        for st in self.units.values():
            with contextlib.suppress(Exception):
                st.unit.pause(reason)

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Ask every unit to stop and wait for them (cancelled after `timeout_s`)."""
        for st in self.units.values():
            st.stop.set()
        tasks = [st.task for st in self.units.values() if st.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for t in pending:
            t.cancel()
        for t in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for st in self.units.values():
            if st.state not in ("crashed",):
                st.state = "stopped"

    # ---------------------------------------------------------------------------------- views

    def statuses(self) -> dict[str, StrategyStatus]:
        return {name: st.status() for name, st in self.units.items()}

    def states(self) -> dict[str, str]:
        return {name: st.state for name, st in self.units.items()}

    @property
    def all_done(self) -> bool:
        return all(st.task is not None and st.task.done() for st in self.units.values())
