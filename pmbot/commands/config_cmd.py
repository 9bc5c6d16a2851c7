"""`pmbot config show` and `pmbot config check`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from pmbot import render
from pmbot.app import App
from pmbot.commands import base

app = base.Typer(help="Show or check the settings.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every setting, its value (secrets masked) and where it came from."""
    from pmbot.config import describe, notes

    a: App = ctx.obj
    loaded = a.loaded
    rows = describe(loaded)
    trade_offs = notes(loaded.settings)
    # .env is a candidate path: name it only when there is such a file (it was then read).
    env_file = loaded.env_file if loaded.env_file and loaded.env_file.is_file() else None
    if as_json:
        render.print_json(
            {
                "config_file": str(loaded.config_file) if loaded.config_file else None,
                "env_file": str(env_file) if env_file else None,
                "settings": rows,
                "notes": trade_offs,
            }
        )
        return
    table = Table(title="pmbot settings", title_justify="left")
    table.add_column("key")
    table.add_column("value", overflow="fold")
    table.add_column("source", style="dim")
    table.add_column("env", style="dim")
    for r in rows:
        style = "" if r["source"] == "default" else "bold"
        value = f"{r['value']} {r['unit']}" if r["unit"] and r["value"] != "(not set)" else r["value"]
        table.add_row(r["key"], Text(value), r["source"], r["env"], style=style)
    out = render.stdout()
    out.print(table)
    for key, note in trade_offs.items():
        out.print(Text(f"{key}: {note}"), soft_wrap=False)
    src = [f"config file: {loaded.config_file or '(none)'}"]
    if env_file is not None:
        src.append(f".env: {env_file}")
    out.print(Text("  ".join(src), style="dim"))


@app.command("check")
def check(
    ctx: typer.Context,
    as_json: JsonOpt = False,
    live: Annotated[
        bool, typer.Option("--live", help="Also ask the venue (read-only): trading wallet, pUSD, allowances.")
    ] = False,
) -> None:
    """Validate the settings and test what they point at (database, Redis, wallet key)."""
    from pmbot.health import run_checks

    a: App = ctx.obj
    results = run_checks(a.settings, live=live)
    if as_json:
        render.print_json([asdict(r) for r in results])
    else:
        out = render.stdout()
        for r in results:
            mark = ("ok", "green") if r.ok else (("warn", "yellow") if r.warning else ("FAIL", "red"))
            # details hold paths and URLs: plain text, not markup
            out.print(Text.assemble((f"{mark[0]:>4}", mark[1]), f"  {r.name}: {r.detail}"), soft_wrap=True)
    if any(not r.ok and not r.warning for r in results):
        raise typer.Exit(2)
