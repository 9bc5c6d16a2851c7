"""RTDS (/rtds): activity trades and BTC prices in `{topic,type,timestamp,payload,connection_id}` envelopes."""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from pmbot.sim.hub import RtdsConn, RtdsSub, dumps
from pmbot.sim.server.common import venue
from pmbot.sim.server.ws import parse, serve

routes = web.RouteTableDef()


def _filters(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


@routes.get("/rtds")
async def rtds(request: web.Request) -> web.WebSocketResponse:
    v = venue(request)
    v.hub.opened["rtds"] += 1
    n = len(v.hub.rtds) + 1
    conn = RtdsConn(kind="rtds", connection_id=base64.b64encode(f"sim-conn-{n:05d}".encode()).decode())

    async def on_text(text: str) -> None:
        stripped = text.strip()
        if stripped in ("PING", "ping"):
            conn.push("PONG" if stripped == "PING" else "pong")
            return
        msg = parse(text)
        if not isinstance(msg, dict) or msg.get("action") not in ("subscribe", "unsubscribe"):
            return
        subs = [
            RtdsSub(str(s.get("topic", "")), str(s.get("type", "*")), _filters(s.get("filters")))
            for s in msg.get("subscriptions") or []
            if isinstance(s, dict)
        ]
        if msg["action"] == "unsubscribe":
            conn.subs = [s for s in conn.subs if all((s.topic, s.type) != (u.topic, u.type) for u in subs)]
            return
        conn.subs.extend(subs)
        now = int(v.clock.now())
        for s in subs:
            # Recorded: a filtered crypto_prices subscribe is answered with ~2 min of history first.
            if s.topic == "crypto_prices" and s.filters:
                snap = v.price_snapshot(s.topic, now)
                if snap is not None:
                    conn.push(dumps({**snap, "connection_id": conn.connection_id}))

    return await serve(request, conn, lambda: v.hub.rtds.add(conn), on_text)
