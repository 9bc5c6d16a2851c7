"""`pmbot migrate`: copy a SQLite store into PostgreSQL, verified, idempotent and resumable.

How it stays safe to re-run and to interrupt:
- Each table is read in key order (its natural key: orders.key, trades.trade_id, positions' primary key,
  state.name, otherwise id) in batches. Per batch, the rows the target already has in that key range are
  read back: identical ones are skipped, different ones are conflicts (listed, never overwritten), the
  rest are written with COPY. Each batch commits on its own, so a run killed at any point leaves whole
  batches behind and the next run copies only what is missing.
- Verification reads both sides in full and compares row counts and an order-independent checksum of
  every canonical column (the SQLite table's columns; JSON compared by value, not by spelling).
- The source is opened read-only. Every check (source file, target URL, reachability, credentials,
  schema compatibility) runs before anything is written; --dry-run writes nothing at all.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from operator import itemgetter, methodcaller
from pathlib import Path
from typing import Any

from pmbot.errors import InputError, StoreError

Progress = Callable[[str, int, int], None]  # (table, rows done, rows in the source table)

_FIRST = ["orders", "order_events", "trades", "positions", "learnings", "reflections", "execution_logs", "state"]
MAX_CONFLICTS_LISTED = 50
_JSON_COLUMNS = ("metadata", "metrics")  # pmbot's JSON columns (reflections.metrics: 0007_seed_journal)


@dataclass(frozen=True, slots=True)
class Conflict:
    table: str
    key: tuple[Any, ...]
    columns: tuple[str, ...]  # the columns that differ


@dataclass(slots=True)
class TableReport:
    table: str
    source_rows: int = 0
    present: int = 0  # already in the target, identical
    copied: int = 0  # written by this run (with --dry-run: would be written)
    conflicts: int = 0
    source_checksum: str = ""
    target_rows: int | None = None
    target_checksum: str | None = None

    @property
    def verified(self) -> bool:
        return self.target_rows == self.source_rows and self.target_checksum == self.source_checksum


@dataclass(slots=True)
class MigrationReport:
    source: str
    target: str
    dry_run: bool
    tables: list[TableReport] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    @property
    def rows_per_s(self) -> float:
        return self.copied / self.seconds if self.seconds > 0 else 0.0

    @property
    def conflict_count(self) -> int:
        return sum(t.conflicts for t in self.tables)

    @property
    def verified(self) -> bool:
        return not self.dry_run and all(t.verified for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "target": self.target,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "rows_copied": self.copied,
            "rows_per_s": round(self.rows_per_s),
            "verified": self.verified,
            "tables": [
                {
                    "table": t.table,
                    "source_rows": t.source_rows,
                    "already_present": t.present,
                    "copied" if not self.dry_run else "to_copy": t.copied,
                    "conflicts": t.conflicts,
                    "source_checksum": t.source_checksum,
                    "target_rows": t.target_rows,
                    "target_checksum": t.target_checksum,
                    "verified": t.verified if not self.dry_run else None,
                }
                for t in self.tables
            ],
            "conflicts": [
                {"table": c.table, "key": list(c.key), "columns": list(c.columns)}
                for c in self.conflicts[:MAX_CONFLICTS_LISTED]
            ],
        }


# ------------------------------------------------------------------------------------ canonical rows


def _numbers(value: Any) -> Any:
    """Numbers by value: integral ones as int (exact), others as float (equal beyond 17 digits collide)."""
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


def canonical_json(text: str | None) -> str | None:
    """JSON by value: key order, spacing and number spelling (1, 1.0, 1e0) do not matter."""
    if text is None or text == "{}":
        return text
    try:
        value = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    except ValueError:
        return text  # not JSON: compared as written
    return json.dumps(_numbers(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_SEP = "\x1f"
_MD5 = hashlib.md5
_DIGEST = methodcaller("digest")
_HEAD = itemgetter(slice(0, 8))
_SIGNED = partial(int.from_bytes, byteorder="big", signed=True)
_FIELDS = partial(map, str)


class Checksum:
    """An order-independent checksum of a table: the sum of each row's 64-bit MD5 prefix over its text.

    A row's text is its columns as PostgreSQL's `::text` prints them (str() of SQLite's ints and strs is
    the same text; NULL is `None`), joined by U+001F; JSON as jsonb prints it (the source's JSON values
    are normalised by the server, so spelling does not count). The target side is one query computed by
    the server (`target_checksum_sql`): a million rows never travel back. Not a cryptographic seal: it
    finds a row that was lost, duplicated or changed in copying. Source side: C-level map()s, ~1 µs/row.
    """

    def __init__(self) -> None:
        self.total = 0
        self.rows = 0

    def update(self, texts_of_rows: list[tuple[Any, ...]]) -> None:
        texts = map(str.encode, map(_SEP.join, map(_FIELDS, texts_of_rows)))
        self.total += sum(map(_SIGNED, map(_HEAD, map(_DIGEST, map(_MD5, texts)))))
        self.rows += len(texts_of_rows)

    @staticmethod
    def format(rows: int, total: int) -> str:
        return f"{rows}:{total & 0xFFFFFFFFFFFFFFFF:016x}"

    def hexdigest(self) -> str:
        return self.format(self.rows, self.total)


def target_checksum_sql(table: str, columns: Sequence[str]) -> bytes:
    text = ", ".join(f"coalesce({c}::text, 'None')" for c in columns)
    return (
        f"SELECT count(*), coalesce(sum(('x' || left(md5(concat_ws(E'\\x1f', {text})), 16))::bit(64)::bigint), 0)"
        f" FROM {table}"
    ).encode()


# --------------------------------------------------------------------------------------- the tables


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]  # canonical: the SQLite table's columns
    key: tuple[str, ...]
    json_columns: frozenset[str]
    has_id_sequence: bool

    @property
    def key_index(self) -> tuple[int, ...]:
        return tuple(self.columns.index(k) for k in self.key)

    @property
    def json_index(self) -> tuple[int, ...]:
        return tuple(i for i, c in enumerate(self.columns) if c in self.json_columns)

    def canonical(self, row: Sequence[Any], json_index: tuple[int, ...] | None = None) -> tuple[Any, ...]:
        out = list(row)
        for i in self.json_index if json_index is None else json_index:
            v = out[i]
            if v is not None and v != "{}":
                out[i] = canonical_json(v)
        return tuple(out)

    def canonical_rows(self, rows: list[Any]) -> list[tuple[Any, ...]]:
        json_index = self.json_index
        if not json_index:
            return rows
        canonical = self.canonical
        if len(json_index) == 1:  # pmbot's tables: one metadata column, almost always "{}"
            (i,) = json_index
            return [r if r[i] == "{}" or r[i] is None else canonical(r, json_index) for r in rows]
        return [canonical(r, json_index) for r in rows]


_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")


def _check_identifier(name: str) -> str:
    """Table and column names go into SQL text: only plain lower-case names are accepted."""
    if not _IDENTIFIER.match(name):
        raise InputError(f"the source database has a table or column named {name!r}, which pmbot never creates")
    return name


def _source_tables(src: sqlite3.Connection) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """(table, columns, primary key columns) of every pmbot table in the SQLite file."""
    names = [
        r[0]
        for r in src.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " AND name <> 'schema_migrations'"
        )
    ]
    out = []
    for name in names:
        _check_identifier(name)
    for name in sorted(names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n)):
        info = src.execute(f'PRAGMA table_info("{name}")').fetchall()
        cols = tuple(_check_identifier(str(r[1])) for r in info)
        pk = tuple(str(r[1]) for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        out.append((name, cols, pk))
    return out


def _open_source(source_url: str) -> tuple[sqlite3.Connection, Path]:
    from pmbot.store import sqlite_path

    if not source_url.strip().startswith("sqlite:///"):
        raise InputError(f"--from must be a sqlite:///PATH URL, got {source_url!r}", hint="e.g. sqlite:///./pmbot.db")
    path = sqlite_path(source_url)
    if not path.is_file():
        raise InputError(f"source database not found: {path}", hint="check the --from path")
    try:
        src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        src.execute("SELECT name FROM schema_migrations").fetchall()
    except sqlite3.Error as e:
        raise InputError(f"{path} is not a pmbot SQLite database: {e}") from None
    return src, path


def _specs(src: sqlite3.Connection, tgt: Any, schema_ready: bool) -> list[TableSpec]:
    from pmbot.store.migrations import MIGRATIONS as SQLITE_MIGRATIONS
    from pmbot.store.pg_migrations import MIGRATIONS, NATURAL_KEYS

    pg_names = {n for n, _ in MIGRATIONS}
    source_names = {r[0] for r in src.execute("SELECT name FROM schema_migrations")}
    behind = [n for n, _ in SQLITE_MIGRATIONS if n not in source_names]
    if behind:
        # Its rows predate data migrations the target has already had (e.g. 0006's dry-run key prefix).
        raise StoreError(
            f"the source database's schema is behind this pmbot (pending: {', '.join(behind)})",
            hint="open it once with this version first (any report, e.g. `pmbot stats`, migrates it), then rerun",
        )
    missing = sorted(n for n in source_names if n not in pg_names)
    if missing:
        raise StoreError(
            f"the source has migration(s) {', '.join(missing)} with no PostgreSQL counterpart",
            hint="this pmbot version cannot migrate that database; add them to pmbot/store/pg_migrations.py",
        )
    target_cols: dict[str, dict[str, str]] = {}
    if schema_ready:
        for table, column, dtype in tgt.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = 'public'"
        ):
            target_cols.setdefault(table, {})[column] = dtype
    specs = []
    for name, cols, pk in _source_tables(src):
        key = NATURAL_KEYS.get(name) or pk
        if not key:
            raise StoreError(f"table {name} has no key to migrate by")
        have = target_cols.get(name)
        if schema_ready:
            lacking = [c for c in cols if have is None or c not in have]
            if lacking:
                raise StoreError(
                    f"PostgreSQL table {name} lacks column(s) {', '.join(lacking)}",
                    hint="a SQLite migration has no PostgreSQL counterpart yet (pmbot/store/pg_migrations.py)",
                )
        json_cols = frozenset(c for c, t in (have or {}).items() if t in ("jsonb", "json") and c in cols)
        if not schema_ready:  # --dry-run against an empty database: pmbot's own JSON columns
            json_cols = frozenset(c for c in cols if c in _JSON_COLUMNS or (name == "state" and c == "value"))
        specs.append(TableSpec(name, cols, tuple(key), json_cols, "id" in cols and name != "trades"))
    return specs


# --------------------------------------------------------------------------------------------- run


def _source_batches(src: sqlite3.Connection, spec: TableSpec, batch: int) -> Iterator[list[tuple[Any, ...]]]:
    cols = ", ".join(f'"{c}"' for c in spec.columns)
    keys = ", ".join(f'"{k}"' for k in spec.key)
    marks = ", ".join("?" for _ in spec.key)
    last: tuple[Any, ...] | None = None
    ki = spec.key_index
    while True:
        if last is None:
            found = src.execute(f'SELECT {cols} FROM "{spec.name}" ORDER BY {keys} LIMIT ?', (batch,)).fetchall()
        else:
            found = src.execute(
                f'SELECT {cols} FROM "{spec.name}" WHERE ({keys}) > ({marks}) ORDER BY {keys} LIMIT ?',
                (*last, batch),
            ).fetchall()
        if not found:
            return
        yield found
        last = tuple(found[-1][i] for i in ki)


def _target_select(spec: TableSpec, prefix: str = "") -> str:
    return ", ".join(f"{prefix}{c}::text" if c in spec.json_columns else f"{prefix}{c}" for c in spec.columns)


def _existing(tgt: Any, spec: TableSpec, lo: tuple[Any, ...], hi: tuple[Any, ...]) -> dict[tuple[Any, ...], tuple]:
    """Target rows whose key lies in [lo, hi], canonical, by key."""
    keys = ", ".join(spec.key)
    marks = ", ".join(["%s"] * len(spec.key))
    ki = spec.key_index
    if spec.name == "trades":  # the key lives in trade_keys; trades is partitioned by ts
        known = tgt.execute(
            "SELECT trade_id, ts FROM trade_keys WHERE trade_id BETWEEN %s AND %s", (lo[0], hi[0])
        ).fetchall()
        if not known:
            return {}
        # By (trade_id, ts): trade_keys knows each trade's ts, so the ts index of its partition finds it.
        found = tgt.execute(
            f"SELECT {_target_select(spec, 't.')} FROM trades t JOIN unnest(%s::text[], %s::bigint[])"
            " AS k(trade_id, ts) ON t.trade_id = k.trade_id AND t.ts = k.ts".encode(),
            ([k[0] for k in known], [k[1] for k in known]),
        ).fetchall()
    else:
        found = tgt.execute(
            f"SELECT {_target_select(spec)} FROM {spec.name}"
            f" WHERE ({keys}) >= ({marks}) AND ({keys}) <= ({marks})".encode(),
            (*lo, *hi),
        ).fetchall()
    return {tuple(c[i] for i in ki): c for c in spec.canonical_rows(found)}


def _months(ts_values: Iterable[int]) -> set[int]:
    from pmbot.store.pg_migrations import month_of

    return {month_of(day * _DAY_MS) for day in {ts // _DAY_MS for ts in ts_values}}


_DAY_MS = 86_400_000
_Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]  # (source rows, canonical rows)


class _JsonText:
    """The source's JSON values as PostgreSQL's jsonb prints them, for the checksum (its own connection,
    opened on first need: most rows hold "{}", which prints as itself)."""

    def __init__(self, target_url: str) -> None:
        self.url = target_url
        self.conn: Any = None

    def rows(self, spec: TableSpec, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        idx = spec.json_index
        todo = sorted({r[i] for r in rows for i in idx if r[i] is not None and r[i] != "{}"})
        if not todo:
            return rows
        if self.conn is None:
            from pmbot.store.postgres import connect

            self.conn = connect(self.url)
            self.conn.autocommit = True
        try:
            found = self.conn.execute("SELECT v, v::jsonb::text FROM unnest(%s::text[]) AS u(v)", (todo,)).fetchall()
        except Exception as e:
            raise StoreError(f"table {spec.name}: a JSON value in the source is not valid JSON: {e}") from None
        text = dict(found)
        out = []
        for r in rows:
            row = list(r)
            for i in idx:
                if row[i] in text:
                    row[i] = text[row[i]]
            out.append(tuple(row))
        return out

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def _read_ahead(path: Path, target_url: str, spec: TableSpec, batch: int, checksum: Checksum) -> Iterator[_Batch]:
    """The source batches, read (and checksummed) in a thread of its own one batch ahead: SQLite reads
    overlap PostgreSQL's work on the previous COPY (both release the GIL while they wait)."""
    out: queue.Queue[_Batch | BaseException | None] = queue.Queue(maxsize=2)
    stop = threading.Event()

    def produce() -> None:
        json_text = _JsonText(target_url)
        try:
            with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as src:
                for rows in _source_batches(src, spec, batch):
                    canon = spec.canonical_rows(rows)
                    checksum.update(json_text.rows(spec, rows) if spec.json_columns else rows)
                    while not stop.is_set():
                        try:
                            out.put((rows, canon), timeout=0.1)
                            break
                        except queue.Full:
                            continue
                    if stop.is_set():
                        return
            out.put(None)
        except BaseException as e:  # handed to the consumer, raised there
            out.put(e)
        finally:
            json_text.close()

    reader = threading.Thread(target=produce, name=f"migrate-read-{spec.name}", daemon=True)
    reader.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join(timeout=5)


