"""`pmbot learn add|list` and `pmbot reflect add|list`: the seed's journal of learnings and reflections."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from pmbot import render
from pmbot.app import App
from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.store.models import Query
from pmbot.timeutil import now_ms, parse_since

learn_app = base.Typer(help="Lessons learned: what was found, in which phase, with what impact.")
reflect_app = base.Typer(help="Reflections on a phase: what worked, what failed, what next.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
PhaseOpt = Annotated[str, typer.Option("--phase", "-p", help='The phase, e.g. "phase-1" or "snipe tuning".')]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only since then: 15m, 24h, 7d, today, or an ISO date/time (UTC).")
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", help="At most this many rows.", min=1)]
LocalOpt = Annotated[bool, typer.Option("--local", help="Times in this machine's time zone instead of UTC.")]


def _code(code: str | None, code_file: Path | None) -> str:
    if code is not None and code_file is not None:
        raise InputError("give --code or --code-file, not both")
    if code_file is None:
        return code or ""
    try:
        if str(code_file) == "-":
            return sys.stdin.read()
        return code_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read --code-file {code_file}: {e}") from None


@learn_app.command("add")
def learn_add(
    ctx: typer.Context,
    title: Annotated[str, typer.Argument(help="One line: what was learned.")],
    description: Annotated[str, typer.Option("--description", "-d", help="The details.")] = "",
    phase: Annotated[str, typer.Option("--phase", "-p", help='The phase, e.g. "phase-1".')] = "",
    category: Annotated[str, typer.Option("--category", "-c", help="e.g. latency, risk, timing.")] = "",
    impact: Annotated[str, typer.Option("--impact", help='e.g. "high" or "-40 % ack latency".')] = "",
    code: Annotated[str | None, typer.Option("--code", help="A code snippet.")] = None,
    code_file: Annotated[
        Path | None, typer.Option("--code-file", help="Read the code snippet from a file (- for stdin).")
    ] = None,
    metadata: Annotated[str | None, typer.Option("--metadata", help='A JSON object, e.g. {"trades": 41}.')] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a learning."""
    from pmbot.journal import learning_view, new_learning

    a: App = ctx.obj
    _ = a.settings  # loads the configuration: its secrets are registered, so the entry is redacted
    entry = new_learning(  # bad input fails here, before the store is opened
        title=title,
        description=description,
        phase=phase,
        category=category,
        impact=impact,
        code_snippet=_code(code, code_file),
        metadata=metadata,
    )
    entry = replace(entry, timestamp=now_ms(a.clock))
    new_id = a.store.add_learning(entry)
    if as_json:
        return render.print_json(learning_view(replace(entry, id=new_id)))
    render.stdout().print(f"learning {new_id} recorded")


@learn_app.command("list")
def learn_list(
    ctx: typer.Context,
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Only this phase.")] = None,
    category: Annotated[str | None, typer.Option("--category", "-c", help="Only this category.")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    local: LocalOpt = False,
) -> None:
    """Learnings, newest first."""
    from pmbot.journal import learning_view

    a: App = ctx.obj
    q = Query(since=parse_since(since, a.clock) if since else None, limit=limit)
    found = a.store.list_learnings(q, phase=phase, category=category) if a.database_exists() else []
    if as_json:
        return render.print_json([learning_view(x) for x in found])
    if not found:
        render.stdout().print("No learnings yet — `pmbot learn add TITLE` records one.", style="dim")
        return
    table = Table(title="Learnings", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("id", "time", "phase", "category", "impact"):
        table.add_column(col, no_wrap=True, justify="right" if col == "id" else "left")
    table.add_column("title / description")
    for x in found:
        body = render.plain(x.title, style="bold")
        if x.description:
            body.append("\n")
            body.append_text(render.plain(x.description))
        if x.code_snippet:
            body.append("\n")
            body.append_text(render.plain(f"[{len(x.code_snippet.splitlines())}-line snippet: --json shows it]", "dim"))
        table.add_row(
            str(x.id),
            render.when(x.timestamp, local=local),
            render.plain(x.phase),
            render.plain(x.category),
            render.plain(x.impact),
            body,
        )
    render.stdout().print(table)


@reflect_app.command("add")
def reflect_add(
    ctx: typer.Context,
    phase: PhaseOpt,
    worked: Annotated[str, typer.Option("--worked", help="What worked.")] = "",
    failed: Annotated[str, typer.Option("--failed", help="What failed.")] = "",
    next_: Annotated[str, typer.Option("--next", help="What to improve next.")] = "",
    metrics: Annotated[
        str | None, typer.Option("--metrics", help='A JSON object, e.g. {"fills": 12, "pnl": "3.20"}.')
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a reflection on a phase."""
    from pmbot.journal import new_reflection, reflection_view

    a: App = ctx.obj
    _ = a.settings  # secrets registered before the entry is built (and redacted)
    entry = new_reflection(
        phase=phase, what_worked=worked, what_failed=failed, next_improvements=next_, metrics=metrics
    )
    entry = replace(entry, timestamp=now_ms(a.clock))
    new_id = a.store.add_reflection(entry)
    if as_json:
        return render.print_json(reflection_view(replace(entry, id=new_id)))
    render.stdout().print(f"reflection {new_id} recorded")


@reflect_app.command("list")
def reflect_list(
    ctx: typer.Context,
    phase: Annotated[str | None, typer.Option("--phase", "-p", help="Only this phase.")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
    local: LocalOpt = False,
) -> None:
    """Reflections, newest first."""
    from pmbot.journal import reflection_view

    a: App = ctx.obj
    q = Query(since=parse_since(since, a.clock) if since else None, limit=limit)
    found = a.store.list_reflections(q, phase=phase) if a.database_exists() else []
    if as_json:
        return render.print_json([reflection_view(x) for x in found])
    if not found:
        render.stdout().print("No reflections yet — `pmbot reflect add --phase P --worked …` records one.", style="dim")
        return
    table = Table(title="Reflections", title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("id", "time", "phase"):
        table.add_column(col, no_wrap=True, justify="right" if col == "id" else "left")
    for col in ("worked", "failed", "next"):
        table.add_column(col)
    table.add_column("metrics")
    for x in found:
        metrics = ", ".join(f"{k} {v}" for k, v in sorted(x.metrics.items()))
        table.add_row(
            str(x.id),
            render.when(x.timestamp, local=local),
            render.plain(x.phase),
            render.plain(x.what_worked),
            render.plain(x.what_failed),
            render.plain(x.next_improvements),
            render.plain(metrics, style="dim"),
        )
    render.stdout().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(learn_app, name="learn")
    app.add_typer(reflect_app, name="reflect")
