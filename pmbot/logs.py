"""Log files of a long-running process (`pmbot run-all`): one per strategy and one for the orchestrator.

    <data dir>/logs/orchestrator.log   everything not attributed to a strategy, and every strategy's warnings
    <data dir>/logs/sniper.log         strategy "snipe" (the seed's names for the two default instances)
    <data dir>/logs/copy_trader.log    strategy "copy"
    <data dir>/logs/<name>.log         any other strategy instance

A record belongs to a strategy when it is logged through `strategy_logger(name)` or from code running
inside `strategy_context(name)` (the runner wraps each strategy's task in it; asyncio copies the
context into every task it starts, so the executor's lines about that strategy's orders land there too).

Files rotate (RotatingFileHandler: `max_bytes`, `backups`), are created 0600 in a 0700 directory, never
through a planted symlink. Every line passes through `RedactingFilter` and `redact` once formatted: a
registered secret (the private key in hex, bare, upper case or decimal; API secrets) never reaches a
file. `--log-format json` gives one JSON object per line (for journald, Docker, Loki …).
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import logging.handlers
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pmbot.errors import ConfigError, InputError, RedactingFilter, redact
from pmbot.private_files import DIR_MODE, FILE_MODE, private_dir

ROOT_LOGGER = "pmbot"
STRATEGY_LOGGER = "pmbot.strategy"
ORCHESTRATOR = "orchestrator"
SEED_FILES = {ORCHESTRATOR: "orchestrator.log", "snipe": "sniper.log", "sniper": "sniper.log",
              "copy": "copy_trader.log", "copy_trader": "copy_trader.log"}  # fmt: skip
FORMATS = ("text", "json")
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5

_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("pmbot_strategy", default=None)
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def log_file_name(strategy: str) -> str:
    """The file of a strategy instance (or ORCHESTRATOR): the seed's names for the defaults."""
    if strategy in SEED_FILES:
        return SEED_FILES[strategy]
    safe = _SAFE.sub("_", strategy).strip("._") or "strategy"
    return f"{safe[:64]}.log"


def logs_dir(data_dir: Path) -> Path:
    return data_dir / "logs"


@contextlib.contextmanager
def strategy_context(name: str) -> Iterator[None]:
    """Lines logged inside (and in tasks started inside) belong to strategy `name`."""
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


def current_strategy() -> str | None:
    return _current.get()


def strategy_logger(name: str) -> logging.Logger:
    return logging.getLogger(f"{STRATEGY_LOGGER}.{name}")


def _strategy_of(record: logging.LogRecord) -> str | None:
    if record.name.startswith(STRATEGY_LOGGER + "."):
        return record.name[len(STRATEGY_LOGGER) + 1 :]
    # Handler filters run in the thread and context of the logging call: the contextvar is the caller's.
    tagged = getattr(record, "strategy", None)  # logger.info(..., extra={"strategy": name})
    return tagged if isinstance(tagged, str) else _current.get()


class _Route(logging.Filter):
    def __init__(self, strategy: str | None) -> None:
        super().__init__()
        self.strategy = strategy  # None: the orchestrator's file

    def filter(self, record: logging.LogRecord) -> bool:
        owner = _strategy_of(record)
        if self.strategy is None:
            return owner is None or record.levelno >= logging.WARNING
        return owner == self.strategy


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(strategy_tag)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def format(self, record: logging.LogRecord) -> str:
        owner = _strategy_of(record)
        record.strategy_tag = f" [{owner}]" if owner and not record.name.startswith(STRATEGY_LOGGER) else ""
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601 UTC), level, logger, strategy, message, exc (if any)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "strategy": _strategy_of(record),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exc"] = record.exc_text
        return redact(json.dumps(doc, ensure_ascii=False, default=str))


