"""REST payloads (CLOB, Gamma, Data API) → domain models. Quirks handled here are listed in
`../shared/polymarket-samples/README.md`; the tests parse every recorded sample."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pmbot.errors import InputError, VenueError, scrub_venue_text
from pmbot.polymarket import identity
from pmbot.polymarket.models import (
    Activity,
    BookLevel,
    CancelResult,
    DataPosition,
    FeeSchedule,
    MakerOrderFill,
    Market,
    OpenOrder,
    OrderAck,
    OrderBook,
    Outcome,
    Profile,
    TradeSource,
    UserTrade,
    WalletTrade,
)
from pmbot.polymarket.schemas.common import (
    MAX_SHARES,
    ORDER_STATUS_PREFIX,
    TRADE_STATUS_PREFIX,
    as_bool,
    dec,
    dec0,
    epoch_ms,
    json_list,
    nonneg,
    opt_price01,
    opt_side,
    opt_str,
    price01,
    req,
    shares,
    side,
    small_int,
    venue_status,
)
from pmbot.polymarket.schemas.refusals import explain_refusal

_MICRO = Decimal(1_000_000)


def _obj(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise VenueError(f"{what}: expected an object, got {type(raw).__name__}")
    return raw


def _rows(raw: Any, what: str) -> list[Any]:
    """Bare arrays (Gamma, Data API) or `{data: [...]}` envelopes (CLOB paging)."""
    if isinstance(raw, Mapping) and isinstance(raw.get("data"), list):
        return list(raw["data"])
    if not isinstance(raw, list):
        raise VenueError(f"{what}: expected a list, got {type(raw).__name__}")
    return raw


# ------------------------------------------------------------------------------------------ books


def levels(raw: Any, what: str) -> tuple[BookLevel, ...]:
    """Wire levels are best-LAST (bids ascending, asks descending); we hand them out best-first.
    Every level is checked: 0 < price < 1, 0 < size (an ask at 0 would be a free fill on paper)."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise VenueError(f"{what}: expected a list of levels, got {type(raw).__name__}")
    out = []
    for lv in raw:
        lv = _obj(lv, what)
        out.append(BookLevel(price=price01(req(lv, "price", what), what), size=shares(lv.get("size"), what)))
    out.reverse()
    return tuple(out)


def book(raw: Any) -> OrderBook:
    o = _obj(raw, "book")
    bids, asks = levels(o.get("bids"), "book bid"), levels(o.get("asks"), "book ask")
    if bids and asks and bids[0].price >= asks[0].price:
        raise VenueError(f"book: crossed (best bid {bids[0].price} >= best ask {asks[0].price})")
    return OrderBook(
        token_id=str(req(o, "asset_id", "book")),
        market=str(o.get("market") or ""),
        bids=bids,
        asks=asks,
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        hash=str(o.get("hash") or ""),
        tick_size=_tick(o.get("tick_size"), "book"),
        min_order_size=dec(o.get("min_order_size")),
        neg_risk=as_bool(o["neg_risk"]) if "neg_risk" in o else None,
        last_trade_price=opt_price01(o.get("last_trade_price"), "book last trade"),
    )


def _tick(value: Any, what: str) -> Decimal | None:
    t = dec(value)
    if t is not None and not 0 < t < 1:
        raise VenueError(f"{what}: tick size {str(value)[:30]!r} is not between 0 and 1")
    return t


# ---------------------------------------------------------------------------------------- markets


def fee_schedule(o: Mapping[str, Any]) -> FeeSchedule | None:
    """Gamma `feeSchedule {rate, exponent, takerOnly}`; None when the market says nothing."""
    fs = o.get("feeSchedule")
    if isinstance(fs, Mapping):
        return FeeSchedule(
            rate=_fee_rate(fs.get("rate")),
            exponent=small_int(fs.get("exponent") or 1, "fee exponent", default=1, hi=10),
            taker_only=as_bool(fs.get("takerOnly", True)),
        )
    if "feesEnabled" in o and not as_bool(o.get("feesEnabled")):
        return FeeSchedule()
    return None


