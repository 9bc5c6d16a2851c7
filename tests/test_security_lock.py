"""Issue 12 items 1 and 3 (lock files): one live engine per wallet on this machine, for real.

The reproduction was two `pmbot order … --live --yes` on one database with different XDG_DATA_HOME:
both went live. The file lock is now keyed by the wallet (hashed) in the user's fixed lock directory
and beside a SQLite database; the Redis lease is keyed by the wallet alone.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.cli import main
from pmbot.executor.lock import FileWalletLock, RedisWalletLock, WalletLockedError, user_lock_dir, wallet_tag
from pmbot.sim.testing import SimServer
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # KEY's address (an EOA: signer = maker)


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


def live_order(sim: SimServer) -> tuple[int, str]:
    token = sim.current_market()["token_ids"][0]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes"])
    return code, out.getvalue() + err.getvalue()


@contextlib.contextmanager
def engine_holding(lock_dir: Path, db_url: str | None) -> Iterator[FileWalletLock]:
    """What another live engine of WALLET holds while it runs."""
    lock = FileWalletLock(lock_dir, WALLET, database_url=db_url)
    lock.acquire()
    try:
        yield lock
    finally:
        lock.release()


def test_same_database_other_data_dir_is_refused(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    with engine_holding(user_lock_dir(), db_url):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "elsewhere"))  # the reproduction
        code, out = live_order(live_sim)
    assert code == 2 and "another live engine" in out, out
    assert live_sim.received_orders() == []


def test_same_database_other_user_home_is_refused(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str
) -> None:
    # another account (another HOME) on the same database: the lock beside the database meets it
    with engine_holding(tmp_path / "other-home-locks", db_url):
        code, out = live_order(live_sim)
    assert code == 2 and "another live engine" in out, out
    assert live_sim.received_orders() == []


def test_other_database_same_user_is_refused(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with engine_holding(user_lock_dir(), f"sqlite:///{tmp_path / 'other.db'}"):
        code, out = live_order(live_sim)
    assert code == 2 and "another live engine" in out, out
    assert live_sim.received_orders() == []


def test_lock_is_released_and_a_dry_run_needs_none(live_sim: SimServer, tmp_path: Path, db_url: str) -> None:
    code, out = live_order(live_sim)
    assert code == 0, out
    code, out = live_order(live_sim)  # the first released it
    assert code == 0, out
    with engine_holding(user_lock_dir(), db_url):
        token = live_sim.current_market()["token_ids"][0]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["order", "buy", token, "--price", "0.02", "--size", "5"]) == 0


def test_user_lock_dir_ignores_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = user_lock_dir()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "b"))
    assert user_lock_dir() == before == Path.home() / ".local" / "state" / "pmbot" / "locks"


def test_lock_files_are_private_and_do_not_name_the_wallet(tmp_path: Path, db_url: str) -> None:
    old = os.umask(0o022)
    try:
        lock_dir = tmp_path / "state" / "pmbot" / "locks"
        with engine_holding(lock_dir, db_url) as lock:
            assert len(lock.paths) == 2
            for path in lock.paths:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
                assert WALLET.lower()[2:] not in path.name.lower()
                assert wallet_tag(WALLET) in path.name
                assert path.read_text() == str(os.getpid())  # only the pid inside
            for d in (lock_dir, lock_dir.parent, lock_dir.parent.parent):
                assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
        assert wallet_tag(WALLET) == wallet_tag(WALLET.lower())  # one wallet, one lock, whatever the case
    finally:
        os.umask(old)


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir()
    target = tmp_path / "victim"
    target.write_text("precious")
    (lock_dir / f"live-{wallet_tag(WALLET)}.lock").symlink_to(target)
    with pytest.raises(WalletLockedError, match="cannot open the wallet lock"):
        FileWalletLock(lock_dir, WALLET).acquire()
    assert target.read_text() == "precious"


def test_partial_acquire_releases_what_it_took(tmp_path: Path, db_url: str) -> None:
    with engine_holding(tmp_path / "a", db_url):  # holds the database-side lock
        second = FileWalletLock(tmp_path / "b", WALLET, database_url=db_url)
        with pytest.raises(WalletLockedError):
            second.acquire()
        # its own directory lock was let go: a third engine on another database may take it
        third = FileWalletLock(tmp_path / "b", WALLET)
        third.acquire()
        third.release()


async def test_redis_lease_is_keyed_by_wallet_alone(redis_url: str) -> None:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        a = RedisWalletLock(client, WALLET)
        b = RedisWalletLock(client, WALLET.lower())
        assert a.key == b.key == f"pmbot:live:{WALLET.lower()}"
        await a.acquire()
        with pytest.raises(WalletLockedError, match="via Redis"):
            await b.acquire()
        await a.release()
    finally:
        await client.aclose()
