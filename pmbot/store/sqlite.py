"""The SQLite store (sqlite-utils on one connection, WAL mode; a second, the checkpointer's, only checkpoints).

Durability: `synchronous=FULL` in WAL mode (the default, `[store] durability = "full"`) fsyncs the
WAL on every commit, so a committed order intent or fill survives a power cut, not just a crash of
pmbot. That matters here more than anywhere: a lost write-ahead record can become a duplicate order
after a restart. It costs ~0.2 ms per commit on this class of disk (see bench/). `durability =
"normal"` (synchronous=NORMAL) writes the commit to the WAL without an fsync (the WAL is synced at
checkpoints): it survives a crash or SIGKILL of the process, since the OS holds the pages, but the
last commits may be lost on a power loss or OS crash. Only by the operator's choice.

Checkpoints never run inside a commit: the write connection has `wal_autocheckpoint=0` and a
background thread (pmbot/store/checkpoint.py) copies the WAL into the database file with PASSIVE
checkpoints on a connection of its own. That keeps either guarantee exactly: a commit is durable
when its WAL frames are (fsynced by the COMMIT itself with FULL; in the OS's cache with NORMAL), and
a checkpoint only copies committed frames, fsyncing the WAL before and the database file after, so
the WAL is reused from its start only once its content is safely in the database file. What it
removes is the commit that, every ~1000 WAL pages, also did that copy and its two fsyncs inline
(the executor's write-ahead commit p99). `synchronous=OFF` (backtests' throwaway files) keeps
SQLite's inline autocheckpoint: nothing waits on those commits.

Writes use BEGIN IMMEDIATE: several pmbot processes may share one file, and taking the write
lock up front avoids the deadlock of two readers upgrading at once.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from pmbot.errors import InputError, StoreError
from pmbot.money import to_micro
from pmbot.private_files import touch_private
from pmbot.store import ledger, rows
from pmbot.store.checkpoint import Checkpointer, CheckpointPolicy
from pmbot.store.copy_rows import (
    COPY_DECISION_COLUMNS,
    CopyDecisionRow,
    copy_decision_from_row,
    copy_decision_values,
)
from pmbot.store.migrations import migrate
from pmbot.store.models import (
    FINAL_STATUSES,
    BacktestRun,
    CopyAnalysisRow,
    DecisionRow,
    ExecutionLog,
    Fill,
    Learning,
    OrderEvent,
    OrderRecord,
    OrderStatus,
    Position,
    PositionState,
    Query,
    Reflection,
    Side,
    StrategyStats,
    TradeKind,
    TradeRow,
)
from pmbot.timeutil import Clock

_CHUNK = 500  # bound on SQL variables per statement
_BOOK_COLUMNS = rows.BOOK_COLUMNS
_UPSERT_POSITION = (
    f"INSERT INTO positions ({rows.POSITION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    f" ON CONFLICT ({rows.POSITION_KEY}) DO UPDATE SET"
    " condition_id = excluded.condition_id, market = excluded.market, outcome = excluded.outcome,"
    " size_micro = excluded.size_micro, cost_micro = excluded.cost_micro,"
    " realized_pnl_micro = excluded.realized_pnl_micro, state = excluded.state,"
    " mark_price_micro = COALESCE(excluded.mark_price_micro, mark_price_micro),"
    " opened_at = excluded.opened_at, updated_at = excluded.updated_at"
)
_BUY, _FILL = Side.BUY.value, TradeKind.FILL.value  # plain str: Enum attribute lookups are slow in 3.11
_INSERT_TRADE = (
    f"INSERT INTO trades ({', '.join(rows.TRADE_COLUMNS)}) VALUES ({', '.join('?' * len(rows.TRADE_COLUMNS))})"
)
_INSERT_TRADE_OR_IGNORE = _INSERT_TRADE.replace("INSERT", "INSERT OR IGNORE", 1)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")  # OFF: backtests' throwaway files only


class SQLiteStore:
    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock = time.time,
        synchronous: str = "FULL",
        checkpoint: CheckpointPolicy | None = None,
    ) -> None:
        """`checkpoint`: when the background checkpointer runs (the default policy if None); it runs for
        every `synchronous` but OFF (see the module docstring)."""
        if synchronous not in _SYNCHRONOUS:  # it goes into a PRAGMA verbatim
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        self.synchronous = synchronous
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self._clock = clock
        self._lock = threading.RLock()
        self._depth = 0  # > 0 inside a transaction(): nested writes join it
        self._checkpointer: Checkpointer | None = None
        conn: sqlite3.Connection | None = None
        try:
            # 0700 directories, a 0600 file: SQLite gives its -wal / -shm the database file's mode.
            touch_private(self.path)
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=10)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA busy_timeout=10000")
            # 64 MiB page cache (default 2 MiB): the trades indexes stay in memory while a batch lands.
            conn.execute("PRAGMA cache_size=-65536")
            policy = checkpoint or CheckpointPolicy()
            if synchronous != "OFF":
                conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's job, off the commit path
                # A WAL restarted after an excursion (a long reader held checkpoints back) is cut back to this.
                conn.execute(f"PRAGMA journal_size_limit={int(policy.journal_size_limit)}")
            self.db = Database(conn)
            migrate(self.db)
            if synchronous != "OFF":
                self._checkpointer = Checkpointer(
                    self.path, synchronous=synchronous, write_lock=self._lock, policy=policy
                )
                # A store dropped without close() still stops its thread (the thread holds no reference to it).
                self._finalizer = weakref.finalize(self, self._checkpointer.close)
        except (sqlite3.Error, OSError) as e:
            if conn is not None:
                conn.close()
            raise StoreError(f"cannot open database {self.path}: {e}") from None

    def close(self) -> None:
        # The checkpointer first: the write connection's close is then the last one, which checkpoints
        # what is left and removes the WAL, as SQLite does for the last connection.
        if self._checkpointer is not None:
            self._finalizer()
        self.db.close()

    def _now(self) -> int:
        return int(self._clock() * 1000)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group several writes into one durable commit (one fsync). Writes inside join it; an
        exception rolls all of them back. The executor's write-ahead batches use this."""
        with self._write():
            yield

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self.db.conn
        with self._lock:
            if self._depth:  # inside transaction(): join it
                yield conn
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"database is busy or read-only: {e}") from None
            self._depth += 1
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            else:
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    # a COMMIT that failed (disk full, I/O error) can leave the transaction open: every
                    # later BEGIN would then fail, and a relaxed write could not restore synchronous
                    if conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                    raise
                if self._checkpointer is not None:
                    self._checkpointer.committed()
            finally:
                self._depth -= 1

    @contextmanager
    def _relaxed_write(self) -> Iterator[sqlite3.Connection]:
        """A write whose commit is not fsynced (synchronous=NORMAL for this one transaction): for reports
        written in bulk while trading (the decision log), whose fsync would hold the event loop while an
        entry may fire. In WAL mode the commit is in the WAL when it returns, so it survives a crash or
        SIGKILL of pmbot; the next durable commit (any order's write-ahead record) or checkpoint fsyncs
        the WAL, which makes it durable on power loss too. Never for orders, fills or positions. Inside a
        transaction() it joins that one, whose commit is durable."""
        if self._depth or self.synchronous in ("OFF", "NORMAL"):
            with self._write() as conn:
                yield conn
            return
        with self._lock:
            conn = self.db.conn
            try:
                conn.execute("PRAGMA synchronous=NORMAL")
                with self._write() as conn:
                    yield conn
            finally:
                # never left at NORMAL: the next order's commit must be fsynced (the pragma cannot change
                # inside a transaction, hence the rollback of one a failure left open)
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                conn.execute(f"PRAGMA synchronous={self.synchronous}")

    def _query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.db.query(sql, params))

    # ---------------------------------------------------------------- orders

    def insert_order(self, order: OrderRecord) -> bool:
        now = self._now()
        row = rows.order_to_row(order, now)
        with self._write() as conn:
            cur = conn.execute(_insert_order_sql(tuple(row)), tuple(row.values()))
            if cur.rowcount == 0:
                return False
            conn.execute(
                "INSERT INTO order_events (order_key, status, ts, detail) VALUES (?, ?, ?, ?)",
                (order.key, row["status"], row["created_at"], "intent stored"),
            )
        return True

    def get_order(self, key: str) -> OrderRecord | None:
        found = self._query("SELECT * FROM orders WHERE key = ?", (key,))
        return rows.row_to_order(found[0]) if found else None

    def get_orders(self, keys: Iterable[str]) -> dict[str, OrderRecord]:
        wanted = list(dict.fromkeys(keys))
        out: dict[str, OrderRecord] = {}
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[i : i + 500]
            for row in self._query(f"SELECT * FROM orders WHERE key IN ({', '.join('?' * len(chunk))})", chunk):
                order = rows.row_to_order(row)
                out[order.key] = order
        return out

    def update_order(
        self,
        key: str,
        status: OrderStatus,
        *,
        venue_order_id: str | None = None,
        error: str | None = None,
        filled_size: Decimal | None = None,
        detail: str = "",
    ) -> OrderRecord:
        self.set_order_status(
            key, status, venue_order_id=venue_order_id, error=error, filled_size=filled_size, detail=detail
        )
        order = self.get_order(key)
        assert order is not None
        return order

    def set_order_status(
        self,
        key: str,
        status: OrderStatus,
        *,
        venue_order_id: str | None = None,
        error: str | None = None,
        filled_size: Decimal | None = None,
        detail: str = "",
    ) -> None:
        status = OrderStatus(status)
        filled = None if filled_size is None else to_micro(filled_size)
        now = self._now()
        with self._write() as conn:
            # One statement checks and moves: a final order stays final (it may only be set to the same
            # status again). No row changed: look why (the error path only), so the usual move costs no
            # SELECT first (every order's status moves at least twice; the executor's settle is one).
            cur = conn.execute(_SET_STATUS_SQL, (status.value, venue_order_id, error, filled, now, key, status.value))
            if cur.rowcount == 0:
                found = conn.execute("SELECT status FROM orders WHERE key = ?", (key,)).fetchone()
                if found is None:
                    raise StoreError(f"no order with key {key!r}")
                current = OrderStatus(found[0])
                raise StoreError(f"order {key!r} is already {current.value}; cannot become {status.value}")
            conn.execute(
                "INSERT INTO order_events (order_key, status, ts, detail) VALUES (?, ?, ?, ?)",
                (key, status.value, now, detail or (error or "")),
            )

    def list_orders(
        self, *, statuses: Iterable[OrderStatus] | None = None, query: Query | None = None
    ) -> list[OrderRecord]:
        clause, params = rows.where(query, ts_col="created_at")
        if statuses is not None:
            wanted = [OrderStatus(s).value for s in statuses]
            if not wanted:
                return []
            clause += (" AND " if clause else " WHERE ") + f"status IN ({', '.join('?' * len(wanted))})"
            params += wanted
        lim, lparams = rows.limit(query)
        found = self._query(f"SELECT * FROM orders{clause} ORDER BY created_at DESC, id DESC{lim}", params + lparams)
        return [rows.row_to_order(r) for r in found]

    def order_events(self, key: str) -> list[OrderEvent]:
        found = self._query("SELECT * FROM order_events WHERE order_key = ? ORDER BY id", (key,))
        return [rows.row_to_event(r) for r in found]

    # ------------------------------------------------------ fills, positions

    def record_fill(self, fill: Fill) -> bool:
        return self.record_fills([fill]) == 1

    def record_fills(self, fills: Iterable[Fill]) -> int:
        batch = list(fills)
        # Validate everything before the transaction: bad input writes nothing.
        micros = [rows.fill_micros(f) for f in batch]
        if not batch:
            return 0
        with self._write() as conn:
            if len(batch) == 1:  # the live path: INSERT OR IGNORE detects a duplicate without a SELECT
                return self._apply(conn, batch, micros, None, or_ignore=True)
            # Batches are optimistic: duplicates are rare, so look for them only if UNIQUE(trade_id) fires.
            conn.execute("SAVEPOINT batch")
            try:
                n = self._apply(conn, batch, micros, None, or_ignore=False)
            except sqlite3.IntegrityError:
                conn.execute("ROLLBACK TO SAVEPOINT batch")
                n = self._apply(
                    conn, batch, micros, self._existing_trade_ids(conn, [f.trade_id for f in batch]), or_ignore=False
                )
            conn.execute("RELEASE SAVEPOINT batch")
            return n

    def _apply(
        self,
        conn: sqlite3.Connection,
        batch: list[Fill],
        micros: list[tuple[int, int, int]],
        existing: set[str] | None,
        *,
        or_ignore: bool,
    ) -> int:
        """Apply fills to their positions (ledger) and write trades + positions. Returns trades written.

        `existing`: trade ids to skip (and duplicates within the batch), or None when the caller lets
        the UNIQUE index catch duplicates.
        """
        books, meta = self._load_books(conn, {(f.strategy, f.token_id, f.dry_run, f.wallet) for f in batch})
        trade_rows, positions = ledger.book_fills(batch, micros, books, meta, existing)
        if not trade_rows:
            return 0
        if or_ignore:
            if conn.execute(_INSERT_TRADE_OR_IGNORE, trade_rows[0]).rowcount == 0:
                return 0  # already recorded: nothing was written
        else:
            conn.executemany(_INSERT_TRADE, trade_rows)
        # Every loaded book is a key of this batch; unchanged ones rewrite as-is.
        conn.executemany(_UPSERT_POSITION, positions)
        return len(trade_rows)

    def _existing_trade_ids(self, conn: sqlite3.Connection, ids: list[str]) -> set[str]:
        found: set[str] = set()
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i : i + _CHUNK]
            sql = f"SELECT trade_id FROM trades WHERE trade_id IN ({', '.join('?' * len(chunk))})"
            found.update(r[0] for r in conn.execute(sql, chunk))
        return found

    def _load_books(
        self, conn: sqlite3.Connection, keys: set[ledger.BookKey]
    ) -> tuple[dict[ledger.BookKey, ledger.Book], dict[ledger.BookKey, ledger.Meta]]:
        if len(keys) == 1:  # the live path: a primary-key lookup
            (k,) = keys
            found = conn.execute(
                f"SELECT {_BOOK_COLUMNS} FROM positions"
                " WHERE strategy = ? AND token_id = ? AND dry_run = ? AND wallet = ?",
                (k[0], k[1], int(k[2]), k[3]),
            ).fetchall()
        else:  # batches: by token id (indexed), keeping only the wanted keys
            tokens = list({k[1] for k in keys})
            found = []
            for i in range(0, len(tokens), _CHUNK):
                chunk = tokens[i : i + _CHUNK]
                found += conn.execute(
                    f"SELECT {_BOOK_COLUMNS} FROM positions WHERE token_id IN ({', '.join('?' * len(chunk))})", chunk
                ).fetchall()
        return ledger.load_books(found, keys)

    def reverse_fill(self, trade_id: str, *, ts: int, reason: str = "") -> TradeRow | None:
        with self._write() as conn:  # read the fill and its position, write the reversal, under one lock
            found = self._query("SELECT * FROM trades WHERE trade_id = ? AND kind = ?", (trade_id, _FILL))
            rev_id = f"revert:{trade_id}"
            if not found or conn.execute("SELECT 1 FROM trades WHERE trade_id = ?", (rev_id,)).fetchone():
                return None  # not recorded here, not a fill, or reversed already
            orig = found[0]
            k = (orig["strategy"], orig["token_id"], bool(orig["dry_run"]), orig["wallet"] or "")
            books, meta = self._load_books(conn, {k})
            book = books.get(k)
            if book is None:  # a fill's position always exists; never invent one
                raise StoreError(f"fill {trade_id} has no position to reverse")
            history = self._query(  # the position's trades, to rebuild it without this fill (ledger.rebook)
                "SELECT * FROM trades WHERE strategy = ? AND token_id = ? AND dry_run = ? AND wallet = ?"
                " ORDER BY ts, id",
                (k[0], k[1], int(k[2]), k[3]),
            )
            books[k], row, unowed = ledger.take_back(orig, book, history, ts, reason)
            meta[k]["updated_at"] = max(meta[k]["updated_at"], ts)
            conn.execute(_INSERT_TRADE, row)
            conn.executemany(_UPSERT_POSITION, ledger.position_rows(books, meta))
            if unowed:  # the payout of shares that never came is not owed by the on-chain redemption
                conn.execute(
                    "UPDATE positions SET redeemable_micro = MAX(0, COALESCE(redeemable_micro, 0) - ?)"
                    " WHERE strategy = ? AND token_id = ? AND dry_run = ? AND wallet = ?",
                    (unowed, k[0], k[1], int(k[2]), k[3]),
                )
            found = self._query("SELECT * FROM trades WHERE trade_id = ?", (rev_id,))
        return rows.row_to_trade(found[0])

    def list_trades(self, query: Query | None = None) -> list[TradeRow]:
        clause, params = rows.where(query, ts_col="ts")
        if query is not None and query.state is not None:
            # Trades of positions in that state (--open / --closed).
            sub, sparams = rows.where(Query(state=query.state), ts_col=None, state=True)
            clause += (" AND " if clause else " WHERE ") + (
                f"({rows.POSITION_KEY}) IN (SELECT {rows.POSITION_KEY} FROM positions{sub})"
            )
            params += sparams
        lim, lparams = rows.limit(query)
        found = self._query(f"SELECT * FROM trades{clause} ORDER BY ts DESC, id DESC{lim}", params + lparams)
        return [rows.row_to_trade(r) for r in found]

    def fills_of_order(self, order_key: str) -> list[Fill]:
        found = self._query(
            "SELECT * FROM trades WHERE order_key = ? AND kind IN (?, ?) ORDER BY ts, id",
            (order_key, TradeKind.FILL.value, TradeKind.REVERSAL.value),
        )
        return rows.unreversed_fills(found)

    def get_position(self, strategy: str, token_id: str, dry_run: bool, wallet: str | None = None) -> Position | None:
        found = self._query(
            "SELECT * FROM positions WHERE strategy = ? AND token_id = ? AND dry_run = ? AND wallet = ?",
            (strategy, token_id, int(dry_run), rows.position_wallet(dry_run, wallet)),
        )
        return rows.row_to_position(found[0]) if found else None

    def list_positions(self, query: Query | None = None) -> list[Position]:
        clause, params = rows.where(query, ts_col="updated_at", state=True)
        lim, lparams = rows.limit(query)
        found = self._query(
            f"SELECT * FROM positions{clause} ORDER BY (state = 'open') DESC, updated_at DESC{lim}",
            params + lparams,
        )
        return [rows.row_to_position(r) for r in found]

    def set_marks(self, prices: Mapping[str, Decimal]) -> int:
        params = [(to_micro(p, exact=False), token) for token, p in prices.items()]
        with self._write() as conn:
            before = conn.total_changes
            conn.executemany("UPDATE positions SET mark_price_micro = ? WHERE token_id = ? AND state = 'open'", params)
            return conn.total_changes - before

    def _open_in(self, token_ids: list[str]) -> list[Position]:
        out: list[Position] = []
        for i in range(0, len(token_ids), _CHUNK):
            chunk = token_ids[i : i + _CHUNK]
            found = self._query(
                f"SELECT * FROM positions WHERE state = 'open' AND token_id IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            out.extend(rows.row_to_position(r) for r in found)
        return out

    def resolve_token(self, token_id: str, payout: Decimal, *, ts: int | None = None) -> int:
        return len(self.settle_token(token_id, payout, ts=ts))

    def settle_token(
        self, token_id: str, payout: Decimal, *, ts: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> list[TradeRow]:
        if payout < 0 or payout > 1:
            raise InputError(f"payout must be between 0 and 1, got {payout}")
        when = ts if ts is not None else self._now()
        with self._write() as conn:  # read the open positions and redeem them under one write lock
            held = [p for p in self._open_in([token_id]) if p.size > 0]
            if not held:
                return []
            # A position open here (under the write lock) is unpaid, even when its redeem id is taken.
            redemptions = ledger.unpaid_redemptions(
                (ledger.redemption(p, payout, when, metadata) for p in held),
                lambda ids: self._existing_trade_ids(conn, ids),
            )
            self.record_fills(redemptions)  # joins this transaction
            owed = ledger.redeemable_owed(redemptions, payout)
            conn.executemany(
                "UPDATE positions SET redeemable_micro = COALESCE(redeemable_micro, 0) + ?, redeemed_at = NULL"
                " WHERE strategy = ? AND token_id = ? AND dry_run = 0 AND wallet = ''",
                owed,
            )
            ids = [f.trade_id for f in redemptions]
            found = self._query(f"SELECT * FROM trades WHERE trade_id IN ({', '.join('?' * len(ids))})", ids)
        return [rows.row_to_trade(r) for r in found]

    def mark_redeemed(self, token_id: str, *, ts: int | None = None) -> int:
        when = ts if ts is not None else self._now()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE positions SET redeemable_micro = 0, redeemed_at = ?"
                " WHERE token_id = ? AND dry_run = 0 AND state = 'resolved' AND redeemable_micro > 0",
                (when, token_id),
            )
            return cur.rowcount

    def count_trades(self, query: Query | None = None) -> int:
        clause, params = rows.where(query, ts_col="ts")
        return int(self._query(f"SELECT COUNT(*) AS n FROM trades{clause}", params)[0]["n"])

    def count_positions(self, query: Query | None = None) -> int:
        clause, params = rows.where(query, ts_col="updated_at", state=True)
        return int(self._query(f"SELECT COUNT(*) AS n FROM positions{clause}", params)[0]["n"])

    def stats(self, query: Query | None = None) -> list[StrategyStats]:
        clause, params = rows.where(query, ts_col="ts")
        trade_sums = self._query(
            # a reversal (a fill whose trade FAILED at the venue) takes its fill back out of the counts
            "SELECT strategy, dry_run, SUM(kind = 'fill') - SUM(kind = 'reversal') AS n,"
            " SUM(CASE WHEN kind IN ('fill', 'reversal') THEN notional_micro ELSE 0 END) AS volume,"
            " SUM(fee_micro) AS fees, SUM(realized_pnl_micro) AS realized"
            f" FROM trades{clause} GROUP BY strategy, dry_run",
            params,
        )
        pclause, pparams = rows.where(
            Query(strategy=(query or Query()).strategy, dry_run=(query or Query()).dry_run), ts_col=None
        )
        positions = [rows.row_to_position(r) for r in self._query(f"SELECT * FROM positions{pclause}", pparams)]
        since = (query or Query()).since
        return build_stats(trade_sums, positions, since)

    # ---------------------------------------------------------------- journal

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        with self._write():
            pk = self.db.table(table).insert(row).last_pk
        assert pk is not None
        return int(pk)

    def _list(
        self, table: str, query: Query | None, eq: Mapping[str, str | None], *, strategy: bool = False
    ) -> list[dict[str, Any]]:
        q = query or Query()
        clause, params = rows.where(Query(strategy=q.strategy if strategy else None, since=q.since), ts_col="timestamp")
        for col, value in eq.items():
            if value is not None:
                clause += (" AND " if clause else " WHERE ") + f"{col} = ?"
                params.append(value)
        lim, lparams = rows.limit(query)
        return self._query(f"SELECT * FROM {table}{clause} ORDER BY timestamp DESC, id DESC{lim}", params + lparams)

    def add_learning(self, learning: Learning) -> int:
        return self._insert("learnings", rows.learning_to_row(learning, self._now()))

    def list_learnings(
        self, query: Query | None = None, *, phase: str | None = None, category: str | None = None
    ) -> list[Learning]:
        found = self._list("learnings", query, {"phase": phase, "category": category})
        return [rows.row_to_learning(r) for r in found]

    def add_reflection(self, reflection: Reflection) -> int:
        return self._insert("reflections", rows.reflection_to_row(reflection, self._now()))

    def list_reflections(self, query: Query | None = None, *, phase: str | None = None) -> list[Reflection]:
        return [rows.row_to_reflection(r) for r in self._list("reflections", query, {"phase": phase})]

    def get_state(self, name: str) -> dict[str, Any] | None:
        found = self._query("SELECT value FROM state WHERE name = ?", (name,))
        return json.loads(found[0]["value"]) if found else None

    def set_state(self, name: str, value: Mapping[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True, default=str)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO state (name, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, text, self._now()),
            )

    def update_state(self, name: str, merge: Callable[[dict[str, Any] | None], Mapping[str, Any]]) -> dict[str, Any]:
        with self._write() as conn:  # BEGIN IMMEDIATE: no other process writes between our read and write
            found = conn.execute("SELECT value FROM state WHERE name = ?", (name,)).fetchone()
            value = dict(merge(json.loads(found[0]) if found else None))
            conn.execute(
                "INSERT INTO state (name, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, json.dumps(value, sort_keys=True, default=str), self._now()),
            )
        return value

    def log_execution(self, entry: ExecutionLog) -> int:
        return self._insert("execution_logs", rows.log_to_row(entry, self._now()))

    def list_execution_logs(self, query: Query | None = None, *, event: str | None = None) -> list[ExecutionLog]:
        found = self._list("execution_logs", query, {"event": event}, strategy=True)
        return [rows.row_to_log(r) for r in found]

    # ---------------------------------------------------------------- decisions and backtests

    def record_decisions(self, decisions: Iterable[DecisionRow]) -> int:
        data = [
            (
                d.ts,
                d.strategy,
                d.kind,
                d.reason,
                d.condition_id,
                d.token_id,
                d.intent_key,
                json.dumps(dict(d.detail), sort_keys=True),
                d.run_id,
                d.mode,
                int(d.dry_run),
            )
            for d in decisions
        ]
        if not data:
            return 0
        with self._relaxed_write() as conn:
            conn.executemany(
                "INSERT INTO decisions (ts, strategy, kind, reason, condition_id, token_id, intent_key, detail,"
                " run_id, mode, dry_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                data,
            )
        return len(data)

    def list_decisions(
        self,
        *,
        mode: str | None = None,
        run_id: str | None = None,
        strategy: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[DecisionRow]:
        where: list[str] = []
        params: list[Any] = []
        if mode is not None:
            where.append("mode = ?")
            params.append(mode)
        elif run_id is None:
            where.append("mode != 'backtest'")
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if strategy is not None:
            where.append("strategy = ?")
            params.append(strategy)
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        sql = "SELECT * FROM decisions" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [
            DecisionRow(
                id=r["id"],
                ts=r["ts"],
                strategy=r["strategy"],
                kind=r["kind"],
                reason=r["reason"],
                condition_id=r["condition_id"] or "",
                token_id=r["token_id"] or "",
                intent_key=r["intent_key"],
                detail=json.loads(r["detail"] or "{}"),
                run_id=r["run_id"],
                mode=r["mode"],
            )
            for r in self._query(sql, params)
        ]

    def save_backtest(self, run: BacktestRun) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT INTO backtest_runs (run_id, created_at, strategy, scenario, params, result)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    run.run_id,
                    run.created_at,
                    run.strategy,
                    run.scenario,
                    json.dumps(run.params, sort_keys=True, default=str),
                    json.dumps(run.result, default=str),
                ),
            )

    def get_backtest(self, run_id: str) -> BacktestRun | None:
        found = self._query("SELECT * FROM backtest_runs WHERE run_id = ?", (run_id,))
        return _backtest(found[0]) if found else None

    def list_backtests(self, limit: int | None = None) -> list[BacktestRun]:
        sql = "SELECT * FROM backtest_runs ORDER BY created_at DESC, run_id DESC"
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_backtest(r) for r in self._query(sql, params)]

    # ---------------------------------------------------------------- copy trading (0009_copy)

    def record_copy_decisions(self, decisions: Iterable[CopyDecisionRow]) -> int:
        data = [copy_decision_values(d) for d in decisions]
        if not data:
            return 0
        cols = ", ".join(COPY_DECISION_COLUMNS)
        marks = ", ".join("?" * len(COPY_DECISION_COLUMNS))
        with self._write() as conn:
            conn.executemany(f"INSERT INTO copy_decisions ({cols}) VALUES ({marks})", data)
        return len(data)

    def list_copy_decisions(
        self,
        *,
        mode: str | None = None,
        target: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[CopyDecisionRow]:
        where: list[str] = []
        params: list[Any] = []
        for col, value, op in (("mode", mode, "="), ("target", target and target.lower(), "="), ("ts", since, ">=")):
            if value is not None:
                where.append(f"{col} {op} ?")
                params.append(value)
        sql = "SELECT * FROM copy_decisions" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [copy_decision_from_row(r) for r in self._query(sql, params)]

    def set_copy_watermarks(self, mode: str, marks: Mapping[tuple[str, str], int]) -> None:
        if not marks:
            return
        now = self._now()
        with self._write() as conn:
            conn.executemany(
                "INSERT INTO copy_watermarks (mode, target, source, ts, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (mode, target, source) DO UPDATE SET ts = max(ts, excluded.ts),"
                " updated_at = excluded.updated_at",
                [(mode, t.lower(), s, int(ts), now) for (t, s), ts in marks.items()],
            )

    def copy_watermarks(self, mode: str, target: str | None = None) -> dict[tuple[str, str], int]:
        sql = "SELECT target, source, ts FROM copy_watermarks WHERE mode = ?"
        params: list[Any] = [mode]
        if target is not None:
            sql += " AND target = ?"
            params.append(target.lower())
        return {(r["target"], r["source"]): int(r["ts"]) for r in self._query(sql, params)}

    # ---------------------------------------------------------------- copy analyses (0010)

    def save_copy_analysis(self, row: CopyAnalysisRow) -> int:
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO copy_analyses (created_at, wallet, name, source, start_ms, end_ms, delay_ms, slippage,"
                " trades, copied, target_pnl, copy_pnl, share_kept, maker_share, verdict, result)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                copy_analysis_values(row),
            )
            return int(cur.lastrowid or 0)

    def list_copy_analyses(
        self, *, wallet: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[CopyAnalysisRow]:
        sql, params = copy_analyses_query(wallet, name, limit, "?")
        return [copy_analysis_row(r) for r in self._query(sql, params)]


def _backtest(r: dict[str, Any]) -> BacktestRun:
    return BacktestRun(
        run_id=r["run_id"],
        created_at=r["created_at"],
        strategy=r["strategy"],
        scenario=r["scenario"],
        params=json.loads(r["params"]),
        result=json.loads(r["result"]),
    )


def build_stats(trade_sums: list[dict[str, Any]], positions: list[Position], since: int | None) -> list[StrategyStats]:
    """Combine per-(strategy, mode) trade sums with position figures. Shared by SQL backends."""
    from pmbot.money import from_micro

    acc: dict[tuple[str, bool], dict[str, Any]] = {}

    def slot(strategy: str, dry_run: bool) -> dict[str, Any]:
        return acc.setdefault(
            (strategy, dry_run),
            {
                "n": 0,
                "volume": 0,
                "fees": 0,
                "realized": 0,
                "unrealized": Decimal(0),
                "open": 0,
                "closed": 0,
                "wins": 0,
                "redeemable": Decimal(0),
            },
        )

    for r in trade_sums:
        s = slot(r["strategy"], bool(r["dry_run"]))
        s.update(
            n=int(r["n"] or 0), volume=int(r["volume"] or 0), fees=int(r["fees"] or 0), realized=int(r["realized"] or 0)
        )
    for p in positions:
        if p.redeemable:
            slot(p.strategy, p.dry_run)["redeemable"] += p.redeemable
        if p.state is PositionState.OPEN:
            s = slot(p.strategy, p.dry_run)
            s["open"] += 1
            s["unrealized"] += p.unrealized_pnl or Decimal(0)
        elif since is None or p.updated_at >= since:
            s = slot(p.strategy, p.dry_run)
            s["closed"] += 1
            s["wins"] += int(p.realized_pnl > 0)
    return [
        StrategyStats(
            strategy=k[0],
            dry_run=k[1],
            trades=v["n"],
            volume=from_micro(v["volume"]),
            fees=from_micro(v["fees"]),
            realized_pnl=from_micro(v["realized"]),
            unrealized_pnl=v["unrealized"],
            open_positions=v["open"],
            closed_positions=v["closed"],
            wins=v["wins"],
            redeemable=v["redeemable"],
        )
        for k, v in sorted(acc.items(), key=lambda kv: (kv[0][0], not kv[0][1]))
    ]


_FINAL_SQL = ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATUSES))
_SET_STATUS_SQL = (
    "UPDATE orders SET status = ?, venue_order_id = COALESCE(?, venue_order_id),"
    " error = COALESCE(?, error), filled_size_micro = COALESCE(?, filled_size_micro),"
    f" updated_at = ? WHERE key = ? AND (status NOT IN ({_FINAL_SQL}) OR status = ?)"
)