def clob_fee_schedule(raw: Any) -> FeeSchedule:
    """CLOB `/clob-markets/{condition_id}`: `fd {r, e, to}` (absent = no fee)."""
    fd = _obj(raw, "clob market info").get("fd")
    if not isinstance(fd, Mapping):
        return FeeSchedule()
    return FeeSchedule(
        rate=_fee_rate(fd.get("r")),
        exponent=small_int(fd.get("e") or 1, "fee exponent", default=1, hi=10),
        taker_only=as_bool(fd.get("to", True)),
    )


def _fee_rate(value: Any) -> Decimal:
    rate = dec0(value)
    if not 0 <= rate <= 1:
        raise VenueError(f"fee rate {str(value)[:30]!r} is not between 0 and 1")
    return rate


def gamma_market(raw: Any) -> Market:
    o = _obj(raw, "market")
    # Choose the ids by `version`, even when both fields are present (a V1 market may list
    # positionIds for combos; a V2 market's clobTokenIds, if any, are not what its book trades).
    position_ids = json_list(o.get("positionIds"))
    try:
        protocol = identity.market_protocol(o.get("version"), has_position_ids=bool(position_ids))
    except ValueError as e:
        raise VenueError(f"market {str(o.get('slug') or o.get('id') or '')[:80]}: {e}") from None
    raw_ids = position_ids if protocol is identity.Protocol.V2 else json_list(o.get("clobTokenIds"))
    token_ids = [_outcome_id(t, protocol) for t in raw_ids]
    names = [str(n) for n in json_list(o.get("outcomes"))]
    prices = [opt_price01(p, "outcome price") for p in json_list(o.get("outcomePrices"))]
    if len(names) < len(token_ids):
        names += [f"#{i}" for i in range(len(names), len(token_ids))]
    outcomes = tuple(
        Outcome(token_id=t, outcome=names[i], price=prices[i] if i < len(prices) else None)
        for i, t in enumerate(token_ids)
    )
    events = o.get("events") if isinstance(o.get("events"), list) else []
    event = events[0] if events and isinstance(events[0], Mapping) else {}
    series = event.get("series") if isinstance(event.get("series"), list) else []
    series_slug = o.get("seriesSlug") or (series[0].get("slug") if series and isinstance(series[0], Mapping) else None)
    return Market(
        condition_id=_condition_id(req(o, "conditionId", "market")),
        question=str(o.get("question") or ""),
        slug=str(o.get("slug") or ""),
        outcomes=outcomes,
        end_ms=epoch_ms(o.get("endDate")),
        start_ms=epoch_ms(o.get("eventStartTime") or event.get("startTime")),
        active=as_bool(o.get("active", True)),
        closed=as_bool(o.get("closed", False)),
        accepting_orders=_accepting(o, "acceptingOrders", "closed", "enableOrderBook"),
        neg_risk=as_bool(o.get("negRisk", False)),
        tick_size=_tick(o.get("orderPriceMinTickSize"), "market"),
        min_order_size=dec(o.get("orderMinSize")),
        fees=fee_schedule(o),
        best_bid=opt_price01(o.get("bestBid"), "market best bid"),
        best_ask=opt_price01(o.get("bestAsk"), "market best ask"),
        event_slug=opt_str(event.get("slug")),
        series_slug=opt_str(series_slug),
        gamma_id=opt_str(o.get("id")),
        description=str(o.get("description") or event.get("description") or ""),
        resolution_source=str(o.get("resolutionSource") or event.get("resolutionSource") or ""),
        price_to_beat=_price_to_beat(event),
        protocol=protocol,
    )


def gamma_closed_ms(raw: Any) -> int | None:
    """A Gamma market's `closedTime` ("2026-05-09 02:07:01+00", not ISO T) in epoch ms; None while open."""
    return epoch_ms(_obj(raw, "market").get("closedTime"))


def _price_to_beat(event: Mapping[str, Any]) -> Decimal | None:
    """`eventMetadata.priceToBeat` of an Up/Down event (absent before the window opens)."""
    meta = event.get("eventMetadata")
    if not isinstance(meta, Mapping):
        return None
    value = dec(meta.get("priceToBeat"))
    return value if value is not None and value.is_finite() and value > 0 else None


def _outcome_id(value: Any, protocol: identity.Protocol) -> str:
    text = str(value).strip()
    if not text.isdigit() or len(text) > 78 or int(text) > identity.UINT256_MAX:
        raise VenueError(f"market outcome id {text[:80]!r} is not a uint256 decimal")
    if protocol is identity.Protocol.V2 and identity.decode_position_id(text) is None:
        raise VenueError(f"market outcome id {identity.render_id(text)} is not a V2 position id")
    return text


