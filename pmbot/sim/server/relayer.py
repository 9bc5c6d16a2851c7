"""Relayer (/relayer/...): just enough for polymarket-client's deposit-wallet start-up check
(`GET /deployed?address=&type=` → `{"deployed": bool}`, SDK `_internal/actions/relayer/deployed.py`).
The sim has no chain state for wallets: every wallet counts as deployed, so a deposit wallet trades
(signature type 3) without a deployment transaction."""

from __future__ import annotations

import re

from aiohttp import web

from pmbot.sim.server.common import error, ok

routes = web.RouteTableDef()
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@routes.get("/relayer/deployed")
async def deployed(request: web.Request) -> web.Response:
    if not _ADDRESS.match(request.query.get("address") or ""):
        return error("invalid address", 400)
    return ok({"deployed": True})
