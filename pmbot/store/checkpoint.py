"""The SQLite store's WAL checkpointer: checkpoints run in a thread of their own, never inside a commit.

Why. SQLite's default (`wal_autocheckpoint=1000` pages) runs a checkpoint inside the COMMIT that
crosses the threshold: that commit copies the WAL's pages into the database file and fsyncs both
files before it returns, e.g. on the executor's write-ahead commit just before the POST. Measured on
this machine (1 500 executor-like orders, 3 commits each): with synchronous=NORMAL those commits are
the only slow ones (p99 of the write-ahead commit 2.6 ms, max 10 ms, at a WAL size that no longer
changes; without any checkpoint p99 0.15 ms), so NORMAL was slower than FULL at p99; with FULL they
add to the disk's own outliers. The store's write connection therefore has `wal_autocheckpoint=0`,
and this thread checkpoints on a connection of its own with `PRAGMA wal_checkpoint(PASSIVE)`, which
never takes SQLite's write lock and never waits: a commit and a checkpoint run side by side.

Durability is unchanged. A commit's durability is the WAL's: with synchronous=FULL the commit's WAL
frames are fsynced before COMMIT returns, with NORMAL they are in the OS's page cache (a process
crash keeps them). A checkpoint only copies frames that are already committed from the WAL into the
database file; its connection uses the store's synchronous setting, so it fsyncs the WAL before it
copies and the database file before it records the frames as copied, and only then may a later
commit restart the WAL from its start and overwrite them. Until then a crash or power loss replays
them from the WAL on the next open, whether the checkpoint ran, half-ran or not.

When. A checkpoint is due when commits are pending and either the writer has been quiet for
`idle_s` (between bursts: nothing waits for the disk then) and the last checkpoint is `min_interval_s`
old, or `max_commits` commits (~1 000 pages, as SQLite's threshold) / `max_age_s` seconds /
`max_growth` bytes of WAL file growth have accumulated without a quiet moment (a steady stream: the
checkpoint then overlaps commits, which costs them a share of the disk, not a whole checkpoint).
The cycle must end with the WAL fully copied while no commit is in flight: only then does the next
commit restart the WAL from its start. A WAL that is never restarted keeps growing, and every commit
that extends the file pays for a metadata write in its fdatasync (measured: without restarts every
commit grew the file and the FULL commit's p50 rose from 0.26 to 0.37 ms, 13% of commits over 1 ms).
See `_checkpoint` for how a busy writer's cycle still gets there.

Bounds. A reader holding an old snapshot (a long `SELECT`, `pmbot migrate` reading the file) stops a
PASSIVE checkpoint at that snapshot: the WAL grows while it lasts; the next checkpoint after it copies
the rest, the next commit restarts the WAL, and the write connection's `journal_size_limit` truncates
the file back to that limit there (once, after such an excursion). The WAL is deleted when the last
connection closes, as before.

The thread holds no reference to the store (a store that is dropped without close() stops it through
a finalizer); it is a daemon, and `close()` stops and joins it before the write connection closes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger("pmbot.store.checkpoint")


class WriteLock(Protocol):
    """The store's write lock (a threading.RLock): held by every commit of this process."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...

    def release(self) -> None: ...


@dataclass(frozen=True)
class CheckpointPolicy:
    """When the background checkpoint runs (see the module docstring)."""

    idle_s: float = 0.02  # the writer quiet this long: checkpoint now
    min_interval_s: float = 0.1  # ... but not more often than this on idle moments
    # ~7 WAL pages per executor commit: ~1 000 pages (SQLite's own autocheckpoint threshold, ~4 MB).
    # Not more: a pmbot process starts with an empty WAL (the last connection's close deletes it), and
    # until the first restart every commit extends the file, which makes its fdatasync slower.
    max_commits: int = 128
    max_age_s: float = 2.0  # since the first commit not yet checkpointed
    max_growth: int = 4 * 1024 * 1024  # WAL file growth since the last checkpoint (bulk writes)
    poll_s: float = 0.01  # how often a pending thread looks at the clock
    catch_up: int = 0  # unlocked retries before the locked run: each one that copies costs 2 fsyncs
    # The write connection's journal_size_limit: a restarted WAL larger than this (after an excursion)
    # is cut back to it. Well above a cycle's WAL, so that a normal cycle reuses the file as it is.
    journal_size_limit: int = 64 * 1024 * 1024