def _copy_table(
    src: sqlite3.Connection,
    path: Path,
    target_url: str,
    tgt: Any,
    spec: TableSpec,
    report: MigrationReport,
    *,
    dry_run: bool,
    schema_ready: bool,
    batch: int,
    progress: Progress | None,
    partitions: set[str],
) -> TableReport:
    from pmbot.store.pg_migrations import create_partitions, partition_name

    t = TableReport(spec.name)
    t.source_rows = int(src.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0])
    if progress:
        progress(spec.name, 0, t.source_rows)
    checksum = Checksum()
    ki = spec.key_index
    copy_sql = f"COPY {spec.name} ({', '.join(spec.columns)}) FROM STDIN".encode()
    ts_i = spec.columns.index("ts") if spec.name == "trades" else -1
    tid_i = spec.columns.index("trade_id") if spec.name == "trades" else -1
    done = 0
    for rows, canon in _read_ahead(path, target_url, spec, batch, checksum):
        lo, hi = tuple(rows[0][i] for i in ki), tuple(rows[-1][i] for i in ki)
        existing = _existing(tgt, spec, lo, hi) if schema_ready else {}
        new: list[tuple[Any, ...]]
        if not existing:  # the common case: nothing of this key range is there yet
            new = rows
        else:
            new = []
            for r, c in zip(rows, canon, strict=True):
                k = tuple(c[i] for i in ki)
                there = existing.get(k)
                if there is None:
                    new.append(r)
                elif there == c:
                    t.present += 1
                else:
                    t.conflicts += 1
                    diff = tuple(col for col, a, b in zip(spec.columns, c, there, strict=True) if a != b)
                    report.conflicts.append(Conflict(spec.name, k, diff))
        t.copied += len(new)
        if new and not dry_run:
            if ts_i >= 0:
                missing = [m for m in _months(r[ts_i] for r in new) if partition_name(m) not in partitions]
                if missing:
                    create_partitions(tgt, missing)
                    partitions.update(partition_name(m) for m in missing)
            with tgt.transaction():  # one batch: all of it or none of it
                cur = tgt.cursor()
                with cur.copy(copy_sql) as copy:
                    write = copy.write_row
                    for r in new:
                        write(r)
                if tid_i >= 0:
                    with cur.copy(b"COPY trade_keys (trade_id, ts) FROM STDIN") as copy:
                        write = copy.write_row
                        for r in new:
                            write((r[tid_i], r[ts_i]))
        done += len(rows)
        if progress:
            progress(spec.name, done, t.source_rows)
    t.source_checksum = checksum.hexdigest()
    if not dry_run:
        _durable_flush(tgt)
        if spec.has_id_sequence:
            tgt.execute(
                f"SELECT setval(pg_get_serial_sequence('{spec.name}', 'id'), max(id)) FROM {spec.name}"
                f" HAVING max(id) IS NOT NULL".encode()
            )
        elif spec.name == "trades":
            tgt.execute("SELECT setval('trades_id_seq', max(id)) FROM trades HAVING max(id) IS NOT NULL")
        t.target_rows, t.target_checksum = _target_checksum(tgt, spec)
    return t


