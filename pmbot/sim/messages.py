"""Wire shapes of everything the sim pushes or lists about orders and trades (user channel, market
channel trade events, /data rows, Data API rows, RTDS payloads, OrderFilled logs).

Key sets and string-vs-number choices follow the samples in /work/shared/polymarket-samples.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from eth_utils import to_checksum_address

from pmbot.sim import wire
from pmbot.sim.engine import Order, Trade
from pmbot.sim.markets import ICON

ORDER_FILLED_TOPIC = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"
MICRO = Decimal(1_000_000)
REST_ORDER_PREFIX, REST_TRADE_PREFIX = "ORDER_STATUS_", "TRADE_STATUS_"


def order_row(o: Order) -> dict[str, Any]:
    """GET /data/orders item and GET /data/order/{id}. REST statuses are the venue's raw constants
    (`ORDER_STATUS_LIVE`); only the user channel sends the plain value (SDK models/clob/account.py)."""
    return {
        "id": o.id,
        "status": REST_ORDER_PREFIX + o.status,
        "owner": o.owner,
        "maker_address": o.maker_address,
        "market": o.market.condition_id,
        "asset_id": o.token_id,
        "side": o.side,
        "original_size": wire.dstr(o.original_size),
        "size_matched": wire.dstr(o.size_matched),
        "price": wire.dstr(o.price),
        "outcome": o.market.outcomes[o.index],
        "expiration": str(o.expiration),
        "order_type": o.order_type,
        "associate_trades": list(o.trade_ids),
        "created_at": o.created_at,
    }


def user_order_message(o: Order, kind: str, now_ms: int) -> dict[str, Any]:
    """User-channel `order` (PLACEMENT / UPDATE / CANCELLATION), as ws_user_order_placement.json."""
    if kind == "KILLED":  # venue-killed FOK: the anonymised production report's quirks
        return {
            "id": o.id,
            "owner": o.owner,
            "market": o.market.condition_id,
            "asset_id": o.token_id,
            "side": o.side,
            "order_owner": o.owner,
            "original_size": wire.dstr(o.original_size),
            "size_matched": "",
            "price": wire.dstr(o.price),
            "associate_trades": [],
            "outcome": "",
            "type": "CANCELLATION",
            "created_at": "",
            "expiration": "0",
            "order_type": o.order_type,
            "status": o.status,
            "maker_address": o.maker_address,
            "timestamp": str(now_ms),
            "event_type": "order",
        }
    return {
        "asset_id": o.token_id,
        "associate_trades": list(o.trade_ids) or None,
        "created_at": str(o.created_at),
        "event_type": "order",
        "expiration": str(o.expiration),
        "id": o.id,
        "maker_address": o.maker_address,
        "market": o.market.condition_id,
        "order_owner": o.owner,
        "order_type": o.order_type,
        "original_size": wire.dstr(o.original_size),
        "outcome": o.market.outcomes[o.index],
        "owner": o.owner,
        "price": wire.dstr(o.price),
        "side": o.side,
        "size_matched": wire.dstr(o.size_matched),
        "status": o.status,
        "timestamp": str(now_ms),
        "type": kind,
    }


def _maker_entry(t: Trade) -> dict[str, Any]:
    """One maker fill of a trade group (`maker_orders[]` item)."""
    mk = t.maker
    return {
        "order_id": mk.id,
        "owner": mk.owner,
        "maker_address": mk.maker_address,
        "matched_amount": wire.dstr(t.size),
        "price": wire.dstr(t.maker_price),
        "fee_rate_bps": "0",
        "asset_id": mk.token_id,
        "outcome": mk.market.outcomes[mk.index],
        "side": mk.side,
    }


def trade_row(t: Trade, viewer_owner: str) -> dict[str, Any]:
    """GET /data/trades item (clob_data_trade_row_2024.json) seen by `viewer_owner`: one row per taker
    trade with every maker order it matched, whichever side the viewer was on."""
    t = t.head
    members = t.group or [t]
    is_taker = t.taker.owner == viewer_owner
    tk = t.taker
    mine = next((g.maker for g in members if g.maker.owner == viewer_owner), t.maker)
    size, fee = t.group_size, t.group_fee
    notional = size * t.price
    fee_bps = int((fee / notional * 10000).to_integral_value(ROUND_HALF_UP)) if notional else 0
    return {
        "id": t.id,
        "taker_order_id": tk.id,
        "market": tk.market.condition_id,
        "asset_id": tk.token_id,
        "side": tk.side,
        "size": wire.dstr(size),
        "fee_rate_bps": str(fee_bps),
        "price": wire.dstr(t.price),
        "status": REST_TRADE_PREFIX + t.status,  # the user channel overrides it with the plain value
        "match_time": str(t.match_time),
        "last_update": str(t.last_update),
        "outcome": tk.market.outcomes[tk.index],
        "bucket_index": 0,
        "owner": viewer_owner,
        "maker_address": tk.maker_address if is_taker else mine.maker_address,
        "transaction_hash": t.tx_hash,
        "maker_orders": [_maker_entry(g) for g in members],
        "trader_side": "TAKER" if is_taker else "MAKER",
    }


def user_trade_message(t: Trade, viewer_owner: str, now_ms: int) -> dict[str, Any]:
    """User-channel `trade` (ws_user_trade_taker_matched_2024.json + 2025's maker_orders[].side)."""
    row = trade_row(t, viewer_owner)
    return {
        "asset_id": row["asset_id"],
        "bucket_index": 0,
        "event_type": "trade",
        "fee_rate_bps": row["fee_rate_bps"],
        "id": t.public_id,
        "last_update": row["last_update"],
        "maker_address": row["maker_address"],
        "maker_orders": row["maker_orders"],
        "market": row["market"],
        "match_time": row["match_time"],
        "outcome": row["outcome"],
        "owner": viewer_owner,
        "price": row["price"],
        "side": row["side"],
        "size": row["size"],
        "status": t.head.status,
        "taker_order_id": t.taker.id,
        "timestamp": str(now_ms),
        "trade_owner": t.taker.owner,
        "trader_side": row["trader_side"],
        "transaction_hash": t.tx_hash,
        "type": "TRADE",
    }


def last_trade_price_message(t: Trade) -> dict[str, Any]:
    """Market-channel `last_trade_price` (ws_market_last_trade_price.json)."""
    return {
        "market": t.market.condition_id,
        "asset_id": t.taker.token_id,
        "price": wire.dstr(t.price),
        "size": wire.dstr(t.size),
        "fee_rate_bps": str(t.fee_rate_bps),
        "side": t.taker.side,
        "timestamp": str(t.match_time * 1000),
        "event_type": "last_trade_price",
        "transaction_hash": t.tx_hash,
    }


def activity_payload(
    o: Order, t: Trade, *, is_taker: bool, profile: dict[str, str], checksummed: bool
) -> dict[str, Any]:
    """One side of a fill as a Data API trade row / RTDS activity payload (numbers as JSON numbers)."""
    m = o.market
    price = t.price if is_taker else t.maker_price
    row: dict[str, Any] = {
        "proxyWallet": to_checksum_address(o.maker_address) if checksummed else o.maker_address.lower(),
        "side": o.side,
        "asset": o.token_id,
        "conditionId": m.condition_id,
        "size": wire.wire_number(t.size),
        "price": wire.wire_number(price),
        "timestamp": t.match_time,
        "title": m.question,
        "slug": m.slug,
        "icon": ICON,
        "eventSlug": m.slug,
        "outcome": m.outcomes[o.index],
        "outcomeIndex": o.index,
        "name": profile.get("name") or placeholder_name(o.maker_address),
        "pseudonym": profile.get("pseudonym", ""),
        "bio": profile.get("bio", ""),
        "profileImage": profile.get("profileImage", ""),
        "profileImageOptimized": profile.get("profileImage", ""),
        "transactionHash": t.tx_hash,
    }
    if checksummed:  # RTDS rows carry the fee and no profileImageOptimized
        del row["profileImageOptimized"]
        if is_taker and t.fee:
            row["fee"] = wire.wire_number(t.fee)
    return row


def placeholder_name(wallet: str) -> str:
    """What the Data API names a wallet without a username: `0x<Checksummed>-<ms>` (data_trades.json);
    the ms part is the account's creation time, here derived from the address."""
    return f"{to_checksum_address(wallet)}-{1_700_000_000_000 + int(wallet[-6:], 16) * 1000}"


def _word(n: int) -> str:
    return format(n, "064x")


def _addr_topic(address: str) -> str:
    return "0x" + "0" * 24 + address.lower().removeprefix("0x")


def order_filled_log(
    o: Order, t: Trade, *, counterparty: str, fee: Decimal, exchange: str, log_index: int
) -> dict[str, Any]:
    """An OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32) log
    for order `o`: topics [topic0, orderHash, maker, taker], data = side, tokenId, makerAmountFilled,
    takerAmountFilled, fee, builder, metadata (notes §6.2)."""
    price = t.price if o is t.taker else t.maker_price
    shares = int(t.size * MICRO)
    usdc = int((t.size * price * MICRO).to_integral_value())
    maker_amt, taker_amt = (usdc, shares) if o.side == "BUY" else (shares, usdc)
    data = "0x" + "".join(
        [
            _word(0 if o.side == "BUY" else 1),
            _word(int(o.token_id)),
            _word(maker_amt),
            _word(taker_amt),
            _word(int(fee * MICRO)),
            _word(0),
            _word(0),
        ]
    )
    block_hash = "0x" + format(t.block, "064x")
    return {
        "address": exchange,
        "topics": [ORDER_FILLED_TOPIC, o.id, _addr_topic(o.maker_address), _addr_topic(counterparty)],
        "data": data,
        "blockNumber": hex(t.block),
        "blockHash": block_hash,
        "transactionHash": t.tx_hash,
        "transactionIndex": "0x0",
        "logIndex": hex(log_index),
        "removed": False,
    }
