"""`pmbot run-all`: every configured strategy in one process (pmbot.runner.host), dry-run unless --live.

Thin: parse and check everything first (bad input → one line on stderr, exit 2, nothing written), build
the units from `[[strategies]]`, open the log files and the metrics exporter, run the host with a
dashboard (or log lines), print the summary. SIGINT / SIGTERM: graceful shutdown (exit 0); a second one
exits at once (130)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import ConfigError, InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from pmbot.config import Settings, StrategyEntry
    from pmbot.runner.supervisor import Unit

log = logging.getLogger("pmbot.runner")

ALIASES = {"sniper": "snipe", "copy_trader": "copy", "copy-trader": "copy"}  # the seed's names


def select(entries: list[tuple[StrategyEntry, BaseModel]], wanted: str | None) -> list[tuple[StrategyEntry, Any]]:
    """`--strategies snipe,copy`: kinds or instance names (the seed's sniper, copy_trader too)."""
    if wanted is None:
        return entries
    tokens = [ALIASES.get(t.strip(), t.strip()) for t in wanted.split(",") if t.strip()]
    if not tokens:
        raise InputError("--strategies needs at least one kind or name", hint="e.g. --strategies snipe,copy")
    known = {e.kind for e, _ in entries} | {e.name for e, _ in entries}
    unknown = [t for t in tokens if t not in known and t not in ("snipe", "copy")]
    if unknown:
        raise InputError(
            f"--strategies: no strategy kind or instance named {', '.join(unknown)}",
            hint=f"configured: {', '.join(e.name + ' (' + e.kind + ')' for e, _ in entries) or 'none'}",
        )
    chosen = [(e, s) for e, s in entries if e.kind in tokens or e.name in tokens]
    if not chosen:
        raise InputError(f"--strategies {wanted}: none of those is configured", hint="see [[strategies]] in the README")
    return chosen


def snipe_unit(entry: StrategyEntry, section: Any) -> Unit:
    from pmbot.runner.units import SnipeUnit
    from pmbot.strategies.snipe import SnipeStrategy

    config = SnipeStrategy.validate_config(section.strategy_config())
    series = tuple(s for s in section.series if s.strip())
    if not series:
        raise ConfigError(f"strategy {entry.name}: snipe needs at least one series")
    return SnipeUnit(entry.name, config, series=series, max_markets=section.max_markets,
                     horizon_s=max(20 * 60, config.window_s * 2))  # fmt: skip


DEFAULT_COPY_TARGET = "distinct-baguette"  # the seed's whale: the default copy instance's target, dry-run only


def copy_unit(entry: StrategyEntry, section: Any, *, dry_run: bool) -> Unit:
    """The copy unit over the copy runtime (pmbot.runner.copy_*). Its targets are `[[copy.targets]]` (or
    the entry's own `targets`); with none, a dry-run copies the seed's whale and a live run refuses (never
    trade real money on a target nobody named)."""
    from pmbot.runner.copy_session import TargetRequest
    from pmbot.runner.units import CopyUnit

    requests = [TargetRequest(t.target, t) for t in section.targets]
    if not requests:
        if not dry_run:
            raise ConfigError(
                f"strategy {entry.name}: live copy trading needs a target",
                hint="add [[copy.targets]] target = NAME|0x… to the config file",
            )
        requests = [TargetRequest(DEFAULT_COPY_TARGET)]
    return CopyUnit(entry.name, section, requests)


def build_units(app: App, wanted: str | None, *, dry_run: bool = True) -> list[Unit]:
    settings: Settings = app.settings
    chosen = select(settings.strategy_instances(), wanted)
    units: list[Unit] = [
        snipe_unit(entry, section) if entry.kind == "snipe" else copy_unit(entry, section, dry_run=dry_run)
        for entry, section in chosen
    ]
    if not units:
        raise InputError("no strategy to run", hint="configure [[strategies]] or pick some with --strategies")
    return units


def data_dir(settings: Settings) -> Path:
    from pmbot.config import default_data_dir
    from pmbot.store import is_postgres_url, sqlite_path

    if is_postgres_url(settings.database_url):
        return default_data_dir()
    return sqlite_path(settings.database_url).parent


def run_all(
    ctx: typer.Context,
    strategies: Annotated[
        str | None, typer.Option("--strategies", help="Kinds or names to run (snipe,copy; sniper,copy_trader).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run/--live", help="Paper fills (default) or real orders (--live).")
    ] = True,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation of live trading.")] = False,
    no_dashboard: Annotated[bool, typer.Option("--no-dashboard", help="Log lines instead of the dashboard.")] = False,
    metrics_port: Annotated[
        int | None, typer.Option("--metrics-port", help="Serve Prometheus metrics on this port (0: any free).")
    ] = None,
    metrics_host: Annotated[
        str | None, typer.Option("--metrics-host", help="Address for --metrics-port (default 127.0.0.1).")
    ] = None,
    duration: Annotated[str | None, typer.Option("--duration", help="Stop after this long (90s, 15m, 2h).")] = None,
    log_format: Annotated[str, typer.Option("--log-format", help="text or json (log files, --no-dashboard).")] = "text",
    as_json: Annotated[bool, typer.Option("--json", help="Print the final summary as JSON.")] = False,
) -> None:
    """Run every configured strategy in one process, with a live dashboard (dry-run unless --live)."""
    from pmbot.logs import formatter
    from pmbot.timeutil import parse_duration

    app: App = ctx.obj
    formatter(log_format)  # bad --log-format: refused before anything is made
    duration_s: float | None = None
    if duration is not None:
        duration_s = parse_duration(duration).total_seconds()
        if duration_s <= 0:
            raise InputError(f"--duration must be longer than 0s, got {duration}")
    settings = app.settings
    port = metrics_port if metrics_port is not None else settings.run_all.metrics_port
    host_addr = metrics_host if metrics_host is not None else settings.run_all.metrics_host
    if port is not None and not 0 <= port <= 65535:
        raise InputError(f"--metrics-port must be 0-65535, got {port}")
    if metrics_host is not None and port is None:
        raise InputError("--metrics-host needs --metrics-port")
    units = build_units(app, strategies, dry_run=dry_run)
    if not dry_run:
        _confirm_live(app, units, yes=yes)
    summary = base.run_trading(
        _main(app, units, dry_run=dry_run, duration_s=duration_s, dashboard=not no_dashboard and not as_json,
              port=port, host_addr=host_addr, log_format=log_format, console_logs=no_dashboard), app.settings
    )  # fmt: skip
    if as_json:
        render.print_json(summary)
    else:
        from pmbot.commands.run_all_view import final_table

        render.stdout().print(final_table(summary))


def _confirm_live(app: App, units: list[Unit], *, yes: bool) -> None:
    settings = app.settings
    base.check_live(settings)
    if yes:
        return
    names = ", ".join(f"{u.name} ({u.kind})" for u in units)
    typer.confirm(f"LIVE trading of {names} on {settings.clob_url}?", abort=True, err=True)


def build_options(settings: Settings) -> Any:
    from pmbot.runner.host import HostOptions
    from pmbot.runner.supervisor import SupervisorPolicy

    r = settings.run_all
    return HostOptions(
        cancel_on_shutdown=r.on_shutdown == "cancel",
        snapshot_interval_s=r.snapshot_interval_s,
        shutdown_timeout_s=r.shutdown_timeout_s,
        policy=SupervisorPolicy(max_crashes=r.max_crashes, window_s=r.crash_window_s,
                                backoff_s=r.restart_backoff_s, backoff_max_s=r.restart_backoff_max_s),
    )  # fmt: skip


async def _main(
    app: App,
    units: list[Unit],
    *,
    dry_run: bool,
    duration_s: float | None,
    dashboard: bool,
    port: int | None,
    host_addr: str,
    log_format: str,
    console_logs: bool,
    options: Any = None,
) -> dict[str, Any]:
    """The run itself (also what tests/run_all_worker.py runs, with its own units and `options`)."""
    from pmbot.commands.run_all_view import live_dashboard, log_lines, snapshot
    from pmbot.runner.host import Host

    exporter = server = None
    if port is not None:
        from pmbot.metrics_http import MetricsExporter, serve

        exporter = MetricsExporter()
        server = serve(exporter, port, host_addr)  # a port in use: one line, exit 2, nothing written
    host = Host(app, units, dry_run=dry_run, options=options or build_options(app.settings), exporter=exporter)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():
            host.abort()  # the second signal: leave now (nothing an order needs is lost)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal)
    logs = None

    def on_prepared() -> None:
        nonlocal logs
        from pmbot.logs import setup_run_logs

        logs = setup_run_logs(data_dir(app.settings), [u.name for u in units], fmt=log_format, console=console_logs)

    host.on_prepared = on_prepared
    view: asyncio.Task[None] | None = None

    async def show() -> None:
        await host.ready.wait()
        if server is not None:
            render.stderr().print(render.plain(f"metrics on {server.url}"))
        if dashboard:
            await live_dashboard(host)
        else:
            while True:
                for line in log_lines(host):
                    log.info("%s", line)
                await asyncio.sleep(60)

    view = asyncio.create_task(show())
    try:
        await host.run(stop=stop, duration_s=duration_s)
    finally:
        view.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await view
        if server is not None:
            server.close()
        if logs is not None:
            logs.close()
    return snapshot(host)


def register(app: typer.Typer) -> None:
    app.command("run-all")(run_all)
