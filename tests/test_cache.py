"""The Redis position cache against a real redis-server: hits, invalidation, outage and recovery."""

from __future__ import annotations

import logging
from decimal import Decimal as D

import pytest
import redis

from pmbot.store import open_store
from pmbot.store.cache import CachedStore
from tests.services import RedisServer
from tests.test_store_contract import fill

pytestmark = pytest.mark.services


def cached(db_url: str, redis_url: str, clock) -> CachedStore:
    s = open_store(db_url, redis_url=redis_url, clock=clock)
    assert isinstance(s, CachedStore)
    return s


def test_second_read_is_a_hit_with_ttl(db_url: str, redis_url: str, clock) -> None:
    s = cached(db_url, redis_url, clock)
    s.record_fill(fill(1))
    s.get_position("snipe", "tok-up", True)
    s.get_position("snipe", "tok-up", True)
    assert (s.hits, s.misses) == (1, 1)
    ttl = redis.Redis.from_url(redis_url).ttl("pmbot:pos2:tok-up")
    assert 0 < ttl <= 60


def test_write_from_another_process_invalidates(db_url: str, redis_url: str, clock) -> None:
    reader, writer = cached(db_url, redis_url, clock), cached(db_url, redis_url, clock)
    writer.record_fill(fill(1))
    assert reader.get_position("snipe", "tok-up", True).size == D(10)  # type: ignore[union-attr]
    writer.record_fill(fill(2))
    assert reader.get_position("snipe", "tok-up", True).size == D(20)  # type: ignore[union-attr]


def test_stale_fill_after_concurrent_write_is_not_cached(db_url: str, redis_url: str, clock) -> None:
    """A reader that read the DB before a write must not park its stale value in the cache."""
    s = cached(db_url, redis_url, clock)
    s.record_fill(fill(1))
    inner_get = s.inner.get_position

    def racing_get(*a: object) -> object:
        stale = inner_get(*a)  # type: ignore[arg-type]
        s.record_fill(fill(2))  # a write lands between the DB read and the cache fill
        return stale

    s.inner.get_position = racing_get  # type: ignore[method-assign]
    assert s.get_position("snipe", "tok-up", True).size == D(10)  # type: ignore[union-attr]
    s.inner.get_position = inner_get  # type: ignore[method-assign]
    assert s.get_position("snipe", "tok-up", True).size == D(20)  # type: ignore[union-attr]


def test_redis_down_falls_back_and_warns_once(db_url: str, tmp_path, clock, caplog: pytest.LogCaptureFixture) -> None:
    server = RedisServer(tmp_path)
    server.start()
    try:
        s = cached(db_url, server.url, clock)
        s.record_fill(fill(1))
        s.get_position("snipe", "tok-up", True)
    finally:
        server.stop()
    caplog.set_level(logging.WARNING, logger="pmbot")
    s.record_fill(fill(2))  # invalidation missed while down
    for _ in range(3):
        assert s.get_position("snipe", "tok-up", True).size == D(20)  # type: ignore[union-attr]
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1


def test_recovery_flushes_possibly_stale_entries(db_url: str, tmp_path, clock, monkeypatch) -> None:
    import pmbot.store.cache as cache_mod

    server = RedisServer(tmp_path)
    server.start()
    try:
        s = cached(db_url, server.url, clock)
        s.record_fill(fill(1))
        s.get_position("snipe", "tok-up", True)  # cached: size 10
        # Simulate an outage that only this process saw: invalidation fails, the entry stays.
        real = s._redis
        s._redis = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.1)  # nothing listens
        s.record_fill(fill(2))
        assert s.get_position("snipe", "tok-up", True).size == D(20)  # type: ignore[union-attr]
        s._redis = real
        monkeypatch.setattr(cache_mod, "RETRY_AFTER_S", 0.0)
        s._down_until = 1.0  # the retry time has passed
        assert s.get_position("snipe", "tok-up", True).size == D(20)  # type: ignore[union-attr]
        assert s._down_until == 0.0  # back on the cache
    finally:
        server.stop()
