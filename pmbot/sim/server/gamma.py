"""Gamma (/gamma/...): markets, events, public search. Bare arrays, camelCase, double-encoded fields."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pmbot.sim import markets as shapes
from pmbot.sim import wire
from pmbot.sim.markets import SimMarket
from pmbot.sim.server.common import bool_param, error, int_param, ok, venue
from pmbot.sim.venue import Venue

routes = web.RouteTableDef()
_SORT_KEYS = {
    "endDate": lambda m: m.end_ts,
    "startDate": lambda m: m.created_ts,
    "eventStartTime": lambda m: m.start_ts,
    "id": lambda m: int(m.gamma_id) if m.gamma_id.isdigit() else 0,
    "volume": lambda m: m.volume,
    "volumeNum": lambda m: m.volume,
    "createdAt": lambda m: m.created_ts,
}


def market_obj(v: Venue, m: SimMarket, *, with_events: bool = True) -> dict[str, Any]:
    bid, ask = v.best_up(m)
    return shapes.gamma_market(
        m, v.clock.now(), best_bid=bid, best_ask=ask, liquidity=v.liquidity(m), with_events=with_events
    )


def event_obj(v: Venue, m: SimMarket) -> dict[str, Any]:
    if m.raw is not None:  # replayed: rebuild the event from the recorded market's embedded one
        ev = dict((m.raw.get("events") or [{}])[0])
        ev["markets"] = [{k: val for k, val in m.raw.items() if k != "events"}]
        return ev
    return shapes.gamma_event(m, v.clock.now(), v.liquidity(m), markets=[market_obj(v, m, with_events=False)])


def _filter(request: web.Request, v: Venue, *, implicit_open: bool) -> list[SimMarket]:
    q = request.query
    ms = list(v.markets)
    slugs, ids = q.getall("slug", []), q.getall("id", [])
    tokens = [t for x in q.getall("clob_token_ids", []) for t in x.split(",") if t]
    cids = [c.lower() for x in q.getall("condition_ids", []) for c in x.split(",") if c]
    if slugs:
        ms = [m for m in ms if m.slug in slugs]
    if ids:
        ms = [m for m in ms if m.gamma_id in ids]
    if tokens:
        ms = [m for m in ms if set(m.token_ids) & set(tokens)]
    if cids:
        # Gamma's own (31-byte for V2) form and the CLOB's 32-byte form both find the market.
        ms = [m for m in ms if m.condition_id.lower() in cids or m.gamma_condition_id.lower() in cids]
    closed = bool_param(q.get("closed"))
    # /markets lists only open markets when `closed` is omitted (notes §7.1) – unless asked for
    # specific markets, which come back whatever their state.
    if closed is None and implicit_open and not (slugs or ids or tokens or cids):
        closed = False
    if closed is not None:
        ms = [m for m in ms if m.closed == closed]
    active = bool_param(q.get("active"))
    if active is False:
        ms = []  # every sim market is active (closed ones too, as on Gamma)
    for name, key, lo in (
        ("end_date_min", "end_ts", True),
        ("end_date_max", "end_ts", False),
        ("start_date_min", "created_ts", True),
        ("start_date_max", "created_ts", False),
    ):
        if q.get(name):
            try:
                bound = wire.parse_iso(q[name])
            except ValueError:
                raise web.HTTPBadRequest(text='{"error":"invalid date"}', content_type="application/json") from None
            ms = [m for m in ms if (getattr(m, key) >= bound if lo else getattr(m, key) <= bound)]
    order = (q.get("order") or "").split(",")[0].strip()
    ascending = bool_param(q.get("ascending"))
    if order:
        if order not in _SORT_KEYS:
            raise web.HTTPUnprocessableEntity(
                text=f'{{"error":"unsupported order field {order}"}}', content_type="application/json"
            )
        ms.sort(key=_SORT_KEYS[order], reverse=not ascending if ascending is not None else True)
    offset = int_param(q.get("offset"), 0)
    limit = int_param(q.get("limit"), 500, hi=1000)
    return ms[offset : offset + limit]


@routes.get("/gamma/markets")
async def markets(request: web.Request) -> web.Response:
    v = venue(request)
    return ok([market_obj(v, m) for m in _filter(request, v, implicit_open=True)])


@routes.get("/gamma/markets/slug/{slug}")
async def market_by_slug(request: web.Request) -> web.Response:
    v = venue(request)
    m = next((m for m in v.markets if m.slug == request.match_info["slug"]), None)
    return ok(market_obj(v, m)) if m else error("market not found", 404)


@routes.get("/gamma/markets/{id}")
async def market_by_id(request: web.Request) -> web.Response:
    v = venue(request)
    m = next((m for m in v.markets if m.gamma_id == request.match_info["id"]), None)
    return ok(market_obj(v, m)) if m else error("market not found", 404)


@routes.get("/gamma/events")
async def events(request: web.Request) -> web.Response:
    v = venue(request)
    return ok([event_obj(v, m) for m in _filter(request, v, implicit_open=False)])


@routes.get("/gamma/events/slug/{slug}")
async def event_by_slug(request: web.Request) -> web.Response:
    v = venue(request)
    m = next((m for m in v.markets if m.slug == request.match_info["slug"]), None)
    return ok(event_obj(v, m)) if m else error("event not found", 404)


@routes.get("/gamma/events/{id}")
async def event_by_id(request: web.Request) -> web.Response:
    v = venue(request)
    m = next((m for m in v.markets if m.event_id == request.match_info["id"]), None)
    return ok(event_obj(v, m)) if m else error("event not found", 404)


def profile_obj(wallet: str, p: dict[str, str], created: float) -> dict[str, Any]:
    """A /public-search profile as the SDK's model reads it (models/gamma/search.py Profile): `id` is a
    string and `profileImageOptimized` an image object (ImageOptimization), not a string; no image
    means no such key. No populated profile was ever recorded (samples README)."""
    image = p.get("profileImage", "")
    obj: dict[str, Any] = {
        "id": str(int(wallet[-6:], 16)),
        "name": p.get("name", ""),
        "createdAt": wire.iso_micro(created),
        "proxyWallet": wallet,
        "profileImage": image,
        "displayUsernamePublic": True,
        "bio": p.get("bio", ""),
        "pseudonym": p.get("pseudonym", ""),
        "xUsername": "",
        "verifiedBadge": False,
        "walletActivated": True,
    }
    if image:
        obj["profileImageOptimized"] = {
            "id": str(int(wallet[-8:], 16)),
            "imageUrlSource": image,
            "imageUrlOptimized": image,
            "imageSizeKbSource": 42.0,
            "imageSizeKbOptimized": 8.5,
            "imageOptimizedComplete": True,
            "relID": int(wallet[-6:], 16),
            "field": "profileImage",
            "relname": "profiles",
        }
    return obj


def public_profile_obj(wallet: str, p: dict[str, str], created: float) -> dict[str, Any]:
    """GET /public-profile?address= (SDK models/gamma/profile.py PublicProfile)."""
    return {
        "createdAt": wire.iso_micro(created),
        "proxyWallet": wallet,
        "profileImage": p.get("profileImage", ""),
        "displayUsernamePublic": True,
        "bio": p.get("bio", ""),
        "pseudonym": p.get("pseudonym", ""),
        "name": p.get("name", ""),
        "users": [{"id": str(int(wallet[-6:], 16)), "creator": False, "mod": False}],
        "xUsername": "",
        "verifiedBadge": False,
    }


@routes.get("/gamma/public-profile")
async def public_profile(request: web.Request) -> web.Response:
    v = venue(request)
    address = (request.query.get("address") or "").strip().lower()
    if not address:
        return error("address is required", 422)
    p = v.profiles.get(address)
    if p is None:
        return error("profile not found", 404)
    return ok(public_profile_obj(address, p, v.clock.start - 86400 * 90))


@routes.get("/gamma/public-search")
async def public_search(request: web.Request) -> web.Response:
    v = venue(request)
    q = (request.query.get("q") or "").strip().lower()
    if not q:
        return error("q is required", 422)
    words = q.split()
    hits = [m for m in v.markets if all(w in f"{m.question} {m.slug}".lower() for w in words)]
    limit = int_param(request.query.get("limit_per_type"), 10)
    body: dict[str, Any] = {"events": [event_obj(v, m) for m in hits[:limit]]}
    if bool_param(request.query.get("search_tags")):
        body["tags"] = []
    profiles = []
    if bool_param(request.query.get("search_profiles")):
        body.setdefault("tags", [])
        for wallet, p in v.profiles.items():
            text = f"{p.get('name', '')} {p.get('pseudonym', '')} {wallet}".lower()
            if all(w in text for w in words):
                profiles.append(profile_obj(wallet, p, v.clock.start - 86400 * 90))
        body["profiles"] = profiles[:limit]
    body["pagination"] = {"hasMore": len(hits) > limit, "totalResults": len(hits)}
    return ok(body)
