"""Issue 11, item 4: the venue changes a market's tick near the extremes (above 0.96 / below 0.04:
0.01 → 0.001) and says so with `tick_size_change`; the sim does the same, and pmbot's tick cache, the
signer and the price checks follow it mid-window."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from polymarket.models.clob.market_events import parse_market_event

from pmbot.errors import InputError, VenueError
from pmbot.polymarket.models import FeeSchedule, MarketParams, TickSizeChange
from pmbot.polymarket.params import MarketParamsCache
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.signing import SIDE_BUY, limit_amounts
from pmbot.polymarket.streams import MarketStream
from pmbot.store.models import OrderStatus
from tests.samples import load
from tests.test_executor import Rig, intent, rig  # noqa: F401  (fixture)


class _NoClob:
    async def book(self, token_id: str) -> object:
        raise AssertionError("not fetched in this test")


def test_recorded_tick_size_change_updates_the_cache_the_signer_reads() -> None:
    msg = load("ws_market_tick_size_change.json")
    token = msg["asset_id"]
    cache = MarketParamsCache(_NoClob())  # type: ignore[arg-type]
    cache.put(MarketParams(token, Decimal("0.01"), False, FeeSchedule(), Decimal(5)))
    stream = MarketStream("ws://127.0.0.1:9", [token], on_tick_size=cache.set_tick_size)
    with pytest.raises(InputError):
        limit_amounts(SIDE_BUY, Decimal("0.975"), Decimal(10), "0.01")  # off the old grid
    stream._handle_one(msg)
    params = cache.cached(token)
    assert params is not None and params.tick_size == Decimal("0.001")
    assert limit_amounts(SIDE_BUY, Decimal("0.975"), Decimal(10), str(params.tick_size)).maker_amount == 9_750_000


def test_tick_size_change_with_an_insane_tick_is_refused() -> None:
    msg = dict(load("ws_market_tick_size_change.json"), new_tick_size="5")
    with pytest.raises(VenueError):
        ws.market_event(msg)
    with pytest.raises(VenueError):
        ws.market_event(dict(msg, new_tick_size="0"))


async def test_sim_changes_the_tick_past_096_and_the_executor_follows(rig: Rig) -> None:  # noqa: F811
    sim = rig.sim
    m = sim.current_market()
    up = m["token_ids"][0]
    await rig.venue.params.get(up)  # warmed at 0.01, as strategies do before the window
    assert rig.venue.params.cached(up).tick_size == Decimal("0.01")  # type: ignore[union-attr]
    ex = (await rig.executor(dry_run=False)).executor
    early = await ex.submit(intent(sim, "early", price="0.975", size="5"))
    assert early.status is OrderStatus.REJECTED and "tick" in (early.reason or "")  # 0.01 grid: refused here
    stream = rig.venue.market_stream([up])
    seen: list[TickSizeChange] = []

    async def pump() -> None:
        async for ev in stream:
            if isinstance(ev, TickSizeChange):
                seen.append(ev)

    task = asyncio.create_task(pump())
    try:
        async with asyncio.timeout(20):
            while up not in stream.books:
                await asyncio.sleep(0.01)
            for _ in range(40):  # seed 7: Up's bid passes 0.96 about 340 s later
                sim.advance(10)
                book = sim.book(up)
                assert book is not None
                if book["tick_size"] == "0.001":
                    break
            assert book is not None and book["tick_size"] == "0.001"
            assert Decimal(book["bids"][-1]["price"]) > Decimal("0.96")
            while not seen:
                await asyncio.sleep(0.01)
        (change,) = seen
        assert (change.old_tick_size, change.new_tick_size, change.token_id) == (Decimal("0.01"), Decimal("0.001"), up)
        assert stream.books[up].tick_size == Decimal("0.001")
        assert rig.venue.params.cached(up).tick_size == Decimal("0.001")  # type: ignore[union-attr]
        late = await ex.submit(intent(sim, "late", price="0.975", size="5"))  # now on the grid: signed, accepted
        assert late.status in (OrderStatus.LIVE, OrderStatus.FILLED), late.reason
    finally:
        await stream.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_recorded_tick_size_change_parses_alike_with_the_sdk() -> None:
    msg = load("ws_market_tick_size_change.json")
    sdk = parse_market_event(msg)
    ours = ws.market_event(msg)
    assert isinstance(ours, TickSizeChange)
    assert Decimal(str(sdk.payload.new_tick_size)) == ours.new_tick_size == Decimal("0.001")  # type: ignore[union-attr]
