"""`make bench`: run every benchmark, print a table, write bench/results.json."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import (
    bench_backtest,
    bench_cli,
    bench_copy_analysis,
    bench_copy_latency,
    bench_executor,
    bench_pg,
    bench_run_all,
    bench_signing,
    bench_snipe_latency,
    bench_store,
)
from bench.harness import Result

SUITES = [
    bench_store.run,
    bench_pg.run,
    bench_signing.run,
    bench_cli.run,
    bench_executor.run,
    bench_copy_analysis.run,
    bench_backtest.run,
    bench_snipe_latency.run,
    bench_copy_latency.run,
    bench_run_all.run,
]


def _num(v: float | None) -> float | None:
    """NaN (a benchmark that could not run, e.g. no redis-server) is written as null."""
    return None if v is None or math.isnan(v) else v


def main(argv: list[str]) -> int:
    wanted = set(argv)
    results: list[Result] = []
    console = Console(width=None if sys.stdout.isatty() else 160)
    for suite in SUITES:
        name = suite.__module__.split(".")[-1].removeprefix("bench_")
        if wanted and name not in wanted:
            continue
        console.print(f"running {name} …", style="dim")
        results.extend(suite())
    table = Table(title="pmbot benchmarks")
    for col in ("metric", "value", "unit", "peer", "ratio", "goal", "ok"):
        table.add_column(col, justify="right" if col in ("value", "peer", "ratio") else "left")
    for r in results:
        ok = "–" if r.passed is None else ("[green]yes[/]" if r.passed else "[red]NO[/]")
        table.add_row(
            r.name,
            f"{r.value:g}",
            r.unit,
            "" if r.peer is None else f"{r.peer:g}",
            "" if r.ratio is None else f"{r.ratio:g}x",
            r.goal,
            ok,
        )
    console.print(table)
    for r in results:  # notes say what exactly was measured: too long for a column
        if r.note:
            console.print(f"[bold]{r.name}[/bold]: {r.note}", highlight=False)
    out = Path(__file__).parent / "results.json"
    existing = json.loads(out.read_text()) if out.exists() and wanted else {}
    existing.update(
        {
            r.name: {
                "value": _num(r.value),
                "unit": r.unit,
                "peer": _num(r.peer),
                "ratio": _num(r.ratio),
                "goal": r.goal,
            }
            for r in results
        }
    )
    out.write_text(json.dumps(existing, indent=2) + "\n")
    console.print(f"wrote {out}")
    return 0 if all(r.passed is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
