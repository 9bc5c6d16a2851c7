"""CLOB public market data: books, prices, market parameters."""

from __future__ import annotations

from decimal import Decimal

from pmbot.errors import VenueError
from pmbot.polymarket import identity
from pmbot.polymarket.http import HttpClient, compact_json
from pmbot.polymarket.models import FeeSchedule, Market, OrderBook, Side
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.schemas.common import as_bool, dec


class ClobPublicClient:
    def __init__(self, http: HttpClient) -> None:
        self.http = http

    async def book(self, token_id: str) -> OrderBook:
        return rest.book(await self.http.get("/book", {"token_id": token_id}))

    async def books(self, token_ids: list[str]) -> list[OrderBook]:
        body = compact_json([{"token_id": t} for t in token_ids])
        raw = await self.http.request("POST", "/books", body=body, idempotent=True)
        return [rest.book(b) for b in rest._rows(raw, "books")]

    async def price(self, token_id: str, side: Side) -> Decimal | None:
        raw = await self.http.get("/price", {"token_id": token_id, "side": side.value})
        return dec(rest._obj(raw, "price").get("price"))

    async def midpoint(self, token_id: str) -> Decimal | None:
        return dec(rest._obj(await self.http.get("/midpoint", {"token_id": token_id}), "midpoint").get("mid"))

    async def last_trade_price(self, token_id: str) -> Decimal | None:
        raw = await self.http.get("/last-trade-price", {"token_id": token_id})
        return dec(rest._obj(raw, "last trade price").get("price"))

    async def tick_size(self, token_id: str) -> Decimal:
        raw = rest._obj(await self.http.get("/tick-size", {"token_id": token_id}), "tick size")
        tick = dec(raw.get("minimum_tick_size"))
        if tick is None:
            raise VenueError(f"no tick size for token {token_id[:20]}…")
        return tick

    async def neg_risk(self, token_id: str) -> bool:
        raw = await self.http.get("/neg-risk", {"token_id": token_id})
        return as_bool(rest._obj(raw, "neg risk").get("neg_risk"))

    async def fee_schedule(self, condition_id: str) -> FeeSchedule:
        cid = identity.pad_condition_id(condition_id)  # the CLOB 404s on Gamma's 31-byte V2 form
        return rest.clob_fee_schedule(await self.http.get(f"/clob-markets/{cid}"))

    async def server_time(self) -> int:
        raw = await self.http.get("/time")
        return int(raw if not isinstance(raw, dict) else raw.get("time", 0))

    async def market(self, condition_id: str) -> Market:
        return rest.clob_market(await self.http.get(f"/markets/{identity.pad_condition_id(condition_id)}"))

    async def markets_page(self, cursor: str = "MA==") -> tuple[list[Market], str | None]:
        """One page of every CLOB market (old ones included); the cursor is None after the last."""
        rows, nxt = rest.page(await self.http.get("/markets", {"next_cursor": cursor}), "markets")
        return [rest.clob_market(r) for r in rows], nxt
