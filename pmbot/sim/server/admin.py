"""/_sim: inspect the sim and steer it (faults, manual clock)."""

from __future__ import annotations

from aiohttp import web

from pmbot.sim.server.common import error, ok, venue

routes = web.RouteTableDef()


@routes.get("/_sim/state")
async def state(request: web.Request) -> web.Response:
    return ok(venue(request).summary())


@routes.get("/_sim/faults")
async def get_faults(request: web.Request) -> web.Response:
    return ok(venue(request).faults.as_dict())


@routes.post("/_sim/faults")
async def set_faults(request: web.Request) -> web.Response:
    """Body: fault fields to change, e.g. {"rate_limit": 3, "retry_after": 2}; {"clear": true} resets all."""
    try:
        body = await request.json()
    except ValueError:
        return error("body must be a JSON object")
    if not isinstance(body, dict):
        return error("body must be a JSON object")
    faults = venue(request).faults
    if body.pop("clear", False):
        faults.clear()
    try:
        faults.update(body)
    except ValueError as e:
        return error(str(e))
    return ok(faults.as_dict())


@routes.post("/_sim/advance")
async def advance(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        seconds = float(body["seconds"])
    except (ValueError, KeyError, TypeError):
        return error('body must be {"seconds": <number>}')
    if seconds < 0:
        return error("seconds must be >= 0")
    v = venue(request)
    v.advance(seconds)
    return ok({"now": v.clock.now()})
