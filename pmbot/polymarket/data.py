"""Data API: a wallet's activity, trades and positions (complete, but lags the chain by seconds)."""

from __future__ import annotations

from pmbot.polymarket.http import HttpClient
from pmbot.polymarket.models import Activity, DataPosition, Side, WalletTrade
from pmbot.polymarket.schemas import rest


class DataClient:
    def __init__(self, http: HttpClient) -> None:
        self.http = http

    async def activity(
        self,
        user: str,
        *,
        limit: int = 100,
        offset: int = 0,
        types: list[str] | None = None,
        start_s: int | None = None,
        end_s: int | None = None,
        ascending: bool = False,
    ) -> list[Activity]:
        raw = await self.http.get(
            "/activity",
            {
                "user": user,
                "limit": limit,
                "offset": offset,
                "type": ",".join(types) if types else None,
                "start": start_s,
                "end": end_s,
                "sortDirection": "ASC" if ascending else "DESC",
            },
        )
        return [rest.activity(r) for r in rest._rows(raw, "activity")]

    async def trades(
        self,
        *,
        user: str | None = None,
        market: str | None = None,
        side: Side | None = None,
        taker_only: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[WalletTrade]:
        raw = await self.http.get(
            "/trades",
            {
                "user": user,
                "market": market,
                "side": side.value if side else None,
                # The API's default is takerOnly=true: a whale's maker fills are missing unless asked.
                "takerOnly": taker_only,
                "limit": limit,
                "offset": offset,
            },
        )
        return [rest.data_trade(r) for r in rest._rows(raw, "trades")]

    async def positions(self, user: str, *, limit: int = 100, offset: int = 0) -> list[DataPosition]:
        raw = await self.http.get("/positions", {"user": user, "limit": limit, "offset": offset})
        return [rest.data_position(r) for r in rest._rows(raw, "positions")]
