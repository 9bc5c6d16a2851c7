"""Named, ordered schema migrations for the SQLite store, recorded in `schema_migrations`.

A migration is applied once, in its own transaction, on open. Never edit a released migration:
add a new one. Money columns are *_micro INTEGERs (6-decimal units), times are epoch-ms INTEGERs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sqlite_utils import Database

Migration = Callable[[Database], None]


def _initial(db: Database) -> None:
    db.table("orders").create(
        {
            "id": int,
            "key": str,
            "strategy": str,
            "token_id": str,
            "condition_id": str,
            "side": str,
            "price_micro": int,
            "size_micro": int,
            "order_type": str,
            "dry_run": int,
            "status": str,
            "venue_order_id": str,
            "error": str,
            "filled_size_micro": int,
            "created_at": int,
            "updated_at": int,
            "metadata": str,
        },
        pk="id",
        not_null={
            "key",
            "strategy",
            "token_id",
            "side",
            "price_micro",
            "size_micro",
            "order_type",
            "dry_run",
            "status",
            "filled_size_micro",
            "created_at",
            "updated_at",
        },
        defaults={"condition_id": "", "filled_size_micro": 0, "metadata": "{}"},
    )
    db.table("orders").create_index(["key"], unique=True)
    db.table("orders").create_index(["status"])
    db.table("orders").create_index(["strategy", "created_at"])
    db.table("orders").create_index(["venue_order_id"])

    db.table("order_events").create(
        {"id": int, "order_key": str, "status": str, "ts": int, "detail": str},
        pk="id",
        not_null={"order_key", "status", "ts"},
        defaults={"detail": ""},
    )
    db.table("order_events").create_index(["order_key"])

    db.table("trades").create(
        {
            "id": int,
            "trade_id": str,
            "kind": str,
            "strategy": str,
            "token_id": str,
            "condition_id": str,
            "market": str,
            "outcome": str,
            "side": str,
            "price_micro": int,
            "size_micro": int,
            "notional_micro": int,
            "fee_micro": int,
            "realized_pnl_micro": int,
            "dry_run": int,
            "liquidity": str,
            "order_key": str,
            "venue_order_id": str,
            "ts": int,
            "metadata": str,
        },
        pk="id",
        not_null={
            "trade_id",
            "kind",
            "strategy",
            "token_id",
            "side",
            "price_micro",
            "size_micro",
            "notional_micro",
            "fee_micro",
            "realized_pnl_micro",
            "dry_run",
            "ts",
        },
        defaults={"condition_id": "", "market": "", "outcome": "", "liquidity": "taker", "metadata": "{}"},
    )
    db.table("trades").create_index(["trade_id"], unique=True)
    db.table("trades").create_index(["ts"])
    # Covering index for stats(): GROUP BY strategy, dry_run (and a ts range within each group) reads only
    # this index, in order, with no sort and no table access (1 M trades: ~1.2 s -> ~0.4 s).
    db.table("trades").create_index(
        ["strategy", "dry_run", "ts", "kind", "notional_micro", "fee_micro", "realized_pnl_micro"],
        index_name="trades_rollup",
    )

    db.table("positions").create(
        {
            "strategy": str,
            "token_id": str,
            "dry_run": int,
            "condition_id": str,
            "market": str,
            "outcome": str,
            "size_micro": int,
            "cost_micro": int,
            "realized_pnl_micro": int,
            "state": str,
            "mark_price_micro": int,
            "opened_at": int,
            "updated_at": int,
        },
        pk=("strategy", "token_id", "dry_run"),
        not_null={"size_micro", "cost_micro", "realized_pnl_micro", "state", "opened_at", "updated_at"},
        defaults={"condition_id": "", "market": "", "outcome": ""},
    )
    db.table("positions").create_index(["state"])
    db.table("positions").create_index(["token_id"])

    db.table("learnings").create(
        {
            "id": int,
            "created_at": int,
            "strategy": str,
            "category": str,
            "content": str,
            "confidence": str,
            "metadata": str,
        },
        pk="id",
        not_null={"created_at", "strategy", "category", "content"},
        defaults={"metadata": "{}"},
    )
    db.table("reflections").create(
        {"id": int, "created_at": int, "strategy": str, "period": str, "summary": str, "metadata": str},
        pk="id",
        not_null={"created_at", "strategy", "period", "summary"},
        defaults={"metadata": "{}"},
    )
    db.table("execution_logs").create(
        {
            "id": int,
            "ts": int,
            "level": str,
            "event": str,
            "strategy": str,
            "order_key": str,
            "message": str,
            "latency_us": int,
            "metadata": str,
        },
        pk="id",
        not_null={"ts", "level", "event"},
        defaults={"message": "", "metadata": "{}"},
    )
    db.table("execution_logs").create_index(["ts"])
    db.table("execution_logs").create_index(["order_key"])


def _state(db: Database) -> None:
    # Small named JSON documents the executor must keep across restarts (the kill switch, above all).
    db.table("state").create({"name": str, "value": str, "updated_at": int}, pk="name", not_null={"value"})


def _redeemable(db: Database) -> None:
    # A live position on a resolved market: its PnL is realized, but the USDC arrives only when the
    # winning shares are redeemed on chain. Until then the payout is owed, not held.
    db.table("positions").add_column("redeemable_micro", int, not_null_default=0)
    db.table("positions").add_column("redeemed_at", int)


# Rejections recorded before `not_sent` existed whose reason shows nothing reached the venue: they become
# `not_sent`, so their keys may be used again (issue 8). Venue and risk-gate rejections are left final.
_NEVER_SENT_ERRORS = (
    "market parameters unavailable:%",
    "%: not sent",
    "%: not executed",
    "no order book:%",
    "never signed",
)


def _not_sent(db: Database) -> None:
    where = " OR ".join("error LIKE ?" for _ in _NEVER_SENT_ERRORS)
    db.execute(
        f"UPDATE orders SET status = 'not_sent' WHERE status = 'rejected' AND filled_size_micro = 0 AND ({where})",
        _NEVER_SENT_ERRORS,
    )


def _order_wallet(db: Database) -> None:
    # Which wallet (live: the maker address; dry-run: "paper:<run id>", one paper wallet per process) an
    # order belongs to: reconciliation settles only its own wallet's orders. '' marks rows from before.
    db.execute("ALTER TABLE orders ADD COLUMN wallet TEXT NOT NULL DEFAULT ''")
    db.table("orders").create_index(["wallet", "status"])


def _mode_keys(db: Database) -> None:
    # Idempotency keys are per mode: a dry-run order's stored key carries the "dry-run:" prefix (see
    # pmbot.executor.engine.DRY_RUN_PREFIX), so the same signal can later be executed live.
    # events and trades first: they find the dry-run orders by their old keys
    for table, col in (("order_events", "order_key"), ("trades", "order_key"), ("orders", "key")):
        where = {
            "orders": "dry_run = 1",
            "order_events": "order_key IN (SELECT key FROM orders WHERE dry_run = 1)",
            "trades": "dry_run = 1 AND order_key IS NOT NULL",
        }[table]
        db.execute(f"UPDATE {table} SET {col} = 'dry-run:' || {col} WHERE {where} AND {col} NOT LIKE 'dry-run:%'")


def legacy_learning(r: dict[str, Any]) -> dict[str, Any]:
    """A `learnings` row of 0001 in the seed's columns. Nothing is lost: the old strategy and
    confidence move into metadata, the content becomes the description (its first line the title)."""
    meta = _loads(r.get("metadata"))
    meta.setdefault("strategy", r.get("strategy") or "")
    if r.get("confidence") is not None:
        meta.setdefault("confidence", str(r["confidence"]))
    content = r.get("content") or ""
    first = content.strip().splitlines()[0] if content.strip() else "(untitled)"
    return {
        "id": r["id"],
        "timestamp": r["created_at"],
        "phase": "",
        "category": r.get("category") or "",
        "title": first if len(first) <= 120 else first[:119] + "…",
        "description": content,
        "code_snippet": "",
        "impact": "",
        "metadata": json.dumps(meta, separators=(",", ":"), sort_keys=True),
    }


def legacy_reflection(r: dict[str, Any]) -> dict[str, Any]:
    """A `reflections` row of 0001 in the seed's columns: period -> phase, summary -> what_worked,
    the old strategy and metadata into metrics."""
    metrics = _loads(r.get("metadata"))
    metrics.setdefault("strategy", r.get("strategy") or "")
    return {
        "id": r["id"],
        "timestamp": r["created_at"],
        "phase": r.get("period") or "",
        "what_worked": r.get("summary") or "",
        "what_failed": "",
        "next_improvements": "",
        "metrics": json.dumps(metrics, separators=(",", ":"), sort_keys=True),
    }


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {"legacy_metadata": text}
    return value if isinstance(value, dict) else {"legacy_metadata": value}


# The seed's journal tables, column for column and in its order (a positional INSERT of the seed's
# six execution_logs values still works: pmbot's own columns come after, with defaults).
LEARNING_COLUMNS = (
    "id", "timestamp", "phase", "category", "title", "description", "code_snippet", "impact", "metadata"
)  # fmt: skip
REFLECTION_COLUMNS = ("id", "timestamp", "phase", "what_worked", "what_failed", "next_improvements", "metrics")
EXECUTION_LOG_COLUMNS = (
    "id", "timestamp", "level", "strategy", "message", "metadata", "event", "order_key", "latency_us"
)  # fmt: skip


def _seed_journal(db: Database) -> None:
    # SQLite cannot drop or reorder columns in place: build each table anew, copy, swap.
    old_learnings = list(db.query("SELECT * FROM learnings ORDER BY id"))
    old_reflections = list(db.query("SELECT * FROM reflections ORDER BY id"))
    db.execute("DROP TABLE learnings")
    db.execute("DROP TABLE reflections")
    db.execute(
        "CREATE TABLE learnings (id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, phase TEXT NOT NULL DEFAULT '',"
        " category TEXT NOT NULL DEFAULT '', title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',"
        " code_snippet TEXT NOT NULL DEFAULT '', impact TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute(
        "CREATE TABLE reflections (id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, phase TEXT NOT NULL DEFAULT '',"
        " what_worked TEXT NOT NULL DEFAULT '', what_failed TEXT NOT NULL DEFAULT '',"
        " next_improvements TEXT NOT NULL DEFAULT '', metrics TEXT NOT NULL DEFAULT '{}')"
    )
    _copy(db, "learnings", LEARNING_COLUMNS, [legacy_learning(r) for r in old_learnings])
    _copy(db, "reflections", REFLECTION_COLUMNS, [legacy_reflection(r) for r in old_reflections])
    db.execute("CREATE INDEX learnings_timestamp ON learnings (timestamp)")
    db.execute("CREATE INDEX learnings_phase ON learnings (phase, category)")
    db.execute("CREATE INDEX reflections_timestamp ON reflections (timestamp)")

    db.execute("ALTER TABLE execution_logs RENAME TO execution_logs_0001")
    db.execute(
        "CREATE TABLE execution_logs (id INTEGER PRIMARY KEY, timestamp INTEGER NOT NULL, level TEXT NOT NULL"
        " DEFAULT 'info', strategy TEXT, message TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}',"
        " event TEXT NOT NULL DEFAULT 'log', order_key TEXT, latency_us INTEGER)"
    )
    db.execute(
        "INSERT INTO execution_logs (id, timestamp, level, strategy, message, metadata, event, order_key, latency_us)"
        " SELECT id, ts, level, strategy, COALESCE(message, ''), COALESCE(metadata, '{}'), event, order_key,"
        " latency_us FROM execution_logs_0001 ORDER BY id"
    )
    db.execute("DROP TABLE execution_logs_0001")  # its indexes go with it
    db.execute("CREATE INDEX execution_logs_timestamp ON execution_logs (timestamp)")
    db.execute("CREATE INDEX execution_logs_order_key ON execution_logs (order_key)")
    # `pmbot stats --history`: the metrics snapshots, newest first, without a scan
    db.execute("CREATE INDEX execution_logs_event ON execution_logs (event, timestamp)")


def _copy(db: Database, table: str, cols: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    if rows:
        db.conn.executemany(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
            [tuple(r[c] for c in cols) for r in rows],
        )


def _decisions_backtests(db: Database) -> None:
    # Every strategy decision (signal, skip with its reason, warning, error), so reports show why it bought
    # or did not. `mode` is live | dry-run | backtest; `run_id` is the process's run (or the backtest's run
    # id): a backtest's decisions never appear under the dry-run or live filters.
    db.table("decisions").create(
        {
            "id": int,
            "ts": int,
            "strategy": str,
            "kind": str,
            "reason": str,
            "condition_id": str,
            "token_id": str,
            "intent_key": str,
            "detail": str,
            "run_id": str,
            "mode": str,
            "dry_run": int,
        },
        pk="id",
        not_null={"ts", "strategy", "kind", "reason", "run_id", "mode", "dry_run"},
        defaults={"condition_id": "", "token_id": "", "detail": "{}"},
    )
    db.table("decisions").create_index(["mode", "ts"])
    db.table("decisions").create_index(["run_id", "ts"])
    db.table("decisions").create_index(["strategy", "ts"])
    # Backtest results, kept apart from the orders/trades ledger: a backtest never writes there.
    # `result` is the run's JSON summary exactly as `pmbot backtest snipe --json` prints it.
    db.table("backtest_runs").create(
        {"run_id": str, "created_at": int, "strategy": str, "scenario": str, "params": str, "result": str},
        pk="run_id",
        not_null={"created_at", "strategy", "scenario", "params", "result"},
    )
    db.table("backtest_runs").create_index(["created_at"])
    # The runner reads an order's own fills back (to tell its strategy of fills that came after the answer).
    db.table("trades").create_index(["order_key"], index_name="trades_order_key")


def _copy_tables(db: Database) -> None:
    # `pmbot copy`: every decision about a target's fill (copied with our order's key, or skipped with its
    # reason), naming the fill (tx hash, log index), its time, each source's arrival and our order's time.
    db.execute(
        "CREATE TABLE copy_decisions (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, mode TEXT NOT NULL,"
        " dry_run INTEGER NOT NULL, run_id TEXT NOT NULL, strategy TEXT NOT NULL, target TEXT NOT NULL,"
        " target_label TEXT NOT NULL DEFAULT '', decision TEXT NOT NULL, reason TEXT NOT NULL,"
        " fill_id TEXT NOT NULL, tx_hash TEXT NOT NULL DEFAULT '', log_index INTEGER,"
        " condition_id TEXT NOT NULL DEFAULT '', token_id TEXT NOT NULL DEFAULT '', outcome TEXT NOT NULL DEFAULT '',"
        " side TEXT NOT NULL DEFAULT '', target_price_micro INTEGER, target_size_micro INTEGER, target_ts INTEGER,"
        " seen_chain_ms INTEGER, seen_rtds_ms INTEGER, seen_data_api_ms INTEGER, intent_key TEXT, order_key TEXT,"
        " order_ts INTEGER, order_price_micro INTEGER, order_size_micro INTEGER,"
        " order_status TEXT NOT NULL DEFAULT '', detail TEXT NOT NULL DEFAULT '{}')"
    )
    db.execute("CREATE INDEX copy_decisions_target_ts ON copy_decisions (mode, target, ts)")
    db.execute("CREATE INDEX copy_decisions_ts ON copy_decisions (ts)")
    db.execute("CREATE INDEX copy_decisions_tx ON copy_decisions (tx_hash)")
    # Per mode, target and source: the target time up to which that source's fills were all decided.
    db.execute(
        "CREATE TABLE copy_watermarks (mode TEXT NOT NULL, target TEXT NOT NULL, source TEXT NOT NULL,"
        " ts INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (mode, target, source))"
    )


def _copy_analyses(db: Database) -> None:
    # `pmbot copy analyze`: one row per analysis of a target, so `pmbot copy` can warn at start when the last
    # verdict on its target was toxic. Money is exact decimal text (a replay's PnL has more than 6 places);
    # `result` is the analysis exactly as `--json` prints it.
    db.table("copy_analyses").create(
        {
            "id": int,
            "created_at": int,
            "wallet": str,
            "name": str,
            "source": str,
            "start_ms": int,
            "end_ms": int,
            "delay_ms": int,
            "slippage": str,
            "trades": int,
            "copied": int,
            "target_pnl": str,
            "copy_pnl": str,
            "share_kept": str,
            "maker_share": str,
            "verdict": str,
            "result": str,
        },
        pk="id",
        not_null={
            "created_at",
            "wallet",
            "name",
            "source",
            "delay_ms",
            "slippage",
            "trades",
            "copied",
            "target_pnl",
            "copy_pnl",
            "verdict",
            "result",
        },
        defaults={"name": ""},
    )
    db.table("copy_analyses").create_index(["wallet", "created_at"])
    db.table("copy_analyses").create_index(["name", "created_at"])


# The paper wallet that existing dry-run positions and trades belong to: the default one (settings
# `executor.paper_wallet` = "default"), so that a dry-run set-up restarted after the upgrade sees them.
DEFAULT_PAPER_WALLET = "paper:default"  # = pmbot.store.models.DEFAULT_PAPER_WALLET (a released migration's own copy)


def _paper_wallets(db: Database) -> None:
    # Positions per paper wallet: a dry-run process's paper wallet (and its risk gate) is seeded from its
    # own wallet's positions only, so two dry-run processes can never both sell the same paper shares.
    # Live positions and trades keep wallet ''. SQLite cannot change a primary key: the table is rebuilt.
    db.execute("ALTER TABLE trades ADD COLUMN wallet TEXT NOT NULL DEFAULT ''")
    db.execute("UPDATE trades SET wallet = ? WHERE dry_run = 1", [DEFAULT_PAPER_WALLET])
    db.execute(
        """CREATE TABLE positions_new (
            strategy TEXT NOT NULL,
            token_id TEXT NOT NULL,
            dry_run INTEGER NOT NULL,
            wallet TEXT NOT NULL DEFAULT '',
            condition_id TEXT DEFAULT '',
            market TEXT DEFAULT '',
            outcome TEXT DEFAULT '',
            size_micro INTEGER NOT NULL,
            cost_micro INTEGER NOT NULL,
            realized_pnl_micro INTEGER NOT NULL,
            state TEXT NOT NULL,
            mark_price_micro INTEGER,
            opened_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            redeemable_micro INTEGER NOT NULL DEFAULT 0,
            redeemed_at INTEGER,
            PRIMARY KEY (strategy, token_id, dry_run, wallet)
        )"""
    )
    cols = (
        "strategy, token_id, dry_run, condition_id, market, outcome, size_micro, cost_micro, realized_pnl_micro,"
        " state, mark_price_micro, opened_at, updated_at, redeemable_micro, redeemed_at"
    )
    db.execute(
        f"INSERT INTO positions_new ({cols}, wallet)"
        f" SELECT {cols}, CASE WHEN dry_run = 1 THEN ? ELSE '' END FROM positions",
        [DEFAULT_PAPER_WALLET],
    )
    db.execute("DROP TABLE positions")
    db.execute("ALTER TABLE positions_new RENAME TO positions")
    db.execute("CREATE INDEX idx_positions_state ON positions (state)")
    db.execute("CREATE INDEX idx_positions_token_id ON positions (token_id)")
    db.execute("CREATE INDEX idx_positions_wallet ON positions (dry_run, wallet)")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_initial", _initial),
    ("0002_state", _state),
    ("0003_redeemable", _redeemable),
    ("0004_not_sent", _not_sent),
    ("0005_order_wallet", _order_wallet),
    ("0006_mode_keys", _mode_keys),
    ("0007_seed_journal", _seed_journal),
    ("0008_decisions_backtests", _decisions_backtests),
    ("0009_copy", _copy_tables),
    ("0010_copy_analyses", _copy_analyses),
    ("0011_paper_wallets", _paper_wallets),
]


def applied(db: Database) -> list[str]:
    if "schema_migrations" not in db.table_names():
        return []
    return [r["name"] for r in db.query("SELECT name FROM schema_migrations ORDER BY name")]


def migrate(db: Database) -> list[str]:
    """Apply pending migrations. Safe when several processes open one file at once."""
    conn = db.conn
    done: list[str] = []
    for name, fn in MIGRATIONS:
        if name in applied(db):
            continue
        conn.execute("BEGIN IMMEDIATE")  # serialises concurrent openers; re-check under the lock
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            if conn.execute("SELECT 1 FROM schema_migrations WHERE name = ?", (name,)).fetchone():
                conn.execute("COMMIT")
                continue
            fn(db)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)", (name, int(time.time() * 1000))
            )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        done.append(name)
    return done


__all__ = ["MIGRATIONS", "applied", "legacy_learning", "legacy_reflection", "migrate"]
