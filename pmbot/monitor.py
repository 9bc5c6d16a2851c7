"""Periodic metrics snapshots into `execution_logs` (the seed's "monitors performance every 5 minutes").

`pmbot run-all` calls `snapshot_metrics` every `DEFAULT_INTERVAL_S` (or runs `snapshot_loop`) and once
more with kind="final" on the way out; `pmbot stats --history` reads them back (`history`). A snapshot
is one execution_logs row, event "metrics_snapshot", whose metadata holds per executor (mode) its
counters, ack latency percentiles, exposure and kill switch, per strategy its state, and per strategy
and mode the trades and PnL since the process started. Amounts are exact text ("12.50"), never floats.
The executor's own stop record (event "metrics", written by Executor.close) shows in the history too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pmbot.errors import StoreError
from pmbot.store.models import ExecutionLog, Query, mode_name
from pmbot.timeutil import Clock

if TYPE_CHECKING:
    from pmbot.control import StrategyStatus
    from pmbot.executor.metrics import ExecutorMetrics
    from pmbot.executor.risk import Exposure
    from pmbot.store.base import Store

log = logging.getLogger(__name__)

SNAPSHOT_EVENT = "metrics_snapshot"
EXECUTOR_STOP_EVENT = "metrics"  # Executor.close()'s record
DEFAULT_INTERVAL_S = 300.0


class _Risk(Protocol):
    def exposure(self) -> Exposure: ...


class MonitoredExecutor(Protocol):
    """What a snapshot reads of an executor (pmbot.executor.engine.Executor has all three)."""

    @property
    def mode(self) -> str: ...

    @property
    def metrics(self) -> ExecutorMetrics: ...

    @property
    def risk(self) -> _Risk: ...


def _executor_view(ex: MonitoredExecutor) -> dict[str, Any]:
    view = ex.metrics.snapshot()
    e = ex.risk.exposure()
    view["exposure"] = {
        "positions": str(e.positions),
        "open_buys": str(e.open_buys),
        "total": str(e.total),
        "realized_today": str(e.realized_today),
        "open_orders": e.open_orders,
    }
    view["kill_switch"] = {"tripped": e.kill_switch.tripped, "reason": e.kill_switch.reason}
    return view


def _strategy_view(s: StrategyStatus | str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(s, str):
        return {"state": s}
    if isinstance(s, Mapping):
        return dict(s)
    return s.dump()


def snapshot_metrics(
    store: Store,
    executors: MonitoredExecutor | Iterable[MonitoredExecutor],
    strategies: Mapping[str, StrategyStatus | str | Mapping[str, Any]],
    *,
    started_ms: int | None = None,
    streams: Mapping[str, int | None] | None = None,
    kind: str = "periodic",
    clock: Clock = time.time,
) -> int:
    """Store one metrics snapshot; returns its execution_logs id. `strategies`: name -> its status (a
    StrategyStatus, a state name or a dict); `started_ms`: the process start (trades and PnL are
    counted from there; None: all time); `streams`: name -> epoch ms of its last message."""
    now = int(clock() * 1000)
    exs = list(executors) if isinstance(executors, Iterable) else [executors]
    per_mode = {ex.mode: _executor_view(ex) for ex in exs}
    pnl: list[dict[str, Any]] = [
        {
            "strategy": s.strategy,
            "mode": mode_name(s.dry_run),
            "trades": s.trades,
            "volume": str(s.volume),
            "realized": str(s.realized_pnl),
            "unrealized": str(s.unrealized_pnl),
        }
        for s in store.stats(Query(since=started_ms))
    ]
    meta: dict[str, Any] = {
        "kind": kind,
        "started_ms": started_ms,
        "uptime_s": None if started_ms is None else round((now - started_ms) / 1000, 1),
        "executors": per_mode,
        "strategies": {name: _strategy_view(s) for name, s in strategies.items()},
        "pnl": pnl,
        "streams": {k: {"last_message_ms": v} for k, v in (streams or {}).items()},
    }
    intents = sum(v["intents"] for v in per_mode.values())
    fills = sum(p["trades"] for p in pnl)
    message = f"{kind} metrics: {intents} intents, {fills} fills, {len(strategies)} strategies"
    return store.log_execution(ExecutionLog(event=SNAPSHOT_EVENT, message=message, ts=now, metadata=meta))


async def snapshot_loop(
    store: Store,
    executors: Callable[[], Iterable[MonitoredExecutor]],
    strategies: Callable[[], Mapping[str, StrategyStatus | str | Mapping[str, Any]]],
    *,
    stop: asyncio.Event,
    interval_s: float = DEFAULT_INTERVAL_S,
    started_ms: int | None = None,
    streams: Callable[[], Mapping[str, int | None]] | None = None,
    clock: Clock = time.time,
) -> None:
    """A snapshot every `interval_s` until `stop` is set. A store error is a warning, never the end of
    the loop (nor of the process). The final snapshot is the caller's (kind="final", after the stop)."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        if stop.is_set():
            return
        try:
            snapshot_metrics(
                store,
                list(executors()),
                strategies(),
                started_ms=started_ms,
                streams=streams() if streams else None,
                clock=clock,
            )
        except StoreError as e:
            log.warning("could not store a metrics snapshot: %s", e.message)


