"""Data API (/data-api/...): v1 camelCase bare arrays; numbers are JSON numbers, timestamps seconds,
proxyWallet lowercase (data_trades.json, data_activity_trades.json, data_positions.json)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from pmbot.sim import messages, wire
from pmbot.sim.book import BUY, ONE, ZERO
from pmbot.sim.markets import ICON, SimMarket
from pmbot.sim.server.common import bool_param, error, int_param, ok, venue
from pmbot.sim.venue import Fill, Venue

routes = web.RouteTableDef()


def _row(v: Venue, f: Fill) -> dict[str, Any]:
    return messages.activity_payload(
        f.order, f.trade, is_taker=f.is_taker, profile=v.profile(f.order.maker_address), checksummed=False
    )


def _newest_first(fills: list[Fill]) -> list[Fill]:
    return sorted(fills, key=lambda f: f.trade.match_time, reverse=True)


@routes.get("/data-api/trades")
async def trades(request: web.Request) -> web.Response:
    v, q = venue(request), request.query
    limit = int_param(q.get("limit"), 100, hi=10000)
    offset = int_param(q.get("offset"), 0)
    if offset > 10000:
        return error("offset too large")
    fills = list(v.fills)
    if bool_param(q.get("takerOnly")) is not False:  # default true
        fills = [f for f in fills if f.is_taker]
    if q.get("user"):
        fills = [f for f in fills if f.order.maker_address.lower() == q["user"].lower()]
    if q.get("market"):
        cids = {c.lower() for c in q["market"].split(",")}
        fills = [f for f in fills if f.order.market.condition_id.lower() in cids]
    if q.get("side"):
        fills = [f for f in fills if f.order.side == q["side"].upper()]
    if q.get("user"):  # the window (epoch seconds, inclusive) binds the user shape only, as on the venue
        if q.get("start"):
            fills = [f for f in fills if f.trade.match_time >= int_param(q.get("start"), 0)]
        if q.get("end"):
            fills = [f for f in fills if f.trade.match_time <= int_param(q.get("end"), 0)]
    return ok([_row(v, f) for f in _newest_first(fills)[offset : offset + limit]])


@routes.get("/data-api/activity")
async def activity(request: web.Request) -> web.Response:
    v, q = venue(request), request.query
    user = (q.get("user") or "").lower()
    if not user:
        return error("user is required")
    limit = int_param(q.get("limit"), 100, hi=500)
    offset = int_param(q.get("offset"), 0)
    types = {t.strip().upper() for t in (q.get("type") or "").split(",") if t.strip()}
    fills = [f for f in v.fills if f.order.maker_address.lower() == user]
    cids = {c.lower() for c in q["market"].split(",")} if q.get("market") else None
    if cids is not None:
        fills = [f for f in fills if f.order.market.condition_id.lower() in cids]
    if q.get("side"):
        fills = [f for f in fills if f.order.side == q["side"].upper()]
    rows = [_trade_activity(v, f) for f in fills]
    if not q.get("side"):  # cash rows have side ""
        rows += [r for r in _cash_activity(v, user) if cids is None or r["conditionId"].lower() in cids]
    if types:
        rows = [r for r in rows if r["type"] in types]
    if q.get("start"):
        rows = [r for r in rows if r["timestamp"] >= int_param(q.get("start"), 0)]
    if q.get("end"):
        rows = [r for r in rows if r["timestamp"] <= int_param(q.get("end"), 0)]
    asc = (q.get("sortDirection") or "DESC").upper() == "ASC"
    rows.sort(key=lambda r: r["timestamp"], reverse=not asc)
    return ok(rows[offset : offset + limit])


def _trade_activity(v: Venue, f: Fill) -> dict[str, Any]:
    r = _row(v, f)
    price = f.trade.price if f.is_taker else f.trade.maker_price
    return {
        "proxyWallet": r["proxyWallet"],
        "timestamp": r["timestamp"],
        "conditionId": r["conditionId"],
        "type": "TRADE",
        "size": r["size"],
        "usdcSize": wire.wire_number((f.trade.size * price).quantize(Decimal("0.000001"))),
        "transactionHash": r["transactionHash"],
        "price": r["price"],
        "asset": r["asset"],
        "side": r["side"],
        "outcomeIndex": r["outcomeIndex"],
        "title": r["title"],
        "slug": r["slug"],
        "icon": r["icon"],
        "eventSlug": r["eventSlug"],
        "outcome": r["outcome"],
        "name": r["name"],
        "pseudonym": r["pseudonym"],
        "bio": r["bio"],
        "profileImage": r["profileImage"],
        "profileImageOptimized": r["profileImageOptimized"],
    }


REDEEM_AFTER, REBATE_AFTER = 30, 60  # seconds after a market resolves


def _cash_activity(v: Venue, wallet: str) -> list[dict[str, Any]]:
    """Rows that are not trades (data_activity.json): a REDEEM of the winning shares after a market
    resolves, and a MAKER_REBATE (the venue pays rebates daily; the sim once per resolved window, so a
    session of minutes sees them). They carry `price: 0`, `asset: ""`, `side: ""`, `outcome: ""`,
    `outcomeIndex: 999`, `size == usdcSize`; rebate rows also `conditionId: ""` and `title: ""`."""
    profile = v.profile(wallet)
    now = v.now()
    out: list[dict[str, Any]] = []
    for m in v.markets:
        if not m.closed or m.winner is None or m.closed_ts is None:
            continue
        mine = [f for f in v.fills if f.order.market is m and f.order.maker_address.lower() == wallet]
        won = v.held(wallet, m, m.winner)
        rebate = sum((f.trade.fee * m.rebate_rate for f in mine if not f.is_taker), ZERO)
        if won > 0 and m.closed_ts + REDEEM_AFTER <= now:
            out.append(_cash_row(v, wallet, profile, "REDEEM", int(m.closed_ts) + REDEEM_AFTER, won, m))
        if rebate > 0 and m.closed_ts + REBATE_AFTER <= now:
            out.append(_cash_row(v, wallet, profile, "MAKER_REBATE", int(m.closed_ts) + REBATE_AFTER, rebate, None))
    return out


def _cash_row(
    v: Venue, wallet: str, profile: dict[str, str], kind: str, ts: int, amount: Decimal, m: SimMarket | None
) -> dict[str, Any]:
    from pmbot.sim import ids

    n = wire.wire_number(amount.quantize(Decimal("0.000001")))
    return {
        "proxyWallet": wallet,
        "timestamp": ts,
        "conditionId": m.condition_id if m else "",
        "type": kind,
        "size": n,
        "usdcSize": n,
        "transactionHash": ids.hex32(v.seed, "cash-tx", wallet, kind, ts),
        "price": 0,
        "asset": "",
        "side": "",
        "outcomeIndex": 999,
        "title": m.question if m else "",
        "slug": m.slug if m else "",
        "icon": ICON if m else "",
        "eventSlug": m.slug if m else "",
        "outcome": "",
        "name": profile.get("name") or messages.placeholder_name(wallet),
        "pseudonym": profile.get("pseudonym", ""),
        "bio": profile.get("bio", ""),
        "profileImage": profile.get("profileImage", ""),
        "profileImageOptimized": profile.get("profileImage", ""),
    }


def _cur_price(v: Venue, m: SimMarket, index: int) -> Decimal:
    if m.closed and m.winner is not None:
        return ONE if m.winner == index else ZERO
    snap = v.book_snapshot(m.token_ids[index])
    if snap and snap.best_bid() is not None and snap.best_ask() is not None:
        return (snap.best_bid() + snap.best_ask()) / 2  # type: ignore[operator]
    return m.last_trade[index][0]


def _n(x: Decimal, q: str = "0.0001") -> float | int:
    return wire.wire_number(x.quantize(Decimal(q)))


@routes.get("/data-api/positions")
async def positions(request: web.Request) -> web.Response:
    v, q = venue(request), request.query
    user = (q.get("user") or "").lower()
    if not user:
        return error("user is required")
    threshold = Decimal(q.get("sizeThreshold") or "1")
    limit = int_param(q.get("limit"), 100, hi=500)
    offset = int_param(q.get("offset"), 0)
    agg: dict[tuple[str, int], dict[str, Any]] = {}
    for f in sorted(v.fills, key=lambda f: f.trade.match_time):
        o = f.order
        if o.maker_address.lower() != user:
            continue
        price = f.trade.price if f.is_taker else f.trade.maker_price
        a = agg.setdefault(
            (o.market.condition_id, o.index),
            {"m": o.market, "i": o.index, "size": ZERO, "cost": ZERO, "bought": ZERO, "realized": ZERO},
        )
        if o.side == BUY:
            a["size"] += f.trade.size
            a["cost"] += f.trade.size * price
            a["bought"] += f.trade.size
        elif a["size"] > 0:
            avg = a["cost"] / a["size"]
            qty = min(f.trade.size, a["size"])
            a["realized"] += (price - avg) * qty
            a["cost"] -= avg * qty
            a["size"] -= qty
    rows = []
    for a in agg.values():
        if a["size"] < threshold:
            continue
        m, i = a["m"], a["i"]
        avg = a["cost"] / a["size"] if a["size"] else ZERO
        cur = _cur_price(v, m, i)
        initial, current = a["size"] * avg, a["size"] * cur
        pnl = current - initial
        rows.append(
            {
                "proxyWallet": user,
                "asset": m.token_ids[i],
                "conditionId": m.condition_id,
                "size": _n(a["size"]),
                "avgPrice": _n(avg),
                "initialValue": _n(initial),
                "currentValue": _n(current),
                "cashPnl": _n(pnl),
                "percentPnl": _n(pnl / initial * 100 if initial else ZERO),
                "totalBought": _n(a["bought"]),
                "realizedPnl": _n(a["realized"]),
                "percentRealizedPnl": _n(a["realized"] / initial * 100 if initial else ZERO),
                "curPrice": _n(cur),
                "redeemable": m.closed,
                "mergeable": False,
                "title": m.question,
                "slug": m.slug,
                "icon": ICON,
                "eventId": m.event_id,
                "eventSlug": m.slug,
                "outcome": m.outcomes[i],
                "outcomeIndex": i,
                "oppositeOutcome": m.outcomes[1 - i],
                "oppositeAsset": m.token_ids[1 - i],
                "endDate": wire.date_only(m.end_ts),
                "negativeRisk": m.neg_risk,
            }
        )
    rows.sort(key=lambda r: r["size"], reverse=True)
    return ok(rows[offset : offset + limit])
