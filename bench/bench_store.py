"""Store benchmarks: durable single write latency, batched insert throughput, stats over 1 M trades."""

from __future__ import annotations

import tempfile
import time
from decimal import Decimal as D
from pathlib import Path

from bench.harness import Result, median, percentile
from pmbot.store.models import Fill, Query, Side
from pmbot.store.sqlite import SQLiteStore

T0 = 1_795_000_000_000


def _fills(start: int, n: int, tokens: int = 2_000, strategies: tuple[str, ...] = ("snipe", "copy")) -> list[Fill]:
    out = []
    for i in range(start, start + n):
        side = Side.BUY if i % 3 else Side.SELL
        out.append(
            Fill(
                trade_id=f"t{i}",
                strategy=strategies[i % len(strategies)],
                token_id=f"tok{i % tokens}",
                condition_id=f"0xc{i % tokens}",
                side=side,
                price=D(f"0.{(i % 89) + 10}"),
                size=D(5 + i % 50),
                fee=D("0.01") if i % 4 == 0 else D(0),
                dry_run=bool(i % 5),
                ts=T0 + i * 100,
                market="Bitcoin Up or Down",
                outcome="Up" if i % 2 else "Down",
            )
        )
    return out


def _single_write_ms(path: Path, synchronous: str) -> list[float]:
    store = SQLiteStore(path, synchronous=synchronous)
    fills = _fills(0, 3_000)
    for f in fills[:200]:  # warm up
        store.record_fill(f)
    lat = []
    for f in fills[200:]:
        t = time.perf_counter()
        store.record_fill(f)
        lat.append((time.perf_counter() - t) * 1000)
    store.close()
    return lat


def bench_single_write(tmp: Path) -> list[Result]:
    """One fill per commit, `[store] durability` full (synchronous=FULL: every commit fsyncs the WAL) and
    normal (synchronous=NORMAL: no fsync per commit, the WAL is synced at checkpoints)."""
    full = _single_write_ms(tmp / "single-full.db", "FULL")
    normal = _single_write_ms(tmp / "single-normal.db", "NORMAL")
    p99, n99 = percentile(full, 99), percentile(normal, 99)
    return [
        Result(
            "store: durable single trade write p99",
            round(p99, 3),
            "ms",
            "<= 1 ms (WAL, synchronous=FULL)",
            p99 <= 1.0,
            note=f"durability=full (the default); p50 {percentile(full, 50):.3f} ms over {len(full)} writes, fsynced",
        ),
        Result(
            "store: single trade write p99, durability=normal",
            round(n99, 3),
            "ms",
            "(no goal; opt-in: survives a crash of pmbot, not a power loss)",
            None,
            note=f"WAL, synchronous=NORMAL; p50 {percentile(normal, 50):.3f} ms over {len(normal)} writes",
        ),
    ]


def bench_batch_insert(tmp: Path) -> Result:
    store = SQLiteStore(tmp / "batch.db")
    total, batch = 200_000, 10_000
    batches = [_fills(start, batch) for start in range(0, total, batch)]  # built outside the timing
    t = time.perf_counter()
    for b in batches:
        store.record_fills(b)
    elapsed = time.perf_counter() - t
    store.close()
    rate = total / elapsed
    return Result(
        "store: batched trade inserts",
        round(rate),
        "rows/s",
        ">= 50000 rows/s (positions updated in the same transaction)",
        rate >= 50_000,
        note=f"{total} rows in batches of {batch}",
    )


def bench_stats(tmp: Path) -> list[Result]:
    store = SQLiteStore(tmp / "stats.db", synchronous="OFF")  # loading speed only; not the measured part
    total, batch = 1_000_000, 50_000
    for start in range(0, total, batch):
        store.record_fills(_fills(start, batch, tokens=20_000))
    store.close()
    store = SQLiteStore(tmp / "stats.db")
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        rows = store.stats()
        runs.append((time.perf_counter() - t) * 1000)
    assert sum(r.trades for r in rows) > 0
    filtered = []
    for _ in range(3):
        t = time.perf_counter()
        store.stats(Query(strategy="snipe", since=T0 + 50_000_000, dry_run=True))
        filtered.append((time.perf_counter() - t) * 1000)
    store.close()
    return [
        Result(
            "stats: 1M trades, all strategies",
            round(median(runs), 1),
            "ms",
            "<= 1000 ms",
            median(runs) <= 1000,
            note=f"first run {runs[0]:.0f} ms",
        ),
        Result("stats: 1M trades, filtered", round(median(filtered), 1), "ms", "<= 1000 ms", median(filtered) <= 1000),
    ]


def run() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="pmbot-bench-") as d:
        tmp = Path(d)
        return [*bench_single_write(tmp), bench_batch_insert(tmp), *bench_stats(tmp)]
