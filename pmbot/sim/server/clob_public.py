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


# -- batch reads (POST, body `[{"token_id": …, "side"?: …}]`, as the SDK's build_*_request sends) --------


async def _batch(request: web.Request, *, with_side: bool = False) -> list[tuple[str, str]]:
    try:
        body = await request.json()
        items = [(str(x["token_id"]), str(x.get("side") or "").upper()) for x in body]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "Invalid payload"}), content_type="application/json"
        ) from None
    if not items or len(items) > 500:
        raise web.HTTPBadRequest(text=json.dumps({"error": "Invalid payload"}), content_type="application/json")
    if with_side and any(s not in ("BUY", "SELL") for _, s in items):
        raise web.HTTPBadRequest(text=json.dumps({"error": "Invalid side"}), content_type="application/json")
    return items


@routes.post("/prices")
async def prices(request: web.Request) -> web.Response:
    """`{token: {"BUY": "0.45"}}`; like /price, BUY is the best bid and SELL the best ask."""
    v = venue(request)
    out: dict[str, dict[str, str]] = {}
    for token, side in await _batch(request, with_side=True):
        snap = v.book_snapshot(token)
        p = None if snap is None else (snap.best_bid() if side == "BUY" else snap.best_ask())
        if p is not None:
            out.setdefault(token, {})[side] = wire.dstr(p)
    return ok(out)


@routes.post("/midpoints")
async def midpoints(request: web.Request) -> web.Response:
    v = venue(request)
    out: dict[str, str] = {}
    for token, _ in await _batch(request):
        snap = v.book_snapshot(token)
        if snap is not None and (bb := snap.best_bid()) is not None and (ba := snap.best_ask()) is not None:
            out[token] = wire.dstr((bb + ba) / 2)
    return ok(out)


@routes.post("/spreads")
async def spreads(request: web.Request) -> web.Response:
    v = venue(request)
    out: dict[str, str] = {}
    for token, _ in await _batch(request):
        snap = v.book_snapshot(token)
        if snap is not None and (bb := snap.best_bid()) is not None and (ba := snap.best_ask()) is not None:
            out[token] = wire.dstr(ba - bb)
    return ok(out)


@routes.post("/last-trades-prices")
async def last_trades_prices(request: web.Request) -> web.Response:
    """`[{token_id, price, side}]` (SDK LastTradePriceForToken)."""
    v = venue(request)
    out: list[dict[str, str]] = []
    for token, _ in await _batch(request):
        m = v.market_by_token(token)
        if m is not None:
            p, side = m.last_trade[m.index_of(token)]
            if side:  # nothing traded yet: no entry (the single route answers side "")
                out.append({"token_id": token, "price": wire.dstr(p), "side": side})
    return ok(out)


@routes.get("/prices-history")
async def prices_history(request: web.Request) -> web.Response:
    """`?market=<token>&startTs=&endTs=&fidelity=<minutes>` (or `interval=1h|6h|1d|1w|max`) →
    `{"history": [{"t": <int s>, "p": <number>}]}` (recording clob_prices_history.json: p is a number).
    The sim's history is the scenario's fair price, sampled every `fidelity` minutes."""
    from pmbot.sim.scenario import p_up

    v, q = venue(request), request.query
    token = q.get("market") or ""
    m = v.market_by_token(token)
    if m is None:
        return error("market not found", 404)
    now = int(v.now())
    spans = {"1h": 3600, "6h": 6 * 3600, "1d": 86400, "1w": 7 * 86400, "max": 30 * 86400, "all": 30 * 86400}
    try:
        fidelity = max(int(q.get("fidelity") or 1), 1) * 60
        end = int(q.get("endTs") or now)
        start = int(q["startTs"]) if q.get("startTs") else end - spans.get(q.get("interval") or "1d", 86400)
    except ValueError:
        return error("invalid query")
    start, end = max(start, m.start_ts), min(end, m.end_ts, now)
    history: list[dict[str, object]] = []
    if v.path is not None and start <= end:
        i = m.index_of(token)
        for t in range(start - start % fidelity + (fidelity if start % fidelity else 0), end + 1, fidelity)[:10_000]:
            up = round(p_up(v.path, m, t), 4)
            history.append({"t": t, "p": up if i == 0 else round(1 - up, 4)})
    return ok({"history": history})
