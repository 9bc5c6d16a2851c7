"""The SQLite store's background WAL checkpointer (pmbot/store/checkpoint.py), on real files.

A commit never checkpoints inline (the write connection's wal_autocheckpoint is 0 and the WAL only
restarts when the background thread ran); with the thread the WAL stays bounded and is reused from
its start; a long reader makes it grow and journal_size_limit cuts it back afterwards; close() (or
dropping the store) leaves no thread. SIGKILL durability with the checkpointer busy is in
tests/test_store_durability.py."""

from __future__ import annotations

import gc
import shutil
import sqlite3
import struct
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.store import open_store
from pmbot.store.checkpoint import CheckpointPolicy
from pmbot.store.models import OrderRecord, OrderStatus, OrderType, Side
from pmbot.store.sqlite import SQLiteStore

NEVER = CheckpointPolicy(idle_s=1e9, max_commits=10**9, max_age_s=1e9, max_growth=10**15)
EAGER = CheckpointPolicy(idle_s=0.005, min_interval_s=0.0, max_commits=40, max_age_s=0.2)


def order(i: int) -> OrderRecord:
    return OrderRecord(
        key=f"k{i}",
        strategy="snipe",
        token_id="tok",
        side=Side.BUY,
        price=Decimal("0.5"),
        size=Decimal("10"),
        order_type=OrderType.GTC,
        dry_run=False,
        condition_id="0xc",
    )


def trade(store: SQLiteStore, i: int) -> None:
    """What the executor commits per order: the write-ahead record, then two status changes."""
    with store.transaction():
        assert store.insert_order(order(i))
    store.set_order_status(f"k{i}", OrderStatus.SUBMITTED, detail="POST /order sent")
    store.set_order_status(f"k{i}", OrderStatus.LIVE, venue_order_id=f"0x{i:x}")


def wal_size(db: Path) -> int:
    try:
        return Path(f"{db}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def wal_generation(db: Path) -> tuple[int, int]:
    """The WAL header's checkpoint sequence number and first salt: both change when the WAL restarts."""
    with open(f"{db}-wal", "rb") as f:
        head = f.read(32)
    seq, salt1 = struct.unpack(">I", head[12:16])[0], struct.unpack(">I", head[16:20])[0]
    return seq, salt1


def wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.01)


def checkpoint_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pmbot-checkpoint")]


def test_a_commit_never_checkpoints_inline(tmp_path: Path) -> None:
    """With the thread held back, 300 orders (~6 000 WAL pages, 6× SQLite's autocheckpoint threshold)
    only append: the WAL is never restarted or copied by a commit."""
    db = tmp_path / "inline.db"
    store = SQLiteStore(db, checkpoint=NEVER)
    try:
        conn = store.db.conn
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        trade(store, 0)
        generation = wal_generation(db)
        sizes = []
        for i in range(1, 300):
            trade(store, i)
            sizes.append(wal_size(db))
        assert sizes == sorted(sizes) and sizes[-1] > 1000 * 4096 * 2  # only ever grew, far past 1000 pages
        assert wal_generation(db) == generation  # never restarted
        ck = store._checkpointer
        assert ck is not None and ck.checkpoints == 0
        # Nothing was copied into the database file: a copy of it alone (no WAL) has not even the schema.
        lone = tmp_path / "lone.db"
        shutil.copy(db, lone)
        with sqlite3.connect(lone) as raw:
            assert raw.execute("SELECT count(*) FROM sqlite_master WHERE name = 'orders'").fetchone()[0] == 0
    finally:
        store.close()


def test_the_background_checkpointer_keeps_the_wal_bounded_and_reuses_it(tmp_path: Path) -> None:
    db = tmp_path / "bounded.db"
    store = SQLiteStore(db, checkpoint=EAGER)
    try:
        trade(store, 0)
        start = wal_generation(db)
        peak = 0
        for i in range(1, 1500):  # ~30 000 WAL pages if nothing were checkpointed (~120 MB)
            trade(store, i)
            peak = max(peak, wal_size(db))
            if i % 50 == 0:
                time.sleep(0.01)  # the executor's pauses between bursts
        ck = store._checkpointer
        assert ck is not None and ck.checkpoints > 0 and ck.restarts_ready > 0
        assert peak < 16 * 1024 * 1024, peak  # bounded: a few cycles' worth, not the whole run
        assert wal_generation(db)[0] > start[0]  # restarted from its start (only the thread checkpoints)
        # Idle: the thread copies everything into the database file, which then stands alone.
        wait_for(lambda: ck.restarts_ready > 0 and time.monotonic() - ck.last_commit > 0.5)
        lone = tmp_path / "lone.db"
        shutil.copy(db, lone)
        with sqlite3.connect(lone) as raw:
            assert raw.execute("SELECT count(*) FROM orders WHERE status = 'live'").fetchone()[0] == 1500
            assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()
    assert not Path(f"{db}-wal").exists()  # the last connection's close removes it, as before


