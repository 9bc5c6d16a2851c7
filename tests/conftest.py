from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import PostgresServer, RedisServer, pg_srv_truncate, postgres_server, redis_server


@pytest.fixture(autouse=True)
def _secret_registry() -> Iterator[None]:
    """Secrets a test registers (pmbot.errors.register_secret, e.g. through ApiCreds) end with it. Hypothesis
    draws strings from the literals of the code under test: test_auth_headers once made "--allow-remote" a
    passphrase, and every later test's output had "***" where the sim's hint says --allow-remote."""
    from pmbot import errors

    before = set(errors._SECRETS)
    yield
    errors._SECRETS.clear()
    errors._SECRETS.update(before)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's PMBOT_* settings, .env or data directory."""
    for key in list(os.environ):
        if key.startswith("PMBOT_") and key != "PMBOT_REQUIRE_SERVICES":
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # The per-user wallet lock lives under $HOME: concurrent test runs must not share it.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def redis_srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_srv: RedisServer) -> str:
    import redis

    client = redis.Redis.from_url(redis_srv.url)
    client.flushall()
    client.close()
    return redis_srv.url


@pytest.fixture(scope="session")
def pg_srv() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def pg_empty_url(pg_srv: PostgresServer) -> str:
    """A new database with nothing in it (no schema) on the session's PostgreSQL server."""
    return pg_srv.create_database(f"t{next(_PG_DB_NUMBERS)}")


_PG_DB_NUMBERS = itertools.count(1)


@pytest.fixture(scope="session")
def _pg_shared(pg_srv: PostgresServer) -> str:
    from pmbot.store.postgres import PostgresStore

    url = pg_srv.create_database("pmbot_shared")
    PostgresStore(url).close()  # schema once; each test empties the tables (~0.1 s, a new database ~0.5 s)
    return url


@pytest.fixture
def pg_url(_pg_shared: str) -> str:
    """A migrated PostgreSQL database whose tables are empty."""
    pg_srv_truncate(_pg_shared)
    return _pg_shared


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pmbot.db'}"


class FakeClock:
    """A settable clock (epoch seconds)."""

    def __init__(self, start: float = 1_795_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", "sqlite+redis", "postgres", "postgres+redis"])
def store(request: pytest.FixtureRequest, db_url: str, clock: FakeClock) -> Iterator[object]:
    """Every Store backend: the contract suite runs once per backend."""
    from pmbot.store import open_store

    redis_url = request.getfixturevalue("redis_url") if request.param.endswith("+redis") else None
    url = request.getfixturevalue("pg_url") if request.param.startswith("postgres") else db_url
    s = open_store(url, redis_url=redis_url, clock=clock)
    yield s
    s.close()


# -- pmbot sim ------------------------------------------------------------------------------------
# A simulated Polymarket per test: manual clock (time moves only on sim.advance), seed 7, start
# 1_795_000_000 (400 s into a 15-minute window). API: pmbot/sim/testing.py's module docstring.
# Imported lazily: the sim pulls in aiohttp and eth_account, which most tests do not need.


@pytest.fixture
def sim() -> Iterator[SimServer]:
    from pmbot.sim.testing import SimServer

    with SimServer(seed=7, manual=True) as server:
        yield server


@pytest.fixture
def sim_env(sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    """The `sim`, with every PMBOT_* venue URL pointing at it."""
    for key, value in sim.env().items():
        monkeypatch.setenv(key, value)
    return sim


if TYPE_CHECKING:
    from pmbot.sim.testing import SimServer
