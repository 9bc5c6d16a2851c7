"""Time helpers: epoch milliseconds (UTC) everywhere in storage, and the `--since` parser."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pmbot.errors import InputError

Clock = Callable[[], float]
"""Returns the current time in epoch seconds. Injected so tests and backtests control time."""

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_RELATIVE = re.compile(r"^(\d+)\s*([smhdw])$")


def now_ms(clock: Clock = time.time) -> int:
    return int(clock() * 1000)


def ms_to_iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_duration(text: str) -> timedelta:
    """'90s', '15m', '24h', '7d', '2w' -> timedelta."""
    m = _RELATIVE.match(text.strip().lower())
    if not m:
        raise InputError(f"not a duration: {text!r}", hint="use a number and a unit, like 30s, 15m, 24h, 7d")
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2)])


def parse_since(text: str, clock: Clock = time.time) -> int:
    """A `--since` value -> epoch ms. Accepts 15m / 24h / 7d, 'today', or an ISO date or datetime (UTC)."""
    raw = text.strip()
    now = datetime.fromtimestamp(clock(), tz=UTC)
    if raw.lower() == "today":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return int(start.timestamp() * 1000)
    if _RELATIVE.match(raw.lower()):
        return int((now - parse_duration(raw)).timestamp() * 1000)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(
            f"not a time: {text!r}", hint="use 15m, 24h, 7d, today, 2026-11-01 or 2026-11-01T12:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)
