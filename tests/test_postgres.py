"""The PostgreSQL store beyond the shared contract: schema, partitions, URLs and errors, and a fleet of
processes sharing one database (positions, idempotency keys), against a real server."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from pmbot.errors import ConfigError, PmbotError, ServiceUnavailableError, StoreError
from pmbot.money import to_micro
from pmbot.store import ledger, migrations, open_store, pg_migrations
from pmbot.store.cache import CachedStore
from pmbot.store.models import Fill, PositionState, Side, TradeKind
from pmbot.store.postgres import PostgresStore
from tests.pg_workers import TOKENS, fleet_fill, fleet_order
from tests.services import AUTH_PASSWORD, AUTH_USER, PostgresServer, free_port

if TYPE_CHECKING:
    from pmbot.sim.testing import SimServer

REPO = Path(__file__).resolve().parents[1]
T0 = 1_795_000_000_000


def sql(url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query.encode(), params)
        return list(cur.fetchall()) if cur.description else []


# --------------------------------------------------------------------------------------- migrations


def test_every_sqlite_migration_has_a_postgres_counterpart_in_order() -> None:
    """A new SQLite migration without its PostgreSQL twin fails here (add a line to pg_migrations)."""
    sqlite_names = [name for name, _ in migrations.MIGRATIONS]
    pg_names = [name for name, _ in pg_migrations.MIGRATIONS]
    missing = [n for n in sqlite_names if n not in pg_names]
    assert not missing, f"no PostgreSQL counterpart in pmbot/store/pg_migrations.py for: {missing}"
    assert pg_names == sqlite_names, "same names, same order"


def test_schema_types_and_migrations_recorded(pg_empty_url: str) -> None:
    PostgresStore(pg_empty_url).close()
    PostgresStore(pg_empty_url).close()  # a second open applies nothing
    names = [r[0] for r in sql(pg_empty_url, "SELECT name FROM schema_migrations ORDER BY name")]
    assert names == [n for n, _ in pg_migrations.MIGRATIONS]
    types = dict(
        ((t, c), d)
        for t, c, d in sql(
            pg_empty_url,
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'",
        )
    )
    for table in ("orders", "trades", "learnings", "execution_logs"):
        assert types[(table, "metadata")] == "jsonb"
    assert types[("reflections", "metrics")] == "jsonb"
    for table in ("learnings", "reflections", "execution_logs"):  # the seed's journal (0007): epoch ms
        assert types[(table, "timestamp")] == "bigint"
    assert types[("state", "value")] == "jsonb"
    money = [(t, c) for (t, c) in types if c.endswith("_micro")]
    assert money and all(types[k] == "bigint" for k in money)
    (kind,) = sql(pg_empty_url, "SELECT relkind FROM pg_class WHERE relname = 'trades'")[0]
    assert kind == "p"  # partitioned


# The same old journal rows, as 0006 left them, in both backends: 0007 must turn them into the same rows.
_OLD_LEARNINGS = [
    (1000, "snipe", "timing", "late flips are rare\nafter t-10s", "0.8", '{"n": 41}'),
    (1500, "copy", "risk", "x" * 130, None, "[1, 2]"),  # a long first line; metadata that is not an object
    (1500, "copy", "", "   ", None, None),  # no content: "(untitled)"; NULL metadata
]
_OLD_REFLECTIONS = [(2000, "copy", "2026-11-23", "mirrored 12 fills", '{"pnl": "3.2"}'), (2500, "s", "p2", "", None)]
_OLD_LOGS = [
    (3000, "info", "ack", "snipe", "k1", "accepted", 1234, "{}"),
    (3500, "warn", "metrics", None, None, None, None, None),  # NULL message / metadata: '' / {}
]


def _old_journal_sqlite(path: Path) -> None:
    import sqlite3

    from sqlite_utils import Database

    db = Database(sqlite3.connect(str(path), isolation_level=None))
    db.conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in migrations.MIGRATIONS:
        if name == "0007_seed_journal":
            break
        fn(db)
        db.conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    c = db.conn
    c.executemany(
        "INSERT INTO learnings (created_at, strategy, category, content, confidence, metadata) VALUES (?,?,?,?,?,?)",
        _OLD_LEARNINGS,
    )
    c.executemany(
        "INSERT INTO reflections (created_at, strategy, period, summary, metadata) VALUES (?,?,?,?,?)",
        _OLD_REFLECTIONS,
    )
    c.executemany(
        "INSERT INTO execution_logs (ts, level, event, strategy, order_key, message, latency_us, metadata)"
        " VALUES (?,?,?,?,?,?,?,?)",
        _OLD_LOGS,
    )
    db.close()


def _old_journal_pg(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(b"CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        for name, step in pg_migrations.MIGRATIONS:
            if name == "0007_seed_journal":
                break
            if callable(step):
                step(conn)
            elif step.strip():
                conn.execute(step.encode())
            conn.execute("INSERT INTO schema_migrations VALUES (%s, 0)", (name,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO learnings (created_at, strategy, category, content, confidence, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s::jsonb)",
                _OLD_LEARNINGS,
            )
            cur.executemany(
                "INSERT INTO reflections (created_at, strategy, period, summary, metadata)"
                " VALUES (%s, %s, %s, %s, %s::jsonb)",
                _OLD_REFLECTIONS,
            )
            cur.executemany(
                "INSERT INTO execution_logs (ts, level, event, strategy, order_key, message, latency_us, metadata)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                _OLD_LOGS,
            )


def test_seed_journal_moves_old_rows_as_sqlite_does(pg_empty_url: str, tmp_path: Path) -> None:
    from pmbot.store.models import ExecutionLog, Learning, Query, Reflection
    from pmbot.store.sqlite import SQLiteStore

    _old_journal_sqlite(tmp_path / "old.db")
    _old_journal_pg(pg_empty_url)
    lite, pg = SQLiteStore(tmp_path / "old.db"), PostgresStore(pg_empty_url)
    try:
        learnings = pg.list_learnings()
        assert learnings == lite.list_learnings() and len(learnings) == 3
        assert pg.list_reflections() == lite.list_reflections() and len(pg.list_reflections()) == 2
        assert pg.list_execution_logs() == lite.list_execution_logs() and len(pg.list_execution_logs()) == 2
        first = learnings[-1]  # oldest last
        assert (first.id, first.timestamp, first.title, first.category) == (1, 1000, "late flips are rare", "timing")
        assert first.metadata == {"n": 41, "strategy": "snipe", "confidence": "0.8"}
        assert {lr.title for lr in learnings} >= {"(untitled)", "x" * 119 + "…"}
        (log,) = pg.list_execution_logs(event="metrics")
        assert (log.message, log.metadata, log.level, log.ts) == ("", {}, "warn", 3500)
        # filters and order as on SQLite
        for q in (Query(since=1500), Query(limit=1), Query(strategy="snipe")):
            assert pg.list_learnings(q) == lite.list_learnings(q)
            assert pg.list_execution_logs(q) == lite.list_execution_logs(q)
        assert pg.list_learnings(category="risk") == lite.list_learnings(category="risk") != []
        assert pg.list_reflections(phase="p2") == lite.list_reflections(phase="p2") != []
        # new rows continue after the kept ids, in both backends
        for store in (lite, pg):
            assert store.add_learning(Learning("next")) == 4
            assert store.add_reflection(Reflection("p3", what_failed="f")) == 3
            assert store.log_execution(ExecutionLog("ack")) == 3
    finally:
        lite.close()
        pg.close()
    by_position = "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position"
    cols = {
        t: [r[0] for r in sql(pg_empty_url, by_position, t)] for t in ("learnings", "reflections", "execution_logs")
    }
    assert tuple(cols["learnings"]) == migrations.LEARNING_COLUMNS
    assert tuple(cols["reflections"]) == migrations.REFLECTION_COLUMNS
    assert tuple(cols["execution_logs"]) == migrations.EXECUTION_LOG_COLUMNS
    indexes = {
        r[0]: r[1]
        for r in sql(
            pg_empty_url,
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN"
            " ('learnings', 'reflections', 'execution_logs')",
        )
    }
    assert any('(event, "timestamp")' in d for d in indexes.values()), indexes
    assert any("(phase, category)" in d for d in indexes.values()), indexes
    assert sum('("timestamp")' in d for d in indexes.values()) == 3, indexes


def test_pmbot_migrate_copies_a_journal_that_0007_moved(pg_empty_url: str, tmp_path: Path) -> None:
    from pmbot.migrate import run_migration
    from pmbot.store.sqlite import SQLiteStore

    _old_journal_sqlite(tmp_path / "old.db")
    SQLiteStore(tmp_path / "old.db").close()  # applies 0007 (migrate refuses a source that is behind)
    report = run_migration(f"sqlite:///{tmp_path / 'old.db'}", pg_empty_url)
    by = {t.table: t for t in report.tables}
    assert report.verified
    assert {t: by[t].copied for t in ("learnings", "reflections", "execution_logs")} == {
        "learnings": 3,
        "reflections": 2,
        "execution_logs": 2,
    }
    lite, pg = SQLiteStore(tmp_path / "old.db"), PostgresStore(pg_empty_url)
    try:
        assert pg.list_learnings() == lite.list_learnings()
        assert pg.list_reflections() == lite.list_reflections()
        assert pg.list_execution_logs() == lite.list_execution_logs()
    finally:
        lite.close()
        pg.close()


def test_concurrent_opens_migrate_once(pg_empty_url: str) -> None:
    code = "import sys; from pmbot.store.postgres import PostgresStore; PostgresStore(sys.argv[1]).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code, pg_empty_url], cwd=REPO) for _ in range(4)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    assert sql(pg_empty_url, "SELECT count(*) FROM schema_migrations")[0][0] == len(pg_migrations.MIGRATIONS)


# --------------------------------------------------------------------------------------- partitions


def partitions(url: str) -> set[str]:
    found = sql(
        url,
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'trades'::regclass",
    )
    return {str(r[0]) for r in found}


def fill(n: int, ts: int, side: Side = Side.BUY, size: str = "10", token: str = "tok") -> Fill:
    return Fill(
        trade_id=f"p{n}", strategy="s", token_id=token, side=side, price=D("0.5"), size=D(size), dry_run=True, ts=ts
    )


def test_partitions_created_ahead_and_on_demand(pg_url: str, clock) -> None:
    store = PostgresStore(pg_url, clock=clock)
    try:
        now = pg_migrations.month_of(int(clock.now * 1000))
        ahead = {pg_migrations.partition_name(m) for m in range(now - 1, now + 4)}
        assert ahead <= partitions(pg_url)
        old = 1_577_836_800_000  # 2020-01-01: no partition yet, made before the row lands
        assert store.record_fill(fill(1, old))
        assert "trades_y2020m01" in partitions(pg_url)
        rows = sql(pg_url, "SELECT tableoid::regclass::text FROM trades WHERE trade_id = 'p1'")
        assert rows == [("trades_y2020m01",)]

        # Inside a transaction that rolls back, the new partition goes with it; a later write recreates it.
        def failing() -> None:
            with store.transaction():
                store.record_fill(fill(2, 1_420_070_400_000))  # 2015-01
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            failing()
        assert "trades_y2015m01" not in partitions(pg_url)
        assert store.record_fill(fill(3, 1_420_070_400_000))
        assert {t.fill.trade_id for t in store.list_trades()} == {"p1", "p3"}
    finally:
        store.close()


def test_stats_plan_reads_the_rollup_index(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        store.record_fills(
            [
                Fill(f"x{n}", f"s{n % 20}", f"t{n % 7}", Side.BUY, D("0.5"), D(1), bool(n % 2), T0 + n)
                for n in range(20_000)
            ]
        )
        sql(pg_url, "VACUUM ANALYZE trades")
        plan = "\n".join(
            str(r[0])
            for r in sql(
                pg_url,
                "EXPLAIN SELECT strategy, dry_run, sum(fee_micro) FROM trades"
                " WHERE strategy = 's3' AND dry_run = 1 AND ts >= 0 GROUP BY strategy, dry_run",
            )
        )
        assert "Index Only Scan using trades_y2026m11_strategy_dry_run_ts" in plan, plan  # the rollup index
    finally:
        store.close()


# ------------------------------------------------------------------------------------ URLs and errors


def test_open_store_selects_postgres_and_wraps_the_cache(pg_url: str, redis_url: str) -> None:
    plain = open_store(pg_url)
    cached = open_store(pg_url, redis_url=redis_url)
    try:
        assert isinstance(plain, PostgresStore)
        assert isinstance(cached, CachedStore) and isinstance(cached.inner, PostgresStore)
        assert cached.record_fill(fill(1, T0))
        pos = plain.get_position("s", "tok", True)
        assert pos is not None and pos.size == D(10)
    finally:
        plain.close()
        cached.close()


def test_postgres_with_redis_down_falls_back(pg_url: str) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    store = open_store(pg_url, redis_url=dead)
    try:
        assert store.record_fill(fill(1, T0))
        pos = store.get_position("s", "tok", True)
        assert pos is not None and pos.size == D(10)
    finally:
        store.close()


def test_unreachable_server_is_one_clear_line() -> None:
    with pytest.raises(ServiceUnavailableError) as e:
        open_store(f"postgresql://pmbot@127.0.0.1:{free_port()}/pmbot")
    line = e.value.one_line()
    assert "cannot reach PostgreSQL at 127.0.0.1:" in line and "\n" not in line


def test_wrong_password_is_reported_without_the_password(pg_srv: PostgresServer) -> None:
    url = f"postgresql://{AUTH_USER}:not-the-password@127.0.0.1:{pg_srv.port}/postgres"
    with pytest.raises(ServiceUnavailableError) as e:
        open_store(url)
    line = e.value.one_line()
    assert "refused the credentials" in line and "not-the-password" not in line
    # the right one works
    ok = f"postgresql://{AUTH_USER}:{AUTH_PASSWORD}@127.0.0.1:{pg_srv.port}/postgres"
    psycopg.connect(ok).close()


@pytest.mark.parametrize(
    "url", ["postgresql://u@127.0.0.1:notaport/db", "postgresql://u@127.0.0.1:5432/", "postgres://u@127.0.0.1"]
)
def test_malformed_url_is_refused_before_connecting(url: str) -> None:
    with pytest.raises(StoreError) as e:
        open_store(url)
    assert "bad PostgreSQL URL" in e.value.one_line()


def test_sqlite_path_rejects_a_postgres_url_clearly() -> None:
    from pmbot.store import sqlite_path

    with pytest.raises(ConfigError, match="PostgreSQL URL"):
        sqlite_path("postgresql://u@h/db")


# ---------------------------------------------------------------------------------------------- fleet


def run_workers(args: list[list[str]]) -> list[dict[str, object]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.pg_workers", *a], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for a in args
    ]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=180)
        assert p.returncode == 0, stderr.decode()
        out.append(json.loads(stdout.decode().strip().splitlines()[-1]))
    return out


def test_fleet_of_writers_loses_no_position_update(pg_url: str, redis_url: str) -> None:
    """Four processes record fills (singles and batches) on the same three tokens at once; every
    position must equal the replay of its trades in the order the database applied them."""
    seed = PostgresStore(pg_url)
    seed.record_fills(
        [
            Fill(
                trade_id=f"seed-{t}",
                strategy="fleet",
                token_id=t,
                side=Side.BUY,
                price=D("0.5"),
                size=D(10_000),
                dry_run=True,
                ts=T0 - 1,
            )
            for t in TOKENS
        ]
    )
    workers, n = 4, 150
    results = run_workers([["fills", pg_url, str(w), str(n), redis_url] for w in range(workers)])
    per_worker = n - n // 10 + (n // 10) * 4  # singles + 4 per batch
    assert [r["new"] for r in results] == [per_worker] * workers
    trades = seed.list_trades()
    assert len(trades) == workers * per_worker + len(TOKENS)
    # Replay in id order (ids are drawn while the position's lock is held: the order of application).
    ordered = sql(
        pg_url,
        "SELECT token_id, side, kind, price_micro, size_micro, fee_micro, realized_pnl_micro FROM trades ORDER BY id",
    )
    books = {t: ledger.Book() for t in TOKENS}
    for token, side, kind, price, size, fee, realized in ordered:
        _, r = ledger.apply(books[str(token)], Side(side), TradeKind(kind), int(price), int(size), int(fee))  # type: ignore[call-overload]
        assert r == realized
    for t in TOKENS:
        pos = seed.get_position("fleet", t, True)
        assert pos is not None and pos.state is PositionState.OPEN
        assert (to_micro(pos.size), to_micro(pos.cost), to_micro(pos.realized_pnl)) == (
            books[t].size,
            books[t].cost,
            books[t].realized,
        )
        mine = [x for x in trades if x.fill.token_id == t]
        bought = sum(x.fill.size for x in mine if x.fill.side is Side.BUY)
        sold = sum(x.fill.size for x in mine if x.fill.side is Side.SELL)
        assert pos.size == bought - sold  # the plain sum: no update lost
        assert pos.realized_pnl == sum(x.realized_pnl for x in mine)
    # Re-recording everything from another process changes nothing.
    again = run_workers([["fills", pg_url, "0", str(n)]])
    assert again == [{"new": 0}]
    seed.close()


def test_idempotency_key_holds_across_processes_with_redis_down(pg_url: str) -> None:
    """Two pmbot processes (each a store behind a dead Redis) insert the same intents at once: every key
    is won exactly once, through the database's unique key alone."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    n = 300
    a, b = run_workers([["orders", pg_url, "0", str(n), dead], ["orders", pg_url, "1", str(n), dead]])
    won_a, won_b = set(a["won"]), set(b["won"])  # type: ignore[arg-type]
    assert won_a.isdisjoint(won_b) and won_a | won_b == set(range(n))
    assert sql(pg_url, "SELECT count(*), count(DISTINCT order_key) FROM order_events") == [(n, n)]
    store = PostgresStore(pg_url)
    try:
        assert store.insert_order(fleet_order(0)) is False
    finally:
        store.close()