def test_a_long_reader_lets_the_wal_grow_then_it_is_cut_back(tmp_path: Path) -> None:
    """A reader's old snapshot stops PASSIVE checkpoints there; once it ends, the thread copies the
    rest, the next commit restarts the WAL and journal_size_limit truncates the file."""
    db = tmp_path / "reader.db"
    limit = 512 * 1024
    store = SQLiteStore(db, checkpoint=CheckpointPolicy(idle_s=0.005, min_interval_s=0.0, journal_size_limit=limit))
    reader = sqlite3.connect(db, isolation_level=None)
    try:
        assert store.db.conn.execute("PRAGMA journal_size_limit").fetchone()[0] == limit
        trade(store, 0)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM orders").fetchone()[0] == 1  # holds this snapshot
        for i in range(1, 200):
            trade(store, i)
        ck = store._checkpointer
        assert ck is not None
        wait_for(lambda: ck.checkpoints > 0)
        grown = wal_size(db)
        assert grown > 4 * limit
        assert reader.execute("SELECT count(*) FROM orders").fetchone()[0] == 1  # its snapshot is intact
        reader.execute("COMMIT")
        ready = ck.restarts_ready
        trade(store, 200)  # wakes the thread; its checkpoint now reaches the WAL's end
        wait_for(lambda: ck.restarts_ready > ready)
        trade(store, 201)  # restarts the WAL: the file is cut back
        assert wal_size(db) <= limit + 64 * 1024
        assert reader.execute("SELECT count(*) FROM orders").fetchone()[0] == 202
    finally:
        reader.close()
        store.close()


def test_close_leaves_no_thread_and_is_quick(tmp_path: Path) -> None:
    before = len(checkpoint_threads())
    db = tmp_path / "many.db"
    t0 = time.monotonic()
    for i in range(40):
        store = SQLiteStore(db, checkpoint=EAGER)
        assert store._checkpointer is not None and store._checkpointer.alive
        trade(store, i)  # a checkpoint may be pending or running when close() comes
        store.close()
        assert len(checkpoint_threads()) == before
    assert time.monotonic() - t0 < 30  # generous: the point is no timeout waits in close()
    reopened = open_store(f"sqlite:///{db}")
    try:
        assert len(reopened.list_orders()) == 40
    finally:
        reopened.close()


def test_close_in_the_middle_of_checkpoints_is_clean(tmp_path: Path) -> None:
    """Closing while the thread is checkpointing a busy stream: no 'database is locked', no thread left."""
    db = tmp_path / "busy.db"
    store = SQLiteStore(db, checkpoint=CheckpointPolicy(idle_s=0.0, min_interval_s=0.0, max_commits=1, poll_s=0.001))
    ck = store._checkpointer
    assert ck is not None
    for i in range(300):
        trade(store, i)
    store.close()
    assert not ck.alive and checkpoint_threads() == []
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM orders").fetchone()[0] == 300
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_store_dropped_without_close_stops_its_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "dropped.db", checkpoint=EAGER)
    trade(store, 0)
    ck = store._checkpointer
    assert ck is not None and ck.alive
    del store
    gc.collect()
    assert not ck.alive


@pytest.mark.parametrize(("synchronous", "threaded"), [("FULL", True), ("NORMAL", True), ("OFF", False)])
def test_which_stores_checkpoint_in_the_background(tmp_path: Path, synchronous: str, threaded: bool) -> None:
    """FULL and NORMAL (the `[store] durability` choices) checkpoint in the thread, with the store's
    synchronous setting; OFF (backtests' throwaway files, nothing waits on a commit) keeps SQLite's inline
    autocheckpoint and has no thread."""
    store = SQLiteStore(tmp_path / f"{synchronous}.db", synchronous=synchronous)
    try:
        auto = store.db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        ck = store._checkpointer
        if threaded:
            assert auto == 0 and ck is not None and ck.alive
            level = {"NORMAL": 1, "FULL": 2}[synchronous]
            assert ck._conn.execute("PRAGMA synchronous").fetchone()[0] == level
        else:
            assert auto == 1000 and ck is None
    finally:
        store.close()


def test_close_does_not_wait_for_a_thread_that_waits_for_the_write_lock(tmp_path: Path) -> None:
    """The cycle's last run takes the store's write lock; a store closed while that lock is held (a
    transaction still open in the closing thread) must not deadlock on the join."""
    db = tmp_path / "locked.db"
    store = SQLiteStore(db, checkpoint=CheckpointPolicy(idle_s=0.0, min_interval_s=0.0, max_commits=1, catch_up=0))
    ck = store._checkpointer
    assert ck is not None
    with store._lock:
        for i in range(50):
            trade(store, i)  # commits inside the held (reentrant) lock: the thread's locked run must wait
        time.sleep(0.2)
        t0 = time.monotonic()
        ck.close()
        assert time.monotonic() - t0 < 5 and not ck.alive
    store.close()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM orders").fetchone()[0] == 50
