"""Small, lenient field readers shared by the REST and stream parsers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pmbot.errors import VenueError
from pmbot.store.models import Side

# Anything below this is epoch seconds; ms timestamps passed it in 1973. Polymarket mixes both,
# sometimes in one message (created_at seconds, timestamp ms).
_MS_THRESHOLD = 100_000_000_000


def dec(value: Any) -> Decimal | None:
    """A Decimal from a string or JSON number; None for null / "" (the venue's "no value")."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise VenueError(f"expected a number, got {value!r}")
    try:
        # str() first: a float like 0.5699998232997013 keeps exactly the digits the venue sent.
        return Decimal(str(value))
    except InvalidOperation:
        raise VenueError(f"expected a number, got {value!r}") from None


def dec0(value: Any) -> Decimal:
    d = dec(value)
    return d if d is not None else Decimal(0)


def epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from seconds or ms (int or string), or an ISO / "YYYY-MM-DD HH:MM:SS+00" date."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        n = int(value)
    else:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            n = int(text)
        else:
            return iso_ms(text)
    return n if abs(n) >= _MS_THRESHOLD else n * 1000


def iso_ms(text: str | None) -> int | None:
    if not text:
        return None
    t = text.strip().replace(" ", "T", 1)
    if t.endswith("Z"):
        t = t[:-1] + "+00:00"
    elif t.endswith("+00") or t.endswith("-00"):
        t += ":00"
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise VenueError(f"unreadable date {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def json_list(value: Any) -> list[Any]:
    """Gamma's clobTokenIds / outcomes / outcomePrices are JSON *strings* holding arrays; newer
    fields (positionIds) are real arrays. Accept both."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return value
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise VenueError(f"expected a JSON array, got {str(value)[:60]!r}") from None
    if not isinstance(parsed, list):
        raise VenueError(f"expected a JSON array, got {str(value)[:60]!r}")
    return parsed


def side(value: Any) -> Side:
    text = str(value or "").upper()
    if text in ("BUY", "0"):
        return Side.BUY
    if text in ("SELL", "1"):
        return Side.SELL
    raise VenueError(f"unknown side {value!r}")


def opt_side(value: Any) -> Side | None:
    return side(value) if value not in (None, "") else None


def req(obj: Mapping[str, Any], key: str, what: str) -> Any:
    """A field that must be present and non-empty."""
    value = obj.get(key)
    if value is None or value == "":
        raise VenueError(f"{what}: missing {key!r}")
    return value


def opt_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
