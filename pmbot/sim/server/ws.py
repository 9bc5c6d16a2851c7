"""WebSocket plumbing shared by every channel, and the CLOB market and user channels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from pmbot.sim.faults import Faults
from pmbot.sim.hub import MALFORMED_FRAME, Conn, MarketConn, UserConn, dumps
from pmbot.sim.server.common import venue

routes = web.RouteTableDef()


_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)  # Linux


def _cork(sock: Any, on: bool) -> None:
    if sock is not None and _TCP_CORK is not None:
        with contextlib.suppress(OSError):  # a socket the client already closed
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))


async def _pump(ws: web.WebSocketResponse, conn: Conn, faults: Faults, sock: Any = None) -> None:
    """Drain the connection's queue into the socket; None in the queue means close.

    Frames queued together (a step of the venue) go out as one burst: the socket corked (TCP_CORK,
    Linux) while the writer hands them over, uncorked after the last. A write of its own per frame cost
    the venue a loopback send each (~8 µs) and the client a wake-up and a read each; corked, the burst
    leaves in as few segments as fit and the client reads it at once. The frames and their order are
    unchanged; a lone frame is written as before. A frame's `on_send` runs when it has left: after its
    write, or once its burst is uncorked."""
    while True:
        text = await conn.queue.get()
        burst = _TCP_CORK is not None and sock is not None and not conn.queue.empty()
        pending: list[Callable[[], None]] = []  # on_send hooks of a corked burst
        if burst:
            _cork(sock, True)
        try:
            while True:
                if text is None:
                    await ws.close(code=WSCloseCode.GOING_AWAY)
                    return
                conn.sent += 1
                every = faults.ws_malformed_every
                if every and conn.sent % every == 0:
                    await ws.send_str(MALFORMED_FRAME)
                on_write = getattr(text, "on_write", None)  # a stamped frame (hub.StampedText): it leaves now
                if on_write is not None:
                    on_write()
                await ws.send_str(text)
                on_send = getattr(text, "on_send", None)  # … and it is out now (corked: once uncorked)
                if on_send is not None and burst:
                    pending.append(on_send)
                elif on_send is not None:
                    on_send()
                if conn.queue.empty():
                    break
                text = conn.queue.get_nowait()
        finally:
            if burst:
                _cork(sock, False)
                for hook in pending:
                    hook()


async def _drop_later(ws: web.WebSocketResponse, seconds: float) -> None:
    await asyncio.sleep(seconds)
    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"sim fault: connection dropped")


async def serve(
    request: web.Request, conn: Conn, register: Callable[[], None], on_text: Callable[[str], Awaitable[None]]
) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=True, max_msg_size=1 << 22)
    await ws.prepare(request)
    v = venue(request)
    register()
    sock = request.transport.get_extra_info("socket") if request.transport is not None else None
    tasks = [asyncio.create_task(_pump(ws, conn, v.faults, sock))]
    if v.faults.ws_drop_every > 0:
        tasks.append(asyncio.create_task(_drop_later(ws, v.faults.ws_drop_every)))
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await on_text(msg.data)
            elif msg.type == WSMsgType.BINARY:  # web3.py sends JSON-RPC requests as binary frames
                await on_text(msg.data.decode("utf-8", "replace"))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        v.hub.remove(conn)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return ws


def parse(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


@routes.get("/ws/market")
async def market_channel(request: web.Request) -> web.WebSocketResponse:
    v = venue(request)
    conn = MarketConn(kind="market")

    def subscribe(assets: list[str], dump: bool) -> None:
        new = [a for a in assets if a not in conn.assets]
        conn.assets.update(assets)
        if dump:
            # The first dump on subscribe arrives as ONE JSON array of `book` objects; later
            # updates are single objects.
            books = [s.ws_dict() for s in map(v.book_snapshot, new) if s is not None]
            if books:
                conn.push(dumps(books))

    async def on_text(text: str) -> None:
        if text.strip().upper() == "PING":
            conn.push("PONG")
            return
        msg = parse(text)
        if not isinstance(msg, dict) or not isinstance(msg.get("assets_ids"), list):
            conn.push("INVALID OPERATION")
            return
        assets = [str(a) for a in msg["assets_ids"]]
        if "custom_feature_enabled" in msg:
            conn.custom = bool(msg["custom_feature_enabled"])
        op = msg.get("operation", "subscribe")
        if op == "unsubscribe":
            conn.assets.difference_update(assets)
        elif op == "subscribe":
            subscribe(assets, msg.get("initial_dump", True) is not False)
        else:
            conn.push("INVALID OPERATION")

    return await serve(request, conn, lambda: v.hub.market.add(conn), on_text)


@routes.get("/ws/user")
async def user_channel(request: web.Request) -> web.WebSocketResponse:
    v = venue(request)
    conn = UserConn(kind="user")

    async def on_text(text: str) -> None:
        if text.strip().upper() == "PING":
            conn.push("PONG")
            return
        msg = parse(text)
        if not isinstance(msg, dict):
            conn.push("INVALID OPERATION")
            return
        if "auth" in msg:
            auth = msg.get("auth") or {}
            key = v.api_keys.get(str(auth.get("apiKey", "")))
            if key is None or auth.get("secret") != key.secret or auth.get("passphrase") != key.passphrase:
                conn.close()  # the venue hangs up on bad credentials
                return
            conn.api_key = key.key
            v.hub.user.add(conn)
        markets = [str(m) for m in msg.get("markets") or []]
        if msg.get("operation") == "unsubscribe":
            conn.markets.difference_update(markets)
        else:
            conn.markets.update(markets)

    return await serve(request, conn, lambda: None, on_text)
