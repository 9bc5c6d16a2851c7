"""A paper wallet on PostgreSQL is held by the database, not only by a lock file: the file lock is per host
and per spelling of the URL, so two hosts (or `localhost` and `127.0.0.1`) could both trade it and sell
the same paper shares."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pmbot.errors import PmbotError
from pmbot.executor.factory import build_executor
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.postgres import PostgresStore
from tests.test_executor import Rig, settings_for


def test_the_database_lock_holds_across_url_spellings(pg_url: str) -> None:
    other = pg_url.replace("127.0.0.1", "localhost")
    assert other != pg_url
    a, b = PostgresStore(pg_url), PostgresStore(other)
    try:
        release = a.hold_lock("paper-wallet:paper:default")
        assert release is not None
        assert b.hold_lock("paper-wallet:paper:default") is None  # another spelling, same database
        again = b.hold_lock("paper-wallet:paper:b")  # another wallet is free
        assert again is not None
        again()
        release()
        later = b.hold_lock("paper-wallet:paper:default")  # released: free again
        assert later is not None
        later()
    finally:
        a.close()
        b.close()


@pytest.fixture
async def pg_rig(sim: SimServer, tmp_path: Path, pg_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, pg_url))
    yield r
    await r.close()


async def test_a_second_host_on_one_postgres_database_cannot_trade_the_same_paper_wallet(
    pg_rig: Rig, sim: SimServer, tmp_path: Path, pg_url: str
) -> None:
    first = await pg_rig.executor(dry_run=True)  # its lock directory: tmp/locks
    store_b = open_store(pg_url.replace("127.0.0.1", "localhost"), clock=sim.now)
    try:
        with pytest.raises(PmbotError, match="paper wallet 'default'") as e:
            await build_executor(  # another host: its own lock directory, another spelling of the URL
                pg_rig.settings, store_b, pg_rig.venue, dry_run=True, lock_dir=tmp_path / "host-b", clock=sim.now
            )
        assert "another host or connection" in str(e.value)
        await first.close()
        pg_rig.handles.remove(first)
        second = await build_executor(
            pg_rig.settings, store_b, pg_rig.venue, dry_run=True, lock_dir=tmp_path / "host-b", clock=sim.now
        )
        await second.close()
    finally:
        store_b.close()
