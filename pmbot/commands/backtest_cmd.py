"""`pmbot backtest snipe|list|show`: the sniper on a scenario's simulated clock, results kept apart from
dry-run and live records (own table, mode "backtest" on its decisions)."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot import render
from pmbot.app import App
from pmbot.commands import base as cli_base
from pmbot.errors import InputError

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pmbot.sim.scenario_file import RecordedScenario

app = cli_base.Typer(help="Backtest a strategy on a recorded or generated scenario (simulated clock).")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def parse_params(params: list[str], sweeps: list[str]) -> list[dict[str, str]]:
    """`key=value` settings and `key=v1,v2` sweeps → one parameter dict per combination (a sweep's
    cartesian product). Unknown keys and malformed items: InputError."""
    from pmbot.strategies.snipe import SnipeConfig

    fields = set(SnipeConfig.model_fields)

    def split(item: str, flag: str) -> tuple[str, str]:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key or not value.strip():
            raise InputError(f"{flag} {item!r}: expected key=value")
        if key not in fields:
            raise InputError(f"{flag} {item!r}: unknown parameter {key!r}", hint="known: " + ", ".join(sorted(fields)))
        return key, value.strip()

    base = dict(split(p, "--param") for p in params)
    axes: list[tuple[str, list[str]]] = []
    for s in sweeps:
        key, values = split(s, "--sweep")
        vs = [v.strip() for v in values.split(",") if v.strip()]
        if not vs:
            raise InputError(f"--sweep {s!r}: no values")
        axes.append((key, vs))
    if not axes:
        return [base]
    return [
        {**base, **dict(zip([k for k, _ in axes], combo, strict=True))}
        for combo in itertools.product(*(v for _, v in axes))
    ]


def load_scenario(spec: str, hours: float | None, seed: int) -> tuple[str, RecordedScenario]:
    """The built-in scenario generated in memory, or a file (malformed → InputError naming the line)."""
    from pmbot.sim import BUILTIN_SCENARIOS

    if hours is not None and hours <= 0:
        raise InputError(f"--hours must be > 0, got {hours:g}")
    if spec in BUILTIN_SCENARIOS:
        from pmbot.sim.generate import generate_btc_15m

        return f"{spec} seed={seed} hours={hours or 24:g}", generate_btc_15m(hours or 24, seed=seed)
    from pathlib import Path

    from pmbot.sim.scenario_file import read_scenario

    if not Path(spec).is_file():
        raise InputError(f"unknown scenario {spec!r}", hint=f"use {', '.join(BUILTIN_SCENARIOS)} or a scenario file")
    scenario = read_scenario(spec)
    if hours is not None and scenario.events:
        cut = scenario.events[0].ts + int(hours * 3_600_000)
        scenario.events = [e for e in scenario.events if e.ts <= cut]
    return spec, scenario


@app.command("snipe")
def snipe(
    ctx: typer.Context,
    scenario: Annotated[
        str, typer.Option("--scenario", "-s", help="btc-15m (generated) or a scenario file.")
    ] = "btc-15m",
    hours: Annotated[float | None, typer.Option("--hours", help="Hours to replay (built-in default 24).")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated scenario.")] = 7,
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value on top of [snipe] (repeatable).")
    ] = None,
    sweep: Annotated[
        list[str] | None, typer.Option("--sweep", help="key=v1,v2,… one run per value (repeatable).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run the sniper over a scenario: trades, win rate, PnL, fees, max drawdown, per-market table."""
    from pmbot.runner.backtest import markets_of, prepare, run_backtest
    from pmbot.runner.core import DecisionLog
    from pmbot.store.models import BacktestRun
    from pmbot.strategies.snipe import SnipeStrategy

    a: App = ctx.obj
    combos = parse_params(param or [], sweep or [])
    base = a.settings.snipe.strategy_config()
    configs = [SnipeStrategy.validate_config({**base, **c}) for c in combos]  # all checked before any run
    label, recorded = load_scenario(scenario, hours, seed)
    markets_of(recorded)  # an unusable header market fails here, before anything is written
    prepared = prepare(recorded)  # parsed once for every run of a sweep
    store = a.store
    results = []
    for combo, cfg in zip(combos, configs, strict=True):
        run_id = "bt-" + secrets.token_hex(4)
        decisions = DecisionLog(None, mode="backtest", run_id=run_id)
        res = asyncio.run(
            run_backtest(
                recorded,
                _sniper(cfg),
                a.settings,
                run_id=run_id,
                params=combo,
                decisions=decisions,
                prepared=prepared,
            )
        )
        doc = res.as_json()
        with store.transaction():
            store.save_backtest(
                BacktestRun(
                    run_id=run_id,
                    created_at=int(time.time() * 1000),
                    strategy="snipe",
                    scenario=label,
                    params=dict(combo),
                    result=doc,
                )
            )
            store.record_decisions(decisions.rows)
        results.append(doc)
    if as_json:
        render.print_json(results[0] if len(results) == 1 else results)
        return
    out = render.stdout()
    if len(results) == 1:
        out.print(_run_tables(results[0]))
    else:
        out.print(_sweep_table(results))


