"""The sim's /rpc endpoint with web3.py itself: chain id, and OrderFilled logs of the whale's fills
delivered to an eth_subscribe("logs") filter, encoded as notes §6.2 describes."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import httpx
from eth_abi import decode

from pmbot.sim.testing import SimServer

TOPIC0 = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"  # the built-in series trades V2 positions
DATA_TYPES = ["uint8", "uint256", "uint256", "uint256", "uint256", "bytes32", "bytes32"]


def pad32(address: str) -> str:
    return "0x" + "0" * 24 + address.lower()[2:]


async def test_web3_log_subscription_receives_the_whales_order_filled(sim: SimServer) -> None:
    from web3 import AsyncWeb3, WebSocketProvider

    whale = sim.whale_address
    async with AsyncWeb3(WebSocketProvider(sim.env()["PMBOT_RPC_WS_URL"])) as w3:
        assert await w3.eth.chain_id == 137
        assert await w3.eth.block_number > 0
        sub_id = await w3.eth.subscribe(
            "logs",
            {"address": [EXCHANGE_V2, NEG_RISK_EXCHANGE_V2, EXCHANGE_V3], "topics": [TOPIC0, None, pad32(whale)]},
        )
        await asyncio.to_thread(sim.advance, 20)  # whale trades; logs follow 2 s later (MINED)
        received = []
        async for msg in w3.socket.process_subscriptions():
            received.append(msg)
            break
        assert await w3.eth.unsubscribe(sub_id) is True
    log = received[0]["result"]
    assert received[0]["subscription"] == sub_id
    assert log["address"] == EXCHANGE_V3 and log["removed"] is False
    topics = [t.to_0x_hex() if hasattr(t, "to_0x_hex") else t for t in log["topics"]]
    assert topics[0] == TOPIC0 and topics[2] == pad32(whale) and len(topics) == 4
    data = bytes(log["data"])
    assert len(data) == 7 * 32
    side, token_id, maker_amt, taker_amt, fee, builder, metadata = decode(DATA_TYPES, data)
    assert builder == metadata == bytes(32)
    cur = sim.current_market()
    assert str(token_id) in cur["token_ids"]
    # The same fill is visible in the Data API: shares = takerAmount for a BUY (makerAmount for a SELL).
    rows = httpx.get(f"{sim.url}/data-api/trades", params={"user": whale}).json()
    shares = D(taker_amt if side == 0 else maker_amt) / 1_000_000
    assert any(D(str(r["size"])) == shares for r in rows)
    assert fee > 0  # the whale is the taker: it pays the crypto fee


def test_logs_follow_the_layout_and_both_sides_of_a_fill(sim: SimServer) -> None:
    sim.advance(20)
    logs = sim.chain_logs()
    assert logs, "whale fills are mined within 20 s"
    whale = pad32(sim.whale_address)
    for log in logs:
        assert log["topics"][0] == TOPIC0 and len(log["topics"]) == 4
        assert int(log["blockNumber"], 16) > 0 and log["transactionHash"].startswith("0x")
        assert len(bytes.fromhex(log["data"][2:])) == 224
    # Per trade: the maker order's fill names the taker, the taker order's fill names the exchange.
    taker_side = [lg for lg in logs if lg["topics"][2] == whale]
    assert taker_side and all(lg["topics"][3] == pad32(EXCHANGE_V3) for lg in taker_side)
    maker_side = [lg for lg in logs if lg["topics"][3] == whale]
    assert {lg["transactionHash"] for lg in maker_side} <= {lg["transactionHash"] for lg in taker_side}