@functools.cache
def _insert_order_sql(cols: tuple[str, ...]) -> str:
    """INSERT of an order row. A key recorded `not_sent` (nothing of it reached the venue) is taken over
    by its retry, atomically: of two processes retrying it at once, one updates the row, the other gets
    rowcount 0 like any existing key."""
    reuse = ", ".join(f"{c} = excluded.{c}" for c in cols if c != "key")
    return (
        f"INSERT INTO orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        f" ON CONFLICT(key) DO UPDATE SET {reuse}"
        " WHERE orders.status = 'not_sent' AND orders.dry_run = excluded.dry_run"
    )


def copy_analysis_values(row: CopyAnalysisRow) -> tuple[Any, ...]:
    """The INSERT values of a copy analysis, in column order (shared with the PostgreSQL store)."""
    return (
        row.created_at, row.wallet.lower(), row.name.lower(), row.source, row.start_ms, row.end_ms, row.delay_ms,
        row.slippage, row.trades, row.copied, row.target_pnl, row.copy_pnl, row.share_kept, row.maker_share,
        row.verdict, json.dumps(row.result, sort_keys=True, default=str),
    )  # fmt: skip


def copy_analyses_query(wallet: str | None, name: str | None, limit: int | None, mark: str) -> tuple[str, list[Any]]:
    """SELECT of copy analyses, newest first (`mark`: the driver's placeholder)."""
    where: list[str] = []
    params: list[Any] = []
    if wallet:
        where.append(f"wallet = {mark}")
        params.append(wallet.lower())
    if name:
        where.append(f"name = {mark}")
        params.append(name.lower())
    sql = "SELECT * FROM copy_analyses"
    if where:
        sql += " WHERE " + " OR ".join(where)
    sql += " ORDER BY created_at DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {mark}"
        params.append(int(limit))
    return sql, params


def copy_analysis_row(r: dict[str, Any]) -> CopyAnalysisRow:
    result = r["result"]
    return CopyAnalysisRow(
        id=r["id"], created_at=r["created_at"], wallet=r["wallet"], name=r["name"] or "", source=r["source"],
        start_ms=r["start_ms"], end_ms=r["end_ms"], delay_ms=r["delay_ms"], slippage=r["slippage"],
        trades=r["trades"], copied=r["copied"], target_pnl=r["target_pnl"], copy_pnl=r["copy_pnl"],
        share_kept=r["share_kept"], maker_share=r["maker_share"], verdict=r["verdict"],
        result=json.loads(result) if isinstance(result, str) else dict(result),
    )  # fmt: skip