def _sniper(cfg: Any) -> Any:
    from pmbot.strategies.snipe import SnipeStrategy

    return lambda view: SnipeStrategy(view, cfg)


def _run_tables(doc: dict[str, Any]) -> RenderableType:
    from rich.console import Group
    from rich.table import Table

    s = doc["summary"]
    top = Table(title=f"backtest {doc['run_id']}  {doc['params'] or ''}")
    for col in ("trades", "wins", "losses", "win rate", "PnL", "fees", "max drawdown", "signals"):
        top.add_column(col, justify="right")
    top.add_row(
        str(s["trades"]),
        str(s["wins"]),
        str(s["losses"]),
        s["win_rate"] or "—",
        s["pnl"],
        s["fees"],
        s["max_drawdown"],
        str(doc["signals"]),
    )
    per = Table(title="per market")
    for col in ("market", "winner", "signals", "trades", "PnL"):
        per.add_column(col)
    for m in doc["markets"]:
        if m["signals"] or m["trades"]:
            per.add_row(m["market"], m["winner"] or "—", str(m["signals"]), str(m["trades"]), m["pnl"])
    skips = Table(title="skips")
    skips.add_column("reason")
    skips.add_column("n", justify="right")
    for k, v in doc["skips"].items():
        skips.add_row(k, str(v))
    return Group(top, per, skips)


def _sweep_table(docs: list[dict[str, Any]]) -> RenderableType:
    from rich.table import Table

    t = Table(title="backtest sweep")
    for col in ("run", "params", "trades", "wins", "losses", "win rate", "PnL", "fees", "max drawdown"):
        t.add_column(col)
    for d in docs:
        s = d["summary"]
        params = " ".join(f"{k}={v}" for k, v in d["params"].items())
        t.add_row(
            d["run_id"], params, str(s["trades"]), str(s["wins"]), str(s["losses"]), s["win_rate"] or "—",
            s["pnl"], s["fees"], s["max_drawdown"],
        )  # fmt: skip
    return t


@app.command("list")
def list_runs(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Stored backtest runs, newest first."""
    a: App = ctx.obj
    runs = a.store.list_backtests(limit) if a.database_exists() else []
    rows = [
        {
            "run_id": r.run_id,
            "created_at": r.created_at,
            "strategy": r.strategy,
            "scenario": r.scenario,
            "params": r.params,
            "summary": r.result.get("summary", {}),
        }
        for r in runs
    ]
    if as_json:
        render.print_json(rows)
        return
    from rich.table import Table

    t = Table(title="backtests")
    for col in ("run", "when", "strategy", "scenario", "params", "trades", "PnL"):
        t.add_column(col)
    for r in rows:
        s = r["summary"]
        params = " ".join(f"{k}={v}" for k, v in r["params"].items())
        t.add_row(
            r["run_id"], render.when(r["created_at"]), r["strategy"], render.clean(r["scenario"]),
            render.clean(params), str(s.get("trades", "")), str(s.get("pnl", "")),
        )  # fmt: skip
    render.stdout().print(t)


@app.command("show")
def show(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id from `pmbot backtest list`.")],
    as_json: JsonOpt = False,
) -> None:
    """One backtest's result: summary, per-market table, trades."""
    a: App = ctx.obj
    run = a.store.get_backtest(run_id) if a.database_exists() else None
    if run is None:
        raise InputError(f"no backtest run {run_id!r}", hint="`pmbot backtest list` shows the runs")
    if as_json:
        render.print_json(run.result)
        return
    from rich.table import Table

    out = render.stdout()
    out.print(_run_tables(run.result))
    t = Table(title="trades")
    for col in ("when", "market", "outcome", "side", "price", "size", "fee", "payout", "PnL"):
        t.add_column(col)
    for tr in run.result.get("trades", []):
        t.add_row(
            render.when(tr["ts_ms"]), tr["market"], tr["outcome"], tr["side"], tr["price"], tr["size"], tr["fee"],
            tr["payout"] or "—", tr["pnl"] or "—",
        )  # fmt: skip
    out.print(t)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="backtest")