# --------------------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One mode of one snapshot, flattened for `pmbot stats --history`."""

    ts: int
    kind: str  # periodic | final | stop (an executor's own stop record)
    mode: str
    intents: int
    sent: int
    accepted: int
    statuses: dict[str, int]
    rejects: dict[str, int]
    ack_p50_ms: float | None
    ack_p99_ms: float | None
    exposure: str | None
    realized_today: str | None
    kill_switch: bool | None
    strategies: dict[str, str]
    trades: int | None  # since the process started (snapshots only)
    realized: str | None

    def view(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in self.__slots__}


def history(store: Store, query: Query | None = None) -> list[HistoryRow]:
    """Snapshots and executor stop records, newest first, one row per mode (`query`: since, limit)."""
    q = query or Query()
    entries = store.list_execution_logs(q, event=SNAPSHOT_EVENT) + store.list_execution_logs(
        Query(since=q.since, limit=q.limit), event=EXECUTOR_STOP_EVENT
    )
    entries.sort(key=lambda e: (e.ts, e.id or 0), reverse=True)
    rows: list[HistoryRow] = []
    for e in entries:
        meta = e.metadata or {}
        if e.event == SNAPSHOT_EVENT:
            states = {n: str(s.get("state", "?")) for n, s in (meta.get("strategies") or {}).items()}
            modes = meta.get("executors") or {}
            pnl = meta.get("pnl") or []
            for mode, ex in sorted(modes.items()) or [("", {})]:
                mine = [p for p in pnl if p.get("mode") == mode]
                rows.append(_row(e.ts, str(meta.get("kind", "periodic")), mode, ex, states, mine))
        else:
            mode = e.message.split(" ", 1)[0] if e.message else ""
            rows.append(_row(e.ts, "stop", mode, meta, {}, None))
    return rows[: q.limit] if q.limit else rows


def _row(
    ts: int, kind: str, mode: str, ex: Mapping[str, Any], states: dict[str, str], pnl: list[dict[str, Any]] | None
) -> HistoryRow:
    from decimal import Decimal

    ack = ex.get("ack_ms") or {}
    exposure = ex.get("exposure") or {}
    ks = ex.get("kill_switch")
    return HistoryRow(
        ts=ts,
        kind=kind,
        mode=mode,
        intents=int(ex.get("intents") or 0),
        sent=int(ex.get("sent") or 0),
        accepted=int(ex.get("accepted") or 0),
        statuses=dict(ex.get("statuses") or {}),
        rejects=dict(ex.get("rejects") or {}),
        ack_p50_ms=ack.get("p50"),
        ack_p99_ms=ack.get("p99"),
        exposure=exposure.get("total"),
        realized_today=exposure.get("realized_today"),
        kill_switch=None if ks is None else bool(ks.get("tripped")),
        strategies=states,
        trades=None if pnl is None else sum(int(p.get("trades") or 0) for p in pnl),
        realized=None if pnl is None else str(sum((Decimal(p.get("realized") or 0) for p in pnl), Decimal(0))),
    )
