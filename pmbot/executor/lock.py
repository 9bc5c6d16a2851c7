"""One live engine per wallet. Two engines trading one wallet would each pass their own risk checks
and together breach them, and could each send an intent the other already sent.

A file lock (flock) covers one machine; with Redis configured a lease in Redis covers a fleet. Both
are released by the OS / TTL if the process dies, so a crash never needs manual cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
from pathlib import Path
from typing import IO, TYPE_CHECKING

from pmbot.errors import PmbotError

if TYPE_CHECKING:
    import redis.asyncio as aioredis


class WalletLockedError(PmbotError):
    default_hint = "stop the other live engine first (or use another wallet)"


class FileWalletLock:
    def __init__(self, directory: Path, wallet: str) -> None:
        self.path = directory / f"live-{wallet.lower()}.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "?"
            fh.close()
            raise WalletLockedError(f"another live engine (pid {holder}) is trading this wallet") from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


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
