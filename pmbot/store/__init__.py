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
        if is_postgres_url(url):
            raise ConfigError("this is a PostgreSQL URL, not a SQLite file", hint="open it with open_store()")
        raise ConfigError(
            f"unsupported database URL scheme {scheme!r}",
            hint="use sqlite:///path/to/pmbot.db or postgresql://user:password@host:5432/dbname",
        )
    else:
        path = url
    if not path or path == ":memory:":
        raise ConfigError("the database URL needs a file path", hint="e.g. sqlite:///./pmbot.db")
    return Path(path).expanduser()


def is_postgres_url(database_url: str) -> bool:
    return database_url.strip().split("://", 1)[0].lower() in ("postgres", "postgresql")


def database_exists(database_url: str) -> bool:
    """Whether there is a database to read (reports say "no trades yet" instead of creating one).

    A PostgreSQL database is a server's: it is there (or its error is reported) when the store opens."""
    if is_postgres_url(database_url):
        return True
    return sqlite_path(database_url).is_file()


# `[store] durability` → SQLite's synchronous pragma (WAL mode either way); see pmbot.config.DURABILITY_NOTES.
SQLITE_SYNCHRONOUS = {"full": "FULL", "normal": "NORMAL"}


def open_store(
    database_url: str, *, redis_url: str | None = None, clock: Clock = time.time, durability: str = "full"
) -> Store:
    """Open (creating and migrating if needed) the store; wrap it with the Redis cache if configured.
    `durability` ("full" | "normal") applies to SQLite; PostgreSQL keeps the server's synchronous_commit."""
    if durability not in SQLITE_SYNCHRONOUS:
        raise ConfigError(f"store.durability must be full or normal, not {durability!r}")
    store: Store
    if is_postgres_url(database_url):
        from pmbot.store.postgres import PostgresStore

        store = PostgresStore(database_url.strip(), clock=clock)
    else:
        from pmbot.store.sqlite import SQLiteStore

        store = SQLiteStore(sqlite_path(database_url), clock=clock, synchronous=SQLITE_SYNCHRONOUS[durability])
    if redis_url:
        import redis

        from pmbot.store.cache import CachedStore

        # Short timeouts: a dead Redis must cost milliseconds once, then nothing (see CachedStore).
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=0.25, socket_timeout=0.25)
        store = CachedStore(store, client)
    return store
