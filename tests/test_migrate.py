"""`pmbot migrate`: SQLite → PostgreSQL, against a real server: verified, idempotent, resumable after an
interruption or a SIGKILL, conflicts refused and listed, --dry-run and bad input write nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest

from pmbot.cli import main
from pmbot.migrate import canonical_json, run_migration
from pmbot.store.models import ExecutionLog, Fill, Learning, OrderRecord, OrderStatus, OrderType, Reflection, Side
from pmbot.store.postgres import PostgresStore
from pmbot.store.sqlite import SQLiteStore
from tests.services import AUTH_USER, PostgresServer, free_port

REPO = Path(__file__).resolve().parents[1]
T0 = 1_795_000_000_000
NOV_2025 = 1_763_000_000_000  # a month with no partition made ahead


def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return list(cur.fetchall()) if cur.description else []


def make_source(path: Path, trades: int = 3000) -> str:
    s = SQLiteStore(path, synchronous="OFF")
    s.record_fills(
        Fill(
            trade_id=f"t{i:06d}",
            strategy=("snipe", "copy")[i % 2],
            token_id=f"tok{i % 40}",
            condition_id=f"0xc{i % 40}",
            side=Side.BUY if i % 3 else Side.SELL,
            price=D("0.01") * (10 + i % 80),
            size=D(1 + i % 9),
            fee=D("0.001") * (i % 3),
            dry_run=bool(i % 4),
            ts=(NOV_2025 if i % 10 == 0 else T0) + i * 1000,
            market="BTC up or down",
            outcome="Up",
            metadata={"i": i, "note": "ünïcode"} if i % 7 == 0 else {},
        )
        for i in range(trades)
    )
    for k in range(25):
        s.insert_order(
            OrderRecord(
                key=f"k{k:03d}",
                strategy="snipe",
                token_id="tok1",
                side=Side.BUY,
                price=D("0.97"),
                size=D(10),
                order_type=OrderType.FOK,
                dry_run=k % 2 == 0,
                metadata={"signal": {"p": 0.97, "n": [1, 2]}},
            )
        )
        if k % 3 == 0:
            s.update_order(f"k{k:03d}", OrderStatus.SUBMITTED)
    s.set_state("risk", {"tripped": False, "reason": None})
    s.add_learning(
        Learning(
            "late flips are rare",
            "41 of 1200 books flipped in the last minute",
            phase="phase-1",
            category="timing",
            code_snippet="if secs_left < 60: skip()",
            impact="high",
            metadata={"n": 41, "confidence": 0.8},
        )
    )
    s.add_reflection(
        Reflection("2026-11-23", "mirrored 12 fills", "2 late", "watch the ack", metrics={"pnl": "3.2", "fills": 12})
    )
    s.log_execution(ExecutionLog("ack", "accepted", strategy="snipe", order_key="k000", latency_ms=D("1.234")))
    s.close()
    return f"sqlite:///{path}"


@pytest.fixture
def source(tmp_path: Path) -> str:
    return make_source(tmp_path / "src.db")


def counts(url: str) -> dict[str, int]:
    tables = ["orders", "order_events", "trades", "trade_keys", "positions", "learnings", "reflections"]
    every = (*tables, "execution_logs", "state")
    return {t: int(sql(url, f"SELECT count(*) FROM {t}")[0][0]) for t in every}  # noqa: S608 (constant names)


def test_copies_everything_verified_and_the_store_reads_it(source: str, pg_empty_url: str) -> None:
    report = run_migration(source, pg_empty_url, batch=700)
    assert report.verified and report.conflict_count == 0
    by = {t.table: t for t in report.tables}
    assert by["trades"].copied == 3000 and by["orders"].copied == 25 and by["positions"].copied == 40
    assert all(t.source_checksum == t.target_checksum for t in report.tables)
    assert counts(pg_empty_url)["trade_keys"] == 3000
    assert "trades_y2025m11" in {r[0] for r in sql(pg_empty_url, "SELECT relname FROM pg_class")}

    src = SQLiteStore(source.removeprefix("sqlite:///"))
    pg = PostgresStore(pg_empty_url)
    try:
        assert pg.stats() == src.stats()
        assert pg.list_positions() == src.list_positions()
        assert pg.list_trades() == src.list_trades()
        assert pg.list_orders() == src.list_orders()
        assert pg.order_events("k000") == src.order_events("k000")
        assert pg.get_state("risk") == src.get_state("risk")
        assert pg.list_learnings() == src.list_learnings()
        assert pg.list_reflections() == src.list_reflections() != []
        assert pg.list_execution_logs() == src.list_execution_logs()
        # Sequences moved past the copied ids: new rows do not collide.
        pg.insert_order(OrderRecord("new", "snipe", "tok1", Side.BUY, D("0.5"), D(5), OrderType.GTC, True))
        assert pg.record_fill(Fill("fresh", "snipe", "tok1", Side.BUY, D("0.5"), D(1), True, T0))
        pg.add_learning(Learning("x", "y"))
        pg.add_reflection(Reflection("p", "z"))
        pg.log_execution(ExecutionLog("ack"))
    finally:
        pg.close()
        src.close()


def test_rerun_copies_nothing_and_stays_verified(source: str, pg_empty_url: str) -> None:
    run_migration(source, pg_empty_url)
    again = run_migration(source, pg_empty_url)
    assert again.copied == 0 and again.verified
    assert all(t.present == t.source_rows for t in again.tables)


def test_interrupted_run_resumes_and_ends_identical(source: str, pg_empty_url: str, tmp_path: Path) -> None:
    reference = run_migration(source, pg_empty_url.rsplit("/", 1)[0] + "/postgres", dry_run=True)
    calls = 0

    def ctrl_c(table: str, done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if table == "trades" and done >= 1500:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_migration(source, pg_empty_url, batch=500, progress=ctrl_c)
    partial = counts(pg_empty_url)
    assert partial["orders"] == 25 and partial["trades"] == partial["trade_keys"] == 1500  # whole batches only
    assert partial["positions"] == 0
    resumed = run_migration(source, pg_empty_url, batch=500)
    by = {t.table: t for t in resumed.tables}
    assert by["trades"].present == 1500 and by["trades"].copied == 1500 and by["orders"].copied == 0
    assert resumed.verified
    assert {t.table: t.source_checksum for t in resumed.tables} == {
        t.table: t.source_checksum for t in reference.tables
    }


def test_sigkill_mid_copy_then_rerun_is_identical(tmp_path: Path, pg_empty_url: str) -> None:
    src = make_source(tmp_path / "big.db", trades=40_000)
    env = {**os.environ, "COLUMNS": "200"}
    cmd = [sys.executable, "-m", "pmbot", "migrate", "--from", src, "--to", pg_empty_url, "--batch", "200"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    copied = 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            copied = int(sql(pg_empty_url, "SELECT count(*) FROM trade_keys")[0][0])
        except psycopg.Error:
            copied = 0  # schema not there yet
        if copied >= 2000:
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = run_migration(src, pg_empty_url, batch=5000)
    assert done.verified
    # If the kill landed mid-copy (the usual case), the rerun copied only the rest.
    by = {t.table: t for t in done.tables}
    assert by["trades"].present + by["trades"].copied == 40_000
    assert counts(pg_empty_url)["trades"] == 40_000


def test_conflicts_are_listed_and_never_overwritten(
    source: str, pg_empty_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run_migration(source, pg_empty_url)
    sql(pg_empty_url, "UPDATE orders SET price_micro = 1 WHERE key = 'k003'")
    sql(pg_empty_url, "UPDATE trades SET fee_micro = fee_micro + 1 WHERE trade_id = 't000042'")
    sql(pg_empty_url, "DELETE FROM learnings")
    # Same JSON, spelled differently, is not a conflict.
    sql(pg_empty_url, """UPDATE orders SET metadata = '{"signal": {"n": [1, 2], "p": 0.970}}' WHERE key = 'k004'""")
    code = main(["migrate", "--from", source, "--to", pg_empty_url, "--json"])
    out, err = capsys.readouterr()
    assert code == 2
    report = json.loads(out)
    assert {(c["table"], tuple(c["key"]), tuple(c["columns"])) for c in report["conflicts"]} == {
        ("orders", ("k003",), ("price_micro",)),
        ("trades", ("t000042",), ("fee_micro",)),
    }
    assert err.strip().splitlines() == [
        "error: 2 row(s) in the target differ from the source and were left as they are (hint: they are listed"
        " above; resolve them in PostgreSQL, then run migrate again)"
    ]
    assert sql(pg_empty_url, "SELECT price_micro FROM orders WHERE key = 'k003'") == [(1,)]  # not overwritten
    assert sql(pg_empty_url, "SELECT count(*) FROM learnings") == [(1,)]  # the missing row came back
    by = {t["table"]: t for t in report["tables"]}
    assert by["learnings"]["copied"] == 1 and by["learnings"]["verified"] is True
    assert by["orders"]["verified"] is False and by["orders"]["conflicts"] == 1


def test_dry_run_writes_nothing(source: str, pg_empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--from", source, "--to", pg_empty_url, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing written" in out and "to copy" in out and "3000" in out
    assert sql(pg_empty_url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    # …and on a partly copied target it reports what is missing, still writing nothing.
    run_migration(source, pg_empty_url)
    sql(pg_empty_url, "DELETE FROM trades WHERE trade_id < 't001000'")
    sql(pg_empty_url, "DELETE FROM trade_keys WHERE trade_id < 't001000'")
    before = counts(pg_empty_url)
    report = run_migration(source, pg_empty_url, dry_run=True)
    assert {t.table: t.copied for t in report.tables}["trades"] == 1000
    assert counts(pg_empty_url) == before


def test_cli_table_and_rate(source: str, pg_empty_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["migrate", "--from", source, "--to", pg_empty_url, "--batch", "1000"]) == 0
    out = capsys.readouterr().out
    for word in ("trades", "positions", "source checksum", "target checksum", "rows/s", "verified"):
        assert word in out


def _no_schema(url: str) -> bool:
    return sql(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_bad_inputs_are_one_line_exit_2_and_write_nothing(
    source: str, pg_empty_url: str, pg_srv: PostgresServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = pg_srv.port
    cases = {
        "missing source": (
            ["--from", f"sqlite:///{tmp_path / 'nope.db'}", "--to", pg_empty_url],
            "source database not found",
        ),
        "source not sqlite": (["--from", "postgresql://x@h/db", "--to", pg_empty_url], "--from must be a sqlite:///"),
        "target not postgres": (["--from", source, "--to", "sqlite:///x.db"], "--to must be a postgresql:// URL"),
        "bad url": (["--from", source, "--to", "postgresql://u@127.0.0.1:notaport/db"], "bad PostgreSQL URL"),
        "unreachable": (["--from", source, "--to", f"postgresql://u@127.0.0.1:{free_port()}/db"], "cannot reach"),
        "credentials": (
            [
                "--from",
                source,
                "--to",
                f"postgresql://{AUTH_USER}:wrong@127.0.0.1:{port}/{pg_empty_url.rsplit('/', 1)[1]}",
            ],
            "refused the credentials",
        ),
        "no database": (
            ["--from", source, "--to", f"postgresql://postgres@127.0.0.1:{port}/nosuchdb"],
            "does not exist",
        ),
    }
    for name, (args, expected) in cases.items():
        code = main(["migrate", *args])
        _, err = capsys.readouterr()
        lines = err.strip().splitlines()
        assert code == 2, name
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], (name, lines)
        assert "wrong" not in lines[0] or name != "credentials"
        assert "Traceback" not in err
    assert _no_schema(pg_empty_url)
    assert not (tmp_path / "nope.db").exists()  # not created by looking


def test_source_with_unknown_migration_is_refused(tmp_path: Path, pg_empty_url: str) -> None:
    import sqlite3

    src = make_source(tmp_path / "s.db", trades=10)
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute("INSERT INTO schema_migrations VALUES ('9999_future', 0)")
    conn.commit()
    conn.close()
    from pmbot.errors import StoreError

    with pytest.raises(StoreError, match="9999_future"):
        run_migration(src, pg_empty_url)
    assert _no_schema(pg_empty_url)


def test_canonical_json_compares_values() -> None:
    assert canonical_json('{"b":1,"a":[1.0, 2]}') == canonical_json('{"a": [1, 2.00], "b": 1e0}')
    assert canonical_json('{"a":"1"}') != canonical_json('{"a":1}')
    assert canonical_json("{}") == "{}" and canonical_json(None) is None
    assert canonical_json('{"a":123456789012345678901234567890}') != canonical_json(
        '{"a":123456789012345678901234567891}'
    )


def test_source_behind_this_version_is_refused(tmp_path: Path, pg_empty_url: str) -> None:
    import sqlite3

    from pmbot.errors import StoreError

    src = make_source(tmp_path / "old.db", trades=10)
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute("DELETE FROM schema_migrations WHERE name = '0006_mode_keys'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema is behind"):
        run_migration(src, pg_empty_url)
    assert _no_schema(pg_empty_url)
