"""Stream payloads → domain events: the CLOB market and user channels, RTDS, and Polygon
`OrderFilled` logs. Every recorded sample in `../shared/polymarket-samples/` (ws_*, rtds_*) parses;
the quirks handled here are listed in its README.

Payload shapes that are the same as a REST row reuse the REST parser (`rest.book`, `rest.user_trade`,
`rest.data_trade`) so the two paths cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from pmbot.errors import VenueError
from pmbot.polymarket import identity
from pmbot.polymarket.models import (
    BestBidAsk,
    BookSnapshot,
    CryptoPrice,
    LastTrade,
    LevelChange,
    MarketResolved,
    NewMarket,
    PriceChange,
    Side,
    TickSizeChange,
    TradeSource,
    UserOrderEvent,
    UserTradeEvent,
    WalletTrade,
)
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.schemas.common import (
    dec,
    dec0,
    epoch_ms,
    opt_price01,
    opt_str,
    price01,
    req,
    shares,
    side,
    small_int,
)

MarketEvent = BookSnapshot | PriceChange | LastTrade | TickSizeChange | BestBidAsk | MarketResolved | NewMarket
UserEvent = UserOrderEvent | UserTradeEvent
RtdsEvent = WalletTrade | CryptoPrice

# V2 CTF exchanges (docs: resources/contracts); OrderFilled is emitted by both.
CTF_EXCHANGE_V2 = "0xE111180000d2663C0091e4f400237545B87B996B"
NEG_RISK_CTF_EXCHANGE_V2 = "0xe2222d279d744050d28e00520010520000310F59"
EXCHANGES_V2 = (CTF_EXCHANGE_V2, NEG_RISK_CTF_EXCHANGE_V2)
# Protocol V2 positions (binary, neg-risk and combos) settle on ExchangeV3, which emits the same
# OrderFilled event, same topic0 (docs: migrate/polymarket-v2/contract-integrations).
EXCHANGE_V3 = "0xe3333700cA9d93003F00f0F71f8515005F6c00Aa"
EXCHANGES = (*EXCHANGES_V2, EXCHANGE_V3)
# keccak("OrderFilled(bytes32,address,address,uint8,uint256,uint256,uint256,uint256,bytes32,bytes32)")
ORDER_FILLED_TOPIC = "0xd543adfd945773f1a62f74f0ee55a5e3b9b1a28262980ba90b1a89f2ea84d8ee"

_MICRO = Decimal(1_000_000)  # pUSD and CTF outcome tokens both have 6 decimals


def _obj(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise VenueError(f"{what}: expected an object, got {type(raw).__name__}")
    return raw


def messages(raw: Any) -> list[Any]:
    """The CLOB channels send one JSON object or a JSON array of them (the initial book dump)."""
    return list(raw) if isinstance(raw, list) else [raw]


def _ts(o: Mapping[str, Any]) -> int:
    return epoch_ms(o.get("timestamp")) or 0


# ------------------------------------------------------------------------------------ market channel


_MEMO_MAX = 20_000  # distinct texts per memo: prices are a few hundred, sizes churn; cleared when full


class _Memo:
    """`check(value, what)` remembered per wire text. The market channel repeats the same few hundred
    prices and sizes in every `price_change` (≈ 14 entries × 4 numbers, for every market every second),
    and reading one with its checks costs far more than a dict lookup. Only texts that passed are kept
    (a bad one raises each time, with its message); Decimals are immutable, so sharing them is safe.
    Hot callers look `known` up themselves and call `read` on a miss (a call per number is not free)."""

    __slots__ = ("check", "known")

    def __init__(self, check: Callable[[Any, str], Any]) -> None:
        self.check = check
        self.known: dict[Any, Any] = {}  # str keys only (read); Any: looked up with whatever the wire has

    def read(self, value: Any, what: str) -> Any:
        try:
            return self.known[value]
        except (KeyError, TypeError):  # TypeError: an unhashable value, which `check` refuses properly
            pass
        d = self.check(value, what)
        if type(value) is str:
            if len(self.known) >= _MEMO_MAX:
                self.known.clear()
            self.known[value] = d
        return d


_PRICE = _Memo(price01)
_OPT_PRICE = _Memo(opt_price01)
_ZERO = Decimal(0)


def _level_size(value: Any, what: str) -> Decimal:
    """A level's new total (0 removes the level): `shares(allow_zero=True)`, with a fast path for what the
    venue sends, a plain decimal text. Sizes churn (every change carries a new one, so a memo misses
    about half the time): at most 10 integer digits is below MAX_SHARES, at most 13 decimals inside the
    exponent bound, no sign is not negative; anything else takes the full check."""
    if type(value) is str and 0 < len(value) <= 24 and value.isascii():
        head, dot, tail = value.partition(".")
        if head.isdigit() and len(head) <= 10 and (not dot or tail.isdigit()):
            d = Decimal(value)
            return d if d else _ZERO
    return shares(value, what, allow_zero=True)


_LEVEL_SIZE = _Memo(_level_size)
_PRICES, _OPT_PRICES, _LEVEL_SIZES = _PRICE.known, _OPT_PRICE.known, _LEVEL_SIZE.known
_SIDES: dict[Any, Side] = {"BUY": Side.BUY, "SELL": Side.SELL}


def level_change(o: Mapping[str, Any], what: str) -> LevelChange:
    get = o.get
    token = get("asset_id")
    if token is None or token == "":
        raise VenueError(f"{what}: missing 'asset_id'")
    raw = get("price")
    if raw is None or raw == "":
        raise VenueError(f"{what}: missing 'price'")
    # The memo lookups are spelled out: this runs for every entry of every price_change.
    try:
        price = _PRICES[raw]
    except (KeyError, TypeError):
        price = _PRICE.read(raw, what)
    raw = get("size")
    try:
        size = _LEVEL_SIZES[raw]
    except (KeyError, TypeError):
        size = _LEVEL_SIZE.read(raw, what)
    raw = get("best_bid")
    try:
        best_bid = _OPT_PRICES[raw]
    except (KeyError, TypeError):
        best_bid = _OPT_PRICE.read(raw, what)
    raw = get("best_ask")
    try:
        best_ask = _OPT_PRICES[raw]
    except (KeyError, TypeError):
        best_ask = _OPT_PRICE.read(raw, what)
    raw = get("side")
    try:
        side_ = _SIDES[raw]
    except (KeyError, TypeError):
        side_ = side(raw)
    return LevelChange(
        token if type(token) is str else str(token),
        side_,
        price,
        size,
        best_bid,
        best_ask,
        str(get("hash") or ""),
    )


def price_change(o: Mapping[str, Any]) -> PriceChange:
    """Current format: `price_changes[]` (YES and NO legs in one message). Legacy 2024 format: one
    flat change with `asset_id/price/side/size/hash` at the top level."""
    rows = o.get("price_changes")
    if isinstance(rows, list):
        what = "price_change entry"
        # `type(r) is dict` first: what json gives, and an ABC isinstance per entry is not free
        changes = tuple([level_change(r if type(r) is dict else _obj(r, what), what) for r in rows])
    else:
        changes = (level_change(o, "price_change"),)
    return PriceChange(market=str(o.get("market") or ""), changes=changes, timestamp_ms=_ts(o))


def market_event(raw: Any) -> MarketEvent | None:
    """One market-channel message; None for types we do not use (`new_market`, unknown ones)."""
    o = _obj(raw, "market message")
    kind = o.get("event_type")
    if kind == "book":
        return BookSnapshot(book=rest.book(o))
    if kind == "price_change":
        return price_change(o)
    if kind == "last_trade_price":
        return LastTrade(
            market=str(o.get("market") or ""),
            token_id=str(req(o, "asset_id", kind)),
            price=price01(req(o, "price", kind), kind),
            size=shares(o.get("size"), kind, allow_zero=True),
            side=side(o.get("side")),
            timestamp_ms=_ts(o),
            fee_rate_bps=small_int(o.get("fee_rate_bps"), f"{kind} fee_rate_bps", default=0),
            tx_hash=opt_str(o.get("transaction_hash")),
        )
    if kind == "tick_size_change":
        return TickSizeChange(
            market=str(o.get("market") or ""),
            token_id=str(req(o, "asset_id", kind)),
            old_tick_size=dec0(o.get("old_tick_size")),
            new_tick_size=_new_tick(req(o, "new_tick_size", kind)),
            timestamp_ms=_ts(o),
        )
    if kind == "best_bid_ask":
        return BestBidAsk(
            market=str(o.get("market") or ""),
            token_id=str(req(o, "asset_id", kind)),
            best_bid=_OPT_PRICE.read(o.get("best_bid"), kind),
            best_ask=_OPT_PRICE.read(o.get("best_ask"), kind),
            timestamp_ms=_ts(o),
        )
    if kind == "market_resolved":
        return MarketResolved(
            market=str(o.get("market") or ""),
            winning_token_id=str(req(o, "winning_asset_id", kind)),
            winning_outcome=opt_str(o.get("winning_outcome")),
            timestamp_ms=_ts(o),
            token_ids=tuple(str(t) for t in o.get("assets_ids") or ()),
        )
    if kind == "new_market":  # docs example docs_examples/ws_market_new_market.json (not recorded)
        tokens = o.get("assets_ids") or o.get("clob_token_ids") or ()
        outcomes = o.get("outcomes") or ()
        tags = o.get("tags") or ()
        tick = dec(o.get("order_price_min_tick_size"))
        cid = opt_str(o.get("market") or o.get("condition_id"))
        if cid is None:
            return None  # nothing to discover without a condition id
        return NewMarket(
            market=cid,
            token_ids=tuple(str(t) for t in tokens) if isinstance(tokens, list) else (),
            outcomes=tuple(str(x) for x in outcomes) if isinstance(outcomes, list) else (),
            timestamp_ms=_ts(o),
            slug=opt_str(o.get("slug")),
            question=opt_str(o.get("question")),
            gamma_id=opt_str(o.get("id")),
            tick_size=tick if tick is not None and 0 < tick < 1 else None,
            tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        )
    return None


def market_events(raw: Any) -> list[MarketEvent]:
    """A whole frame (object or array). Strict: the first bad message raises `VenueError`; the stream
    parses frame elements one by one instead so one bad element does not hide the others."""
    return [ev for m in messages(raw) if (ev := market_event(m)) is not None]


def _new_tick(value: Any) -> Decimal:
    """The tick a market changed to: it reaches the signer and the price checks, so it must be sane."""
    tick = dec(value)
    if tick is None or not 0 < tick < 1:
        raise VenueError(f"tick_size_change: tick size {str(value)[:30]!r} is not between 0 and 1")
    return tick


# -------------------------------------------------------------------------------------- user channel


def user_order(raw: Any) -> UserOrderEvent:
    """`order` messages. Quirks: a venue-killed FOK has status `CANCELED_<reason>` (kept verbatim),
    `size_matched`/`created_at`/`outcome` can be "", `created_at` is seconds in some captures and ms
    in others, `associate_trades` is null or a list."""
    o = _obj(raw, "order message")
    trades = o.get("associate_trades") or ()
    maker = opt_str(o.get("maker_address"))
    return UserOrderEvent(
        order_id=str(req(o, "id", "order message")),
        type=str(o.get("type") or "").upper(),
        status=str(o.get("status") or "").removeprefix("ORDER_STATUS_"),
        market=str(o.get("market") or ""),
        token_id=str(req(o, "asset_id", "order message")),
        side=side(o.get("side")),
        price=price01(o.get("price"), "order message"),
        original_size=shares(o.get("original_size"), "order message", allow_zero=True),
        size_matched=shares(o.get("size_matched"), "order message", allow_zero=True),
        timestamp_ms=_ts(o),
        order_type=opt_str(o.get("order_type")),
        outcome=opt_str(o.get("outcome")),
        created_ms=epoch_ms(o.get("created_at")),
        maker_address=maker.lower() if maker else None,
        associate_trades=tuple(str(t) for t in trades) if isinstance(trades, list) else (),
    )


maker_order_fill = rest.maker_order_fill  # one parser for the REST row and the user-channel message


def user_trade(raw: Any) -> UserTradeEvent:
    """`trade` messages: the same row as REST /data/trades (`match_time`, or `matchtime` in the docs
    example), plus `maker_orders[]` details and a `timestamp` that is ms, or seconds in some files."""
    o = _obj(raw, "trade message")
    return UserTradeEvent(
        trade=rest.user_trade(o),
        timestamp_ms=_ts(o),
        maker_orders=tuple(maker_order_fill(m) for m in o.get("maker_orders") or ()),
        owner=opt_str(o.get("owner")),
    )


_ORDER_TYPES = frozenset({"PLACEMENT", "UPDATE", "CANCELLATION"})


def user_event(raw: Any) -> UserEvent | None:
    """`event_type` says order or trade; one production report (ws_user_order_venue_cancel) has no
    `event_type`, so fall back to `type` (PLACEMENT/UPDATE/CANCELLATION → order, TRADE → trade)."""
    o = _obj(raw, "user message")
    kind = o.get("event_type")
    if not kind:
        t = str(o.get("type") or "").upper()
        kind = "order" if t in _ORDER_TYPES else "trade" if t == "TRADE" else None
    if kind == "order":
        return user_order(o)
    if kind == "trade":
        return user_trade(o)
    return None


def user_events(raw: Any) -> list[UserEvent]:
    return [ev for m in messages(raw) if (ev := user_event(m)) is not None]


# ---------------------------------------------------------------------------------------------- RTDS

# `activity` carries Data-API trade rows under these types; `orders_matched` is the older name.
RTDS_TRADE_TYPES = frozenset({"trades", "orders_matched"})


def rtds_wallet(payload: Any) -> str | None:
    """The trading wallet of an activity payload, lowercased (RTDS sends EIP-55 mixed case). Cheap, so
    the stream can drop the other traders' rows before parsing them."""
    if isinstance(payload, Mapping):
        w = payload.get("proxyWallet")
        if isinstance(w, str) and w:
            return w.lower()
    return None


