"""Where the paper exchange gets the current book: the market stream's local book when it is in
sync (no round trip), else GET /book."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pmbot.polymarket.clob import ClobPublicClient
from pmbot.polymarket.models import OrderBook

if TYPE_CHECKING:
    from pmbot.polymarket.streams import MarketStream


class VenueBooks:
    def __init__(self, clob: ClobPublicClient, stream: MarketStream | None = None) -> None:
        self._clob = clob
        self._stream = stream
        self.rest_reads = 0

    async def book(self, token_id: str) -> OrderBook:
        if self._stream is not None:
            local = self._stream.books.get(token_id)
            if local is not None and local.synced:
                return local.snapshot()
        self.rest_reads += 1
        return await self._clob.book(token_id)
