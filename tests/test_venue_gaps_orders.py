"""Issue 11, items 1, 3, 5, 9: what the live venue does with orders that the sim used to spare us.

pmbot's side is tested from the recordings (../shared/polymarket-samples) or the official SDK's
models (polymarket-client); the sim's side over real sockets, with the executor on a real store."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from polymarket.models.clob.account import BalanceAllowance, ClobTrade
from polymarket.models.clob.account import OpenOrder as SdkOpenOrder
from polymarket.models.clob.order_response import RawOrderResponse, normalize_order_response

from pmbot.errors import VenueError
from pmbot.executor.engine import _status_of_open_order
from pmbot.polymarket.factory import build_venue
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.schemas.refusals import explain_refusal, refusal_code, status_reason
from pmbot.polymarket.signing import OrderSigner
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from pmbot.store.models import OrderStatus, OrderType, Query, Side
from tests.samples import load
from tests.test_executor import FAST, KEY, Rig, best_ask, intent, rig, settings_for  # noqa: F401  (fixture)

ADDRESS = OrderSigner(KEY).address


# ------------------------------------------------------------------------- 1. prefixed statuses


def _open_order_row(status: str) -> dict[str, object]:
    """A /data/order row with every field the SDK's OpenOrder model requires."""
    return {
        "id": "0x" + "ab" * 32,
        "status": status,
        "owner": "f4f247b7-4ac7-ff29-a152-04fda0a8755a",
        "maker_address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "market": "0x" + "cd" * 32,
        "asset_id": "123",
        "side": "BUY",
        "original_size": "10",
        "size_matched": "0",
        "price": "0.5",
        "outcome": "Up",
        "expiration": "0",
        "order_type": "GTC",
        "associate_trades": [],
        "created_at": 1795000000,
    }


@pytest.mark.parametrize(
    ("wire", "plain", "ours"),
    [
        ("ORDER_STATUS_LIVE", "LIVE", OrderStatus.LIVE),
        ("ORDER_STATUS_MATCHED", "MATCHED", OrderStatus.FILLED),
        ("ORDER_STATUS_CANCELED", "CANCELED", OrderStatus.CANCELLED),
        ("ORDER_STATUS_CANCELED_MARKET_RESOLVED", "CANCELED_MARKET_RESOLVED", OrderStatus.CANCELLED),
        ("ORDER_STATUS_INVALID", "INVALID", OrderStatus.REJECTED),
        ("ORDER_STATUS_DELAYED", "DELAYED", OrderStatus.SUBMITTED),
        ("LIVE", "LIVE", OrderStatus.LIVE),  # the stream's plain form is unchanged
    ],
)
def test_prefixed_order_statuses_reach_the_executor_plain(wire: str, plain: str, ours: OrderStatus) -> None:
    row = _open_order_row(wire)
    SdkOpenOrder.model_validate(row)  # the row is what the SDK reads
    parsed = rest.open_order(row)
    assert parsed.status == plain
    # before the fix ORDER_STATUS_LIVE fell through to UNKNOWN
    assert _status_of_open_order(parsed.status, Decimal(0), False) is ours


@pytest.mark.parametrize("status", ["TRADE_STATUS_FAILED", "TRADE_STATUS_CONFIRMED", "TRADE_STATUS_MINED"])
def test_prefixed_trade_statuses_match_the_sdk(status: str) -> None:
    row = dict(load("clob_data_trade_row_2024.json"), status=status)
    for m in row["maker_orders"]:
        m.setdefault("side", "SELL")  # the 2024 recording predates maker_orders[].side, which the SDK needs
    sdk = ClobTrade.model_validate(row)
    ours = rest.user_trade(row)
    assert ours.status == sdk.status == status.removeprefix("TRADE_STATUS_")


