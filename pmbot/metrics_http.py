"""Prometheus metrics of a running `pmbot run-all` (`--metrics-port N`, loopback unless `--metrics-host`).

prometheus-client does the work: its own `CollectorRegistry` (never the global one, so two exporters in
one process, as in tests, never collide and no library's default metrics leak in), its Counter,
Histogram, Gauge and Enum, and its threaded HTTP server. The exporter does not sit on the hot path: the
executor keeps counting in `ExecutorMetrics`, and `MetricsExporter.update` (run-all calls it every few
seconds and before each scrape would be too often) copies what changed into the registry.

Exposed (all labelled by `mode` = dry-run | live where it applies):
  pmbot_intents_total, pmbot_duplicate_intents_total
  pmbot_orders_total{status}                 final statuses (filled, cancelled, rejected, not_sent …)
  pmbot_rejects_total{reason}                risk-gate and venue reject codes
  pmbot_fills_total{strategy}                fills recorded since the process started
  pmbot_intent_ack_seconds (histogram)       intent -> venue (or paper) acknowledgement
  pmbot_exposure_usdc{kind=positions|open_buys|total}, pmbot_realized_today_usdc
  pmbot_pnl_usdc{strategy, kind=realized|unrealized}   since the process started
  pmbot_open_orders, pmbot_kill_switch_tripped
  pmbot_stream_lag_seconds{stream}           age of the stream's last message
  pmbot_strategy_state{strategy, pmbot_strategy_state=running|paused|…}   an Enum: 1 for the current state
Money is Decimal everywhere else; Prometheus samples are float64 by definition, so values are
converted here, at the edge, and nowhere else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram
from prometheus_client.exposition import start_http_server

from pmbot.errors import InputError, ServiceUnavailableError
from pmbot.store.models import mode_name

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from pmbot.executor.metrics import ExecutorMetrics
    from pmbot.executor.risk import Exposure
    from pmbot.store.models import StrategyStats

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
STRATEGY_STATES = ("starting", "running", "paused", "restarting", "crashed", "stopped")
# intent -> ack in seconds: paper acks take ~0.1 ms, live ones tens of ms, a slow venue seconds
ACK_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _f(value: Decimal | int | float) -> float:
    return float(value)


class MetricsExporter:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.intents = Counter("pmbot_intents", "Order intents taken by the executor.", ["mode"], registry=r)
        self.duplicates = Counter(
            "pmbot_duplicate_intents", "Intents whose key was known: not sent again.", ["mode"], registry=r
        )
        self.orders = Counter("pmbot_orders", "Orders by final status.", ["mode", "status"], registry=r)
        self.rejects = Counter("pmbot_rejects", "Rejected orders by reason.", ["mode", "reason"], registry=r)
        self.fills = Counter(
            "pmbot_fills", "Fills recorded since the process started.", ["mode", "strategy"], registry=r
        )
        self.ack = Histogram(
            "pmbot_intent_ack_seconds",
            "Intent to acknowledgement (venue or paper exchange).",
            ["mode"],
            buckets=ACK_BUCKETS,
            registry=r,
        )
        self.exposure = Gauge(
            "pmbot_exposure_usdc", "Risk exposure in USDC (cost basis).", ["mode", "kind"], registry=r
        )
        self.realized_today = Gauge("pmbot_realized_today_usdc", "Realized PnL today (UTC).", ["mode"], registry=r)
        self.pnl = Gauge("pmbot_pnl_usdc", "PnL since the process started.", ["mode", "strategy", "kind"], registry=r)
        self.open_orders = Gauge("pmbot_open_orders", "Orders the risk gate holds open.", ["mode"], registry=r)
        self.kill_switch = Gauge(
            "pmbot_kill_switch_tripped", "1 while the kill switch blocks buys.", ["mode"], registry=r
        )
        self.stream_lag = Gauge("pmbot_stream_lag_seconds", "Age of the stream's last message.", ["stream"], registry=r)
        self.strategy_state = Enum(
            "pmbot_strategy_state",
            "Supervisor state of each strategy.",
            ["strategy"],
            states=list(STRATEGY_STATES),
            registry=r,
        )
        self._last: dict[tuple[str, ...], float] = {}  # cumulative values already counted, per counter child
        self._acks: dict[str, tuple[int, int]] = {}  # mode -> (id of its ExecutorMetrics, acks observed)
        self._lock = threading.Lock()  # updates may come from the loop and a thread; scrapes from the server

    def _advance(self, counter: Counter, key: tuple[str, ...], value: float) -> None:
        """Bring a counter child to the cumulative `value`. A value below the last one means a new
        source (an executor restarted in this process): its counts are all new."""
        slot = (str(id(counter)), *key)
        last = self._last.get(slot, 0.0)
        delta = value - last if value >= last else value
        if delta > 0:
            counter.labels(*key).inc(delta)
        self._last[slot] = value

    def update_executor(self, mode: str, metrics: ExecutorMetrics, exposure: Exposure | None = None) -> None:
        """Copy one executor's counters (and its risk gate's exposure) into the registry."""
        with self._lock:
            self._advance(self.intents, (mode,), metrics.intents)
            self._advance(self.duplicates, (mode,), metrics.duplicates)
            for status, n in metrics.statuses.items():
                self._advance(self.orders, (mode, status), n)
            for reason, n in metrics.rejects.items():
                self._advance(self.rejects, (mode, reason), n)
            source, seen = self._acks.get(mode, (id(metrics), 0))
            if source != id(metrics) or seen > metrics.sent:
                seen = 0
            hist = self.ack.labels(mode)
            for ms in metrics.acks_since(seen):
                hist.observe(ms / 1000)
            self._acks[mode] = (id(metrics), metrics.sent)
            if exposure is not None:
                self.exposure.labels(mode, "positions").set(_f(exposure.positions))
                self.exposure.labels(mode, "open_buys").set(_f(exposure.open_buys))
                self.exposure.labels(mode, "total").set(_f(exposure.total))
                self.realized_today.labels(mode).set(_f(exposure.realized_today))
                self.open_orders.labels(mode).set(exposure.open_orders)
                self.kill_switch.labels(mode).set(1 if exposure.kill_switch.tripped else 0)

    def update_stats(self, stats: Iterable[StrategyStats]) -> None:
        """Fills and PnL per strategy and mode: pass `store.stats(Query(since=<process start>))`."""
        with self._lock:
            for s in stats:
                mode = mode_name(s.dry_run)
                self._advance(self.fills, (mode, s.strategy), s.trades)
                self.pnl.labels(mode, s.strategy, "realized").set(_f(s.realized_pnl))
                self.pnl.labels(mode, s.strategy, "unrealized").set(_f(s.unrealized_pnl))

    def update_streams(self, last_message_ms: Mapping[str, int | None], *, now_ms: int) -> None:
        """Stream name -> epoch ms of its last message. A stream with no message yet is left unset."""
        with self._lock:
            for name, last in last_message_ms.items():
                if last is not None:
                    self.stream_lag.labels(name).set(max(0, now_ms - last) / 1000)

    def update_strategies(self, states: Mapping[str, str]) -> None:
        """Strategy name -> one of STRATEGY_STATES."""
        with self._lock:
            for name, state in states.items():
                if state not in STRATEGY_STATES:
                    raise ValueError(f"unknown strategy state {state!r}")
                self.strategy_state.labels(name).state(state)

    def update(
        self,
        *,
        executors: Mapping[str, tuple[ExecutorMetrics, Exposure | None]] | None = None,
        stats: Iterable[StrategyStats] | None = None,
        streams: Mapping[str, int | None] | None = None,
        strategies: Mapping[str, str] | None = None,
        now_ms: int,
    ) -> None:
        """Everything at once: `executors` is mode -> (executor.metrics, executor.risk.exposure())."""
        for mode, (metrics, exposure) in (executors or {}).items():
            self.update_executor(mode, metrics, exposure)
        if stats is not None:
            self.update_stats(stats)
        if streams is not None:
            self.update_streams(streams, now_ms=now_ms)
        if strategies is not None:
            self.update_strategies(strategies)


@dataclass
class MetricsServer:
    host: str
    port: int
    _httpd: WSGIServer
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def serve(exporter: MetricsExporter, port: int, host: str = DEFAULT_HOST) -> MetricsServer:
    """Serve `exporter` over HTTP in a daemon thread. Port 0 picks a free one (see `.port`). Loopback
    unless the caller names another host: metrics say what the bot holds, and they carry no auth."""
    from pmbot.config import is_loopback_host

    if not 0 <= port <= 65535:
        raise InputError(f"--metrics-port must be 0-65535, got {port}")
    if not host or not host.strip():
        raise InputError("--metrics-host must not be empty")
    try:
        httpd, thread = start_http_server(port, addr=host, registry=exporter.registry)
    except OSError as e:
        raise ServiceUnavailableError(
            f"cannot serve metrics on {host}:{port}: {e.strerror or e}",
            hint="pick another --metrics-port (0 picks a free one)",
        ) from None
    if not is_loopback_host(host):
        log.warning("metrics served on %s:%s: reachable from other machines, without authentication", host, port)
    return MetricsServer(host, int(httpd.server_port), httpd, thread)
