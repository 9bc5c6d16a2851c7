"""The composition root: the one place that builds settings, the clock and the store.

Commands ask the App for what they need; nothing else constructs dependencies, so tests and
the simulator can swap any of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pmbot.timeutil import Clock

if TYPE_CHECKING:
    # pmbot.config pulls in pydantic-settings (~90 ms): `pmbot --help` must not pay for it, so
    # settings are imported and loaded only when a command first asks for them.
    from pmbot.config import LoadedSettings, Settings
    from pmbot.polymarket.factory import Venue
    from pmbot.store.base import Store


@dataclass
class App:
    config_file: Path | None = None
    debug: bool = False
    clock: Clock = time.time
    _loaded: LoadedSettings | None = field(default=None, repr=False)
    _store: Store | None = field(default=None, repr=False)

    @property
    def loaded(self) -> LoadedSettings:
        if self._loaded is None:
            from pmbot.config import load_settings

            self._loaded = load_settings(self.config_file)
        return self._loaded

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    def database_exists(self) -> bool:
        from pmbot.store import database_exists

        return database_exists(self.settings.database_url)

    @property
    def store(self) -> Store:
        if self._store is None:
            from pmbot.errors import ConfigError
            from pmbot.health import database_path_problem
            from pmbot.store import is_postgres_url, open_store, sqlite_path

            url = self.settings.database_url
            problem = None if is_postgres_url(url) else database_path_problem(sqlite_path(url))
            if problem is not None:
                raise ConfigError(f"database: {problem[0]}", hint=problem[1])
            self._store = open_store(
                url, redis_url=self.settings.redis_url, clock=self.clock, durability=self.settings.store.durability
            )
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def venue(self, *, timeout: float = 10.0, attempts: int | None = None) -> Venue:
        """A new adapter for one event loop (`async with app.venue() as v: …`). Reports pass a short
        `timeout` and few read `attempts`: a dead venue must cost them seconds, not a minute."""
        from pmbot.polymarket.factory import build_venue
        from pmbot.polymarket.http import DEFAULT_RETRY, RetryPolicy

        retry = DEFAULT_RETRY if attempts is None else RetryPolicy(attempts=attempts)
        return build_venue(self.settings, clock=self.clock, timeout=timeout, retry=retry)
