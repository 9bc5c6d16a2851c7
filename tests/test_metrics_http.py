"""The Prometheus exporter: real HTTP on 127.0.0.1, parsed with prometheus-client's own text parser."""

from __future__ import annotations

import socket
from decimal import Decimal as D

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pmbot.errors import InputError, ServiceUnavailableError
from pmbot.executor.metrics import ExecutorMetrics
from pmbot.executor.risk import Exposure, KillSwitch
from pmbot.metrics_http import DEFAULT_HOST, MetricsExporter, serve
from pmbot.store.models import OrderStatus, StrategyStats


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(url, timeout=5)
    assert resp.status_code == 200
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _stats(strategy: str, trades: int, realized: str, unrealized: str) -> StrategyStats:
    return StrategyStats(strategy, True, trades, D(10), D(0), D(realized), D(unrealized), 1, 0, 0)


def _metrics() -> ExecutorMetrics:
    m = ExecutorMetrics()
    for _ in range(5):
        m.intent()
    m.duplicate()
    m.ack(0.4, True)
    m.ack(3.0, True)
    m.ack(40.0, False)
    m.final(OrderStatus.FILLED)
    m.final(OrderStatus.FILLED)
    m.final(OrderStatus.REJECTED, "max_order_size")
    return m


def test_scrape_shows_every_family() -> None:
    exporter = MetricsExporter()
    m = _metrics()
    exposure = Exposure(D("12.5"), D("3.25"), {}, 2, D("-1.5"), KillSwitch(True, 1, "daily loss", "daily_loss_limit"))
    exporter.update(
        executors={"dry-run": (m, exposure)},
        stats=[_stats("snipe", 2, "1.25", "-0.5")],
        streams={"market": 1_000, "user": None},
        strategies={"snipe": "running", "copy": "paused"},
        now_ms=3_500,
    )
    server = serve(exporter, 0)
    try:
        assert server.host == DEFAULT_HOST and server.url.startswith("http://127.0.0.1:")
        got = _scrape(server.url)
        mode = (("mode", "dry-run"),)
        assert got[("pmbot_intents_total", mode)] == 5
        assert got[("pmbot_duplicate_intents_total", mode)] == 1
        assert got[("pmbot_orders_total", (("mode", "dry-run"), ("status", "filled")))] == 2
        assert got[("pmbot_rejects_total", (("mode", "dry-run"), ("reason", "max_order_size")))] == 1
        assert got[("pmbot_fills_total", (("mode", "dry-run"), ("strategy", "snipe")))] == 2
        assert got[("pmbot_intent_ack_seconds_count", mode)] == 3
        assert got[("pmbot_intent_ack_seconds_bucket", (("le", "0.0005"), ("mode", "dry-run")))] == 1
        assert got[("pmbot_intent_ack_seconds_bucket", (("le", "0.005"), ("mode", "dry-run")))] == 2
        assert got[("pmbot_intent_ack_seconds_sum", mode)] == pytest.approx(0.0434)
        assert got[("pmbot_exposure_usdc", (("kind", "total"), ("mode", "dry-run")))] == 15.75
        assert got[("pmbot_realized_today_usdc", mode)] == -1.5
        assert got[("pmbot_open_orders", mode)] == 2 and got[("pmbot_kill_switch_tripped", mode)] == 1
        pnl = (("kind", "unrealized"), ("mode", "dry-run"), ("strategy", "snipe"))
        assert got[("pmbot_pnl_usdc", pnl)] == -0.5
        assert got[("pmbot_stream_lag_seconds", (("stream", "market"),))] == 2.5
        assert ("pmbot_stream_lag_seconds", (("stream", "user"),)) not in got  # no message yet: no lag figure
        state = (("pmbot_strategy_state", "paused"), ("strategy", "copy"))
        assert got[("pmbot_strategy_state", state)] == 1
        assert got[("pmbot_strategy_state", (("pmbot_strategy_state", "running"), ("strategy", "copy")))] == 0
        assert not any(name.startswith(("python_", "process_")) for name, _ in got)  # not the global registry
    finally:
        server.close()


def test_updates_count_each_event_once_and_survive_an_executor_restart() -> None:
    exporter = MetricsExporter()
    m = _metrics()
    exporter.update_executor("live", m)
    exporter.update_executor("live", m)  # nothing new: nothing counted again
    m.intent()
    m.ack(1.0, True)
    exporter.update_executor("live", m)
    again = ExecutorMetrics()  # a new executor in the same process counts from 0
    again.intent()
    again.ack(2.0, True)
    exporter.update_executor("live", again)
    exporter.update_stats([_stats("copy", 1, "0", "0")])
    exporter.update_stats([_stats("copy", 3, "0", "0")])
    server = serve(exporter, 0)
    try:
        got = _scrape(server.url)
    finally:
        server.close()
    mode = (("mode", "live"),)
    assert got[("pmbot_intents_total", mode)] == 7
    assert got[("pmbot_intent_ack_seconds_count", mode)] == 5
    assert got[("pmbot_fills_total", (("mode", "dry-run"), ("strategy", "copy")))] == 3


def test_bad_port_and_busy_port_are_one_line_errors() -> None:
    exporter = MetricsExporter()
    with pytest.raises(InputError):
        serve(exporter, 70000)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ServiceUnavailableError) as err:
            serve(exporter, taken.getsockname()[1])
    assert len(err.value.lines()) == 1 and "cannot serve metrics" in err.value.message


def test_unknown_strategy_state_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown strategy state"):
        MetricsExporter().update_strategies({"snipe": "confused"})
