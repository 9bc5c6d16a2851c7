"""`pmbot migrate --from sqlite:///PATH --to postgresql://…`: thin; the work is pmbot/migrate.py."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from pmbot import render
from pmbot.errors import StoreError

if TYPE_CHECKING:
    from pmbot.migrate import MigrationReport


def migrate(
    source: Annotated[str, typer.Option("--from", help="The SQLite store: sqlite:///path/to/pmbot.db.")],
    target: Annotated[str, typer.Option("--to", help="The PostgreSQL database: postgresql://user:pw@host/db.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be copied; write nothing.")] = False,
    batch: Annotated[int, typer.Option("--batch", min=1, max=1_000_000, help="Rows per COPY and commit.")] = 20_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON for scripts.")] = False,
) -> None:
    """Copy a SQLite store into PostgreSQL: resumable, verified by row counts and checksums."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from pmbot.migrate import run_migration

    err = render.stderr()
    bars = Progress(
        TextColumn("{task.description:<15}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=not sys.stderr.isatty(),
        transient=False,
    )
    tasks: dict[str, TaskID] = {}

    def progress(table: str, done: int, total: int) -> None:
        if table not in tasks:
            tasks[table] = bars.add_task(table, total=max(total, 1) if total else 1)
        bars.update(tasks[table], completed=done if total else 1)

    with bars:
        report = run_migration(source, target, dry_run=dry_run, batch=batch, progress=progress)
    if as_json:
        render.print_json(report.to_dict())
    else:
        _render(report)
    if report.conflict_count:
        raise StoreError(
            f"{report.conflict_count} row(s) in the target differ from the source and were left as they are",
            hint="they are listed above; resolve them in PostgreSQL, then run migrate again",
        )
    if not dry_run and not report.verified:
        raise StoreError(
            "verification failed: row counts or checksums differ (see the table)",
            hint="the target has rows the source does not; migrate into an empty database",
        )


def _render(report: MigrationReport) -> None:
    from rich.table import Table

    from pmbot.migrate import MAX_CONFLICTS_LISTED

    out = render.stdout()
    verb = "to copy" if report.dry_run else "copied"
    table = Table(
        title=f"{report.source} → {report.target}" + (" (dry run: nothing written)" if report.dry_run else "")
    )
    for col in ("table", "source rows", "already there", verb, "conflicts", "source checksum", "target checksum", "ok"):
        table.add_column(col, justify="right" if col in ("source rows", "already there", verb, "conflicts") else "left")
    for t in report.tables:
        ok = "–" if report.dry_run else ("[green]yes[/]" if t.verified else "[red]NO[/]")
        table.add_row(
            t.table,
            str(t.source_rows),
            str(t.present),
            str(t.copied),
            f"[red]{t.conflicts}[/]" if t.conflicts else "0",
            t.source_checksum,
            t.target_checksum or "–",
            ok,
        )
    out.print(table)
    if report.conflicts:
        listed = Table(title="conflicts: same key, different content (not overwritten)")
        for col in ("table", "key", "differing columns"):
            listed.add_column(col)
        for c in report.conflicts[:MAX_CONFLICTS_LISTED]:
            listed.add_row(c.table, ", ".join(map(str, c.key)), ", ".join(c.columns))
        out.print(listed)
        if len(report.conflicts) > MAX_CONFLICTS_LISTED:
            out.print(f"… and {len(report.conflicts) - MAX_CONFLICTS_LISTED} more (--json lists the first ones too)")
    rate = f", {report.rows_per_s:,.0f} rows/s" if report.copied and not report.dry_run else ""
    state = "dry run" if report.dry_run else ("verified" if report.verified else "NOT verified")
    out.print(f"{report.copied} row(s) {verb} in {report.seconds:.2f}s{rate}; {state}")


def register(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
