"""/rpc: the slice of Polygon JSON-RPC (over WebSocket) that web3.py's log subscriptions need."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pmbot.sim import ids
from pmbot.sim.hub import RpcConn, dumps
from pmbot.sim.server.common import venue
from pmbot.sim.server.ws import parse, serve
from pmbot.sim.venue import block_at

routes = web.RouteTableDef()


@routes.get("/rpc")
async def rpc(request: web.Request) -> web.WebSocketResponse:
    v = venue(request)
    if v.faults.rpc_down:
        return web.json_response({"error": "rpc unavailable"}, status=503)  # type: ignore[return-value]
    conn = RpcConn(kind="rpc")
    v.hub.opened["rpc"] += 1

    def answer(req: Any) -> dict[str, Any] | None:
        if not isinstance(req, dict) or "method" not in req:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Invalid Request"}}
        rid, method, params = req.get("id"), req["method"], req.get("params") or []
        result: Any
        if method == "eth_chainId":
            result = "0x89"
        elif method == "net_version":
            result = "137"
        elif method == "eth_blockNumber":
            result = hex(block_at(v.clock.now()))
        elif method == "web3_clientVersion":
            result = "pmbot-sim/1.0"
        elif method == "eth_subscribe":
            if not params or params[0] != "logs":
                return {
                    "jsonrpc": "2.0",
                    "id": rid,
                    "error": {"code": -32602, "message": "only logs subscriptions are supported"},
                }
            v.hub.opened["rpc_subscribe"] += 1
            # numbered by the count of subscribes, not len(conn.subs): after an unsubscribe, a new id equal to a
            # live one would replace that subscription (and unsubscribing the old would end the new)
            sub_id = "0x" + ids.hex32(v.seed, "sub", id(conn), v.hub.opened["rpc_subscribe"])[2:34]
            conn.subs[sub_id] = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
            result = sub_id
        elif method == "eth_unsubscribe":
            result = conn.subs.pop(str(params[0]) if params else "", None) is not None
        else:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"method {method} not found"}}
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    async def on_text(text: str) -> None:
        req = parse(text)
        if isinstance(req, list):
            conn.push(dumps([answer(r) for r in req]))
        else:
            conn.push(dumps(answer(req)))

    return await serve(request, conn, lambda: v.hub.rpc.add(conn), on_text)
