"""One aiohttp application serving every API of the sim on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable

from aiohttp import web

from pmbot.sim.server import admin, clob_public, clob_trading, data_api, gamma, paged_v2, relayer, rpc, rtds, ws
from pmbot.sim.server.common import VENUE, compact
from pmbot.sim.venue import Venue

_WS_PATHS = ("/ws/", "/rtds", "/rpc")
TICK_SECONDS = 0.05  # real-time mode: how often the venue catches up with the clock, at least
MIN_WAKE_SECONDS = 0.001

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def venue_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    v = request.app[VENUE]
    if not v.clock.manual:
        v.step_to(v.clock.now())  # real-time mode: answer from the state as of this instant
    path = request.path
    if path.startswith("/_sim"):
        return admin.refuse(request) or await handler(request)
    if path.startswith(_WS_PATHS):
        return await handler(request)
    if v.faults.latency_ms:
        await asyncio.sleep(v.faults.latency_ms / 1000)
    fault = v.faults.take_http_fault(path)
    if fault is not None:
        status, retry_after = fault
        if status == 429:
            return web.json_response(
                {"error": "Too Many Requests"}, status=429, dumps=compact, headers={"Retry-After": str(retry_after)}
            )
        if status == 425:
            return web.json_response({"error": "the matching engine is restarting"}, status=425, dumps=compact)
        return web.json_response({"error": "Internal Server Error"}, status=status, dumps=compact)
    try:
        return await handler(request)
    except web.HTTPNotFound as e:
        if e.content_type == "application/json":
            raise  # a route's own JSON 404 ("market not found")
        # An unknown route: the venue answers JSON, not aiohttp's text page (SDK errors read `error`).
        return web.json_response({"error": "not found"}, status=404, dumps=compact)
    except web.HTTPMethodNotAllowed:
        return web.json_response({"error": "method not allowed"}, status=405, dumps=compact)


async def _ticker(v: Venue) -> None:
    while True:
        v.step_to(v.clock.now())
        # Wake for the next phased requote (each market has its own moment in the second), at least
        # every TICK_SECONDS; never a busy loop (1 ms floor: what was due then is run together).
        wait = (v.next_due() - v.clock.now()) / v.clock.speed
        await asyncio.sleep(min(TICK_SECONDS, max(wait, MIN_WAKE_SECONDS)))


def build_app(v: Venue) -> web.Application:
    app = web.Application(middlewares=[venue_middleware, paged_v2.retire_v1], client_max_size=4 * 1024 * 1024)
    app[VENUE] = v
    # paged_v2 before gamma: /gamma/markets/keyset must not be read as /gamma/markets/{id}.
    for mod in (admin, clob_trading, paged_v2, gamma, data_api, relayer, ws, rtds, rpc, clob_public):
        app.router.add_routes(mod.routes)

    async def ticker_ctx(app: web.Application) -> object:
        task = None if v.clock.manual else asyncio.create_task(_ticker(v))
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def close_sockets(app: web.Application) -> None:
        for conn in v.hub.all():
            conn.close()

    app.cleanup_ctx.append(ticker_ctx)  # type: ignore[arg-type]
    app.on_shutdown.append(close_sockets)
    return app


def bind(host: str, port: int) -> socket.socket:
    """Bind first, so "port in use" is reported before anything starts. Raises OSError.

    SO_REUSEADDR (what aiohttp's `reuse_address` sets): the port of a sim that just stopped is free
    again at once, not after its connections' TIME-WAIT (about a minute). A port with a live listener
    is still refused: on Linux and macOS the option only waives TIME-WAIT. Not on Windows, where the
    same option would let two servers share the port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def start(v: Venue, sock: socket.socket) -> web.AppRunner:
    runner = web.AppRunner(build_app(v), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    return runner


logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)  # dropped sockets are faults we inject
