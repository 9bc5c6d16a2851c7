"""Control of a running `pmbot run-all` from another terminal, through two rows of the store's `state`.

- `control:strategies`: which strategies the operator paused. It is a level, not a queue of messages:
  `pmbot pause snipe` sets it, `pmbot resume snipe` clears it, and every running process compares it
  with what it last saw (`ControlChannel.poll`, every <= 0.5 s). Nothing is missed if a process is
  busy or restarts, and a pause outlives the process that received it: a run-all started while a
  strategy is paused starts it paused (the operator said stop; only `pmbot resume` says go).
- `runtime:processes`: one entry per running process, written by `ControlChannel.publish_status`
  (about once a second): uptime, per-strategy state and heartbeat, the age of the last message per
  stream, kill switches, open orders. `pmbot status` reads it; an entry whose heartbeat is older than
  `STALE_AFTER_S` is shown as stale (the process died without saying goodbye).

Both rows are merged with `Store.update_state` (read-modify-write under the write lock), so several
terminals and processes never lose each other's changes. A read costs ~50 µs; a write one fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pmbot.errors import InputError
from pmbot.store.base import Store
from pmbot.timeutil import Clock

CONTROL_STATE = "control:strategies"
PROCESSES_STATE = "runtime:processes"
POLL_INTERVAL_S = 0.25  # pause/resume must take effect within 1 s: poll well inside it
STALE_AFTER_S = 5.0  # a heartbeat older than this: the process is presumed dead
FORGET_AFTER_S = 24 * 3600.0  # stale entries older than this are dropped by the next publisher
ALL = "*"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_strategy_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(
            f"not a strategy name: {name!r}", hint="letters, digits, _ . : - (at most 64); `pmbot status` lists them"
        )
    return name


# --------------------------------------------------------------------------------- pause state


@dataclass(frozen=True, slots=True)
class PauseState:
    """What the operator asked: all paused (except those resumed since) and/or some by name."""

    all_paused: bool = False
    paused: frozenset[str] = frozenset()
    resumed: frozenset[str] = frozenset()  # resumed by name while all were paused
    seq: int = 0  # bumped by every change: a poll that sees the same seq has nothing to do

    def is_paused(self, name: str) -> bool:
        return name in self.paused or (self.all_paused and name not in self.resumed)

    @classmethod
    def load(cls, doc: Mapping[str, Any] | None) -> PauseState:
        if not doc:
            return cls()
        return cls(
            all_paused=bool(doc.get("all_paused")),
            paused=frozenset(doc.get("paused") or ()),
            resumed=frozenset(doc.get("resumed") or ()),
            seq=int(doc.get("seq") or 0),
        )

    def dump(self, now_ms: int) -> dict[str, Any]:
        return {
            "all_paused": self.all_paused,
            "paused": sorted(self.paused),
            "resumed": sorted(self.resumed),
            "seq": self.seq,
            "changed_ms": now_ms,
        }


def _paused(state: PauseState, name: str) -> PauseState:
    if name == ALL:
        return PauseState(all_paused=True, seq=state.seq + 1)
    return PauseState(state.all_paused, state.paused | {name}, state.resumed - {name}, state.seq + 1)


def _resumed(state: PauseState, name: str) -> PauseState:
    if name == ALL:
        return PauseState(seq=state.seq + 1)
    resumed = state.resumed | {name} if state.all_paused else state.resumed
    return PauseState(state.all_paused, state.paused - {name}, resumed, state.seq + 1)


def pause_state(store: Store) -> PauseState:
    return PauseState.load(store.get_state(CONTROL_STATE))


def _change(store: Store, clock: Clock, step: Callable[[PauseState, str], PauseState], name: str) -> PauseState:
    if name != ALL:
        check_strategy_name(name)
    out: list[PauseState] = []

    def merge(current: dict[str, Any] | None) -> dict[str, Any]:
        new = step(PauseState.load(current), name)
        out.append(new)
        return new.dump(int(clock() * 1000))

    store.update_state(CONTROL_STATE, merge)
    return out[-1]


def request_pause(store: Store, name: str = ALL, *, clock: Clock = time.time) -> PauseState:
    """Pause strategy `name` (ALL: every strategy) in every running process and in the next one started."""
    return _change(store, clock, _paused, name)


def request_resume(store: Store, name: str = ALL, *, clock: Clock = time.time) -> PauseState:
    """Undo `request_pause` for `name` (ALL: every strategy, whichever way it was paused)."""
    return _change(store, clock, _resumed, name)


# ------------------------------------------------------------------------------------- status


@dataclass(frozen=True, slots=True)
class Command:
    """What a running process must do to one strategy: "pause" or "resume"."""

    action: str
    strategy: str


@dataclass(slots=True)
class StrategyStatus:
    """One strategy as its process reports it."""

    state: str  # starting | running | paused | restarting | crashed | stopped
    heartbeat_ms: int | None = None  # the strategy's last sign of life (an event handled, a loop turn)
    detail: str = ""  # e.g. the last crash, "3 crashes in 10 min: stopped"
    restarts: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "heartbeat_ms": self.heartbeat_ms,
            "detail": self.detail,
            "restarts": self.restarts,
        }


def default_process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ControlChannel:
    """The running process's end. `poll()` every <= 0.5 s (or `watch`), `publish_status` about every
    second, `close()` on the way out."""

    store: Store
    strategies: Iterable[str] = ()
    mode: str = "dry-run"
    process_id: str = field(default_factory=default_process_id)
    clock: Clock = time.time
    command: str = "run-all"

    def __post_init__(self) -> None:
        self.strategies = list(self.strategies)
        self._seq: int | None = None
        self._applied: dict[str, bool] = {}  # name -> paused, as last told to the process
        self.started_ms = int(self.clock() * 1000)

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------------------- commands

    def request_pause(self, name: str = ALL) -> PauseState:
        return request_pause(self.store, name, clock=self.clock)

    def request_resume(self, name: str = ALL) -> PauseState:
        return request_resume(self.store, name, clock=self.clock)

    def set_strategies(self, names: Iterable[str]) -> None:
        """The strategies this process runs (a new one is told its state at the next poll)."""
        self.strategies = list(names)
        self._seq = None

    def poll(self) -> list[Command]:
        """What changed since the last poll, per strategy of this process. The first poll reports the
        strategies that are paused already (a pause outlives the process that received it)."""
        state = pause_state(self.store)
        if state.seq == self._seq:
            return []
        self._seq = state.seq
        out: list[Command] = []
        for name in self.strategies:
            want = state.is_paused(name)
            if self._applied.get(name, False) != want:
                out.append(Command("pause" if want else "resume", name))
            self._applied[name] = want
        return out

    def is_paused(self, name: str) -> bool:
        return self._applied.get(name, False)

    async def watch(
        self,
        apply: Callable[[list[Command]], Awaitable[None] | None],
        *,
        interval: float = POLL_INTERVAL_S,
        stop: asyncio.Event | None = None,
    ) -> None:
        """Poll until `stop` is set (or the task is cancelled), handing each batch of commands to `apply`.
        A store error is retried at the next turn: a busy database must not stop the control loop."""
        from pmbot.errors import StoreError

        while stop is None or not stop.is_set():
            try:
                commands = self.poll()
            except StoreError:
                commands = []
            if commands:
                result = apply(commands)
                if result is not None:
                    await result
            if stop is None:
                await asyncio.sleep(interval)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    # --------------------------------------------------------------------------------- status

    def publish_status(
        self,
        strategies: Mapping[str, StrategyStatus],
        *,
        streams: Mapping[str, int | None] | None = None,
        kill_switch: Mapping[str, Any] | None = None,
        open_orders: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Write this process's heartbeat entry. `streams`: name -> epoch ms of its last message (None:
        nothing yet); `kill_switch`: {"tripped": bool, "reason": str}. Returns the entry written."""
        now = self._now_ms()
        entry = {
            "process": self.process_id,
            "command": self.command,
            "pid": os.getpid(),
            "mode": self.mode,
            "started_ms": self.started_ms,
            "heartbeat_ms": now,
            "state": "running",
            "strategies": {name: s.dump() for name, s in strategies.items()},
            "streams": {name: {"last_message_ms": ms} for name, ms in (streams or {}).items()},
            "kill_switch": dict(kill_switch) if kill_switch is not None else None,
            "open_orders": open_orders,
            **(dict(extra) if extra else {}),
        }
        self._write(entry)
        return entry

    def close(self, state: str = "stopped") -> None:
        """The process is leaving: its entry says so (and when), instead of going stale."""
        now = self._now_ms()

        def merge(current: dict[str, Any] | None) -> dict[str, Any]:
            procs = dict((current or {}).get("processes") or {})
            entry = dict(procs.get(self.process_id) or {"process": self.process_id, "started_ms": self.started_ms})
            entry.update(state=state, heartbeat_ms=now, stopped_ms=now)
            procs[self.process_id] = entry
            return {"processes": _forget_old(procs, now)}

        self.store.update_state(PROCESSES_STATE, merge)

    def _write(self, entry: dict[str, Any]) -> None:
        now = entry["heartbeat_ms"]

        def merge(current: dict[str, Any] | None) -> dict[str, Any]:
            procs = dict((current or {}).get("processes") or {})
            procs[self.process_id] = entry
            return {"processes": _forget_old(procs, now)}

        self.store.update_state(PROCESSES_STATE, merge)


