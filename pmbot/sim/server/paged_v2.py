"""The cursor-paged routes of December 2026, served over the sim's offset routes so both always agree:

* Gamma keyset: `/gamma/markets/keyset`, `/gamma/events/keyset` → `{markets|events: [...],
  next_cursor}` (`after_cursor` in, no `next_cursor` at the end), as polymarket-client 0.14 reads them
  (`_internal/actions/gamma.py`).
* Data API v2: `/data-api/v2/activity`, `/v2/trades`, `/v2/positions` → `{data: [...], pagination:
  {has_more, next_cursor}}` with snake_case rows (docs: migrate/data-api-v1-to-v2; SDK
  `_internal/data_envelope.py`, `models/data/activity.py`, `portfolio.py`). `condition_id` (≤ 20) and
  `status` (OPEN, REDEEMABLE, …) filters.

Each v2 request runs the matching v1 handler on a cloned request (offset = the cursor) and reshapes
its rows, so a change to the v1 rows shows in v2 too. `Venue.data_api_versions` (set via
SimServer.call) can retire either generation: a retired route answers 404, as production's v1
routes are reported to since 2026-10-24. `Venue.gamma_keyset = False` takes the keyset routes away.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from aiohttp import web
from multidict import MultiDict

from pmbot.sim import wire
from pmbot.sim.server import data_api, gamma
from pmbot.sim.server.common import error, int_param, ok, venue

routes = web.RouteTableDef()
_SNAKE = re.compile(r"(?<!^)(?=[A-Z])")
_MAX_CONDITIONS = 20


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"pmbot-sim:{offset}".encode()).decode()


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        prefix, _, n = text.partition(":")
        if prefix != "pmbot-sim" or not n.isdigit():
            raise ValueError(text)
        return int(n)
    except ValueError:
        raise web.HTTPBadRequest(text='{"error":"invalid cursor"}', content_type="application/json") from None


async def _run(
    request: web.Request,
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    query: MultiDict[str],
) -> Any:
    clone = request.clone(rel_url=request.rel_url.with_query(query))
    response = await handler(clone)
    if not isinstance(response, web.Response) or response.text is None:
        raise web.HTTPInternalServerError(text='{"error":"unexpected response"}', content_type="application/json")
    if response.status != 200:
        raise web.HTTPBadRequest(text=response.text, content_type="application/json")
    return json.loads(response.text)


def _v1_retired(request: web.Request) -> bool:
    return "v1" not in getattr(venue(request), "data_api_versions", ("v1", "v2"))


def _v2_retired(request: web.Request) -> bool:
    return "v2" not in getattr(venue(request), "data_api_versions", ("v1", "v2"))


# ---------------------------------------------------------------------------------------- gamma


async def _keyset(request: web.Request, handler: Any, key: str) -> web.Response:
    if not getattr(venue(request), "gamma_keyset", True):  # a test can take the keyset routes away
        return error("not found", 404)
    q = MultiDict(request.query)
    limit = int_param(q.pop("limit", None), 100, lo=1, hi=1000)
    start = _offset(q.pop("after_cursor", None))
    q.pop("offset", None)  # keyset routes page by cursor only
    q["offset"], q["limit"] = str(start), str(limit + 1)
    rows = await _run(request, handler, q)
    body: dict[str, Any] = {key: rows[:limit]}
    if len(rows) > limit:
        body["next_cursor"] = _cursor(start + limit)
    return ok(body)


@routes.get("/gamma/markets/keyset")
async def markets_keyset(request: web.Request) -> web.Response:
    return await _keyset(request, gamma.markets, "markets")


@routes.get("/gamma/events/keyset")
async def events_keyset(request: web.Request) -> web.Response:
    return await _keyset(request, gamma.events, "events")


# ------------------------------------------------------------------------------------- data API


def snake_row(row: dict[str, Any]) -> dict[str, Any]:
    """A v1 camelCase row in v2's snake_case; `asset` is `token_id` in v2."""
    out: dict[str, Any] = {}
    for k, value in row.items():
        name = {"asset": "token_id", "oppositeAsset": "opposite_token_id"}.get(k) or _SNAKE.sub("_", k).lower()
        out[name] = value
    return out


