"""One live engine per wallet. Two engines trading one wallet would each pass their own risk checks
and together breach them, and could each send an intent the other already sent.

A file lock (flock) covers one machine: it is taken both in the user's fixed lock directory and beside
a SQLite database, so engines with different data directories or different users of one database
still meet. With Redis configured a lease `pmbot:live:<wallet>` covers a fleet (which must therefore
share one Redis database). Both are released by the OS / TTL if the process dies, so a crash never
needs manual cleanup. Lock files are 0600 and name the wallet by a hash.

A dry-run process holds a file lock on its paper wallet (`paper:<name>`, settings `executor.paper_wallet`),
per database: one process at a time trades a paper wallet, since each is seeded with that wallet's
positions (two holding one wallet could both sell its shares). While it is held, no other process closes
that paper wallet's resting orders either; once the process is gone, the next one to start may.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pmbot.errors import PmbotError
from pmbot.private_files import open_private

if TYPE_CHECKING:
    import redis.asyncio as aioredis


log = logging.getLogger("pmbot.executor")


class WalletLockedError(PmbotError):
    default_hint = "stop the other live engine first (or use another wallet)"


def wallet_tag(wallet: str) -> str:
    """The wallet as lock files name it: a hash, so a file listing does not say which wallet trades here."""
    return hashlib.sha256(wallet.lower().encode()).hexdigest()[:24]


def user_lock_dir() -> Path:
    """The per-user lock directory every engine of this user shares: ~/.local/state/pmbot/locks.

    Deliberately not under XDG_DATA_HOME / XDG_STATE_HOME / the data directory: two engines started
    with different data directories (or databases) must still find each other's lock."""
    return Path.home() / ".local" / "state" / "pmbot" / "locks"


def beside_database(database_url: str, suffix: str) -> Path | None:
    """`<db>.<suffix>` beside a SQLite database, or None when the URL is not a file database (the Redis
    lease covers those): engines that share the database share the lock, whoever runs them and
    whatever their data directory."""
    from pmbot.store import sqlite_path

    try:
        db = sqlite_path(database_url)
    except PmbotError:
        return None
    return db.with_name(f"{db.name}.{suffix}")


def database_lock_path(database_url: str, wallet: str) -> Path | None:
    """The live lock beside a SQLite database: `<db>.live-<hash>.lock`."""
    return beside_database(database_url, f"live-{wallet_tag(wallet)}.lock")