def test_store_error_root(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        with pytest.raises(PmbotError):
            store.update_order("missing", "live")  # type: ignore[arg-type]
    finally:
        store.close()


def test_same_fill_twice_in_one_batch_counts_once(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    try:
        assert store.record_fills([fill(1, T0), fill(1, T0), fill(2, T0 + 1)]) == 2
        assert store.record_fills([fill(2, T0 + 1), fill(3, T0 + 2)]) == 1
        pos = store.get_position("s", "tok", True)
        assert pos is not None and pos.size == D(30)
    finally:
        store.close()


def test_fleet_fill_is_deterministic() -> None:
    assert fleet_fill(1, 5) == fleet_fill(1, 5)


# ------------------------------------------------------------------------------ settings and the CLI


def test_storage_backend_must_agree_with_the_url(pg_url: str) -> None:
    from pmbot.config import load_settings

    ok = load_settings(environ={"PMBOT_STORAGE_BACKEND": "postgres", "PMBOT_DATABASE_URL": pg_url}, env_file=None)
    assert ok.settings.storage_backend == "postgres"
    assert (
        load_settings(environ={"PMBOT_STORAGE_BACKEND": "sqlite"}, env_file=None).settings.storage_backend == "sqlite"
    )
    for env in (
        {"PMBOT_STORAGE_BACKEND": "postgres"},
        {"PMBOT_STORAGE_BACKEND": "sqlite", "PMBOT_DATABASE_URL": pg_url},
    ):
        with pytest.raises(ConfigError) as e:
            load_settings(environ=env, env_file=None)
        assert e.value.one_line().startswith("storage_backend (PMBOT_STORAGE_BACKEND, from environment): is ")


def test_reports_and_config_check_on_postgres(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pmbot.cli import main

    store = PostgresStore(pg_url)
    store.record_fills([fill(1, T0), fill(2, T0 + 1, Side.SELL, size="4")])
    store.close()
    monkeypatch.setenv("PMBOT_DATABASE_URL", pg_url)
    monkeypatch.setenv("PMBOT_STORAGE_BACKEND", "postgres")
    for cmd in ("positions", "trades", "stats"):
        assert main([cmd, "--json"]) == 0
    assert main(["config", "check"]) in (0, 2)  # the wallet check may fail; the database line is what we read


def test_config_check_reports_postgres(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    from pmbot.config import load_settings
    from pmbot.health import run_checks

    PostgresStore(pg_url).close()
    settings = load_settings(environ={"PMBOT_DATABASE_URL": pg_url}, env_file=None).settings
    (db,) = [c for c in run_checks(settings) if c.name == "database"]
    assert db.ok and db.detail.startswith("PostgreSQL ") and "schema current" in db.detail
    dead = load_settings(
        environ={"PMBOT_DATABASE_URL": f"postgresql://x@127.0.0.1:{free_port()}/x"}, env_file=None
    ).settings
    (db,) = [c for c in run_checks(dead) if c.name == "database"]
    assert not db.ok and "cannot reach PostgreSQL" in db.detail


def test_nan_in_metadata_is_an_input_error_and_writes_nothing(pg_url: str) -> None:
    from pmbot.errors import InputError
    from pmbot.store.models import Learning

    store = PostgresStore(pg_url)
    try:
        with pytest.raises(InputError, match="PostgreSQL refused a value"):
            store.add_learning(Learning("s", metadata={"edge": float("nan")}))
        with pytest.raises(InputError):
            store.record_fills(
                [
                    fill(1, T0),
                    Fill("p2", "s", "tok", Side.BUY, D("0.5"), D(1), True, T0, metadata={"x": float("nan")}),
                ]
            )
        assert store.list_learnings() == [] and store.list_trades() == []
        assert store.get_position("s", "tok", True) is None
        assert store.record_fill(fill(3, T0))  # the connection is usable afterwards
    finally:
        store.close()


def test_server_restart_is_a_store_error_then_recovers(pg_srv: PostgresServer) -> None:
    url = pg_srv.create_database("restart")
    store = PostgresStore(url)
    try:
        assert store.record_fill(fill(1, T0))
        # Terminate every session of this database (what a server restart does to a pool's connections).
        sql(pg_srv.url(), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'restart'")
        outcomes = []
        for n in range(2, 6):
            try:
                outcomes.append(store.record_fill(fill(n, T0 + n)))
            except StoreError as e:
                outcomes.append(e.one_line())
        assert outcomes[-1] is True  # the pool replaced the dead connections
        errors = [o for o in outcomes if isinstance(o, str)]
        assert all(e.startswith("PostgreSQL at 127.0.0.1:") for e in errors), errors
    finally:
        store.close()


@pytest.mark.parametrize("redis", ["none", "down"])
def test_two_executors_on_one_postgres_execute_each_intent_once(
    sim: SimServer, pg_url: str, tmp_path: Path, redis: str
) -> None:
    """Two executors (each with its own store and pool, in its own thread and event loop; Redis not
    configured, or configured and down, so no claims are shared through it) receive the same 60 intents
    in opposite orders at once: every key is executed by exactly one of them; the other answers
    duplicate. The database's unique key alone does it, with no deadlock whatever the order."""
    import asyncio
    import threading

    from tests.test_executor import Rig, intent, settings_for

    extra = {"PMBOT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"} if redis == "down" else {}
    settings = settings_for(sim, pg_url, **extra)
    intents = [intent(sim, n) for n in range(60)]
    results: dict[str, list[object]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2, timeout=30)

    def run(name: str, order: list[object]) -> None:
        async def main() -> None:
            rig = Rig(sim, tmp_path / name, settings)
            try:
                # two hosts of a dry-run fleet: each its own paper wallet (the database holds each one's lock)
                ex = (await rig.executor(dry_run=True, paper_wallet=name)).executor
                start.wait()
                results[name] = await ex.submit_many(order)  # type: ignore[arg-type]
            finally:
                await rig.close()

        try:
            asyncio.run(main())
        except BaseException as e:
            errors.append(e)

    threads = [
        threading.Thread(target=run, args=("a", intents)),
        threading.Thread(target=run, args=("b", list(reversed(intents)))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    executed: dict[str, int] = {}
    for name in ("a", "b"):
        for r in results[name]:
            if not r.duplicate:  # type: ignore[attr-defined]
                executed[r.key] = executed.get(r.key, 0) + 1  # type: ignore[attr-defined]
    from pmbot.executor.engine import DRY_RUN_PREFIX

    assert executed == {DRY_RUN_PREFIX + i.key: 1 for i in intents}
    assert sql(pg_url, "SELECT count(*), count(DISTINCT key) FROM orders") == [(60, 60)]


def test_update_state_is_atomic_across_stores(pg_url: str) -> None:
    """Two stores (two pools, as two processes) increment one state document 50 times each, at once,
    starting from nothing: no increment is lost and the document is created once."""
    import threading

    stores = [PostgresStore(pg_url), PostgresStore(pg_url)]
    start = threading.Barrier(2, timeout=30)

    def bump(store: PostgresStore) -> None:
        start.wait()
        for _ in range(50):
            store.update_state("kill", lambda cur: {"n": (cur or {"n": 0})["n"] + 1})

    threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert stores[0].get_state("kill") == {"n": 100}
    finally:
        for s in stores:
            s.close()