def rtds_trade(payload: Any) -> WalletTrade:
    return rest.data_trade(payload, source=TradeSource.RTDS)


def crypto_prices(o: Mapping[str, Any]) -> list[CryptoPrice]:
    """`update` payloads are one `{symbol, timestamp, value}`; the first message after a filtered
    subscribe (`type:"subscribe"`) is `{symbol, data:[{timestamp, value}, …]}` (a ~2 min backfill).
    `value` is a JSON number: `dec` goes through str(), so 61035.86 stays exactly 61035.86.
    `full_accuracy_value` is not used: it is a decimal string on crypto_prices but E18 fixed point on
    the TWAP topics."""
    topic = str(req(o, "topic", "rtds message"))
    p = _obj(o.get("payload"), f"{topic} payload")
    symbol = str(req(p, "symbol", f"{topic} payload"))
    rows = p["data"] if isinstance(p.get("data"), list) else [p]
    out = []
    for r in rows:
        row = _obj(r, f"{topic} row")
        out.append(
            CryptoPrice(
                topic=topic,
                symbol=symbol,
                value=dec0(req(row, "value", f"{topic} row")),
                timestamp_ms=epoch_ms(row.get("timestamp")) or _ts(o),
            )
        )
    return out


def rtds_events(raw: Any, wallets: Collection[str] | None = None) -> list[RtdsEvent]:
    """One RTDS message. `wallets` (lowercase) keeps only those traders' activity; None keeps all.
    Messages of other topics (comments, equity prices, errors) yield nothing."""
    o = _obj(raw, "rtds message")
    topic = o.get("topic")
    if topic == "activity" and o.get("type") in RTDS_TRADE_TYPES:
        payload = o.get("payload")
        if wallets is not None and rtds_wallet(payload) not in wallets:
            return []
        return [rtds_trade(payload)]
    if isinstance(topic, str) and topic.startswith("crypto_prices"):
        return list(crypto_prices(o))
    return []


