"""Gamma: market and event discovery, and name → wallet lookup."""

from __future__ import annotations

import logging
import re
from typing import Any

from pmbot.errors import InputError, NotFoundError, VenueError
from pmbot.polymarket.http import HttpClient
from pmbot.polymarket.models import Market, Profile
from pmbot.polymarket.schemas import rest
from pmbot.timeutil import ms_to_iso

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
log = logging.getLogger(__name__)


KEYSET_PAGE = 500  # rows per /markets/keyset request


class GammaClient:
    """Lists through the keyset routes (`/markets/keyset`, cursor paging, what polymarket-client 0.14
    uses); the offset route `/markets` when keyset answers 404, or when a caller asks for an offset."""

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self.offset_only = False  # set after /markets/keyset answered 404

    async def markets(self, **query: Any) -> list[Market]:
        """Markets matching `query` (the keyword arguments of `markets_raw`), parsed."""
        return rest.gamma_markets(await self.markets_raw(**query))

    async def markets_raw(
        self,
        *,
        closed: bool | None = False,
        active: bool | None = True,
        end_min_ms: int | None = None,
        end_max_ms: int | None = None,
        slugs: list[str] | None = None,
        token_ids: list[str] | None = None,
        condition_ids: list[str] | None = None,
        order: str | None = "endDate",
        ascending: bool = True,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """The wire objects, for `pmbot record` (a scenario file keeps what the venue sent)."""
        params: dict[str, Any] = {
            "closed": closed,
            "active": active,
            "end_date_min": ms_to_iso(end_min_ms) if end_min_ms is not None else None,
            "end_date_max": ms_to_iso(end_max_ms) if end_max_ms is not None else None,
            "slug": slugs,
            "clob_token_ids": token_ids,
            "condition_ids": condition_ids,
            "order": order,
            "ascending": ascending if order else None,
        }
        if offset == 0 and not self.offset_only:
            try:
                return await self._keyset("/markets/keyset", "markets", params, limit)
            except NotFoundError:
                self.offset_only = True
        raw = await self.http.get("/markets", {**params, "limit": limit, "offset": offset})
        return [dict(m) for m in rest._rows(raw, "markets")]

    async def _keyset(self, path: str, key: str, params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        seen: set[str] = set()
        while len(out) < limit:
            raw = await self.http.get(
                path, {**params, "limit": min(KEYSET_PAGE, limit - len(out)), "after_cursor": cursor}
            )
            rows, cursor = rest.keyset_page(raw, key)
            out += rows
            if cursor is None or not rows or cursor in seen:  # a repeated cursor would loop forever
                break
            seen.add(cursor)
        return out[:limit]

    async def market_by_slug(self, slug: str) -> Market:
        found = await self.markets(slugs=[slug], closed=None, active=None, order=None)
        if not found:
            raise NotFoundError(f"no market with slug {slug!r}")
        return found[0]

    async def market_by_token(self, token_id: str) -> Market:
        found = await self.markets(token_ids=[token_id], closed=None, active=None, order=None)
        if not found:
            raise NotFoundError(f"no market has token id {token_id[:20]}…")
        return found[0]

    async def markets_by_condition(
        self, condition_ids: list[str], *, chunk: int = 50
    ) -> list[tuple[Market, int | None]]:
        """The markets (open or closed) with these condition ids, each with its `closedTime` in epoch ms (None
        while open): resolutions, fee schedules and outcome prices for `pmbot copy analyze`."""
        out: list[tuple[Market, int | None]] = []
        ids = list(dict.fromkeys(condition_ids))
        for i in range(0, len(ids), chunk):
            part = ids[i : i + chunk]
            raw = await self.markets_raw(condition_ids=part, closed=None, active=None, order=None, limit=len(part) * 2)
            for m in raw:
                try:
                    out.append((rest.gamma_market(m), rest.gamma_closed_ms(m)))
                except VenueError as e:  # one odd market must not sink the others: the caller sees it missing
                    log.warning("skipped an unreadable Gamma market: %s", e)
        return out

    async def search_profiles(self, query: str, limit: int = 10) -> list[Profile]:
        raw = await self.http.get("/public-search", {"q": query, "search_profiles": True, "limit_per_type": limit})
        return rest.search_profiles(raw)

    async def resolve_wallet(self, name_or_address: str) -> Profile:
        """A 0x address is taken as is (no lookup); a name must match a profile's name or pseudonym."""
        text = name_or_address.strip()
        if _ADDRESS.match(text):
            return Profile(proxy_wallet=text.lower())
        if not text or text.startswith("0x"):
            raise InputError(f"{text!r} is neither a profile name nor a 0x address of 40 hex digits")
        profiles = await self.search_profiles(text)
        wanted = text.lower().lstrip("@")
        exact = [p for p in profiles if wanted in ((p.name or "").lower(), (p.pseudonym or "").lower())]
        if exact:
            return exact[0]
        if profiles:
            names = ", ".join(p.name or p.proxy_wallet for p in profiles[:5])
            raise NotFoundError(f"no profile named {text!r}", hint=f"closest matches: {names}")
        raise NotFoundError(f"no profile named {text!r}", hint="pass the proxy wallet's 0x address instead")
