"""Per-token market parameters (tick size, neg-risk, fees, minimum size), cached.

Signing an order needs the tick size (amount rounding) and neg-risk (which exchange contract is the
EIP-712 verifying contract). Fetching them at signal time would put two round trips on the hot path,
so strategies warm the cache before a market's window; a `tick_size_change` on the market stream
updates it in place.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

from pmbot.polymarket.clob import ClobPublicClient
from pmbot.polymarket.models import FeeSchedule, MarketParams


class MarketParamsCache:
    def __init__(self, clob: ClobPublicClient) -> None:
        self._clob = clob
        self._params: dict[str, MarketParams] = {}
        self._inflight: dict[str, asyncio.Future[MarketParams]] = {}

    def cached(self, token_id: str) -> MarketParams | None:
        return self._params.get(token_id)

    def put(self, params: MarketParams) -> None:
        self._params[params.token_id] = params

    def set_tick_size(self, token_id: str, tick_size: Decimal) -> None:
        old = self._params.get(token_id)
        if old is not None:
            self._params[token_id] = replace(old, tick_size=tick_size)

    async def get(self, token_id: str) -> MarketParams:
        hit = self._params.get(token_id)
        if hit is not None:
            return hit
        # Concurrent callers for one token share a single fetch.
        pending = self._inflight.get(token_id)
        if pending is None:
            pending = asyncio.ensure_future(self._fetch(token_id))
            self._inflight[token_id] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(token_id, None))
        return await asyncio.shield(pending)

    async def warm(self, token_ids: list[str]) -> list[MarketParams]:
        return list(await asyncio.gather(*(self.get(t) for t in token_ids)))

    async def _fetch(self, token_id: str) -> MarketParams:
        # One /book call answers tick size, neg-risk, minimum size and the condition id; fees need
        # the condition id.
        book = await self._clob.book(token_id)
        tick = book.tick_size if book.tick_size is not None else await self._clob.tick_size(token_id)
        neg_risk = book.neg_risk if book.neg_risk is not None else await self._clob.neg_risk(token_id)
        fees = await self._clob.fee_schedule(book.market) if book.market else FeeSchedule()
        params = MarketParams(
            token_id=token_id,
            tick_size=tick,
            neg_risk=neg_risk,
            fees=fees,
            min_order_size=book.min_order_size or Decimal(5),
        )
        self._params[token_id] = params
        return params