def _condition_id(value: Any) -> str:
    """Gamma's 31-byte V2 condition ids become the 32-byte form every other API wants."""
    try:
        return identity.condition_id(str(value))
    except InputError:
        return str(value)  # recorded samples carry odd ids (e.g. placeholders); keep them as sent


def keyset_page(raw: Any, key: str) -> tuple[list[dict[str, Any]], str | None]:
    """Gamma keyset routes: `{markets|events: [...], next_cursor}`; no (or null) cursor at the end."""
    o = _obj(raw, f"{key} keyset page")
    rows = o.get(key)
    if not isinstance(rows, list):
        raise VenueError(f"{key} keyset page: expected a {key!r} array")
    cursor = o.get("next_cursor")
    if cursor is not None and (not isinstance(cursor, str) or not cursor or len(cursor) > 2000):
        raise VenueError(f"{key} keyset page: unreadable next_cursor")
    return [dict(_obj(r, key)) for r in rows], cursor


def _accepting(o: Mapping[str, Any], flag: str, closed: str, book: str) -> bool:
    """Whether the market takes orders. The venue's flag alone is not to be trusted: a closed, resolved
    market still says `accepting_orders: true` (recordings clob_market_closed_2026.json and
    gamma_market_closed_resolved.json), the CLOB one with `enable_order_book: false`."""
    if as_bool(o.get(closed, False)):
        return False
    if book in o and o[book] is not None and not as_bool(o[book]):
        return False
    return as_bool(o.get(flag, True))


def gamma_markets(raw: Any) -> list[Market]:
    return [gamma_market(m) for m in _rows(raw, "markets")]


# ------------------------------------------------------------------------------------------ people


def profile(raw: Any) -> Profile:
    o = _obj(raw, "profile")
    return Profile(
        proxy_wallet=str(req(o, "proxyWallet", "profile")).lower(),
        name=display_name(o.get("name")),
        pseudonym=opt_str(o.get("pseudonym")),
        bio=opt_str(o.get("bio")),
    )


def search_profiles(raw: Any) -> list[Profile]:
    o = _obj(raw, "public-search")
    return [profile(p) for p in o.get("profiles") or () if isinstance(p, Mapping) and p.get("proxyWallet")]


_PLACEHOLDER_NAME = re.compile(r"0x[0-9a-fA-F]{40}-\d{10,16}")


def display_name(value: Any) -> str | None:
    """A Data API `name`, or None for the placeholder the venue gives wallets without a username:
    `0x<Checksummed address>-<ms>` (recording data_trades.json). It is no name to show or to match."""
    text = opt_str(value)
    return None if text is None or _PLACEHOLDER_NAME.fullmatch(text) else text


def activity(raw: Any) -> Activity:
    o = _obj(raw, "activity")
    return Activity(
        wallet=str(req(o, "proxyWallet", "activity")).lower(),
        type=str(o.get("type") or "TRADE"),
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        condition_id=opt_str(o.get("conditionId")),
        token_id=opt_str(o.get("asset")),
        side=opt_side(o.get("side")),
        size=shares(o.get("size"), "activity", allow_zero=True),
        usdc_size=nonneg(o.get("usdcSize"), "activity usdc size"),
        price=opt_price01(o.get("price"), "activity") or Decimal(0),
        outcome=opt_str(o.get("outcome")),
        title=opt_str(o.get("title")),
        slug=opt_str(o.get("slug")),
        tx_hash=opt_str(o.get("transactionHash")),
        name=display_name(o.get("name")),
    )


def data_trade(raw: Any, source: TradeSource = TradeSource.DATA_API) -> WalletTrade:
    """A Data API /trades row; RTDS `activity/trades` payloads have the same shape."""
    o = _obj(raw, "trade")
    return WalletTrade(
        source=source,
        wallet=str(req(o, "proxyWallet", "trade")).lower(),
        token_id=str(req(o, "asset", "trade")),
        side=side(o.get("side")),
        size=shares(o.get("size"), "trade"),
        price=price01(o.get("price"), "trade"),
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        tx_hash=str(o.get("transactionHash") or ""),
        condition_id=opt_str(o.get("conditionId")),
        outcome=opt_str(o.get("outcome")),
        slug=opt_str(o.get("slug")),
        name=display_name(o.get("name")),
    )


