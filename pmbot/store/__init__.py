"""Storage: the only package that writes SQL. `open_store` is the one way to get a Store."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from pmbot.errors import ConfigError
from pmbot.timeutil import Clock

if TYPE_CHECKING:
    from pmbot.store.base import Store


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` (SQLAlchemy style), or a plain file path."""
    url = database_url.strip()
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///") :]
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        if scheme.startswith("postgres"):
            raise ConfigError(
                "the PostgreSQL store is not in this version yet",
                hint="use a sqlite:/// database URL (the default) until `pmbot migrate` lands",
            )
        raise ConfigError(f"unsupported database URL scheme {scheme!r}", hint="use sqlite:///path/to/pmbot.db")
    else:
        path = url
    if not path or path == ":memory:":
        raise ConfigError("the database URL needs a file path", hint="e.g. sqlite:///./pmbot.db")
    return Path(path).expanduser()


def database_exists(database_url: str) -> bool:
    return sqlite_path(database_url).is_file()


def open_store(database_url: str, *, redis_url: str | None = None, clock: Clock = time.time) -> Store:
    """Open (creating and migrating if needed) the store; wrap it with the Redis cache if configured."""
    from pmbot.store.sqlite import SQLiteStore

    store: Store = SQLiteStore(sqlite_path(database_url), clock=clock)
    if redis_url:
        import redis

        from pmbot.store.cache import CachedStore

        # Short timeouts: a dead Redis must cost milliseconds once, then nothing (see CachedStore).
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.25, socket_timeout=0.25)
        store = CachedStore(store, client)
    return store
