"""/_sim: inspect the sim and steer it (faults, manual clock).

Only for a client on this machine that means it: the Host header must name a loopback address (a web
page rebinding its own name to 127.0.0.1 sends its name), and a POST must be `application/json` (a
page can send text/plain or a form to any address without asking; JSON needs a CORS preflight).
"""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from pmbot.config import is_loopback_host
from pmbot.sim.server.common import error, ok, venue

routes = web.RouteTableDef()

MAX_ADVANCE_S = 86_400  # a day of sim time per call (~10 s of CPU); more is a mistake (or an attack)
_ADVANCE_SLICE_S = 60.0  # between slices the loop serves other requests and SIGTERM


def refuse(request: web.Request) -> web.Response | None:
    """The refusal for an admin request that is not plainly local and JSON, or None to serve it."""
    host = request.headers.get("Host", "")
    hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1 : host.find("]")]
    if not is_loopback_host(hostname):
        return error("/_sim is served to loopback Host names only", status=403)
    if request.method == "POST" and request.content_type != "application/json":
        return error("/_sim POST bodies must be application/json", status=415)
    return None


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
    except (ValueError, KeyError, TypeError, OverflowError):
        return error('body must be {"seconds": <number>}')
    if not math.isfinite(seconds) or seconds < 0:
        return error("seconds must be >= 0")
    if seconds > MAX_ADVANCE_S:
        return error(f"seconds must be <= {MAX_ADVANCE_S} (one call moves at most a day)")
    v = venue(request)
    remaining = seconds
    while remaining > 0:
        step = min(_ADVANCE_SLICE_S, remaining)
        v.advance(step)
        remaining -= step
        # The slice's frames are queued and their writers woken: they write now, before this answer is
        # serialised and written (answering first held every frame of the step back by that, ~0.1 ms).
        # Between slices the loop also serves other requests and SIGTERM (a shutdown cancels us here).
        await asyncio.sleep(0)
    return ok({"now": v.clock.now()})