def data_position(raw: Any) -> DataPosition:
    o = _obj(raw, "position")
    return DataPosition(
        wallet=str(req(o, "proxyWallet", "position")).lower(),
        token_id=str(req(o, "asset", "position")),
        condition_id=str(o.get("conditionId") or ""),
        size=shares(o.get("size"), "position", allow_zero=True),
        avg_price=opt_price01(o.get("avgPrice"), "position avg price") or Decimal(0),
        current_price=opt_price01(o.get("curPrice"), "position price") or Decimal(0),
        current_value=dec0(o.get("currentValue")),
        cash_pnl=dec0(o.get("cashPnl")),
        realized_pnl=dec0(o.get("realizedPnl")),
        outcome=opt_str(o.get("outcome")),
        title=opt_str(o.get("title")),
        slug=opt_str(o.get("slug")),
        redeemable=as_bool(o.get("redeemable", False)),
    )


# ----------------------------------------------------------------------------------------- trading


def _is_fixed(value: Any) -> bool:
    """A bare integer string of 7+ digits can only be 6-decimal fixed point: no 15-minute market
    trades a million shares in one order."""
    text = str(value) if value is not None else ""
    return text.isdigit() and len(text) >= 7


def amount(value: Any, *, fixed: bool = False) -> Decimal | None:
    """POST /order amounts come as "" (nothing matched), decimal strings ("2.140844") or, per the
    OpenAPI page, 6-decimal fixed-point integers ("100000000"). `fixed`: the answer's other amounts
    show it uses fixed point, so a short integer is fixed point too ("500000" is 0.5, not 500 000)."""
    d = dec(value)
    if d is None:
        return None
    if d < 0:
        raise VenueError(f"order amount {str(value)[:30]!r} is negative")
    if _is_fixed(value) or (fixed and str(value).isdigit()):
        return d / _MICRO
    return d


def order_ack(raw: Any) -> OrderAck:
    o = _obj(raw, "order response")
    error = explain_refusal(scrub_venue_text(str(o.get("errorMsg") or o.get("error") or ""), limit=300))
    order_id = str(o.get("orderID") or o.get("orderId") or "")
    success = as_bool(o.get("success", False))
    # One answer uses one form: if either amount is plainly fixed point, both are.
    fixed = _is_fixed(o.get("makingAmount")) or _is_fixed(o.get("takingAmount"))
    return OrderAck(
        # success:true with an errorMsg is NOT an accepted order (rs-clob-client issue 114).
        accepted=success and not error and bool(order_id),
        order_id=order_id,
        status=str(o.get("status") or "").lower(),
        making_amount=amount(o.get("makingAmount"), fixed=fixed),
        taking_amount=amount(o.get("takingAmount"), fixed=fixed),
        error=error,
        tx_hashes=tuple(str(h) for h in o.get("transactionsHashes") or o.get("transactionHashes") or ()),
        trade_ids=tuple(str(t) for t in o.get("tradeIDs") or ()),
    )


def _size(value: Any, *, fixed: bool = False) -> Decimal:
    # Open-order sizes: one docs version sends 6-decimal fixed point, the newer says "already
    # normalized". Same rule as amounts.
    size = amount(value, fixed=fixed) or Decimal(0)
    if size > MAX_SHARES:
        raise VenueError(f"order size {str(value)[:30]!r} is not sane")
    return size


def open_order(raw: Any) -> OpenOrder:
    o = _obj(raw, "order")
    # size_matched may exceed original_size: a market BUY signs USDC, and a better price buys more shares.
    original = _size(o.get("original_size"))
    matched = _size(o.get("size_matched"), fixed=_is_fixed(o.get("original_size")))
    return OpenOrder(
        order_id=str(req(o, "id", "order")),
        status=venue_status(o.get("status"), ORDER_STATUS_PREFIX),
        market=str(o.get("market") or ""),
        token_id=str(o.get("asset_id") or ""),
        side=side(o.get("side")),
        price=price01(o.get("price"), "order"),
        # an order is at least the 5-share minimum, so its original size shows the row's form (7+ digits
        # in fixed point); its matched size, which can be under a share, follows that form
        original_size=original,
        size_matched=matched,
        order_type=opt_str(o.get("order_type")),
        created_ms=epoch_ms(o.get("created_at")),
        outcome=opt_str(o.get("outcome")),
    )