# ------------------------------------------------------------------------------------- chain (logs)


def _bytes(value: Any, what: str) -> bytes:
    """web3 hands out HexBytes; raw JSON-RPC gives 0x strings. Accept both."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str):
        text = value[2:] if value[:2] in ("0x", "0X") else value
        try:
            return bytes.fromhex(text)
        except ValueError:
            raise VenueError(f"{what}: not hex: {value[:20]!r}") from None
    raise VenueError(f"{what}: expected hex, got {type(value).__name__}")


def hex_str(value: Any, what: str) -> str:
    """bytes or a hex string → lowercase 0x hex."""
    return "0x" + _bytes(value, what).hex()


def topic_address(topic: Any) -> str:
    """An indexed address topic (32 bytes, left-padded) → lowercase 0x address."""
    return "0x" + _bytes(topic, "address topic")[-20:].hex()


def address_topic(address: str) -> str:
    """A 0x address → its 32-byte topic form, for log filters."""
    raw = _bytes(address, "address")
    if len(raw) != 20:
        raise VenueError(f"not an address: {address!r}")
    return "0x" + raw.rjust(32, b"\0").hex()


def order_filled(log: Mapping[str, Any], wallets: Iterable[str], timestamp_ms: int) -> WalletTrade | None:
    """A V2 `OrderFilled` log → the fill of a followed wallet, or None when no followed wallet is
    the log's MAKER.

    topics = [topic0, orderHash, maker, taker]; data = 7 words: side, tokenId, makerAmountFilled,
    takerAmountFilled, fee, builder, metadata. The log describes the order of `maker`: `side` is that
    order's side and the amounts are in its terms (BUY → pays makerAmount pUSD for takerAmount shares;
    SELL → the reverse).

    A wallet that appears only as `taker` is the counterparty named in someone else's fill: in
    matchOrders each maker order's log names the taker order's maker, while the taker order gets its
    own log (maker = that wallet, taker = the exchange). So the wallet's own fill is always a log
    where it is the maker; reading the counterparty's log as ours would double-count it with a partial
    size, and with the wrong token and side when the match was a mint or merge across the two tokens.

    Logs carry no time, so the caller passes its clock; removed (re-orged) logs yield None."""
    if log.get("removed"):
        return None
    topics: Sequence[Any] = log.get("topics") or ()
    if len(topics) < 4 or hex_str(topics[0], "topic0") != ORDER_FILLED_TOPIC:
        raise VenueError("not a V2 OrderFilled log")
    data = _bytes(log.get("data") or b"", "log data")
    if len(data) < 7 * 32:
        raise VenueError(f"OrderFilled data is {len(data)} bytes, expected {7 * 32}")
    words = [int.from_bytes(data[i * 32 : (i + 1) * 32], "big") for i in range(7)]
    order_side, token_id, maker_amount, taker_amount = words[0], words[1], words[2], words[3]
    if order_side not in (0, 1):
        raise VenueError(f"OrderFilled side {order_side} is neither BUY (0) nor SELL (1)")
    maker = topic_address(topics[2])
    if maker not in {w.lower() for w in wallets}:
        return None
    position = identity.decode_position_id(token_id)
    if position is not None and position.module is identity.Module.COMBOS:
        return None  # a combos leg: not a market pmbot follows or trades
    side_ = Side.BUY if order_side == 0 else Side.SELL
    if side_ is Side.BUY:
        usdc, shares = Decimal(maker_amount) / _MICRO, Decimal(taker_amount) / _MICRO
    else:
        usdc, shares = Decimal(taker_amount) / _MICRO, Decimal(maker_amount) / _MICRO
    if not shares:
        raise VenueError("OrderFilled with zero shares")
    return WalletTrade(
        source=TradeSource.CHAIN,
        wallet=maker,
        token_id=str(token_id),
        side=side_,
        size=shares,
        price=usdc / shares,
        timestamp_ms=timestamp_ms,
        tx_hash=hex_str(req(log, "transactionHash", "OrderFilled log"), "transactionHash"),
        # A V2 position id names its market and outcome; a V1 token id needs a Gamma lookup.
        condition_id=position.condition_id if position else None,
        outcome_index=position.outcome_index if position else None,
    )


def compact_json(value: Any) -> str:
    """RTDS filters must be compact JSON ("no spaces", docs: chainlink-twap)."""
    return json.dumps(value, separators=(",", ":"))
