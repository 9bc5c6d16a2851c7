"""The `pmbot run-all` dashboard (Rich Live) and its final summary: what the host exposes, rendered.

Per strategy: state, signals, skips, intents, fills, PnL, restarts, heartbeat; the executor: intents,
acks, latency p50 / p99, rejects, our orders/min headroom; the streams (state, age of the last message);
the last events. Strings from the venue or the config pass `render.plain` (no markup, no escapes)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pmbot import render

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pmbot.runner.host import Host


def budget_headroom(budget: Any) -> tuple[int, int] | None:
    """(orders left in the current minute, the per-minute ceiling) of a local budget; None when the budget
    is fleet-wide (Redis: the headroom is shared and not known locally)."""
    window = getattr(budget, "_window", None)
    if window is None:
        return None
    window.wait_time()  # drops what left the window
    return max(0, window.capacity - len(window._log)), int(window.capacity)


def snapshot(host: Host) -> dict[str, Any]:
    """Everything the dashboard and the final summary show, as plain data."""
    now = host._now_ms()
    sup = host.supervisor
    units = []
    for u in host.units:
        st = sup.units[u.name] if sup is not None else None
        status = st.status() if st is not None else None
        beat = status.heartbeat_ms if status is not None else None
        units.append(
            {
                "name": u.name,
                "kind": u.kind,
                "state": st.state if st is not None else host.state,
                "restarts": st.restarts if st is not None else 0,
                "detail": st.detail if st is not None else "",
                "heartbeat_age_s": None if beat is None else round(max(0, now - beat) / 1000, 1),
                **u.metrics(),
            }
        )
    ex = host.handle.executor if host.handle is not None else None
    exec_view: dict[str, Any] = {}
    if ex is not None:
        m = ex.metrics.snapshot()
        exec_view = {
            "intents": m["intents"],
            "sent": m["sent"],
            "duplicates": m["duplicates"],
            "rejects": sum(m["rejects"].values()),
            "ack_p50_ms": m["ack_ms"]["p50"],
            "ack_p99_ms": m["ack_ms"]["p99"],
            "headroom": budget_headroom(ex.budget),
        }
    streams = {}
    states = host.stream_states()
    for name, last in host.streams().items():
        streams[name] = {
            "state": states.get(name, ""),
            "age_s": None if last is None else round((now - last) / 1000, 1),
        }
    return {
        "mode": host.mode,
        "run_id": host.run_id,
        "state": host.state,
        "uptime_s": None if host.started_wall_ms is None else round((now - host.started_wall_ms) / 1000, 1),
        "kill_switch": host.kill_switch(),
        "open_orders": host.open_orders(),
        "strategies": units,
        "executor": exec_view,
        "streams": streams,
        "events": [{"ts_ms": ts, "strategy": n, "text": t} for ts, n, t in list(host.events)[-8:]],
        "shutdown_s": None if host.shutdown_s is None else round(host.shutdown_s, 2),
    }


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f} ms"


def _age(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}s"


def dashboard(host: Host) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    s = snapshot(host)
    ks = s["kill_switch"]
    head = Text(f"pmbot run-all  {s['mode']}  run {s['run_id']}  {s['state']}", style="bold")
    if s["uptime_s"] is not None:
        head.append(f"  up {s['uptime_s']:.0f}s")
    head.append("  kill switch ")
    head.append(
        "TRIPPED" if ks and ks.get("tripped") else "ok", style="bold red" if ks and ks.get("tripped") else "green"
    )
    head.append(f"  open orders {s['open_orders'] if s['open_orders'] is not None else '–'}")

    strat = Table(title="Strategies", title_justify="left", expand=False)
    for col in ("name", "kind", "state", "signals", "skips", "intents", "fills", "PnL", "restarts", "beat"):
        strat.add_column(
            col, justify="right" if col in ("signals", "skips", "intents", "fills", "restarts") else "left"
        )
    for u in s["strategies"]:
        strat.add_row(
            render.plain(u["name"]),
            u["kind"],
            u["state"],
            str(u["signals"]),
            str(u["skips"]),
            str(u["intents"]),
            str(u["fills"]),
            render.pnl(Decimal(u["pnl"])),
            str(u["restarts"]),
            _age(u["heartbeat_age_s"]),
        )
    e = s["executor"]
    exe = Table(title="Executor", title_justify="left", expand=False)
    for col in ("intents", "sent", "duplicates", "rejects", "ack p50", "ack p99", "orders/min left"):
        exe.add_column(col)
    if e:
        room = e["headroom"]
        exe.add_row(
            str(e["intents"]), str(e["sent"]), str(e["duplicates"]), str(e["rejects"]),
            _ms(e["ack_p50_ms"]), _ms(e["ack_p99_ms"]), "fleet" if room is None else f"{room[0]}/{room[1]}",
        )  # fmt: skip
    streams = Table(title="Streams", title_justify="left", expand=False)
    for col in ("stream", "state", "last message"):
        streams.add_column(col)
    for name, st in s["streams"].items():
        streams.add_row(
            render.plain(name), st["state"], _age(st["age_s"]) + (" ago" if st["age_s"] is not None else "")
        )
    events = Table(title="Last events", title_justify="left", expand=False, show_header=False)
    events.add_column("when")
    events.add_column("who")
    events.add_column("what")
    for ev in s["events"]:
        events.add_row(render.when(ev["ts_ms"]), render.plain(ev["strategy"]), render.plain(ev["text"]))
    return Group(head, strat, exe, streams, events)


async def live_dashboard(host: Host, refresh_s: float = 0.5) -> None:
    from rich.live import Live

    with Live(dashboard(host), console=render.stderr(), refresh_per_second=4, transient=False) as live:
        while True:
            await asyncio.sleep(refresh_s)
            live.update(dashboard(host))


def final_table(s: dict[str, Any]) -> RenderableType:
    from rich.table import Table

    ran = "" if s.get("uptime_s") is None else f"ran {s['uptime_s']}s, "
    t = Table(title=f"run-all {s['mode']} run {s['run_id']}: {ran}shut down in {s['shutdown_s']}s")
    for col in ("strategy", "kind", "state", "signals", "skips", "intents", "fills", "fees", "PnL"):
        t.add_column(col)
    for u in s["strategies"]:
        t.add_row(
            render.plain(u["name"]), u["kind"], u["state"], str(u["signals"]), str(u["skips"]), str(u["intents"]),
            str(u["fills"]), render.usdc(Decimal(u["fees"])), render.pnl(Decimal(u["pnl"])),
        )  # fmt: skip
    return t


def log_lines(host: Host) -> list[str]:
    """`--no-dashboard`: one line a minute of the same numbers (the events are logged as they happen)."""
    s = snapshot(host)
    out = []
    for u in s["strategies"]:
        out.append(
            f"{u['name']} ({u['kind']}) {u['state']}: signals={u['signals']} skips={u['skips']} "
            f"intents={u['intents']} fills={u['fills']} pnl={render.pnl(Decimal(u['pnl'])).plain}"
        )
    e = s["executor"]
    if e:
        out.append(
            f"executor: intents={e['intents']} sent={e['sent']} "
            f"ack_p50_ms={e['ack_p50_ms']} ack_p99_ms={e['ack_p99_ms']}"
        )
    return out