def _position_row(row: dict[str, Any]) -> dict[str, Any]:
    r = snake_row(row)
    r["current_size"] = r.pop("size")
    r["current_price"] = r.pop("cur_price")
    r["unrealized_pnl"] = r.pop("cash_pnl")
    r["status"] = "REDEEMABLE" if r.get("redeemable") else "OPEN"
    # v2-only fields (SDK models/data/portfolio.py Position); the sim charges makers no entry fee.
    initial = Decimal(str(r.get("initial_value", 0)))
    r["entry_cost_usdc"] = r["total_cost_usdc"] = wire.wire_number(initial)
    r["entry_fees_usdc"] = 0
    r["total_size"] = r.get("total_bought", r["current_size"])
    pnl = Decimal(str(r.get("realized_pnl", 0))) + Decimal(str(r["unrealized_pnl"]))
    r["total_pnl"] = wire.wire_number(pnl)
    r["archived"] = r["verified"] = False
    return r


def _conditions(q: MultiDict[str]) -> list[str] | None:
    raw = [c.strip().lower() for x in q.getall("condition_id", []) for c in x.split(",") if c.strip()]
    if not raw:
        return None
    if len(set(raw)) > _MAX_CONDITIONS:
        raise web.HTTPBadRequest(
            text=f'{{"error":"condition_id accepts at most {_MAX_CONDITIONS} values"}}', content_type="application/json"
        )
    for c in raw:
        if not re.fullmatch(r"0x[0-9a-f]{64}", c):  # the 31-byte Gamma form is refused, as on the venue
            raise web.HTTPBadRequest(text='{"error":"invalid condition_id"}', content_type="application/json")
    return raw


async def _data_v2(
    request: web.Request,
    handler: Any,
    rename: dict[str, str],
    shape: Callable[[dict[str, Any]], dict[str, Any]],
    keep: Callable[[dict[str, Any]], bool] = lambda r: True,
) -> web.Response:
    if _v2_retired(request):
        return error("not found", 404)
    q = request.query
    limit = int_param(q.get("limit"), 100, lo=1, hi=1000)
    start = _offset(q.get("cursor"))
    v1: MultiDict[str] = MultiDict()
    for k, value in q.items():
        if k in rename:
            v1.add(rename[k], value)
    conditions = _conditions(MultiDict(q))
    # Fetch everything from `start` and filter here: the v1 handlers cap their pages.
    rows: list[dict[str, Any]] = []
    offset = 0
    while True:
        v1["offset"], v1["limit"] = str(offset), "500"
        chunk = await _run(request, handler, v1)
        rows += chunk
        if len(chunk) < 500:
            break
        offset += 500
    shaped = [shape(r) for r in rows]
    shaped = [r for r in shaped if keep(r) and (conditions is None or str(r.get("condition_id")).lower() in conditions)]
    window = shaped[start : start + limit]
    more = start + limit < len(shaped)
    return ok(
        {"data": window, "pagination": {"has_more": more, "next_cursor": _cursor(start + limit) if more else None}}
    )


_COMMON = {"user": "user", "side": "side", "start": "start", "end": "end"}


@routes.get("/data-api/v2/activity")
async def activity_v2(request: web.Request) -> web.Response:
    rename = {**_COMMON, "type": "type", "sort_direction": "sortDirection"}
    return await _data_v2(request, data_api.activity, rename, snake_row)


@routes.get("/data-api/v2/trades")
async def trades_v2(request: web.Request) -> web.Response:
    rename = {**_COMMON, "taker_only": "takerOnly"}
    return await _data_v2(request, data_api.trades, rename, snake_row)


@routes.get("/data-api/v2/positions")
async def positions_v2(request: web.Request) -> web.Response:
    status = (request.query.get("status") or "").upper()
    if status and status not in ("OPEN", "REDEEMABLE", "CLOSED", "REDEEMABLE_LOST", "MERGEABLE"):
        return error(f"invalid status {status}", 400)

    def keep(r: dict[str, Any]) -> bool:
        if status == "OPEN":
            return r["status"] == "OPEN"
        if status in ("REDEEMABLE", "REDEEMABLE_LOST"):
            return r["status"] == "REDEEMABLE"
        return status != "CLOSED" and status != "MERGEABLE"

    return await _data_v2(request, data_api.positions, {"user": "user"}, _position_row, keep)


# v1 routes retired (a fault a test can set): answer 404 like production is reported to.
@web.middleware
async def retire_v1(request: web.Request, handler: Any) -> web.StreamResponse:
    path = request.path
    if path.startswith("/data-api/") and not path.startswith("/data-api/v2/") and _v1_retired(request):
        return error("not found", 404)
    return await handler(request)