def formatter(fmt: str) -> logging.Formatter:
    if fmt not in FORMATS:
        raise InputError(f"--log-format must be text or json, not {fmt!r}")
    return JsonFormatter() if fmt == "json" else TextFormatter()


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """RotatingFileHandler whose files are 0600 whatever the umask, opened without following a symlink."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, FILE_MODE)
        os.fchmod(fd, FILE_MODE)  # an existing file made with a wider mode is narrowed
        stream = os.fdopen(fd, "a", encoding=self.encoding or "utf-8", errors=self.errors)
        assert isinstance(stream, io.TextIOWrapper)
        return stream


@dataclass
class RunLogs:
    """The handlers of one run; `close()` takes them off and restores the logger as it was."""

    directory: Path
    files: dict[str, Path]
    _handlers: list[logging.Handler] = field(default_factory=list)
    _console_removed: list[logging.Handler] = field(default_factory=list)
    _saved_level: int = logging.NOTSET
    _saved_console_levels: dict[int, int] = field(default_factory=dict)

    def add_strategy(self, name: str, *, fmt: str = "text", max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> Path:
        """A file for a strategy started after `setup_run_logs` (a new instance)."""
        if name == ORCHESTRATOR:
            raise InputError(f"a strategy cannot be named {ORCHESTRATOR!r}: that log file is the orchestrator's")
        if name in self.files:
            return self.files[name]
        path = self.directory / log_file_name(name)
        n = 2
        while path in self.files.values():  # "snipe" and "sniper", or "a b" and "a_b": never one file for two
            path = self.directory / f"{Path(log_file_name(name)).stem}-{n}.log"
            n += 1
        self._attach(_file_handler(path, _Route(name), fmt, max_bytes, backups))
        self.files[name] = path
        return path

    def _attach(self, handler: logging.Handler) -> None:
        logging.getLogger(ROOT_LOGGER).addHandler(handler)
        self._handlers.append(handler)

    def close(self) -> None:
        root = logging.getLogger(ROOT_LOGGER)
        for h in self._handlers:
            root.removeHandler(h)
            h.close()
        self._handlers.clear()
        for h in self._console_removed:
            root.addHandler(h)
        self._console_removed.clear()
        for h in root.handlers:
            if id(h) in self._saved_console_levels:
                h.setLevel(self._saved_console_levels[id(h)])
        self._saved_console_levels.clear()
        root.setLevel(self._saved_level)


def _file_handler(path: Path, route: logging.Filter, fmt: str, max_bytes: int, backups: int) -> logging.Handler:
    try:
        h = PrivateRotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
    except OSError as e:  # a planted symlink (ELOOP), a directory in the way, no permission
        raise ConfigError(
            f"cannot open log file {path}: {e.strerror or e}", hint="check the data directory's logs/ folder"
        ) from None
    h.addFilter(route)
    h.addFilter(RedactingFilter())
    h.setFormatter(formatter(fmt))
    return h


def setup_run_logs(
    data_dir: Path,
    strategies: Iterable[str],
    *,
    fmt: str = "text",
    level: int = logging.INFO,
    console: bool = False,
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> RunLogs:
    """Open `<data_dir>/logs/` (0700) with orchestrator.log and one file per strategy, all at `level`.
    `console=True` (run-all --no-dashboard) also writes lines in `fmt` to stderr, in place of the
    CLI's console handler; otherwise that handler keeps showing warnings only."""
    form = formatter(fmt)  # bad --log-format: refused before any file is made
    directory = private_dir(logs_dir(data_dir))
    os.chmod(directory, DIR_MODE)  # ours: 0700 even if it was made wider before
    root = logging.getLogger(ROOT_LOGGER)
    logs = RunLogs(directory, {}, _saved_level=root.level)
    root.setLevel(min(level, root.level) if root.level else level)
    try:
        logs.files[ORCHESTRATOR] = directory / log_file_name(ORCHESTRATOR)
        logs._attach(_file_handler(logs.files[ORCHESTRATOR], _Route(None), fmt, max_bytes, backups))
        for name in strategies:
            logs.add_strategy(name, fmt=fmt, max_bytes=max_bytes, backups=backups)
    except BaseException:
        logs.close()  # no half-made set of handlers left on the logger
        raise
    for h in list(root.handlers):
        if h in logs._handlers or isinstance(h, logging.FileHandler):
            continue  # the CLI's console handler (Rich) is what remains
        if console:
            root.removeHandler(h)
            logs._console_removed.append(h)
        elif h.level < logging.WARNING and not logging.NOTSET < logs._saved_level < logging.WARNING:  # --debug: as is
            logs._saved_console_levels[id(h)] = h.level
            h.setLevel(logging.WARNING)  # the files take INFO; the terminal stays as quiet as before
    if console:
        err = logging.StreamHandler()
        err.setLevel(level)
        err.addFilter(RedactingFilter())
        err.setFormatter(form)
        logs._attach(err)
    return logs
