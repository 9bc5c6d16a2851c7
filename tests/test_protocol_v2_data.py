"""Data API v2 first (`/v2/activity|trades|positions`, `{data, pagination}`, opaque next_cursor,
snake_case), v1 on 404, cursor paging; Gamma keyset listing with the offset route as fallback. Both
pmbot's clients and polymarket-client read the sim's v2 routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from pmbot.config import load_settings
from pmbot.errors import InputError
from pmbot.polymarket import data as data_mod
from pmbot.polymarket import gamma as gamma_mod
from pmbot.polymarket.factory import Venue, build_venue
from pmbot.polymarket.http import RetryPolicy
from pmbot.polymarket.schemas import data_v2
from pmbot.sim.testing import SimServer

FAST = RetryPolicy(attempts=2, base=0.01, cap=0.05)


@pytest.fixture
async def venue(sim: SimServer) -> AsyncIterator[Venue]:
    settings = load_settings(env_file=None, environ=sim.env()).settings
    v = build_venue(settings, clock=sim.now, retry=FAST, timeout=2.0)
    yield v
    await v.aclose()


def _retire(sim: SimServer, *, data: tuple[str, ...] = ("v1", "v2"), keyset: bool = True) -> None:
    def apply(v) -> None:  # type: ignore[no-untyped-def]
        v.data_api_versions = data
        v.gamma_keyset = keyset

    sim.call(apply)


def test_the_sim_serves_v2_envelopes_and_pages_by_cursor(sim: SimServer) -> None:
    sim.advance(60)
    whale = sim.whale_address.lower()
    base = f"{sim.url}/data-api"
    v1 = httpx.get(f"{base}/activity", params={"user": whale, "limit": 500}).json()
    rows, cursor = [], None
    while True:
        page = httpx.get(f"{base}/v2/activity", params={"user": whale, "limit": 3, "cursor": cursor}).json()
        assert set(page) == {"data", "pagination"} and set(page["pagination"]) == {"has_more", "next_cursor"}
        rows += page["data"]
        cursor = page["pagination"]["next_cursor"]
        assert page["pagination"]["has_more"] is (cursor is not None)
        if cursor is None:
            break
    assert len(rows) == len(v1) > 3
    assert rows[0]["proxy_wallet"] == whale and "token_id" in rows[0] and "usdc_size" in rows[0]
    assert [r["transaction_hash"] for r in rows] == [r["transactionHash"] for r in v1]
    cid = rows[0]["condition_id"]
    only = httpx.get(f"{base}/v2/trades", params={"user": whale, "condition_id": cid, "taker_only": "false"}).json()
    assert only["data"] and {r["condition_id"] for r in only["data"]} == {cid}
    # the 31-byte Gamma form is refused, as on the venue; so is a bad cursor
    assert httpx.get(f"{base}/v2/trades", params={"condition_id": cid[:-2]}).status_code == 400
    assert httpx.get(f"{base}/v2/trades", params={"cursor": "bm9wZQ=="}).status_code == 400
    positions = httpx.get(f"{base}/v2/positions", params={"user": whale, "status": "OPEN"}).json()["data"]
    assert positions and all(p["status"] == "OPEN" and "current_size" in p for p in positions)


async def test_v2_first_with_cursor_paging(sim: SimServer, venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    sim.advance(60)
    whale = sim.whale_address.lower()
    monkeypatch.setattr(data_mod, "V2_PAGE", 2)  # force several pages
    _retire(sim, data=("v2",))  # v1 answers 404: only v2 can serve this
    acts = await venue.data.activity(whale, limit=7)
    assert len(acts) == 7 and all(a.wallet == whale for a in acts) and not venue.data.v1_only
    stamps = [a.timestamp_ms for a in acts]
    assert stamps == sorted(stamps, reverse=True)
    trades = await venue.data.trades(user=whale, taker_only=False, limit=5)
    assert len(trades) == 5 and all(0 < t.price < 1 for t in trades)
    cid = trades[0].condition_id
    assert cid is not None
    # the 31-byte Gamma form is normalised before it is sent
    mine = await venue.data.trades(user=whale, condition_ids=[cid[:-2]], taker_only=False, limit=50)
    assert mine and {t.condition_id for t in mine} == {cid}
    positions = await venue.data.positions(whale, status="OPEN")
    assert positions and all(p.size > 0 and not p.redeemable for p in positions)


async def test_v1_fallback_on_404_gives_the_same_rows(sim: SimServer, venue: Venue) -> None:
    sim.advance(60)
    whale = sim.whale_address.lower()
    v2_rows = await venue.data.activity(whale, limit=20)
    _retire(sim, data=("v1",))
    v1_rows = await venue.data.activity(whale, limit=20)
    assert venue.data.v1_only and v1_rows == v2_rows
    assert await venue.data.positions(whale) and await venue.data.trades(user=whale, taker_only=False, limit=3)


async def test_condition_filter_limits(venue: Venue) -> None:
    with pytest.raises(InputError, match="at most 20"):
        await venue.data.trades(condition_ids=["0x" + f"{i:064x}" for i in range(21)])
    with pytest.raises(InputError, match="not a condition id"):
        await venue.data.trades(condition_ids=["0x1234"])
    with pytest.raises(InputError, match="position status"):
        await venue.data.positions("0x" + "11" * 20, status="SOLD")


def test_envelope_parser_refuses_broken_pages() -> None:
    assert data_v2.page({"data": [], "pagination": {"has_more": False, "next_cursor": None}}, "x") == ([], None)
    for bad in ([], {"data": []}, {"data": {}, "pagination": {}}, {"data": [], "pagination": {"next_cursor": 5}}):
        with pytest.raises(Exception, match="x"):
            data_v2.page(bad, "x")
    rows, _ = data_v2.page({"data": [{"proxy_wallet": "0xab", "token_id": "1", "usdc_size": 2}], "pagination": {}}, "x")
    assert rows == [{"proxyWallet": "0xab", "asset": "1", "usdcSize": 2}]


async def test_gamma_lists_by_keyset_and_falls_back_to_offsets(
    sim: SimServer, venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    now_ms = int(sim.now() * 1000)
    monkeypatch.setattr(gamma_mod, "KEYSET_PAGE", 2)
    keyset = await venue.gamma.markets(end_min_ms=now_ms, limit=50)
    assert not venue.gamma.offset_only and len(keyset) == 5  # 4 windows + the V1 market, over 3 pages
    assert {m.protocol.value for m in keyset} == {"v1", "v2"}
    _retire(sim, keyset=False)
    offset = await venue.gamma.markets(end_min_ms=now_ms, limit=50)
    assert venue.gamma.offset_only and [m.slug for m in offset] == [m.slug for m in keyset]


def test_polymarket_client_reads_the_sims_v2_routes(sim: SimServer) -> None:
    from polymarket import PublicClient

    from tests.test_protocol_v2_sdk_sim import sim_environment

    sim.advance(60)
    whale = sim.whale_address
    client = PublicClient(environment=sim_environment(sim))
    try:
        acts = list(client.list_activity(user=whale, page_size=4).iter_items())
        trades = list(client.list_trades(user=whale, taker_only=False, page_size=4).iter_items())
        positions = list(client.list_positions(user=whale, status="OPEN", page_size=2).iter_items())
    finally:
        client.close()
    assert len(acts) > 4 and len(trades) > 4 and positions
    assert {str(a.wallet).lower() for a in acts} == {whale.lower()}
    assert all(p.status == "OPEN" for p in positions)


async def test_condition_id_forms_across_the_apis(sim: SimServer, venue: Venue) -> None:
    """Gamma shows a V2 market's 31-byte condition id; the CLOB answers 404 to it and wants the
    32-byte form, which pmbot sends whichever form it was given."""
    cur = sim.current_market()
    full = cur["condition_id"]
    [gamma_row] = httpx.get(f"{sim.url}/gamma/markets", params={"slug": cur["slug"]}).json()
    short = gamma_row["conditionId"]
    assert len(short) == 64 and short + "00" == full
    assert httpx.get(f"{sim.url}/markets/{short}").status_code == 404
    assert httpx.get(f"{sim.url}/markets/{full}").status_code == 200
    for form in (short, full):
        assert (await venue.clob.market(form)).condition_id == full
        assert (await venue.clob.fee_schedule(form)).rate > 0
        [m] = await venue.gamma.markets(condition_ids=[form], closed=None, active=None, order=None)
        assert m.condition_id == full and m.protocol.value == "v2"
