"""`pmbot config show` and `pmbot config check`."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.config import describe

app = base.Typer(help="Show or check the settings.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command("show")
def show(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Every setting, its value (secrets masked) and where it came from."""
    a: App = ctx.obj
    loaded = a.loaded
    rows = describe(loaded)
    if as_json:
        render.print_json(
            {
                "config_file": str(loaded.config_file) if loaded.config_file else None,
                "env_file": str(loaded.env_file) if loaded.env_file else None,
                "settings": rows,
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
        table.add_row(r["key"], r["value"], r["source"], r["env"], style=style)
    out = render.stdout()
    out.print(table)
    src = [f"config file: {loaded.config_file or '(none)'}", f".env: {loaded.env_file or '(none)'}"]
    out.print("  ".join(src), style="dim")


@app.command("check")
def check(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Validate the settings and test what they point at (database, Redis, wallet key)."""
    from pmbot.health import run_checks

    a: App = ctx.obj
    results = run_checks(a.settings)
    if as_json:
        render.print_json([asdict(r) for r in results])
    else:
        out = render.stdout()
        for r in results:
            mark = "[green]ok[/]" if r.ok else ("[yellow]warn[/]" if r.warning else "[red]FAIL[/]")
            out.print(f"{mark:>18}  {r.name}: {r.detail}")
    if any(not r.ok and not r.warning for r in results):
        raise typer.Exit(2)
