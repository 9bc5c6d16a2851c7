"""The venue's weekly matching-engine restart (issue 10 item 8) against `pmbot sim`: ~90 s of HTTP 425,
then ~2 min of post-only mode. Reads wait and retry; an order refused by either is `not_sent` (never
`unknown`, the same key may be sent again); during the post-only window the executor holds taker
intents and sends resting orders as post-only."""

from __future__ import annotations

from decimal import Decimal

import httpx

from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus, OrderType
from tests.test_executor import Rig, best_ask, intent, rig  # noqa: F401  (fixture)


async def test_reads_wait_through_425(rig: Rig) -> None:  # noqa: F811
    token = rig.sim.current_market()["token_ids"][0]
    rig.sim.set_faults(restarting=2, restarting_path="/book")
    book = await rig.venue.clob.book(token)
    assert book.asks  # answered after two 425s
    assert rig.sim.call(lambda v: v.faults.restarting) == 0


async def test_sim_serves_425_and_post_only_mode_as_faults(sim: SimServer) -> None:
    async with httpx.AsyncClient(base_url=sim.url) as client:
        changed = await client.post("/_sim/faults", json={"restarting": 1, "post_only_mode": 1})
        assert changed.status_code == 200 and changed.json()["post_only_mode"] == 1
        restarting = await client.get("/markets")
        assert restarting.status_code == 425
        bad = await client.post("/_sim/faults", json={"post_only_mode": -1})
        assert bad.status_code == 400


async def test_an_order_refused_with_425_is_not_sent_and_can_be_sent_again(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(restarting=1, restarting_path="/order")
    refused = await ex.submit(intent(rig.sim, 1, price="0.02"))
    assert refused.status is OrderStatus.NOT_SENT and refused.code == "venue_425"
    assert rig.sim.received_orders() == []
    again = await ex.submit(intent(rig.sim, 1, price="0.02"))
    assert again.status is OrderStatus.LIVE and not again.duplicate


async def test_post_only_mode_pauses_takers_and_lets_resting_orders_through(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(post_only_mode=1)
    ask = best_ask(rig.sim)
    taker = await ex.submit(intent(rig.sim, 1, price=str(ask), order_type=OrderType.FOK))
    assert taker.status is OrderStatus.NOT_SENT and taker.code == "post_only_mode"  # the venue's 503
    rec = rig.store.get_order(taker.key)
    assert rec is not None and rec.status is OrderStatus.NOT_SENT
    sent = ex.metrics.sent
    # the window is open: takers are held here, nothing is sent
    held = await ex.submit(intent(rig.sim, 2, price=str(ask), order_type=OrderType.FAK))
    assert held.status is OrderStatus.NOT_SENT and held.code == "post_only_mode"
    assert ex.metrics.sent == sent
    # a resting GTC passes, as post-only
    resting = await ex.submit(intent(rig.sim, 3, price="0.02"))
    assert resting.status is OrderStatus.LIVE
    assert rig.sim.received_orders()[-1]["postOnly"] is True
    # a GTC that would cross is not taken (the venue refuses it as post-only): not sent, retryable
    crossing = await ex.submit(intent(rig.sim, 4, price=str(ask)))
    assert crossing.status is OrderStatus.NOT_SENT and crossing.code == "post_only_mode"
    assert rig.store.list_trades() == []  # nothing of ours matched during the window
    # the window ends (120 s of the executor's clock) and the venue is back: the taker goes
    rig.sim.clear_faults()
    rig.sim.advance(121)
    ask = best_ask(rig.sim)
    filled = await ex.submit(intent(rig.sim, 1, price=str(ask), order_type=OrderType.FOK))
    assert filled.status is OrderStatus.FILLED and not filled.duplicate
    assert filled.filled_size == Decimal(10)
