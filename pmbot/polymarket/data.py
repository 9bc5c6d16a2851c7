"""Data API: a wallet's activity, trades and positions (complete, but lags the chain by seconds).

Data API v2 first (`/v2/...`, cursor paging, snake_case); the v1 routes (offset paging, camelCase)
only when v2 answers 404. Third parties report v1 retired on 2026-10-24 while the docs say it keeps
working: whichever is the case, one 404 from v2 switches this client to v1 for its lifetime."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pmbot.errors import InputError, NotFoundError
from pmbot.polymarket import identity
from pmbot.polymarket.http import HttpClient
from pmbot.polymarket.models import Activity, DataPosition, Side, WalletTrade
from pmbot.polymarket.schemas import data_v2, rest

T = TypeVar("T")
V2_PAGE = 500  # rows per v2 request
MAX_CONDITIONS = 20  # the v2 `condition_id` filter takes at most 20 ids
POSITION_STATUSES = ("OPEN", "REDEEMABLE", "REDEEMABLE_LOST", "MERGEABLE", "CLOSED")


class DataClient:
    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self.v1_only = False  # set after v2 answered 404

    async def _collect(
        self,
        v2_path: str,
        v2_params: dict[str, Any],
        v1_path: str,
        v1_params: dict[str, Any],
        limit: int,
        parse: Callable[[Any], T],
        what: str,
    ) -> list[T]:
        if not self.v1_only:
            try:
                return await self._v2_pages(v2_path, v2_params, limit, parse, what)
            except NotFoundError:
                self.v1_only = True
        raw = await self.http.get(v1_path, {**v1_params, "limit": limit, "offset": 0})
        return [parse(r) for r in rest._rows(raw, what)][:limit]

    async def _v2_pages(
        self, path: str, params: dict[str, Any], limit: int, parse: Callable[[Any], T], what: str
    ) -> list[T]:
        out: list[T] = []
        cursor: str | None = None
        seen: set[str] = set()
        while len(out) < limit:
            raw = await self.http.get(path, {**params, "limit": min(V2_PAGE, limit - len(out)), "cursor": cursor})
            rows, cursor = data_v2.page(raw, what)
            out += [parse(r) for r in rows]
            if cursor is None or not rows or cursor in seen:  # a repeated cursor would loop forever
                break
            seen.add(cursor)
        return out[:limit]

    async def activity(
        self,
        user: str,
        *,
        limit: int = 100,
        types: list[str] | None = None,
        start_s: int | None = None,
        end_s: int | None = None,
        ascending: bool = False,
        condition_ids: list[str] | None = None,
    ) -> list[Activity]:
        conditions = _conditions(condition_ids)
        direction = "ASC" if ascending else "DESC"
        common = {"user": user, "type": ",".join(types) if types else None, "start": start_s, "end": end_s}
        return await self._collect(
            "/v2/activity",
            {**common, "condition_id": conditions, "sort_direction": direction},
            "/activity",
            {**common, "market": conditions, "sortDirection": direction},
            limit,
            rest.activity,
            "activity",
        )

    async def trades(
        self,
        *,
        user: str | None = None,
        condition_ids: list[str] | None = None,
        side: Side | None = None,
        taker_only: bool = True,
        limit: int = 100,
        start_s: int | None = None,
        end_s: int | None = None,
    ) -> list[WalletTrade]:
        """Newest first. `start_s` / `end_s` (epoch seconds, inclusive) bound the window on the user shape
        only (the venue ignores them with `condition_ids` alone); v1 has no window: the caller filters."""
        conditions = _conditions(condition_ids)
        common = {"user": user, "side": side.value if side else None}
        window = {"start": start_s, "end": end_s} if user else {}
        # Both generations default to taker-only: a whale's maker fills are missing unless asked.
        return await self._collect(
            "/v2/trades",
            {**common, **window, "condition_id": conditions, "taker_only": taker_only},
            "/trades",
            {**common, "market": conditions, "takerOnly": taker_only},
            limit,
            rest.data_trade,
            "trades",
        )

    async def positions(self, user: str, *, limit: int = 100, status: str | None = None) -> list[DataPosition]:
        if status is not None and status.upper() not in POSITION_STATUSES:
            raise InputError(f"position status {status!r} is not one of {', '.join(POSITION_STATUSES)}")
        rows = await self._collect(
            "/v2/positions",
            {"user": user, "status": status.upper() if status else None},
            "/positions",
            {"user": user},
            limit,
            rest.data_position,
            "positions",
        )
        if self.v1_only and status is not None:  # v1 has no status filter: apply it here
            redeemable = status.upper().startswith("REDEEMABLE")
            rows = [p for p in rows if p.redeemable == redeemable] if status.upper() != "CLOSED" else []
        return rows


def _conditions(condition_ids: list[str] | None) -> str | None:
    """Comma-joined 32-byte ids (Gamma's 31-byte V2 form is normalised: the Data API 400s on it)."""
    if not condition_ids:
        return None
    ids = list(dict.fromkeys(identity.condition_id(c) for c in condition_ids))
    if len(ids) > MAX_CONDITIONS:
        raise InputError(f"at most {MAX_CONDITIONS} condition ids per request, got {len(ids)}")
    return ",".join(ids)
