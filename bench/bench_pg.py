"""PostgreSQL benchmarks: durable single write, batched fills, stats over 1 M trades, migrate 1 M trades.

They start their own durable PostgreSQL (fsync on; synchronous_commit as reported) on 127.0.0.1 from
Debian's binaries, like the tests. Without PostgreSQL every figure is NaN (written as null).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
import time
from pathlib import Path

from bench.bench_store import T0, _fills
from bench.harness import Result, median, percentile
from pmbot.money import from_micro
from pmbot.store import rows
from pmbot.store.models import OrderRecord, OrderStatus, OrderType, Query, Side
from pmbot.store.postgres import PostgresStore
from pmbot.store.sqlite import SQLiteStore

NAN = float("nan")
TRADES = 1_000_000
ORDERS = 100_000


def _settings(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        got = {
            n: conn.execute(f"SHOW {n}".encode()).fetchone() for n in ("synchronous_commit", "fsync", "server_version")
        }
    return ", ".join(f"{k}={v[0] if v else '?'}" for k, v in got.items())


def bench_single_write(url: str) -> Result:
    store = PostgresStore(url)
    fills = _fills(0, 3_000)
    for f in fills[:200]:
        store.record_fill(f)
    lat = []
    for f in fills[200:]:
        t = time.perf_counter()
        store.record_fill(f)
        lat.append((time.perf_counter() - t) * 1000)
    store.close()
    p99 = percentile(lat, 99)
    return Result(
        "pg: durable single trade write p99",
        round(p99, 3),
        "ms",
        "<= 2 ms (synchronous_commit=on, fsync=on)",
        p99 <= 2.0,
        note=f"p50 {percentile(lat, 50):.3f} ms over {len(lat)} writes, each committed; {_settings(url)}",
    )


def bench_batch(url: str) -> Result:
    store = PostgresStore(url)
    total, batch = 200_000, 10_000
    batches = [_fills(start, batch) for start in range(0, total, batch)]
    t = time.perf_counter()
    for b in batches:
        store.record_fills(b)
    elapsed = time.perf_counter() - t
    store.close()
    rate = total / elapsed
    return Result(
        "pg: batched fills",
        round(rate),
        "rows/s",
        ">= 50000 rows/s (positions updated, locked, in the same transaction)",
        rate >= 50_000,
        note=f"{total} fills in batches of {batch}, 2000 tokens",
    )


def _source(path: Path) -> None:
    """1 M trades (and their 20 000 positions) plus 100 000 orders in a SQLite store."""
    store = SQLiteStore(path, synchronous="OFF")
    for start in range(0, TRADES, 50_000):
        store.record_fills(_fills(start, 50_000, tokens=20_000))
    now = T0
    order_rows = []
    for i in range(ORDERS):
        o = OrderRecord(
            key=f"bench:{i:08d}",
            strategy=("snipe", "copy")[i % 2],
            token_id=f"tok{i % 20_000}",
            side=Side.BUY,
            price=from_micro(500_000 + i % 400_000),
            size=from_micro(5_000_000 + i % 50_000_000),
            order_type=OrderType.GTC,
            dry_run=bool(i % 5),
            status=OrderStatus.FILLED,
            created_at=now + i,
            metadata={"signal": i} if i % 10 == 0 else {},
        )
        order_rows.append(tuple(rows.order_to_row(o, now).values()))
    store.close()
    conn = sqlite3.connect(path)
    cols = ", ".join(rows.order_to_row(o, now))
    conn.executemany(f"INSERT INTO orders ({cols}) VALUES ({', '.join('?' * len(order_rows[0]))})", order_rows)
    conn.commit()
    conn.close()


def bench_migrate_and_stats(url: str, tmp: Path) -> list[Result]:
    from pmbot.migrate import run_migration

    src = tmp / "source.db"
    _source(src)
    report = run_migration(f"sqlite:///{src}", url, batch=50_000)
    assert report.verified, json.dumps(report.to_dict())
    rows_total = sum(t.source_rows for t in report.tables)
    out = [
        Result(
            "migrate: 1M trades + orders + positions",
            round(report.seconds, 2),
            "s",
            "<= 15 s, verified (counts + checksums)",
            report.seconds <= 15,
            note=f"{rows_total} rows ({_sizes(report)}) at {report.rows_per_s:,.0f} rows/s, batches of 50000;"
            " includes the full verification (counts + checksums of every row on both sides)",
        )
    ]
    store = PostgresStore(url)
    import psycopg

    t = time.perf_counter()
    store.stats()
    cold = (time.perf_counter() - t) * 1000  # right after the load: no visibility map yet, heap fetches
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load: index-only scans need it
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        stats = store.stats()
        runs.append((time.perf_counter() - t) * 1000)
    assert sum(s.trades for s in stats) > 0
    filtered = []
    for _ in range(3):
        t = time.perf_counter()
        store.stats(Query(strategy="snipe", since=T0 + 50_000_000, dry_run=True))
        filtered.append((time.perf_counter() - t) * 1000)
    store.close()
    out += [
        Result(
            "pg stats: 1M trades, all strategies",
            round(median(runs), 1),
            "ms",
            "<= 1000 ms",
            median(runs) <= 1000,
            note=f"after VACUUM ANALYZE; first run {runs[0]:.0f} ms; straight after the bulk load (no vacuum yet)"
            f" {cold:.0f} ms",
        ),
        Result(
            "pg stats: 1M trades, filtered", round(median(filtered), 1), "ms", "<= 1000 ms", median(filtered) <= 1000
        ),
    ]
    return out


def _sizes(report: object) -> str:
    return ", ".join(f"{t.table} {t.source_rows}" for t in getattr(report, "tables", []) if t.source_rows)


def _unavailable(why: str) -> list[Result]:
    names = [
        "pg: durable single trade write p99",
        "pg: batched fills",
        "migrate: 1M trades + orders + positions",
        "pg stats: 1M trades, all strategies",
        "pg stats: 1M trades, filtered",
    ]
    return [Result(n, NAN, "", "needs PostgreSQL", None, note=why) for n in names]


def run() -> list[Result]:
    try:
        from tests.services import PostgresServer

        server = PostgresServer(durable=True)
        server.start()
    except BaseException as e:  # pytest.skip outside pytest is a BaseException
        return _unavailable(f"PostgreSQL not available: {e}")
    try:
        with tempfile.TemporaryDirectory(prefix="pmbot-bench-pg-") as d:
            return [
                bench_single_write(server.create_database("single")),
                bench_batch(server.create_database("batch")),
                *bench_migrate_and_stats(server.create_database("migrate"), Path(d)),
            ]
    finally:
        server.stop()
