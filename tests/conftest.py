from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.services import RedisServer, redis_server


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


@pytest.fixture(params=["sqlite", "sqlite+redis"])
def store(request: pytest.FixtureRequest, db_url: str, clock: FakeClock) -> Iterator[object]:
    """Every Store backend: the contract suite runs once per backend (PostgreSQL joins later)."""
    from pmbot.store import open_store

    redis_url = request.getfixturevalue("redis_url") if request.param == "sqlite+redis" else None
    s = open_store(db_url, redis_url=redis_url, clock=clock)
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