def user_trade(raw: Any) -> UserTrade:
    """A /data/trades row (also the payload of a user-channel `trade` message)."""
    o = _obj(raw, "trade")
    makers = o.get("maker_orders") or ()
    fee = o.get("fee_rate_bps")
    return UserTrade(
        trade_id=str(req(o, "id", "trade")),
        taker_order_id=str(o.get("taker_order_id") or ""),
        market=str(o.get("market") or ""),
        token_id=str(o.get("asset_id") or ""),
        side=side(o.get("side")),
        size=shares(o.get("size"), "trade"),
        price=price01(o.get("price"), "trade"),
        status=venue_status(o.get("status"), TRADE_STATUS_PREFIX),
        match_ms=epoch_ms(o.get("match_time") or o.get("matchtime")),
        trader_side=opt_str(o.get("trader_side")),
        maker_order_ids=tuple(str(m.get("order_id")) for m in makers if isinstance(m, Mapping)),
        fee_rate_bps=small_int(fee, "trade fee_rate_bps", default=0),
        tx_hash=opt_str(o.get("transaction_hash")),
        outcome=opt_str(o.get("outcome")),
        maker_orders=tuple(maker_order_fill(m) for m in makers if isinstance(m, Mapping)),
    )


def maker_order_fill(raw: Any) -> MakerOrderFill:
    o = _obj(raw, "maker order")
    maker = opt_str(o.get("maker_address"))
    return MakerOrderFill(
        order_id=str(req(o, "order_id", "maker order")),
        owner=str(o.get("owner") or ""),
        token_id=str(o.get("asset_id") or ""),
        matched_amount=shares(o.get("matched_amount"), "maker order"),
        price=price01(o.get("price"), "maker order"),
        maker_address=maker.lower() if maker else None,
        outcome=opt_str(o.get("outcome")),
        side=opt_side(o.get("side")),
        fee_rate_bps=small_int(o.get("fee_rate_bps"), "maker order fee_rate_bps", default=0),
    )


def cancel_result(raw: Any) -> CancelResult:
    o = _obj(raw, "cancel response")
    not_canceled = o.get("not_canceled") or {}
    return CancelResult(
        canceled=tuple(str(i) for i in o.get("canceled") or ()),
        not_canceled=(
            {str(k): scrub_venue_text(str(v), limit=200) for k, v in not_canceled.items()}
            if isinstance(not_canceled, Mapping)
            else {}
        ),
    )


def page(raw: Any, what: str) -> tuple[list[Any], str | None]:
    """CLOB cursor pages: `{data, next_cursor}`; "LTE=" (base64 "-1") marks the end."""
    o = _obj(raw, what)
    cursor = o.get("next_cursor")
    rows = o.get("data") or []
    if not isinstance(rows, list) or not isinstance(cursor, str | None):
        raise VenueError(f"{what}: not a cursor page")
    return list(rows), (None if cursor in (None, "", "LTE=") else cursor[:200])


def clob_market(raw: Any) -> Market:
    """CLOB `/markets/{condition_id}` (snake_case; tokens carry outcome, price and winner)."""
    o = _obj(raw, "clob market")
    tokens = [t for t in o.get("tokens") or () if isinstance(t, Mapping) and t.get("token_id")]
    return Market(
        condition_id=str(req(o, "condition_id", "clob market")),
        question=str(o.get("question") or ""),
        slug=str(o.get("market_slug") or ""),
        outcomes=tuple(
            Outcome(
                str(t["token_id"]),
                str(t.get("outcome") or ""),
                opt_price01(t.get("price"), "token price"),
                winner=as_bool(t["winner"]) if t.get("winner") is not None else None,
            )
            for t in tokens
        ),
        end_ms=epoch_ms(o.get("end_date_iso")),
        start_ms=epoch_ms(o.get("game_start_time")),
        active=as_bool(o.get("active", True)),
        closed=as_bool(o.get("closed", False)),
        accepting_orders=_accepting(o, "accepting_orders", "closed", "enable_order_book"),
        neg_risk=as_bool(o.get("neg_risk", False)),
        tick_size=_tick(o.get("minimum_tick_size"), "clob market"),
        min_order_size=dec(o.get("minimum_order_size")),
    )
