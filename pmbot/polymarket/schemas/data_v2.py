"""Data API v2 (`/v2/activity`, `/v2/trades`, `/v2/positions`): `{data, pagination: {has_more,
next_cursor}}` envelopes with snake_case rows (docs: migrate/data-api-v1-to-v2; polymarket-client
0.14 `_internal/data_envelope.py`, `models/data/activity.py`, `models/data/portfolio.py`).

Rows are renamed to their v1 camelCase names and parsed by the v1 parsers in `rest`, so one set of
checks (prices in 0..1, sizes, dates) covers both generations."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pmbot.errors import VenueError

_CAMEL = re.compile(r"_([a-z0-9])")
# v2 names whose v1 name is not the plain camelCase of it.
_RENAMED = {
    "token_id": "asset",
    "opposite_token_id": "oppositeAsset",
    "current_size": "size",
    "current_price": "curPrice",
    "unrealized_pnl": "cashPnl",
}


def camel_row(row: Any, what: str) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise VenueError(f"{what}: expected an object, got {type(row).__name__}")
    return {_RENAMED.get(k) or _CAMEL.sub(lambda m: m.group(1).upper(), k): v for k, v in row.items()}


def page(raw: Any, what: str) -> tuple[list[dict[str, Any]], str | None]:
    """(rows in v1 names, next cursor or None at the end)."""
    if not isinstance(raw, Mapping) or not isinstance(raw.get("data"), list):
        raise VenueError(f"{what}: expected a {{data, pagination}} envelope")
    pagination = raw.get("pagination")
    if not isinstance(pagination, Mapping):
        raise VenueError(f"{what}: the envelope has no pagination")
    cursor = pagination.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > 2000):
        raise VenueError(f"{what}: unreadable next_cursor")
    if pagination.get("has_more") is False:
        cursor = None
    return [camel_row(r, what) for r in raw["data"]], cursor
