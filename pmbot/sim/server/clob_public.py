"""Public CLOB REST: books, prices, market parameters, markets, time."""

from __future__ import annotations

import json
from decimal import Decimal

from aiohttp import web

from pmbot.sim import markets as shapes
from pmbot.sim import wire
from pmbot.sim.server.common import error, ok, page, venue

NO_BOOK = "No orderbook exists for the requested token id"
routes = web.RouteTableDef()


def _token(request: web.Request) -> str:
    token = request.query.get("token_id") or request.match_info.get("token_id", "")
    if not token:
        raise web.HTTPBadRequest(text=json.dumps({"error": "Invalid payload"}), content_type="application/json")
    return token


@routes.get("/book")
async def book(request: web.Request) -> web.Response:
    snap = venue(request).book_snapshot(_token(request))
    if snap is None:
        return error(NO_BOOK, 404)
    return ok(snap.rest_dict())


@routes.post("/books")
async def books(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        tokens = [str(x["token_id"]) for x in body]
    except (ValueError, TypeError, KeyError):
        return error("Invalid payload")
    v = venue(request)
    snaps = [v.book_snapshot(t) for t in tokens]
    return ok([s.rest_dict() for s in snaps if s is not None])


@routes.get("/price")
async def price(request: web.Request) -> web.Response:
    side = (request.query.get("side") or "").upper()
    if side not in ("BUY", "SELL"):
        return error("Invalid side")
    snap = venue(request).book_snapshot(_token(request))
    if snap is None:
        return error(NO_BOOK, 404)
    # Docs: "Returns the best bid price for BUY side or best ask price for SELL side."
    p = snap.best_bid() if side == "BUY" else snap.best_ask()
    if p is None:
        return error(NO_BOOK, 404)
    return ok({"price": wire.dstr(p)})


@routes.get("/midpoint")
async def midpoint(request: web.Request) -> web.Response:
    snap = venue(request).book_snapshot(_token(request))
    if snap is None or snap.best_bid() is None or snap.best_ask() is None:
        return error(NO_BOOK, 404)
    mid = (snap.best_bid() + snap.best_ask()) / 2  # type: ignore[operator]
    return ok({"mid": wire.dstr(mid)})


@routes.get("/spread")
async def spread(request: web.Request) -> web.Response:
    snap = venue(request).book_snapshot(_token(request))
    if snap is None or snap.best_bid() is None or snap.best_ask() is None:
        return error(NO_BOOK, 404)
    return ok({"spread": wire.dstr(snap.best_ask() - snap.best_bid())})  # type: ignore[operator]


@routes.get("/last-trade-price")
async def last_trade_price(request: web.Request) -> web.Response:
    v = venue(request)
    token = _token(request)
    m = v.market_by_token(token)
    if m is None:
        return error("market not found", 404)
    p, side = m.last_trade[m.index_of(token)]
    return ok({"price": wire.dstr(p), "side": side})


def _market_of(request: web.Request) -> shapes.SimMarket:
    m = venue(request).market_by_token(_token(request))
    if m is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "market not found"}), content_type="application/json")
    return m


@routes.get("/tick-size")
@routes.get("/tick-size/{token_id}")
async def tick_size(request: web.Request) -> web.Response:
    return ok({"minimum_tick_size": wire.wire_number(_market_of(request).tick)})  # a JSON number on the wire


@routes.get("/neg-risk")
@routes.get("/neg-risk/{token_id}")
async def neg_risk(request: web.Request) -> web.Response:
    return ok({"neg_risk": _market_of(request).neg_risk})


@routes.get("/fee-rate")
@routes.get("/fee-rate/{token_id}")
async def fee_rate(request: web.Request) -> web.Response:
    return ok({"base_fee": _market_of(request).base_fee_bps})


@routes.get("/markets-by-token/{token_id}")
async def markets_by_token(request: web.Request) -> web.Response:
    return ok({"condition_id": _market_of(request).condition_id})


@routes.get("/clob-markets/{condition_id}")
async def clob_market_info(request: web.Request) -> web.Response:
    v = venue(request)
    m = v.market_by_cid(request.match_info["condition_id"])
    if m is None:
        return error("market not found", 404)
    return ok(shapes.clob_market_info(m, v.clock.now()))


def _clob_market(request: web.Request, m: shapes.SimMarket) -> dict[str, object]:
    v = venue(request)
    bid, ask = v.best_up(m)
    up = (bid + ask) / 2 if bid is not None and ask is not None else m.last_trade[0][0]
    return shapes.clob_market(m, v.clock.now(), Decimal(up))


@routes.get("/markets")
async def clob_markets(request: web.Request) -> web.Response:
    v = venue(request)
    items = [_clob_market(request, m) for m in v.markets]
    return ok(page(items, request.query.get("next_cursor")))


@routes.get("/markets/{condition_id}")
async def clob_market(request: web.Request) -> web.Response:
    m = venue(request).market_by_cid(request.match_info["condition_id"])
    if m is None:
        return error("market not found", 404)
    return ok(_clob_market(request, m))


@routes.get("/time")
async def server_time(request: web.Request) -> web.Response:
    return ok(int(venue(request).clock.now()))


@routes.get("/ok")
async def health(request: web.Request) -> web.Response:
    return ok("OK")


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    return ok({"version": 2})
