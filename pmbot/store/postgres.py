"""The PostgreSQL store (psycopg 3 + psycopg_pool): the same contract as SQLiteStore, for a fleet.

Several pmbot processes may share one database. What keeps them correct:
- Orders: `key` is UNIQUE; `INSERT … ON CONFLICT DO NOTHING` makes exactly one writer win an
  idempotency key, whatever Redis does (a second inserter blocks until the first commits, then loses).
- Fills: a fill's position is read, recomputed (pmbot.store.ledger, in Python, shared with SQLite) and
  written back. Two processes doing that at once for one position would lose an update, so a write
  transaction first takes a transaction-scoped advisory lock per (strategy, token, mode), in sorted order
  (no deadlock between batches), and only then reads the positions: READ COMMITTED takes each
  statement's snapshot when it starts, so the read sees whatever the previous lock holder committed.
- Trade idempotency: `trade_keys` (trade_id PRIMARY KEY) is the global unique key; `trades` itself is
  partitioned by month and cannot carry a unique index without the partition key.

Durability: every commit waits for the WAL flush (synchronous_commit is left at the server's setting,
`on` by default); bench/bench_pg.py prints the setting next to the latency it measured.

Connections run in autocommit mode: a read is one statement and one round trip; writes open an explicit
transaction. Inside `transaction()` every call on the same thread joins that one connection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg.types.string import TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from pmbot.errors import InputError, ServiceUnavailableError, StoreError, register_secret
from pmbot.money import to_micro
from pmbot.store import is_postgres_url, ledger, rows
from pmbot.store.copy_rows import (
    COPY_DECISION_COLUMNS,
    CopyDecisionRow,
    copy_decision_from_row,
    copy_decision_values,
)
from pmbot.store.models import (
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
    Query,
    Reflection,
    Side,
    StrategyStats,
    TradeKind,
    TradeRow,
)
from pmbot.store.pg_migrations import (
    WRITER_LOCK,
    create_partitions,
    existing_partitions,
    migrate,
    month_of,
    partition_name,
)
from pmbot.timeutil import Clock

Conn = psycopg.Connection[Any]
BookKey = ledger.BookKey
Meta = ledger.Meta

_BOOK_COLUMNS = rows.BOOK_COLUMNS
_BOOK_ONE = (
    f"SELECT {_BOOK_COLUMNS} FROM positions WHERE strategy = %s AND token_id = %s AND dry_run = %s AND wallet = %s"
).encode()
_POSITION_COLUMNS = rows.POSITION_COLUMNS
_UPSERT_TAIL = (
    f" ON CONFLICT ({rows.POSITION_KEY}) DO UPDATE SET"
    " condition_id = excluded.condition_id, market = excluded.market, outcome = excluded.outcome,"
    " size_micro = excluded.size_micro, cost_micro = excluded.cost_micro,"
    " realized_pnl_micro = excluded.realized_pnl_micro, state = excluded.state,"
    " mark_price_micro = COALESCE(excluded.mark_price_micro, positions.mark_price_micro),"
    " opened_at = excluded.opened_at, updated_at = excluded.updated_at"
)
_UPSERT_ONE = f"INSERT INTO positions ({_POSITION_COLUMNS}) VALUES ({', '.join(['%s'] * 14)})" + _UPSERT_TAIL
# %b: arrays go in binary (in text, every element is quoted through a regex: a third of a batch's time).
_UPSERT_MANY = (
    f"INSERT INTO positions ({_POSITION_COLUMNS}) SELECT * FROM unnest(%b::text[], %b::text[], %b::smallint[],"
    " %b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::bigint[],"
    " %b::bigint[], %b::bigint[], %b::text[])" + _UPSERT_TAIL
)
_TRADE_COLS = ", ".join(rows.TRADE_COLUMNS)
_INSERT_TRADE = (
    f"INSERT INTO trades ({_TRADE_COLS})"
    f" VALUES ({', '.join('%s::jsonb' if c == 'metadata' else '%s' for c in rows.TRADE_COLUMNS)})"
)
_COPY_TRADES = f"COPY trades ({_TRADE_COLS}) FROM STDIN"
_JSON_COLUMNS = frozenset({"metadata", "metrics"})  # JSONB in the journal tables (reflections: metrics)
_CLAIM_ONE = b"INSERT INTO trade_keys (trade_id, ts) VALUES (%s, %s) ON CONFLICT DO NOTHING RETURNING 1"
_BUY, _FILL = Side.BUY.value, TradeKind.FILL.value


def describe_url(url: str) -> str:
    """host:port/db for messages: never the password."""
    try:
        u = urlsplit(url)
        return f"{u.hostname or 'localhost'}:{u.port or 5432}{u.path or '/'}"
    except ValueError:
        return "(unparseable URL)"


def check_url(url: str) -> None:
    """Refuse a malformed PostgreSQL URL before any connection attempt."""
    try:
        u = urlsplit(url.strip())
        _ = u.port  # raises ValueError for a non-numeric port
    except ValueError as e:
        raise StoreError(f"bad PostgreSQL URL: {e}", hint="e.g. postgresql://user:password@host:5432/pmbot") from None
    if not is_postgres_url(url) or not u.path.strip("/"):
        raise StoreError(
            "bad PostgreSQL URL: it needs a database name", hint="e.g. postgresql://user:password@host:5432/pmbot"
        )
    if u.password:
        register_secret(u.password)


def connect(url: str, *, timeout: float = 5.0, **kwargs: Any) -> Conn:
    """One connection, or a one-line error that says what went wrong (never the password)."""
    check_url(url)
    try:
        conn = psycopg.connect(url, connect_timeout=max(1, round(timeout)), **kwargs)
    except psycopg.OperationalError as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        # libpq messages name host and port, never the password; strip its "connection to server at" prefix.
        detail = text.split(": ", 1)[-1] if text.startswith("connection to server") else text
        if "password authentication failed" in text or "authentication" in text:
            raise ServiceUnavailableError(
                f"PostgreSQL at {describe_url(url)} refused the credentials: {detail}",
                hint="check the user and password in the database URL",
            ) from None
        if "does not exist" in text:
            raise ServiceUnavailableError(
                f"PostgreSQL at {describe_url(url)}: {detail}", hint="create the database first (createdb)"
            ) from None
        raise ServiceUnavailableError(
            f"cannot reach PostgreSQL at {describe_url(url)}: {detail}",
            hint="is the server running and the host/port right?",
        ) from None
    except psycopg.Error as e:
        raise ServiceUnavailableError(f"PostgreSQL at {describe_url(url)}: {e}") from None
    _configure(conn)
    return conn


def check_database(url: str) -> str:
    """For `pmbot config check`: reach the server and say how current its schema is. Writes nothing.
    Raises the same one-line errors as opening the store."""
    from pmbot.store.pg_migrations import MIGRATIONS, applied

    with connect(url, timeout=3) as conn:
        conn.autocommit = True
        names = set(applied(conn))
        version = conn.info.server_version
    pending = [n for n, _ in MIGRATIONS if n not in names]
    state = f"{len(pending)} migration(s) to apply on next open" if pending else "schema current"
    return f"PostgreSQL {version // 10000}.{version % 10000} at {describe_url(url)}, {state}"


def _configure(conn: Conn) -> None:
    # JSONB arrives as its text: rows.* parse it exactly as they parse SQLite's JSON text.
    conn.adapters.register_loader("jsonb", TextLoader)
    conn.adapters.register_loader("json", TextLoader)


def _lock_id(strategy: str, token_id: str, dry_run: bool) -> int:
    digest = hashlib.blake2b(f"{strategy}\x00{token_id}\x00{int(dry_run)}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class PostgresStore:
    def __init__(
        self, url: str, *, clock: Clock = time.time, min_size: int = 1, max_size: int = 8, ahead_months: int = 3
    ) -> None:
        self.url = url
        self._clock = clock
        self._tls = threading.local()
        # Schema first, on one plain connection, so that errors are the real ones (a pool would retry).
        with connect(url) as conn:
            conn.autocommit = True
            try:
                migrate(conn)
                now = month_of(self._now())
                create_partitions(conn, [m for m in range(now - 1, now + ahead_months + 1)])  # created ahead
                names = existing_partitions(conn)
            except psycopg.Error as e:
                raise StoreError(f"cannot prepare PostgreSQL schema at {describe_url(url)}: {e}") from None
        self._partitions: set[str] = names
        self._pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="pmbot-store",
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except Exception as e:
            self._pool.close()
            raise ServiceUnavailableError(f"cannot open a connection pool to {describe_url(url)}: {e}") from None

    def close(self) -> None:
        self._pool.close()

    def _now(self) -> int:
        return int(self._clock() * 1000)

    # ------------------------------------------------------------------ connections and transactions

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        joined = getattr(self._tls, "conn", None)
        if joined is not None:
            yield joined
            return
        try:
            with self._pool.connection() as conn:
                yield conn
        except psycopg.OperationalError as e:  # the server went away, restarted, or refused us
            raise StoreError(f"PostgreSQL at {describe_url(self.url)}: {str(e).strip()}") from None
        except PoolTimeout:
            raise StoreError(
                f"no free connection to PostgreSQL at {describe_url(self.url)} (all {self._pool.max_size} busy)",
                hint="a long report or a stuck transaction holds them; retry",
            ) from None
        except psycopg.DataError as e:  # e.g. NaN in a JSON document: SQLite stores it, JSONB refuses it
            raise InputError(f"PostgreSQL refused a value: {str(e).strip().splitlines()[0]}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Several writes, one commit. An outermost transaction first takes a database-wide advisory lock,
        so multi-write transactions of a fleet run one at a time, as on SQLite (BEGIN IMMEDIATE): two
        executors writing the same intent keys in different orders would otherwise deadlock on the
        unique index. Single writes (a fill, an intent) do not take it and stay concurrent."""
        outermost = getattr(self._tls, "conn", None) is None
        with self._write() as conn:
            if outermost:
                conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
            yield

    @contextmanager
    def _write(self) -> Iterator[Conn]:
        joined = getattr(self._tls, "conn", None)
        if joined is not None:  # inside transaction(): join it
            yield joined
            return
        with self._conn() as conn:
            self._tls.conn = conn
            try:
                with conn.transaction():
                    yield conn
            finally:
                self._tls.conn = None

    def hold_lock(self, name: str) -> Callable[[], None] | None:
        """A lock held for as long as this process wants it, across every host and spelling of the URL:
        a session advisory lock on a connection of its own (outside the pool), released by the returned
        callable or when the connection dies with the process. None: another session holds it."""
        lock_id = _lock_id("lock", name, False)
        try:
            conn = connect(self.url, autocommit=True)
        except psycopg.Error as e:
            raise ServiceUnavailableError(f"cannot connect to {describe_url(self.url)}: {e}") from None
        try:
            row = conn.execute(b"SELECT pg_try_advisory_lock(%s)", (lock_id,)).fetchone()
        except psycopg.Error as e:
            conn.close()
            raise StoreError(f"cannot take lock {name!r}: {e}") from None
        if not (row and row[0]):
            conn.close()
            return None

        def release() -> None:
            # unlocked before the close: a closed session's locks go only when its server process has
            # ended, a moment later, and a restart right after must find the lock free
            with contextlib.suppress(psycopg.Error):
                conn.execute(b"SELECT pg_advisory_unlock(%s)", (lock_id,))
            conn.close()

        return release

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(sql.encode(), list(params))
            return cur.fetchall()

    def _ensure_months(self, ts_values: Iterable[int], conn: Conn | None = None) -> None:
        """Monthly partitions for these timestamps, created before the rows arrive.

        Outside a transaction they are created (and remembered) on a connection of their own. Inside one
        (`conn`) they are created on it: another connection would wait for this transaction's locks on
        `trades`; and they are not remembered, since a rollback removes them again.
        """
        missing = [m for m in {month_of(ts) for ts in ts_values} if partition_name(m) not in self._partitions]
        if not missing:
            return
        if conn is not None:
            create_partitions(conn, missing)
            return
        with self._conn() as other:
            create_partitions(other, missing)
        self._partitions.update(partition_name(m) for m in missing)

    # ------------------------------------------------------------------------------------- orders

    def insert_order(self, order: OrderRecord) -> bool:
        row = rows.order_to_row(order, self._now())
        cols = ", ".join(row)
        marks = ", ".join("%s::jsonb" if c == "metadata" else "%s" for c in row)
        # One statement (atomic even outside a transaction): the event is written only if the order was.
        # A key recorded `not_sent` (nothing reached the venue) is taken over by its retry, as on SQLite; of
        # two processes retrying at once, one updates the row and the other gets nothing, like any key.
        reuse = ", ".join(f"{c} = excluded.{c}" for c in row if c != "key")
        sql = (
            f"WITH ins AS (INSERT INTO orders ({cols}) VALUES ({marks}) ON CONFLICT (key) DO UPDATE SET {reuse}"
            " WHERE orders.status = 'not_sent' AND orders.dry_run = excluded.dry_run"
            " RETURNING key, status, created_at)"
            " INSERT INTO order_events (order_key, status, ts, detail)"
            " SELECT key, status, created_at, 'intent stored' FROM ins"
        )
        with self._write() as conn:
            cur = conn.execute(sql.encode(), list(row.values()))
            return cur.rowcount == 1

    def get_order(self, key: str) -> OrderRecord | None:
        found = self._query("SELECT * FROM orders WHERE key = %s", (key,))
        return rows.row_to_order(found[0]) if found else None

    def get_orders(self, keys: Iterable[str]) -> dict[str, OrderRecord]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        found = self._query("SELECT * FROM orders WHERE key = ANY(%s::text[])", (wanted,))
        return {r["key"]: rows.row_to_order(r) for r in found}

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
            cur = conn.execute("SELECT status FROM orders WHERE key = %s FOR UPDATE", (key,)).fetchone()
            if cur is None:
                raise StoreError(f"no order with key {key!r}")
            current = OrderStatus(cur[0])
            if current.is_final and status is not current:
                raise StoreError(f"order {key!r} is already {current.value}; cannot become {status.value}")
            conn.execute(
                "UPDATE orders SET status = %s, venue_order_id = COALESCE(%s, venue_order_id),"
                " error = COALESCE(%s, error), filled_size_micro = COALESCE(%s, filled_size_micro),"
                " updated_at = %s WHERE key = %s",
                (status.value, venue_order_id, error, filled, now, key),
            )
            conn.execute(
                "INSERT INTO order_events (order_key, status, ts, detail) VALUES (%s, %s, %s, %s)",
                (key, status.value, now, detail or (error or "")),
            )

    def list_orders(
        self, *, statuses: Iterable[OrderStatus] | None = None, query: Query | None = None
    ) -> list[OrderRecord]:
        clause, params = rows.where(query, ts_col="created_at", ph="%s")
        if statuses is not None:
            wanted = [OrderStatus(s).value for s in statuses]
            if not wanted:
                return []
            clause += (" AND " if clause else " WHERE ") + "status = ANY(%s::text[])"
            params.append(wanted)
        lim, lparams = rows.limit(query, ph="%s")
        found = self._query(f"SELECT * FROM orders{clause} ORDER BY created_at DESC, id DESC{lim}", params + lparams)
        return [rows.row_to_order(r) for r in found]

    def order_events(self, key: str) -> list[OrderEvent]:
        found = self._query("SELECT * FROM order_events WHERE order_key = %s ORDER BY id", (key,))
        return [rows.row_to_event(r) for r in found]

    # ------------------------------------------------------------------------ fills and positions

    def record_fill(self, fill: Fill) -> bool:
        return self.record_fills([fill]) == 1

    def record_fills(self, fills: Iterable[Fill]) -> int:
        batch = list(fills)
        micros = [rows.fill_micros(f) for f in batch]  # bad input writes nothing
        if not batch:
            return 0
        # A trade id twice in one batch: the first one counts (as on SQLite).
        firsts: dict[str, int] = {}
        for i, f in enumerate(batch):
            firsts.setdefault(f.trade_id, i)
        if len(firsts) < len(batch):
            keep = sorted(firsts.values())
            batch, micros = [batch[i] for i in keep], [micros[i] for i in keep]
        joined = getattr(self._tls, "conn", None)
        if joined is None:
            self._ensure_months({f.ts for f in batch})
            if len(batch) == 1:
                return int(self._record_one(batch[0], micros[0]))
        with self._write() as conn:
            if joined is not None:
                self._ensure_months({f.ts for f in batch}, conn)
            # one lock per (strategy, token, mode), whatever the wallet: coarser than a position, as before
            keys = {(f.strategy, f.token_id, f.dry_run) for f in batch}
            locks = sorted({_lock_id(*k) for k in keys})
            if len(locks) == 1:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (locks[0],))
            else:
                conn.execute("SELECT pg_advisory_xact_lock(x) FROM unnest(%b::bigint[]) AS x", (locks,))
            if len(batch) == 1:
                f = batch[0]
                cur = conn.execute(
                    "INSERT INTO trade_keys (trade_id, ts) VALUES (%s, %s) ON CONFLICT DO NOTHING", (f.trade_id, f.ts)
                )
                if cur.rowcount == 0:
                    return 0  # already recorded
            else:
                new = self._claim_many(conn, batch)
                if len(new) < len(batch):
                    pairs = [(f, m) for f, m in zip(batch, micros, strict=True) if f.trade_id in new]
                    batch, micros = [p[0] for p in pairs], [p[1] for p in pairs]
                if not batch:
                    return 0
            return self._apply(conn, batch, micros)

    def _record_one(self, f: Fill, micros: tuple[int, int, int]) -> bool:
        """The live path, one fill in two round trips (pipeline mode) plus the commit's WAL flush:
        [BEGIN, lock, claim the trade id, read the position] then [write trade, write position, COMMIT].
        The position is read by a statement that starts after the lock is granted, so it is current."""
        k = (f.strategy, f.token_id, f.dry_run, f.wallet)
        with self._conn() as conn:
            try:
                with conn.pipeline() as pipe:
                    conn.execute(b"BEGIN")
                    conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (_lock_id(k[0], k[1], k[2]),))
                    claimed = conn.execute(_CLAIM_ONE, (f.trade_id, f.ts))
                    found = conn.execute(_BOOK_ONE, (k[0], k[1], int(k[2]), k[3]))
                    pipe.sync()
                    if claimed.fetchone() is None:
                        conn.execute(b"COMMIT")
                        return False  # already recorded: nothing written
                    books, meta = ledger.load_books(found.fetchall())
                    trade_rows, positions = ledger.book_fills([f], [micros], books, meta)
                    conn.execute(_INSERT_TRADE, trade_rows[0])
                    conn.execute(_UPSERT_ONE, positions[0])
                    conn.execute(b"COMMIT")
                return True
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    with contextlib.suppress(psycopg.Error):  # a broken connection: the pool discards it
                        conn.execute(b"ROLLBACK")
                raise

    def _claim_many(self, conn: Conn, batch: list[Fill]) -> set[str]:
        """Claim the batch's trade ids; return the ones that were new. Optimistic, as on SQLite: duplicates
        are rare, so COPY them all (COPY batches its index inserts: ~2x an INSERT … SELECT here) and only if
        the unique key fires, claim them one by one with ON CONFLICT DO NOTHING."""
        try:
            with conn.transaction(), conn.cursor().copy(b"COPY trade_keys (trade_id, ts) FROM STDIN") as copy:
                write = copy.write_row
                for f in batch:
                    write((f.trade_id, f.ts))
            return {f.trade_id for f in batch}
        except psycopg.errors.UniqueViolation:
            cur = conn.execute(
                "INSERT INTO trade_keys (trade_id, ts) SELECT * FROM unnest(%b::text[], %b::bigint[])"
                " ON CONFLICT DO NOTHING RETURNING trade_id",
                ([f.trade_id for f in batch], [f.ts for f in batch]),
            )
            return {r[0] for r in cur.fetchall()}

    def _apply(self, conn: Conn, batch: list[Fill], micros: list[tuple[int, int, int]]) -> int:
        """Apply new fills to their (locked) positions and write trades + positions."""
        books, meta = self._load_books(conn, {(f.strategy, f.token_id, f.dry_run, f.wallet) for f in batch})
        trade_rows, positions = ledger.book_fills(batch, micros, books, meta)
        if len(trade_rows) == 1:
            conn.execute(_INSERT_TRADE, trade_rows[0])
        else:
            with conn.cursor().copy(_COPY_TRADES) as copy:
                write = copy.write_row
                for r in trade_rows:
                    write(r)
        if len(positions) == 1:
            conn.execute(_UPSERT_ONE, positions[0])
        else:
            conn.execute(_UPSERT_MANY, [list(col) for col in zip(*positions, strict=True)])
        return len(trade_rows)

    def _load_books(self, conn: Conn, keys: set[BookKey]) -> tuple[dict[BookKey, ledger.Book], dict[BookKey, Meta]]:
        if len(keys) == 1:
            (k,) = keys
            found = conn.execute(_BOOK_ONE, (k[0], k[1], int(k[2]), k[3])).fetchall()
        else:
            ks = list(keys)
            found = conn.execute(
                f"SELECT {_BOOK_COLUMNS} FROM positions WHERE (strategy, token_id, dry_run, wallet) IN"
                " (SELECT * FROM unnest(%b::text[], %b::text[], %b::smallint[], %b::text[]))".encode(),
                ([k[0] for k in ks], [k[1] for k in ks], [int(k[2]) for k in ks], [k[3] for k in ks]),
            ).fetchall()
        return ledger.load_books(found)

    def reverse_fill(self, trade_id: str, *, ts: int, reason: str = "") -> TradeRow | None:
        # The reversal row takes its fill's ts (ledger.take_back): its partition is the fill's, which exists.
        with self._write() as conn:
            with conn.cursor(row_factory=dict_row) as cur:  # by its ts (trade_keys): one partition, not all
                found = cur.execute(
                    "SELECT t.* FROM trade_keys k JOIN trades t ON t.ts = k.ts AND t.trade_id = k.trade_id"
                    " WHERE k.trade_id = %s AND t.kind = %s",
                    (trade_id, _FILL),
                ).fetchall()
            if not found:
                return None  # not recorded here, or not a fill
            orig = found[0]
            k = (orig["strategy"], orig["token_id"], bool(orig["dry_run"]), orig["wallet"] or "")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_id(k[0], k[1], k[2]),))  # as record_fills
            rev_id = f"revert:{trade_id}"
            if conn.execute(_CLAIM_ONE, (rev_id, orig["ts"])).fetchone() is None:
                return None  # reversed before
            books, meta = self._load_books(conn, {k})
            book = books.get(k)
            if book is None:  # a fill's position always exists; never invent one
                raise StoreError(f"fill {trade_id} has no position to reverse")
            key = (k[0], k[1], int(k[2]), k[3])
            with conn.cursor(row_factory=dict_row) as cur:  # its trades, to rebuild it without this fill
                history = cur.execute(
                    "SELECT * FROM trades WHERE strategy = %s AND token_id = %s AND dry_run = %s AND wallet = %s"
                    " ORDER BY ts, id",
                    key,
                ).fetchall()
            books[k], row, unowed = ledger.take_back(orig, book, history, ts, reason)
            meta[k]["updated_at"] = max(meta[k]["updated_at"], ts)
            conn.execute(_INSERT_TRADE, row)
            conn.execute(_UPSERT_ONE, ledger.position_rows(books, meta)[0])
            if unowed:  # the payout of shares that never came is not owed by the on-chain redemption
                conn.execute(
                    "UPDATE positions SET redeemable_micro = GREATEST(0, COALESCE(redeemable_micro, 0) - %s)"
                    " WHERE strategy = %s AND token_id = %s AND dry_run = %s AND wallet = %s",
                    (unowed, *key),
                )
            with conn.cursor(row_factory=dict_row) as cur:
                found = cur.execute(
                    "SELECT * FROM trades WHERE ts = %s AND trade_id = %s", (orig["ts"], rev_id)
                ).fetchall()
        return rows.row_to_trade(found[0])

    def list_trades(self, query: Query | None = None) -> list[TradeRow]:
        clause, params = rows.where(query, ts_col="ts", ph="%s")
        if query is not None and query.state is not None:
            sub, sparams = rows.where(Query(state=query.state), ts_col=None, state=True, ph="%s")
            clause += (" AND " if clause else " WHERE ") + (
                f"({rows.POSITION_KEY}) IN (SELECT {rows.POSITION_KEY} FROM positions{sub})"
            )
            params += sparams
        lim, lparams = rows.limit(query, ph="%s")
        found = self._query(f"SELECT * FROM trades{clause} ORDER BY ts DESC, id DESC{lim}", params + lparams)
        return [rows.row_to_trade(r) for r in found]

    def get_position(self, strategy: str, token_id: str, dry_run: bool, wallet: str | None = None) -> Position | None:
        found = self._query(
            "SELECT * FROM positions WHERE strategy = %s AND token_id = %s AND dry_run = %s AND wallet = %s",
            (strategy, token_id, int(dry_run), rows.position_wallet(dry_run, wallet)),
        )
        return rows.row_to_position(found[0]) if found else None

    def list_positions(self, query: Query | None = None) -> list[Position]:
        clause, params = rows.where(query, ts_col="updated_at", state=True, ph="%s")
        lim, lparams = rows.limit(query, ph="%s")
        found = self._query(
            f"SELECT * FROM positions{clause} ORDER BY (state = 'open') DESC, updated_at DESC{lim}",
            params + lparams,
        )
        return [rows.row_to_position(r) for r in found]

    def set_marks(self, prices: Mapping[str, Decimal]) -> int:
        if not prices:
            return 0
        tokens = list(prices)
        marks = [to_micro(prices[t], exact=False) for t in tokens]
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE positions p SET mark_price_micro = v.m FROM unnest(%s::text[], %s::bigint[]) AS v(t, m)"
                " WHERE p.token_id = v.t AND p.state = 'open'",
                (tokens, marks),
            )
            return cur.rowcount

    def resolve_token(self, token_id: str, payout: Decimal, *, ts: int | None = None) -> int:
        return len(self.settle_token(token_id, payout, ts=ts))

    def settle_token(
        self, token_id: str, payout: Decimal, *, ts: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> list[TradeRow]:
        if payout < 0 or payout > 1:
            raise InputError(f"payout must be between 0 and 1, got {payout}")
        when = ts if ts is not None else self._now()
        joined = getattr(self._tls, "conn", None)
        if joined is None:
            self._ensure_months([when])
        with self._write() as conn:
            # Lock the token's open positions first, then read them: a fill another process records
            # meanwhile is either in the redeemed size or waits until this payout is written.
            sql_open = "SELECT * FROM positions WHERE state = 'open' AND token_id = %s"
            keys = [
                (r[0], r[1], bool(r[2]))
                for r in conn.execute(
                    "SELECT strategy, token_id, dry_run FROM positions WHERE state = 'open' AND token_id = %s",
                    (token_id,),
                )
            ]
            if not keys:
                return []
            locks = sorted({_lock_id(*k) for k in keys})
            conn.execute("SELECT pg_advisory_xact_lock(x) FROM unnest(%b::bigint[]) AS x", (locks,))
            with conn.cursor(row_factory=dict_row) as cur:
                held = [p for p in (rows.row_to_position(r) for r in cur.execute(sql_open, (token_id,))) if p.size > 0]
            if not held:
                return []
            # A position open here (under the locks) is unpaid, even when its redeem id is taken.
            redemptions = ledger.unpaid_redemptions(
                (ledger.redemption(p, payout, when, metadata) for p in held),
                lambda ids: self._taken_trade_ids(conn, ids),
            )
            self.record_fills(redemptions)  # joins this transaction (and its locks)
            owed = ledger.redeemable_owed(redemptions, payout)
            if owed:
                conn.cursor().executemany(
                    "UPDATE positions SET redeemable_micro = COALESCE(redeemable_micro, 0) + %s, redeemed_at = NULL"
                    " WHERE strategy = %s AND token_id = %s AND dry_run = 0 AND wallet = ''",
                    owed,
                )
            with conn.cursor(row_factory=dict_row) as cur:
                found = cur.execute(
                    "SELECT * FROM trades WHERE ts = %s AND trade_id = ANY(%s::text[])",
                    (when, [f.trade_id for f in redemptions]),
                ).fetchall()
        return [rows.row_to_trade(r) for r in found]

    @staticmethod
    def _taken_trade_ids(conn: Any, ids: list[str]) -> set[str]:
        found = conn.execute("SELECT trade_id FROM trade_keys WHERE trade_id = ANY(%s::text[])", (ids,))
        return {r[0] for r in found}

    def mark_redeemed(self, token_id: str, *, ts: int | None = None) -> int:
        when = ts if ts is not None else self._now()
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE positions SET redeemable_micro = 0, redeemed_at = %s"
                " WHERE token_id = %s AND dry_run = 0 AND state = 'resolved' AND redeemable_micro > 0",
                (when, token_id),
            )
            return cur.rowcount

    def count_trades(self, query: Query | None = None) -> int:
        clause, params = rows.where(query, ts_col="ts", ph="%s")
        return int(self._query(f"SELECT count(*) AS n FROM trades{clause}", params)[0]["n"])

    def count_positions(self, query: Query | None = None) -> int:
        clause, params = rows.where(query, ts_col="updated_at", state=True, ph="%s")
        return int(self._query(f"SELECT count(*) AS n FROM positions{clause}", params)[0]["n"])

    def stats(self, query: Query | None = None) -> list[StrategyStats]:
        from pmbot.store.sqlite import build_stats

        clause, params = rows.where(query, ts_col="ts", ph="%s")
        trade_sums = self._query(
            # a reversal (a fill whose trade FAILED at the venue) takes its fill back out of the counts
            "SELECT strategy, dry_run,"
            " count(*) FILTER (WHERE kind = 'fill') - count(*) FILTER (WHERE kind = 'reversal') AS n,"
            " sum(notional_micro) FILTER (WHERE kind IN ('fill', 'reversal')) AS volume, sum(fee_micro) AS fees,"
            f" sum(realized_pnl_micro) AS realized FROM trades{clause} GROUP BY strategy, dry_run",
            params,
        )
        q = query or Query()
        pclause, pparams = rows.where(Query(strategy=q.strategy, dry_run=q.dry_run), ts_col=None, ph="%s")
        positions = [rows.row_to_position(r) for r in self._query(f"SELECT * FROM positions{pclause}", pparams)]
        return build_stats(trade_sums, positions, q.since)

    # -------------------------------------------------------------------------------------- journal

    def _insert(self, table: str, row: dict[str, Any]) -> int:
        cols = ", ".join(f'"{c}"' for c in row)  # "timestamp" is a keyword: quoted, as every column here
        marks = ", ".join("%s::jsonb" if c in _JSON_COLUMNS else "%s" for c in row)
        with self._write() as conn:
            found = conn.execute(
                f"INSERT INTO {table} ({cols}) VALUES ({marks}) RETURNING id".encode(), list(row.values())
            ).fetchone()
        assert found is not None
        return int(found[0])

    def _list(
        self, table: str, query: Query | None, eq: Mapping[str, str | None], *, strategy: bool = False
    ) -> list[dict[str, Any]]:
        """As SQLiteStore._list: Query.since / limit on the seed's `timestamp`, newest first; Query.strategy
        only where the table has one (execution_logs); exact matches for the non-None `eq` values."""
        q = query or Query()
        clause, params = rows.where(
            Query(strategy=q.strategy if strategy else None, since=q.since), ts_col='"timestamp"', ph="%s"
        )
        for col, value in eq.items():
            if value is not None:
                clause += (" AND " if clause else " WHERE ") + f"{col} = %s"
                params.append(value)
        lim, lparams = rows.limit(query, ph="%s")
        return self._query(f'SELECT * FROM {table}{clause} ORDER BY "timestamp" DESC, id DESC{lim}', params + lparams)

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
        found = self._query("SELECT value FROM state WHERE name = %s", (name,))
        return json.loads(found[0]["value"]) if found else None

    def set_state(self, name: str, value: Mapping[str, Any]) -> None:
        text = json.dumps(value, sort_keys=True, default=str)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO state (name, value, updated_at) VALUES (%s, %s::jsonb, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, text, self._now()),
            )

    def update_state(self, name: str, merge: Callable[[dict[str, Any] | None], Mapping[str, Any]]) -> dict[str, Any]:
        """Read-modify-write under a per-name advisory lock: processes that update one document (the kill
        switch) take turns, and a document that does not exist yet is created once, not twice."""
        with self._write() as conn:
            conn.execute(b"SELECT pg_advisory_xact_lock(%s)", (_lock_id("state", name, False),))
            found = conn.execute("SELECT value FROM state WHERE name = %s", (name,)).fetchone()
            value = dict(merge(json.loads(found[0]) if found else None))
            conn.execute(
                "INSERT INTO state (name, value, updated_at) VALUES (%s, %s::jsonb, %s)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, json.dumps(value, sort_keys=True, default=str), self._now()),
            )
        return value

    def log_execution(self, entry: ExecutionLog) -> int:
        return self._insert("execution_logs", rows.log_to_row(entry, self._now()))

    def list_execution_logs(self, query: Query | None = None, *, event: str | None = None) -> list[ExecutionLog]:
        found = self._list("execution_logs", query, {"event": event}, strategy=True)
        return [rows.row_to_log(r) for r in found]

    # ---------------------------------------------------------------- decisions and backtests (0008)

    def record_decisions(self, decisions: Iterable[DecisionRow]) -> int:
        data = [
            (
                d.ts, d.strategy, d.kind, d.reason, d.condition_id, d.token_id, d.intent_key,
                json.dumps(dict(d.detail), sort_keys=True), d.run_id, d.mode, d.dry_run,
            )
            for d in decisions
        ]  # fmt: skip
        if not data:
            return 0
        joined = getattr(self._tls, "conn", None) is not None  # inside transaction(): its commit decides
        with self._write() as conn, conn.cursor() as cur:
            if not joined:
                # a report, not money: the commit does not wait for the WAL flush (lost only if the server
                # crashes within a fraction of a second, wal_writer_delay; a crash of pmbot loses nothing).
                # See SQLiteStore._relaxed_write.
                cur.execute(b"SET LOCAL synchronous_commit = off")
            cur.executemany(
                b"INSERT INTO decisions (ts, strategy, kind, reason, condition_id, token_id, intent_key, detail,"
                b" run_id, mode, dry_run) VALUES (%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s, %s, %s)",
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
            where.append("mode = %s")
            params.append(mode)
        elif run_id is None:
            where.append("mode <> 'backtest'")
        for col, value, op in (("run_id", run_id, "="), ("strategy", strategy, "="), ("ts", since, ">=")):
            if value is not None:
                where.append(f"{col} {op} %s")
                params.append(value)
        sql = "SELECT *, detail::text AS detail_text FROM decisions" + (
            " WHERE " + " AND ".join(where) if where else ""
        )
        sql += " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [
            DecisionRow(
                id=r["id"], ts=r["ts"], strategy=r["strategy"], kind=r["kind"], reason=r["reason"],
                condition_id=r["condition_id"] or "", token_id=r["token_id"] or "", intent_key=r["intent_key"],
                detail=json.loads(r["detail_text"] or "{}"), run_id=r["run_id"], mode=r["mode"],
            )
            for r in self._query(sql, params)
        ]  # fmt: skip

    def save_backtest(self, run: BacktestRun) -> None:
        with self._write() as conn:
            conn.execute(
                b"INSERT INTO backtest_runs (run_id, created_at, strategy, scenario, params, result)"
                b" VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb)",
                (
                    run.run_id, run.created_at, run.strategy, run.scenario,
                    json.dumps(run.params, sort_keys=True, default=str), json.dumps(run.result, default=str),
                ),
            )  # fmt: skip

    def get_backtest(self, run_id: str) -> BacktestRun | None:
        found = self._query(
            "SELECT run_id, created_at, strategy, scenario, params::text AS params, result::text AS result"
            " FROM backtest_runs WHERE run_id = %s",
            (run_id,),
        )
        return _backtest(found[0]) if found else None

    def list_backtests(self, limit: int | None = None) -> list[BacktestRun]:
        sql = (
            "SELECT run_id, created_at, strategy, scenario, params::text AS params, result::text AS result"
            " FROM backtest_runs ORDER BY created_at DESC, run_id DESC"
        )
        params: list[Any] = []
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [_backtest(r) for r in self._query(sql, params)]

    def fills_of_order(self, order_key: str) -> list[Fill]:
        found = self._query(
            "SELECT * FROM trades WHERE order_key = %s AND kind IN (%s, %s) ORDER BY ts, id",
            (order_key, TradeKind.FILL.value, TradeKind.REVERSAL.value),
        )
        return rows.unreversed_fills(found)

    # ---------------------------------------------------------------- copy trading (0009_copy)

    def record_copy_decisions(self, decisions: Iterable[CopyDecisionRow]) -> int:
        data = [copy_decision_values(d) for d in decisions]
        if not data:
            return 0
        cols = ", ".join(COPY_DECISION_COLUMNS)
        marks = ", ".join("%s::jsonb" if c == "detail" else "%s" for c in COPY_DECISION_COLUMNS)
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(f"INSERT INTO copy_decisions ({cols}) VALUES ({marks})".encode(), data)
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
                where.append(f"{col} {op} %s")
                params.append(value)
        sql = "SELECT *, detail::text AS detail_text FROM copy_decisions"
        sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT %s"
            params.append(int(limit))
        return [copy_decision_from_row(r) for r in self._query(sql, params)]

    def set_copy_watermarks(self, mode: str, marks: Mapping[tuple[str, str], int]) -> None:
        if not marks:
            return
        now = self._now()
        with self._write() as conn, conn.cursor() as cur:
            cur.executemany(
                b"INSERT INTO copy_watermarks (mode, target, source, ts, updated_at) VALUES (%s, %s, %s, %s, %s)"
                b" ON CONFLICT (mode, target, source) DO UPDATE SET ts = GREATEST(copy_watermarks.ts, EXCLUDED.ts),"
                b" updated_at = EXCLUDED.updated_at",
                [(mode, t.lower(), s, int(ts), now) for (t, s), ts in marks.items()],
            )

    def copy_watermarks(self, mode: str, target: str | None = None) -> dict[tuple[str, str], int]:
        sql = "SELECT target, source, ts FROM copy_watermarks WHERE mode = %s"
        params: list[Any] = [mode]
        if target is not None:
            sql += " AND target = %s"
            params.append(target.lower())
        return {(r["target"], r["source"]): int(r["ts"]) for r in self._query(sql, params)}

    # ---------------------------------------------------------------- copy analyses (0010)

    def save_copy_analysis(self, row: CopyAnalysisRow) -> int:
        from pmbot.store.sqlite import copy_analysis_values

        with self._write() as conn:
            found = conn.execute(
                b"INSERT INTO copy_analyses (created_at, wallet, name, source, start_ms, end_ms, delay_ms, slippage,"
                b" trades, copied, target_pnl, copy_pnl, share_kept, maker_share, verdict, result)"
                b" VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id",
                copy_analysis_values(row),
            ).fetchone()
        return int(found[0]) if found else 0

    def list_copy_analyses(
        self, *, wallet: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[CopyAnalysisRow]:
        from pmbot.store.sqlite import copy_analyses_query, copy_analysis_row

        sql, params = copy_analyses_query(wallet, name, limit, "%s")
        columns = (
            "id, created_at, wallet, name, source, start_ms, end_ms, delay_ms, slippage, trades, copied, target_pnl,"
            " copy_pnl, share_kept, maker_share, verdict, result::text AS result"
        )
        sql = sql.replace("SELECT *", f"SELECT {columns}", 1)
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


__all__ = ["PostgresStore", "check_url", "connect", "describe_url", "is_postgres_url"]
