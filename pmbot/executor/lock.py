"""One live engine per wallet. Two engines trading one wallet would each pass their own risk checks
and together breach them, and could each send an intent the other already sent.

A file lock (flock) covers one machine: it is taken both in the user's fixed lock directory and beside
a SQLite database, so engines with different data directories or different users of one database
still meet. With Redis configured a lease `pmbot:live:<wallet>` covers a fleet (which must therefore
share one Redis database). Both are released by the OS / TTL if the process dies, so a crash never
needs manual cleanup. Lock files are 0600 and name the wallet by a hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from pmbot.errors import PmbotError
from pmbot.private_files import open_private

if TYPE_CHECKING:
    import redis.asyncio as aioredis


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


def database_lock_path(database_url: str, wallet: str) -> Path | None:
    """Beside a SQLite database (`<db>.live-<hash>.lock`): engines that share the database share the
    lock, whoever runs them and whatever their data directory."""
    from pmbot.store import sqlite_path

    try:
        db = sqlite_path(database_url)
    except PmbotError:
        return None  # not a file database: the Redis lease is what covers it
    return db.with_name(f"{db.name}.live-{wallet_tag(wallet)}.lock")


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

    @staticmethod
    def _lock(path: Path) -> int:
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
            raise WalletLockedError(f"another live engine (pid {holder}) is trading this wallet") from None
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


_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"
_RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"


class RedisWalletLock:
    """A lease `pmbot:live:<wallet>` renewed every ttl/3; lost if the process stops renewing."""

    def __init__(self, client: aioredis.Redis, wallet: str, *, ttl_s: float = 15.0) -> None:
        self._client = client
        self.key = f"pmbot:live:{wallet.lower()}"
        self._token = f"{os.getpid()}:{secrets.token_hex(8)}"
        self._ttl_ms = int(ttl_s * 1000)
        self._task: asyncio.Task[None] | None = None
        self.lost = False

    async def acquire(self) -> None:
        if not await self._client.set(self.key, self._token, nx=True, px=self._ttl_ms):
            holder = await self._client.get(self.key)
            text = holder.decode() if isinstance(holder, bytes) else str(holder or "?")
            pid = text.split(":")[0]
            raise WalletLockedError(f"another live engine (pid {pid}, via Redis) is trading this wallet")
        self._task = asyncio.create_task(self._renew(), name="pmbot-wallet-lease")

    async def _renew(self) -> None:
        loop = asyncio.get_running_loop()
        renewed = loop.time()
        while True:
            await asyncio.sleep(self._ttl_ms / 3000)
            try:
                ok = await self._client.eval(_RENEW, 1, self.key, self._token, self._ttl_ms)
            except Exception:
                # Redis unreachable: the lease may lapse and another engine take the wallet once it has.
                if loop.time() - renewed >= self._ttl_ms / 1000:
                    self.lost = True
                    return
                continue
            if not ok:
                self.lost = True  # the executor checks this before every live send
                return
            renewed = loop.time()

    def is_lost(self) -> bool:
        return self.lost

    async def release(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            await self._client.eval(_RELEASE, 1, self.key, self._token)
