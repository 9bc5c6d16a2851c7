"""Read-only venue lookups behind `pmbot markets`, `pmbot book` and `pmbot whois`.

They return plain views (dicts of Decimal / str / int) so the commands only render them and the
JSON output is the same data the tables show.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pmbot.errors import NotFoundError, VenueError, redact
from pmbot.polymarket import identity
from pmbot.polymarket.factory import Venue
from pmbot.polymarket.models import Market, OrderBook

_SCAN_PAGE = 500  # how many upcoming markets a --search filters through


def check_token_id(token_id: str) -> str:
    """A V1 token id or a V2 position id (decimal); pmbot.polymarket.identity has the rules."""
    return identity.check_token_id(token_id)


async def scan_markets(
    venue: Venue,
    *,
    now_ms: int,
    closing_within_ms: int | None,
    search: str | None,
    limit: int,
    warnings: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Open markets ending soonest first, with live best prices from the CLOB.

    Each token's `price_source` says where its bid/ask came from: `book` (the CLOB, now) or `gamma`
    (Gamma's cached best prices, when the CLOB could not be read). Why the CLOB could not be read is
    appended to `warnings`, for the command to show."""
    needle = search.strip().lower() if search else None
    markets = await venue.gamma.markets(
        closed=False,
        active=True,
        end_min_ms=now_ms,
        end_max_ms=now_ms + closing_within_ms if closing_within_ms is not None else None,
        order="endDate",
        ascending=True,
        limit=_SCAN_PAGE if needle else limit,
    )
    if needle:
        # Gamma's /markets has no text filter; /public-search ranks by relevance, not by end time,
        # which is the wrong order for a sniper. Filter the soonest-ending page instead.
        markets = [m for m in markets if needle in m.question.lower() or needle in m.slug.lower()]
    markets = markets[:limit]
    books = await _books([t for m in markets for t in m.token_ids], venue, warnings)
    return [_market_view(m, now_ms, books) for m in markets]


async def _books(token_ids: list[str], venue: Venue, warnings: list[str] | None) -> dict[str, OrderBook]:
    if not token_ids:
        return {}
    try:
        return {b.token_id: b for b in await venue.clob.books(token_ids)}
    except VenueError as e:
        # Gamma's cached best prices are shown instead (labelled); a scan should not fail on this.
        if warnings is not None:
            why = redact(e.message.strip())
            warnings.append(f"CLOB unreachable ({why}): prices marked 'gamma' are Gamma's cached ones, not the book")
        return {}


def _market_view(m: Market, now_ms: int, books: dict[str, OrderBook]) -> dict[str, Any]:
    tokens = []
    for i, o in enumerate(m.outcomes):
        b = books.get(o.token_id)
        if b is not None:
            bid, ask, source = b.best_bid, b.best_ask, "book"
        elif i == 0 and (m.best_bid is not None or m.best_ask is not None):
            bid, ask, source = m.best_bid, m.best_ask, "gamma"  # Gamma's best prices are the first outcome's
        else:
            bid, ask, source = None, None, None
        tokens.append(
            {"token_id": o.token_id, "outcome": o.outcome, "best_bid": bid, "best_ask": ask, "price_source": source}
        )
    return {
        "condition_id": m.condition_id,
        "question": m.question,
        "slug": m.slug,
        "end_ms": m.end_ms,
        "seconds_left": max(0, (m.end_ms - now_ms) // 1000) if m.end_ms is not None else None,
        "accepting_orders": m.accepting_orders,
        "tokens": tokens,
    }


async def book_view(venue: Venue, token_id: str, depth: int) -> dict[str, Any]:
    try:
        b = await venue.clob.book(check_token_id(token_id))
    except NotFoundError:
        raise NotFoundError(f"no order book for token {token_id}") from None
    levels = lambda side: [{"price": lv.price, "size": lv.size} for lv in side[:depth]]  # noqa: E731
    return {
        "token_id": b.token_id,
        "market": b.market,
        "timestamp_ms": b.timestamp_ms,
        "best_bid": b.best_bid,
        "best_ask": b.best_ask,
        "spread": b.spread,
        "midpoint": b.midpoint,
        "tick_size": b.tick_size,
        "bid_depth": sum((lv.size for lv in b.bids), Decimal(0)),
        "ask_depth": sum((lv.size for lv in b.asks), Decimal(0)),
        "bids": levels(b.bids),
        "asks": levels(b.asks),
    }


async def whois(venue: Venue, who: str, limit: int) -> dict[str, Any]:
    profile = await venue.gamma.resolve_wallet(who)
    rows = await venue.data.activity(profile.proxy_wallet, limit=limit)
    name = profile.name
    if name is None and rows:
        name = rows[0].name  # a 0x lookup skips the profile search; activity rows carry the name
    return {
        "name": name,
        "pseudonym": profile.pseudonym,
        "proxy_wallet": profile.proxy_wallet,
        "activity": [
            {
                "timestamp_ms": a.timestamp_ms,
                "type": a.type,
                "side": a.side.value if a.side else None,
                "outcome": a.outcome,
                "size": a.size,
                "price": a.price,
                "usdc_size": a.usdc_size,
                "title": a.title,
                "slug": a.slug,
                "token_id": a.token_id,
                "tx_hash": a.tx_hash,
            }
            for a in rows
        ],
    }