def _forget_old(procs: dict[str, Any], now_ms: int) -> dict[str, Any]:
    horizon = now_ms - int(FORGET_AFTER_S * 1000)
    return {k: v for k, v in procs.items() if int(v.get("heartbeat_ms") or 0) >= horizon}


def processes(store: Store, *, now_ms: int, stale_after_s: float = STALE_AFTER_S) -> list[dict[str, Any]]:
    """The processes that reported in, newest first, each with `alive` (heartbeat fresh and not
    stopped), `uptime_s`, `heartbeat_age_s` and per-stream `age_s`, for `pmbot status`."""
    doc = store.get_state(PROCESSES_STATE) or {}
    out = []
    for entry in (doc.get("processes") or {}).values():
        e = dict(entry)
        beat = int(e.get("heartbeat_ms") or 0)
        age = max(0.0, (now_ms - beat) / 1000)
        running = e.get("state") == "running"
        e["alive"] = running and age <= stale_after_s
        if running and not e["alive"]:
            e["state"] = "stale"
        e["heartbeat_age_s"] = round(age, 1)
        started = int(e.get("started_ms") or beat)
        e["uptime_s"] = round(max(0, (beat if not e["alive"] else now_ms) - started) / 1000, 1)
        for s in (e.get("strategies") or {}).values():
            hb = s.get("heartbeat_ms")
            s["heartbeat_age_s"] = None if hb is None else round(max(0, now_ms - hb) / 1000, 1)
        for s in (e.get("streams") or {}).values():
            last = s.get("last_message_ms")
            s["age_s"] = None if last is None else round(max(0, now_ms - last) / 1000, 1)
        out.append(e)
    out.sort(key=lambda e: (not e["alive"], -int(e.get("heartbeat_ms") or 0)))
    return out


def running_strategies(store: Store, *, now_ms: int) -> set[str]:
    """Names of the strategies of every live process (to check `pmbot pause NAME`)."""
    return {name for p in processes(store, now_ms=now_ms) if p["alive"] for name in p.get("strategies") or {}}