def _durable_flush(tgt: Any) -> None:
    """Batches commit with synchronous_commit off (a crash loses at most the last few, which the next run
    copies again). Before a table is reported verified, one commit with it on flushes the WAL of all of
    them: a commit that has a transaction id waits for the WAL up to its own record, which follows theirs."""
    tgt.execute("SET synchronous_commit = on")
    with tgt.transaction():
        tgt.execute("SELECT txid_current()")
    tgt.execute("SET synchronous_commit = off")


def _target_checksum(tgt: Any, spec: TableSpec) -> tuple[int, str]:
    found = tgt.execute(target_checksum_sql(spec.name, spec.columns)).fetchone()
    return int(found[0]), Checksum.format(int(found[0]), int(found[1]))


def run_migration(
    source_url: str,
    target_url: str,
    *,
    dry_run: bool = False,
    batch: int = 10_000,
    progress: Progress | None = None,
) -> MigrationReport:
    """Copy every table of the SQLite store at `source_url` into the PostgreSQL database `target_url`."""
    from pmbot.store import is_postgres_url
    from pmbot.store.pg_migrations import applied, existing_partitions, migrate
    from pmbot.store.postgres import check_url, connect, describe_url

    if batch < 1:
        raise InputError("--batch must be at least 1")
    if not is_postgres_url(target_url):
        raise InputError(
            f"--to must be a postgresql:// URL, got scheme {target_url.split('://', 1)[0]!r}",
            hint="e.g. postgresql://user:password@host:5432/pmbot",
        )
    check_url(target_url)
    started = time.perf_counter()
    src, path = _open_source(source_url)
    with closing(src), connect(target_url) as tgt:
        tgt.autocommit = True
        names = applied(tgt)
        schema_ready = bool(names)
        specs = _specs(src, tgt, schema_ready)  # every check before the first write
        if not dry_run:
            migrate(tgt)
            tgt.execute("SET synchronous_commit = off")  # per batch; see _durable_flush
            schema_ready = True
            specs = _specs(src, tgt, True)
        partitions = existing_partitions(tgt) if schema_ready else set()
        report = MigrationReport(source=str(path), target=describe_url(target_url), dry_run=dry_run)
        for spec in specs:
            report.tables.append(
                _copy_table(
                    src,
                    path,
                    target_url,
                    tgt,
                    spec,
                    report,
                    dry_run=dry_run,
                    schema_ready=schema_ready,
                    batch=batch,
                    progress=progress,
                    partitions=partitions,
                )
            )
    report.seconds = time.perf_counter() - started
    return report


__all__ = ["Conflict", "MigrationReport", "TableReport", "canonical_json", "run_migration"]