class FileWalletLock:
    """flock on `live-<hash of wallet>.lock` in `directory` and, given a SQLite database URL, on one
    beside the database; all of them or none are held."""

    def __init__(self, directory: Path, wallet: str, *, database_url: str | None = None) -> None:
        self.path = directory / f"live-{wallet_tag(wallet)}.lock"
        beside = database_lock_path(database_url, wallet) if database_url else None
        self.paths = [self.path] + ([beside] if beside is not None else [])
        self._fds: list[int] = []

    def acquire(self) -> None:
        try:
            for path in self.paths:
                self._fds.append(self._lock(path))
        except BaseException:
            self.release()
            raise

    # what a refusal says: {pid} is the holder's
    held_message = "another live engine (pid {pid}) is trading this wallet"
    held_hint: str | None = None

    def _lock(self, path: Path) -> int:
        try:
            fd = open_private(path)
        except OSError as e:
            raise WalletLockedError(
                f"cannot open the wallet lock {path}: {e.strerror or e}", hint="check that directory's owner and mode"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise WalletLockedError(self.held_message.format(pid=holder), hint=self.held_hint) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return fd

    def release(self) -> None:
        for fd in reversed(self._fds):
            with contextlib.suppress(OSError):
                fcntl.flock(fd, fcntl.LOCK_UN)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _database_tag(database_url: str | None) -> str:
    """Which database a paper wallet lives in, for the user lock directory: a SQLite file by its resolved
    path (however the URL spells it), any other database by its URL (hashed, never written out)."""
    from pmbot.store import sqlite_path

    if not database_url:
        return ""
    try:
        return str(sqlite_path(database_url).resolve())
    except PmbotError:
        return database_url


def _paper_lock_paths(directory: Path, wallet: str, database_url: str | None) -> list[Path]:
    """In the user's lock directory, per database (paper wallets of two databases are two wallets) and,
    like the live lock, beside a SQLite database: a dry-run process of another user (or another HOME) on
    the same database must see this one running too."""
    tag = wallet_tag(f"{_database_tag(database_url)}\x00{wallet}")
    paths = [directory / f"paper-{tag}.lock"]
    beside = beside_database(database_url, f"paper-{wallet_tag(wallet)}.lock") if database_url else None
    return paths + ([beside] if beside is not None else [])


class PaperWalletLock(FileWalletLock):
    """Held by the dry-run process trading paper wallet `wallet` ("paper:<name>") on a database. The files
    stay when released: removing a lock file another process may be about to lock would let two hold it."""

    def __init__(self, directory: Path, wallet: str, *, database_url: str | None = None) -> None:
        super().__init__(directory, wallet)
        # only these: not the per-wallet live locks the base class would take
        self.paths = _paper_lock_paths(directory, wallet, database_url)
        self.path = self.paths[0]
        name = wallet.removeprefix("paper:")
        self.held_message = f"another dry-run process (pid {{pid}}) is trading paper wallet {name!r} on this database"
        self.held_hint = (
            "stop it first, run both strategies in one `pmbot run-all`, or give this process a paper wallet of"
            " its own: PMBOT_EXECUTOR__PAPER_WALLET=<name> (or [executor] paper_wallet in the config file)"
        )


class CopyTargetLock(FileWalletLock):
    """Held by a copier (`pmbot copy`, run-all's copy) for every target it mirrors, per mode: two copiers of
    one target on one database would both copy each of its fills (two dry-run copiers on two paper
    wallets pass the paper wallet lock), and each one's caps would ignore the other's orders."""

    def __init__(self, directory: Path, mode: str, targets: list[str], *, database_url: str | None = None) -> None:
        super().__init__(directory, "")
        self.paths = []
        for target in sorted({t.lower() for t in targets}):
            name = f"copy-{mode}-{wallet_tag(target)}.lock"
            beside = beside_database(database_url, name) if database_url else None
            self.paths += [directory / name] + ([beside] if beside is not None else [])
        self.path = self.paths[0] if self.paths else directory / "copy.lock"
        self.held_message = f"another pmbot copy (pid {{pid}}) is already mirroring this target ({mode}) here"
        self.held_hint = "stop it first, or copy another target"


def paper_wallet_alive(directory: Path, wallet: str, *, database_url: str | None = None) -> bool:
    """Is a dry-run process trading paper wallet `wallet` here (holding its lock)? No lock file means gone."""
    return any(_held(path) for path in _paper_lock_paths(directory, wallet, database_url))


def _held(path: Path) -> bool:
    try:
        fh = path.open("r")
    except FileNotFoundError:
        return False
    except OSError:
        return True  # there, but not ours to read (another user's 0600 file): cannot tell, so never "gone"
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # closing drops the shared lock we may have taken
    return False


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


class RedisWalletLock:
    """A lease `pmbot:live:<wallet>` renewed every ttl/3; lost if the process stops renewing.

    The lease is held until `sent + ttl` of the last successful SET/renew, counted from when that request
    was *sent* (Redis may have applied it at any point until the answer came back). `is_lost` compares the
    clock with that deadline, minus a margin for clock rate differences, on every call: the executor stops
    sending as soon as another engine could hold the wallet, not only when the renew task notices."""

    def __init__(
        self,
        client: aioredis.Redis,
        wallet: str,
        *,
        ttl_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.key = f"pmbot:live:{wallet.lower()}"
        self._token = f"{os.getpid()}:{secrets.token_hex(8)}"
        self._ttl_ms = int(ttl_s * 1000)
        self._task: asyncio.Task[None] | None = None
        self._clock = clock
        self._margin_s = ttl_s / 10
        self.held_until = float("-inf")  # on `clock`: the lease may have lapsed in Redis from then on
        self.lost = False

    async def acquire(self) -> None:
        sent = self._clock()
        if not await self._client.set(self.key, self._token, nx=True, px=self._ttl_ms):
            holder = await self._client.get(self.key)
            text = holder.decode() if isinstance(holder, bytes) else str(holder or "?")
            pid = text.split(":")[0]
            raise WalletLockedError(f"another live engine (pid {pid}, via Redis) is trading this wallet")
        self.held_until = sent + self._ttl_ms / 1000
        self._task = asyncio.create_task(self._renew(), name="pmbot-wallet-lease")

    async def _renew(self) -> None:
        while not self.is_lost():
            await asyncio.sleep(self._ttl_ms / 3000)
            sent = self._clock()
            try:
                ok = await self._client.eval(_RENEW, 1, self.key, self._token, self._ttl_ms)
            except Exception as e:  # Redis unreachable: is_lost() turns true once the lease may have lapsed
                log.warning("wallet lease not renewed (%s); stop sending at the latest at its deadline", e)
                continue
            if not ok:
                self.lost = True  # someone else holds it (or it lapsed): the executor checks before every send
                return
            self.held_until = sent + self._ttl_ms / 1000

    def is_lost(self) -> bool:
        if not self.lost and self._clock() >= self.held_until - self._margin_s:
            self.lost = True  # once lost, lost: a late renew must not hand the wallet back silently
        return self.lost

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._client.eval(_RELEASE, 1, self.key, self._token)
