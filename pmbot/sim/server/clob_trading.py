"""CLOB auth (L1: create/derive API key) and trading endpoints (L2: orders, cancels, queries)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from pmbot.sim import messages
from pmbot.sim.auth import ApiKey, AuthFailedError
from pmbot.sim.engine import LIVE, OrderRejectedError
from pmbot.sim.server.common import error, ok, page, venue
from pmbot.sim.venue import MAX_BATCH

routes = web.RouteTableDef()
NOT_FOUND_OR_DONE = "Order not found or already canceled"
# Post-only mode after a matching-engine restart: 503 with this code (polymarket-client
# clients/_transport.py _detect_trading_restriction reads `code == "post_only_mode"`).
POST_ONLY_MODE = {
    "error": "the venue is in post-only mode: only post-only orders are accepted",
    "code": "post_only_mode",
}


CREATE_FAILED, DERIVE_FAILED = "Could not create api key", "Could not derive api key!"  # the venue's 400s


@routes.post("/auth/api-key")
@routes.get("/auth/derive-api-key")
async def api_key(request: web.Request) -> web.Response:
    v = venue(request)
    try:
        address, nonce = v.api_keys.check_l1(request.headers)
    except AuthFailedError as e:
        return error(str(e), 401)
    # Faults: the venue's create / derive can fail with a 400 (no key for that nonce, or a key already made).
    if request.method == "POST" and v.faults.take("api_key_create_fail"):
        return error(CREATE_FAILED)
    if request.method == "GET" and v.faults.take("api_key_derive_fail"):
        return error(DERIVE_FAILED)
    return ok(v.api_keys.derive(address, nonce).creds())


@routes.get("/auth/api-keys")
async def list_api_keys(request: web.Request) -> web.Response:
    """The wallet's API keys: `{"apiKeys": ["<uuid>", …]}` (SDK parse_api_keys_response)."""
    key, _ = await _l2(request)
    return ok({"apiKeys": venue(request).api_keys.keys_of(key.address)})


@routes.delete("/auth/api-key")
async def delete_api_key(request: web.Request) -> web.Response:
    """Revoke the key the request is signed with; the venue answers the JSON string "OK"."""
    key, _ = await _l2(request)
    venue(request).api_keys.revoke(key.key)
    return ok("OK")


@routes.get("/balance-allowance")
async def balance_allowance(request: web.Request) -> web.Response:
    """`?asset_type=COLLATERAL|CONDITIONAL|CONDITIONAL-V2&token_id=&signature_type=`: balance and allowances in base
    units (SDK models/clob/account.py BalanceAllowance)."""
    key, _ = await _l2(request)
    q = request.query
    asset_type = q.get("asset_type", "")
    if asset_type not in ("COLLATERAL", "CONDITIONAL", "CONDITIONAL-V2"):  # V2 position ids: -V2
        return error("invalid asset_type")
    if asset_type != "COLLATERAL" and not q.get("token_id"):
        return error("token_id is required for CONDITIONAL")
    return ok(venue(request).balance_allowance(key.address, asset_type, q.get("token_id")))


@routes.get("/balance-allowance/update")
async def update_balance_allowance(request: web.Request) -> web.Response:
    """Asks the venue to re-read the chain; the sim's ledger is always current. The venue's body is
    empty (py-clob-client issue 287: "returns empty"), which the SDK does not read."""
    await _l2(request)
    return ok("")


async def _l2(request: web.Request) -> tuple[ApiKey, str]:
    body = await request.text()
    try:
        key = venue(request).api_keys.check_l2(request.headers, request.method, request.path, body)
    except AuthFailedError as e:
        raise web.HTTPUnauthorized(text=json.dumps({"error": str(e)}), content_type="application/json") from None
    return key, body


def _json(body: str) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "Invalid order payload"}), content_type="application/json"
        ) from None


@routes.post("/order")
async def post_order(request: web.Request) -> web.StreamResponse:
    key, body = await _l2(request)
    v = venue(request)
    payload = _json(body)
    if v.faults.post_only_mode and not (isinstance(payload, dict) and payload.get("postOnly") is True):
        return ok(POST_ONLY_MODE, status=503)
    try:
        resp = v.submit_wire_order(payload, key)
    except OrderRejectedError as e:
        return error(e.message, e.status)
    if v.faults.take_order_drop():
        # Fault: the order is placed (and maybe matched) but the client never hears back.
        if request.transport is not None:
            request.transport.close()
        raise web.HTTPServiceUnavailable()  # never delivered: the socket is already gone
    return ok(resp)


@routes.post("/orders")
async def post_orders(request: web.Request) -> web.Response:
    key, body = await _l2(request)
    payload = _json(body)
    if not isinstance(payload, list):
        return error("Invalid order payload")
    if len(payload) > MAX_BATCH:
        return error(f"Too many orders in payload: {len(payload)}, max allowed: {MAX_BATCH}")
    v = venue(request)
    out: list[dict[str, Any]] = []
    for item in payload:
        try:
            out.append(v.submit_wire_order(item, key))
        except OrderRejectedError as e:  # per-order errors come back inside the 200 array
            out.append(
                {
                    "errorMsg": e.message,
                    "orderID": "",
                    "takingAmount": "",
                    "makingAmount": "",
                    "status": "",
                    "success": False,
                }
            )
    return ok(out)


