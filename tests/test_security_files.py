"""Issue 12 item 3: with umask 022 the database, its -wal / -shm and the data directories were
0644 / 0755. Directories pmbot creates are 0700 and its files 0600, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.config import default_database_url
from pmbot.private_files import private_dir, touch_private
from pmbot.store import open_store


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_its_wal_and_shm_are_private(umask_022: None, tmp_path: Path) -> None:
    db = tmp_path / "new" / "deeper" / "pmbot.db"
    store = open_store(f"sqlite:///{db}")
    try:
        store.set_state("probe", {"x": 1})  # a write: the WAL and shared-memory files exist now
        wal, shm = db.with_name("pmbot.db-wal"), db.with_name("pmbot.db-shm")
        assert wal.exists() and shm.exists()
        assert {p.name: mode(p) for p in (db, wal, shm)} == {p.name: 0o600 for p in (db, wal, shm)}
        assert mode(db.parent) == mode(db.parent.parent) == 0o700
    finally:
        store.close()


def test_default_data_directory_is_private(umask_022: None, tmp_path: Path) -> None:
    # the autouse fixture points XDG_DATA_HOME at tmp_path/xdg, which does not exist yet
    assert not (tmp_path / "xdg").exists()
    store = open_store(default_database_url())
    store.close()
    data = tmp_path / "xdg" / "pmbot"
    assert mode(data) == mode(data.parent) == 0o700
    assert mode(data / "pmbot.db") == 0o600


def test_existing_directories_and_files_keep_their_mode(umask_022: None, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)  # noqa: S103 - an operator's deliberate choice is not ours to change
    touch_private(shared / "f")
    assert mode(shared) == 0o755 and mode(shared / "f") == 0o600
    os.chmod(shared / "f", 0o640)
    touch_private(shared / "f")
    assert mode(shared / "f") == 0o640
    assert private_dir(shared / "a" / "b") == shared / "a" / "b"
    assert mode(shared / "a") == mode(shared / "a" / "b") == 0o700
