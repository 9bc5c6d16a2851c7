"""Issue 12 item 5: no unbounded paging, bodies or requests.

A hostile venue on 127.0.0.1 repeats a page cursor, pages forever, answers a body larger than the cap
(plain or as a gzip bomb), or drips one byte at a time: each ends in a VenueError, and `order --live`
against a venue that repeats its cursor finishes (the order left unknown, the wallet lock released).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import json
import time
from collections.abc import Iterator

import pytest
from aiohttp import web

from pmbot.cli import main
from pmbot.errors import OrderStateUnknownError, VenueError, VenueUnavailableError
from pmbot.polymarket import http as http_mod
from pmbot.polymarket.http import HttpClient, RetryPolicy, check_cursor
from pmbot.polymarket.ratelimit import RateLimiter
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import OrderStatus
from tests.hostile import Forward, HostileVenue
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
NO_RETRY = RetryPolicy(attempts=1)


def _client(url: str, **kw: object) -> HttpClient:
    limiter = RateLimiter(clock=time.monotonic)
    return HttpClient("clob", url, limiter=limiter, retry=NO_RETRY, **kw)  # type: ignore[arg-type]


@pytest.fixture
def evil() -> Iterator[HostileVenue]:
    with HostileVenue() as venue:
        yield venue


def test_check_cursor_stops_repeats_and_endless_paging(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    assert check_cursor(seen, "MA==", "/x") == "MA=="
    assert check_cursor(seen, None, "/x") is None
    with pytest.raises(VenueError, match="repeated"):
        check_cursor(seen, "MA==", "/x")
    monkeypatch.setattr(http_mod, "MAX_PAGES", 3)
    seen = set()
    for c in ("a", "b", "c"):
        check_cursor(seen, c, "/x")
    with pytest.raises(VenueError, match="more than 3 pages"):
        check_cursor(seen, "d", "/x")


async def test_body_over_the_cap_is_refused(evil: HostileVenue) -> None:
    evil.answer("GET", "/book", b'{"a":"' + b"x" * 3_000_000 + b'"}')
    async with _client(evil.url, max_body=1_000_000) as c:
        with pytest.raises(VenueError, match="larger than"):
            await c.get("/book")
    assert http_mod.MAX_BODY == 16 * 1024 * 1024  # the default cap


async def test_gzip_bomb_counts_at_its_decoded_size(evil: HostileVenue) -> None:
    bomb = gzip.compress(b'{"a":"' + b"0" * (20 * 1024 * 1024) + b'"}')
    assert len(bomb) < 100_000

    async def gz(request: web.Request, forward: Forward) -> web.StreamResponse:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    evil.override("GET", "/book", gz)
    async with _client(evil.url) as c:  # the default 16 MB cap
        with pytest.raises(VenueError, match="larger than"):
            await c.get("/book")


def _drip(seconds_per_byte: float, count: int) -> object:
    async def drip(request: web.Request, forward: Forward) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        with contextlib.suppress(ConnectionError):
            await resp.write(b'{"a":"')
            for _ in range(count):
                await asyncio.sleep(seconds_per_byte)
                await resp.write(b"x")
            await resp.write(b'"}')
        return resp

    return drip


async def test_a_dripping_read_ends_at_the_deadline_and_is_not_retried(evil: HostileVenue) -> None:
    # 100 bytes, 0.2 s apart: every read is well within the 1 s timeout, the whole takes 20 s
    evil.override("GET", "/book", _drip(0.2, 100))  # type: ignore[arg-type]
    limiter = RateLimiter(clock=time.monotonic)
    async with HttpClient("clob", evil.url, limiter=limiter, timeout=1.0, retry=RetryPolicy(attempts=4)) as c:
        with pytest.raises(VenueUnavailableError, match="deadline"):
            await c.get("/book")
    assert sum(1 for r in evil.seen if r["path"] == "/book") == 1  # a retry would only drip again


async def test_a_dripping_order_answer_is_unknown_not_unsent(evil: HostileVenue) -> None:
    evil.override("POST", "/order", _drip(0.2, 100))  # type: ignore[arg-type]
    async with _client(evil.url, timeout=1.0) as c:
        with pytest.raises(OrderStateUnknownError):
            await c.request("POST", "/order", body="{}", unknown_on_timeout=True)


async def test_waiting_for_a_pooled_connection_is_not_the_deadline(evil: HostileVenue) -> None:
    # Many requests, one connection: the later ones wait in the pool longer than the deadline, and
    # must still be sent (an order that waited for a connection was not sent, and is not "unknown").
    async def slowish(request: web.Request, forward: Forward) -> web.StreamResponse:
        await asyncio.sleep(0.1)
        return web.json_response({"ok": True})

    evil.override("GET", "/ok", slowish)
    c = _client(evil.url, timeout=5.0, deadline=0.5)
    await c._client.aclose()
    import httpx

    c._client = httpx.AsyncClient(base_url=evil.url, timeout=5.0, limits=httpx.Limits(max_connections=1))
    try:
        results = await asyncio.gather(*(c.get("/ok") for _ in range(10)))  # ~1 s in the pool for the last
    finally:
        await c.aclose()
    assert results == [{"ok": True}] * 10


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


def test_live_order_against_a_venue_that_repeats_its_cursor_finishes(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    token = live_sim.current_market()["token_ids"][0]
    ask = live_sim.book(token)["asks"][-1]["price"]  # type: ignore[index]

    async def same_cursor(request: web.Request, forward: Forward) -> web.StreamResponse:
        status, body = await forward()
        body["next_cursor"] = "MA=="  # the first page again, forever
        return web.json_response(body, status=status)

    with HostileVenue(upstream=live_sim.url) as evil:
        evil.override("GET", "/data/trades", same_cursor)
        monkeypatch.setenv("PMBOT_CLOB_URL", evil.url)
        args = ("order", "buy", token, "--price", ask, "--size", "5", "--type", "FOK", "--live", "--yes", "--json")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
        pages = sum(1 for r in evil.seen if r["path"] == "/data/trades")
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["status"] == OrderStatus.UNKNOWN.value
    assert "repeated page cursor" in err.getvalue()
    assert pages <= 2 * 4  # two pages per read, each read retried at most RetryPolicy.attempts times
    # the wallet lock was released: the next live command runs
    monkeypatch.setenv("PMBOT_CLOB_URL", live_sim.url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        assert main(["order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes", "--json"]) == 0
    store = open_store(db_url)
    try:
        assert len(store.list_orders()) == 2
    finally:
        store.close()