class Checkpointer:
    """Counts commits (`committed()`, on the write path: a few attribute writes) and runs PASSIVE
    checkpoints in a daemon thread on its own connection. `close()` stops and joins it."""

    def __init__(
        self,
        path: Path,
        *,
        synchronous: str,
        write_lock: WriteLock | None = None,
        policy: CheckpointPolicy | None = None,
    ) -> None:
        """`write_lock`: the lock the store's commits hold (held for the last, small run of a cycle)."""
        self.policy = policy or CheckpointPolicy()
        self._write_lock: WriteLock = write_lock or threading.Lock()
        self._wal = Path(f"{path}-wal")
        # Opened here, in the caller's thread, so that an unopenable file fails the store's open.
        self._conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=10)
        self._conn.execute("PRAGMA wal_autocheckpoint=0")
        self._conn.execute(f"PRAGMA synchronous={synchronous}")  # the checkpoint's fsyncs: see the docstring
        self.commits = 0  # total, written by the committing thread only
        self.last_commit = 0.0  # time.monotonic() of the last commit
        self._pending = False  # commits since the last checkpoint began
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.checkpoints = 0  # PASSIVE runs (tests, diagnostics)
        self.restarts_ready = 0  # cycles that reached the WAL's end (the next commit restarts it)
        self.locked_runs = 0  # cycles that needed the run under the write lock
        self._thread = threading.Thread(target=self._run, name=f"pmbot-checkpoint:{path.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ write path

    def committed(self) -> None:
        """After each COMMIT. Wakes the thread once per checkpoint cycle, not per commit."""
        self.commits += 1
        self.last_commit = time.monotonic()
        if not self._pending:
            self._pending = True
            self._wake.set()

    # ------------------------------------------------------------------ lifecycle

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def close(self) -> None:
        """Stop the thread (an in-flight checkpoint finishes first), join it, close its connection."""
        self._stop.set()
        self._wake.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._conn.close()

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        p = self.policy
        last_ckpt = 0.0
        base_size = self._wal_size()
        while True:
            self._wake.wait()
            if self._stop.is_set():
                return
            first = time.monotonic()  # about when the first pending commit landed
            seen = self.commits
            while not self._stop.is_set():
                now = time.monotonic()
                quiet = now - self.last_commit >= p.idle_s
                if (
                    (quiet and now - last_ckpt >= p.min_interval_s)
                    or self.commits - seen >= p.max_commits
                    or now - first >= p.max_age_s
                    or self._wal_size() - base_size >= p.max_growth
                ):
                    break
                self._stop.wait(p.poll_s)
            if self._stop.is_set():
                return  # the write connection's close checkpoints whatever is left
            # Commits from here on belong to the next cycle (they set _wake again).
            self._wake.clear()
            self._pending = False
            self._checkpoint()
            last_ckpt = time.monotonic()
            base_size = self._wal_size()

    def _checkpoint(self) -> None:
        # The copy runs beside the commits. A WAL is restarted from its start (instead of appended to:
        # a growing file costs every fdatasync a metadata write) by the first commit that begins after
        # a checkpoint reached the WAL's end, so a cycle ends with proof that no commit slipped in:
        # either a run reached the end while no commit finished (the commit count unchanged) and none
        # is in flight (the store's write lock is free) -- an idle-triggered cycle proves it at once --
        # or one more run holds the write lock. That run copies only what landed during the first, so
        # a commit that has to wait for it waits for a small copy, once per busy cycle. (`catch_up`
        # unlocked retries can be tried first; measured here they raced the next commit about half the
        # time and each one that copies costs two more fsyncs beside the commits, hence 0.)
        lock = self._write_lock
        for _ in range(1 + self.policy.catch_up):
            before = self.commits
            got = self._passive()
            if got is None or self._stop.is_set():
                return
            if got[1] >= got[0] and self.commits == before and lock.acquire(blocking=False):
                try:
                    quiet = self.commits == before
                finally:
                    lock.release()
                if quiet:
                    self.restarts_ready += 1
                    return
        while not lock.acquire(timeout=0.05):  # a long transaction: close() must not wait for us
            if self._stop.is_set():
                return
        try:
            got = self._passive()
        finally:
            lock.release()
        self.locked_runs += 1
        if got is not None and got[1] >= got[0]:
            self.restarts_ready += 1

    def _passive(self) -> tuple[int, int] | None:
        """One PASSIVE checkpoint: (frames in the WAL, frames copied), None if it could not run."""
        try:
            busy, log_frames, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as e:  # e.g. a disk error: keep the thread, try again next cycle
            log.warning("background WAL checkpoint failed: %s", e)
            self._stop.wait(1.0)
            return None
        self.checkpoints += 1
        if busy or log_frames < 0:  # another connection is checkpointing; not a WAL database
            return None
        return log_frames, done

    def _wal_size(self) -> int:
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0