def _cancel(request: web.Request, key: ApiKey, order_ids: list[str]) -> dict[str, Any]:
    v = venue(request)
    canceled: list[str] = []
    not_canceled: dict[str, str] = {}
    for oid in order_ids:
        o = v.engine.orders.get(oid)
        if o is None or o.owner != key.key or not v.engine.cancel(o):
            not_canceled[oid] = NOT_FOUND_OR_DONE
        else:
            canceled.append(oid)
    return {"not_canceled": not_canceled, "canceled": canceled}


@routes.delete("/order")
async def cancel_order(request: web.Request) -> web.Response:
    key, body = await _l2(request)
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("orderID"), str):
        return error("Invalid orderID")
    return ok(_cancel(request, key, [payload["orderID"]]))


@routes.delete("/orders")
async def cancel_orders(request: web.Request) -> web.Response:
    key, body = await _l2(request)
    payload = _json(body)
    if not isinstance(payload, list) or not all(isinstance(x, str) for x in payload):
        return error("Invalid order payload")
    if len(payload) > 1000:
        return error("Too many orders in payload, max allowed: 1000")
    return ok(_cancel(request, key, payload))


@routes.delete("/cancel-all")
async def cancel_all(request: web.Request) -> web.Response:
    key, _ = await _l2(request)
    v = venue(request)
    return ok(_cancel(request, key, [o.id for o in v.engine.live_orders() if o.owner == key.key]))


@routes.delete("/cancel-market-orders")
async def cancel_market_orders(request: web.Request) -> web.Response:
    key, body = await _l2(request)
    payload = _json(body) or {}
    if not isinstance(payload, dict):
        return error("Invalid payload")
    market, asset = payload.get("market"), payload.get("asset_id")
    v = venue(request)
    ids = [
        o.id
        for o in v.engine.live_orders()
        if o.owner == key.key and (not market or o.market.condition_id == market) and (not asset or o.token_id == asset)
    ]
    return ok(_cancel(request, key, ids))


@routes.post("/v1/heartbeats")
async def heartbeats(request: web.Request) -> web.Response:
    """Order heartbeat (dead man's switch): `{"heartbeat_id": ""}` first, then the id each answer gives.
    A stale id: 400 `{"error_msg": "Invalid Heartbeat ID", "heartbeat_id": <expected>}` (the SDK's
    OrderHeartbeatMismatchResponse); it does not refresh the deadline."""
    key, body = await _l2(request)
    payload = _json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("heartbeat_id", ""), str):
        return error("Invalid heartbeat payload")
    accepted, next_id = venue(request).heartbeat(key.key, payload.get("heartbeat_id", ""))
    if not accepted:
        return ok({"error_msg": "Invalid Heartbeat ID", "heartbeat_id": next_id}, status=400)
    return ok({"heartbeat_id": next_id})


@routes.get("/data/orders")
async def open_orders(request: web.Request) -> web.Response:
    key, _ = await _l2(request)
    v, q = venue(request), request.query
    rows = [
        messages.order_row(o)
        for o in v.engine.live_orders()
        if o.owner == key.key
        and o.status == LIVE
        and (not q.get("market") or o.market.condition_id == q["market"])
        and (not q.get("asset_id") or o.token_id == q["asset_id"])
        and (not q.get("id") or o.id == q["id"])
    ]
    return ok(page(rows, q.get("next_cursor")))


@routes.get("/data/order/{order_id}")
async def one_order(request: web.Request) -> web.Response:
    key, _ = await _l2(request)
    o = venue(request).engine.orders.get(request.match_info["order_id"])
    if o is None or o.owner != key.key:
        return error("order not found", 404)
    return ok(messages.order_row(o))


@routes.get("/data/trades")
async def trades(request: web.Request) -> web.Response:
    key, _ = await _l2(request)
    v, q = venue(request), request.query
    rows = []
    for t in v.engine.trades.values():
        if t.head is not t:
            continue  # one row per taker trade; its maker fills are in maker_orders
        members = t.group or [t]
        if key.key != t.taker.owner and all(g.maker.owner != key.key for g in members):
            continue
        if q.get("id") and t.id != q["id"]:
            continue
        if q.get("market") and t.market.condition_id != q["market"]:
            continue
        if q.get("asset_id") and q["asset_id"] not in {t.taker.token_id} | {g.maker.token_id for g in members}:
            continue
        if q.get("maker_address") and q["maker_address"].lower() not in (
            t.taker.maker_address.lower(),
            *(g.maker.maker_address.lower() for g in members),
        ):
            continue
        if q.get("before") and t.match_time >= int(q["before"]):
            continue
        if q.get("after") and t.match_time <= int(q["after"]):
            continue
        rows.append(messages.trade_row(t, key.key))
    return ok(page(rows, q.get("next_cursor")))
