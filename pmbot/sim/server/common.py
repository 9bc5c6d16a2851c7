"""Helpers shared by the route modules."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from pmbot.sim.venue import Venue
from pmbot.sim.wire import dumps as compact

VENUE: web.AppKey[Venue] = web.AppKey("venue", Venue)

START_CURSOR, END_CURSOR = "MA==", "LTE="


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(data, status=status, dumps=compact, headers=headers)


def error(message: str, status: int = 400) -> web.Response:
    """Every CLOB error is `{"error": "<message>"}` (docs: resources/error-codes)."""
    return ok({"error": message}, status=status)


def venue(request: web.Request) -> Venue:
    return request.app[VENUE]


def bool_param(value: str | None) -> bool | None:
    if value is None or value == "":
        return None
    return value.strip().lower() in ("true", "1", "yes")


def int_param(value: str | None, default: int, *, lo: int = 0, hi: int | None = None) -> int:
    """Parse a non-negative int query parameter; raises web.HTTPBadRequest on garbage."""
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=compact({"error": f"invalid integer {value!r}"}), content_type="application/json"
        ) from None
    if n < lo:
        raise web.HTTPBadRequest(text=compact({"error": f"value {n} below {lo}"}), content_type="application/json")
    return min(n, hi) if hi is not None else n


def encode_cursor(offset: int) -> str:
    return base64.b64encode(str(offset).encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    if not cursor or cursor == START_CURSOR:
        return 0
    try:
        return max(int(base64.b64decode(cursor).decode()), 0)
    except ValueError:
        raise web.HTTPBadRequest(
            text=compact({"error": "invalid next_cursor"}), content_type="application/json"
        ) from None


def page(items: list[Any], cursor: str | None, limit: int = 100) -> dict[str, Any]:
    """The CLOB's cursor envelope: start "MA==" (base64 "0"), end "LTE=" (base64 "-1")."""
    if cursor == END_CURSOR:
        return {"data": [], "next_cursor": END_CURSOR, "limit": limit, "count": 0}
    start = decode_cursor(cursor)
    chunk = items[start : start + limit]
    nxt = start + len(chunk)
    return {
        "data": chunk,
        "next_cursor": encode_cursor(nxt) if nxt < len(items) else END_CURSOR,
        "limit": limit,
        "count": len(chunk),
    }