async def test_reverted_trade_over_rest_is_not_a_fill(rig: Rig) -> None:  # noqa: F811
    """A trade the venue reports as TRADE_STATUS_FAILED (its on-chain match reverted) is no position."""
    ex = (await rig.executor(dry_run=False)).executor
    it = intent(rig.sim, "f", price=str(best_ask(rig.sim)), order_type=OrderType.FOK)
    fok = await ex.submit(it)
    assert fok.status is OrderStatus.FILLED and fok.venue_order_id
    rows = rig.sim.trades()
    assert rows and all(r["status"] == "TRADE_STATUS_MATCHED" for r in rows)  # REST: the raw constant
    assert await ex._venue_fills(it, fok.venue_order_id)  # counted while matched

    def fail_all(v: Any) -> None:
        for t in v.engine.trades.values():
            t.status = "FAILED"

    rig.sim.call(fail_all)
    assert {r["status"] for r in rig.sim.trades()} == {"TRADE_STATUS_FAILED"}
    assert await ex._venue_fills(it, fok.venue_order_id) == []  # before the fix: counted as a fill


async def test_resting_order_reconciles_live_over_prefixed_rest(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rest_order = await ex.submit(intent(rig.sim, 1, price="0.03"))
    assert rest_order.status is OrderStatus.LIVE
    assert rig.sim.open_orders()[0]["status"] == "ORDER_STATUS_LIVE"
    assert await ex.reconcile() == {"live": 1}  # not "unknown"


# ----------------------------------------------------------------------------- 3. FAK answered live


async def test_fak_answered_live_stays_open_until_reconcile_fills_it(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(fak_live=1)
    price = str(best_ask(rig.sim) + Decimal("0.05"))  # worst price: sure to cross a second later
    res = await ex.submit(intent(rig.sim, "fak", price=price, order_type=OrderType.FAK))
    assert res.status is OrderStatus.LIVE and res.filled_size == 0  # not cancelled at once
    rec = rig.store.get_order(res.key)
    assert rec is not None and not rec.status.is_final
    rig.sim.advance(1)  # the venue settles it
    assert await ex.reconcile() == {"filled": 1}
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.status is OrderStatus.FILLED and rec.filled_size >= 10
    trades = rig.store.list_trades(Query(dry_run=False))
    assert sum(t.fill.size for t in trades) == rec.filled_size


async def test_fak_answered_live_then_killed_is_cancelled(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(fak_live=1)
    res = await ex.submit(intent(rig.sim, "fak", price="0.02", order_type=OrderType.FAK))  # nothing to take
    assert res.status is OrderStatus.LIVE
    rig.sim.advance(1)
    assert await ex.reconcile() == {"cancelled": 1}
    assert rig.store.list_trades(Query(dry_run=False)) == []


def test_sim_fak_live_answer_is_what_the_sdk_calls_accepted_live(sim: SimServer) -> None:
    trader = SimTrader(sim, HARDHAT_KEYS[2])
    try:
        sim.set_faults(fak_live=1)
        up = sim.current_market()["token_ids"][0]
        r = trader.post_order(up, "BUY", Decimal("0.99"), amount=Decimal("5"), order_type="FAK").json()
        assert r["status"] == "live" and r["takingAmount"] == "" and r["makingAmount"] == ""
        ack = normalize_order_response(RawOrderResponse.model_validate(r))
        assert ack.ok and ack.status == "live"
        assert trader.get(f"/data/order/{r['orderID']}").json()["status"] == "ORDER_STATUS_LIVE"
        sim.advance(1)
        row = trader.get(f"/data/order/{r['orderID']}").json()
        assert row["status"] == "ORDER_STATUS_MATCHED" and Decimal(row["size_matched"]) > 0
    finally:
        trader.close()


# ------------------------------------------------------------------------------------ 5. balances


def test_refusals_get_clear_reasons() -> None:
    venue_text = "not enough balance / allowance: the balance is not enough -> balance: 0, order amount: 10000000"
    assert refusal_code(venue_text) == refusal_code("not enough balance / allowance") == "not_enough_balance"
    said = explain_refusal(venue_text)
    assert "pUSD (BUY)" in said and "shares (SELL)" in said and venue_text in said
    assert explain_refusal(said) == said  # explained once
    assert explain_refusal("invalid nonce") == "invalid nonce"
    assert "balance no longer covers" in (status_reason("CANCELED_NOT_ENOUGH_BALANCE") or "")
    assert status_reason("ORDER_STATUS_CANCELED_MARKET_RESOLVED") == "cancelled by the venue: the market resolved"
    assert status_reason("LIVE") is None and status_reason("CANCELED") is None
    # the SDK maps the same phrase to the same code
    raw = RawOrderResponse.model_validate(
        {"errorMsg": venue_text, "makingAmount": "", "orderID": "", "status": "", "success": False, "takingAmount": ""}
    )
    rejected = normalize_order_response(raw)
    assert not rejected.ok and rejected.code == "not_enough_balance"


async def test_sell_without_shares_and_buy_beyond_pusd_are_refused_with_a_reason(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.fund(ADDRESS, pusd="3")
    buy = await ex.submit(intent(rig.sim, "buy", price="0.50", size="10"))  # $5 > $3
    assert buy.status is OrderStatus.REJECTED and "pUSD (BUY)" in (buy.reason or "")
    assert "balance: 3000000, order amount: 5000000" in (buy.reason or "")
    assert rig.sim.open_orders() == []


def test_sim_refuses_a_sell_of_shares_never_held(sim: SimServer) -> None:
    t = SimTrader(sim, HARDHAT_KEYS[1])
    try:
        m = sim.current_market()
        up = m["token_ids"][0]
        refused = t.post_order(up, "SELL", Decimal("0.99"), Decimal("5"))
        assert refused.status_code == 400
        assert refused.json()["error"].startswith("not enough balance / allowance")
        sim.split(t.address, m["condition_id"], 5)
        ok = t.post_order(up, "SELL", Decimal("0.99"), Decimal("5"))
        assert ok.status_code == 200 and ok.json()["status"] == "live"
        again = t.post_order(up, "SELL", Decimal("0.98"), Decimal("5"))  # the 5 are locked by the open order
        assert again.status_code == 400 and "not enough balance" in again.json()["error"]
    finally:
        t.close()


def test_balance_allowance_follows_fills_and_parses_with_the_sdk(sim: SimServer) -> None:
    t = SimTrader(sim, HARDHAT_KEYS[2])
    try:
        up = sim.current_market()["token_ids"][0]
        start = BalanceAllowance.model_validate(t.get("/balance-allowance", asset_type="COLLATERAL").json())
        assert start.balance == 100_000 * 10**6 and all(v == 2**256 - 1 for v in start.allowances.values())
        r = t.post_order(up, "BUY", Decimal("0.99"), amount=Decimal("10"), order_type="FOK").json()
        assert r["status"] == "matched"
        cash = BalanceAllowance.model_validate(t.get("/balance-allowance", asset_type="COLLATERAL").json())
        held = BalanceAllowance.model_validate(
            t.get("/balance-allowance", asset_type="CONDITIONAL", token_id=up).json()
        )
        assert held.balance == int(Decimal(r["takingAmount"]) * 10**6)
        assert cash.balance < start.balance - int(Decimal(r["makingAmount"]) * 10**6) + 1
        assert t.get("/balance-allowance/update", asset_type="COLLATERAL").status_code == 200
        assert t.get("/balance-allowance", asset_type="NOPE").status_code == 400
    finally:
        t.close()


async def test_venue_cancel_for_balance_is_recorded_with_its_reason(rig: Rig) -> None:  # noqa: F811
    ex = (await rig.executor(dry_run=False)).executor
    resting = await ex.submit(intent(rig.sim, "r", price="0.03"))
    assert resting.status is OrderStatus.LIVE
    rig.sim.fund(ADDRESS, pusd="0")  # the wallet's pUSD left: the venue cancels what it no longer covers
    assert rig.sim.open_orders() == []
    assert await ex.reconcile() == {"cancelled": 1}
    events = rig.store.order_events(resting.key)
    assert "balance no longer covers" in events[-1].detail


# ------------------------------------------------------------------------------------ 9. API keys


async def test_derive_failure_falls_back_to_create_and_both_failing_is_clear(sim: SimServer, tmp_path: Path) -> None:
    settings = settings_for(sim, f"sqlite:///{tmp_path / 'x.db'}")
    sim.set_faults(api_key_derive_fail=1)
    venue = build_venue(settings, clock=sim.now, retry=FAST, timeout=2.0)
    try:
        trading = await venue.trading()  # derive 400 "Could not derive api key!" → create
        assert trading.creds is not None and trading.creds.api_key == sim.creds(ADDRESS)["apiKey"]
    finally:
        await venue.aclose()
    sim.set_faults(api_key_derive_fail=1, api_key_create_fail=1)
    venue = build_venue(settings, clock=sim.now, retry=FAST, timeout=2.0)
    try:
        with pytest.raises(VenueError) as e:
            await venue.trading()
        assert "Could not create api key" in e.value.message and e.value.status == 400
    finally:
        await venue.aclose()


def test_api_key_list_and_delete(sim: SimServer) -> None:
    t = SimTrader(sim, HARDHAT_KEYS[0])
    try:
        from polymarket._internal.actions.auth import parse_api_keys_response

        assert t.creds["apiKey"] in parse_api_keys_response(t.get("/auth/api-keys").json())
        gone = t.request("DELETE", "/auth/api-key")
        assert gone.status_code == 200 and gone.json() == "OK"
        assert t.get("/auth/api-keys").status_code == 401  # the key is revoked
        assert sim.set_faults(api_key_derive_fail=1)["api_key_derive_fail"] == 1
    finally:
        t.close()


async def test_user_channel_sees_venue_cancel_reason(rig: Rig) -> None:  # noqa: F811
    """The plain (stream) status of a balance cancel is what the REST reconcile also reads."""
    ex = (await rig.executor(dry_run=False)).executor
    resting = await ex.submit(intent(rig.sim, "u", price="0.04", side=Side.BUY))
    stream = rig.venue.user_stream()
    got: list[str] = []

    async def read() -> None:
        from pmbot.polymarket.models import UserOrderEvent

        async for ev in stream:
            if isinstance(ev, UserOrderEvent) and ev.order_id == resting.venue_order_id:
                got.append(ev.status)
                return

    task = asyncio.create_task(read())
    try:
        async with asyncio.timeout(10):
            while not stream.connected:
                await asyncio.sleep(0.01)
            rig.sim.fund(ADDRESS, pusd="0")
            await task
        assert got == ["CANCELED_NOT_ENOUGH_BALANCE"]
    finally:
        await stream.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_sim_trade_failing_on_chain_is_reported_failed_and_undone(sim: SimServer) -> None:
    """Fault trade_fail: the match reverts on-chain; REST says TRADE_STATUS_FAILED, the stream FAILED,
    no OrderFilled log is emitted and the balances are back to before the match."""
    t = SimTrader(sim, HARDHAT_KEYS[2])
    try:
        up = sim.current_market()["token_ids"][0]
        before = t.get("/balance-allowance", asset_type="COLLATERAL").json()["balance"]
        sim.set_faults(trade_fail=1)
        r = t.post_order(up, "BUY", Decimal("0.99"), amount=Decimal(5), order_type="FOK").json()
        assert r["status"] == "matched"
        sim.advance(3)
        (row,) = t.get("/data/trades").json()["data"]
        assert row["status"] == "TRADE_STATUS_FAILED" and rest.user_trade(row).status == "FAILED"
        assert ClobTrade.model_validate(row).status == "FAILED"
        assert [lg for lg in sim.chain_logs() if lg["transactionHash"] == row["transaction_hash"]] == []
        assert t.get("/balance-allowance", asset_type="COLLATERAL").json()["balance"] == before
        held = t.get("/balance-allowance", asset_type="CONDITIONAL", token_id=up).json()["balance"]
        assert held == "0"
    finally:
        t.close()
