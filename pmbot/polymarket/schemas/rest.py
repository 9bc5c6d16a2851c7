"""REST payloads (CLOB, Gamma, Data API) → domain models. Quirks handled here are listed in
`../shared/polymarket-samples/README.md`; the tests parse every recorded sample."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pmbot.errors import VenueError
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
    as_bool,
    dec,
    dec0,
    epoch_ms,
    json_list,
    opt_side,
    opt_str,
    req,
    side,
)

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
    """Wire levels are best-LAST (bids ascending, asks descending); we hand them out best-first."""
    out = [BookLevel(price=dec0(req(lv, "price", what)), size=dec0(lv.get("size"))) for lv in raw or ()]
    out.reverse()
    return tuple(out)


def book(raw: Any) -> OrderBook:
    o = _obj(raw, "book")
    return OrderBook(
        token_id=str(req(o, "asset_id", "book")),
        market=str(o.get("market") or ""),
        bids=levels(o.get("bids"), "book bid"),
        asks=levels(o.get("asks"), "book ask"),
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        hash=str(o.get("hash") or ""),
        tick_size=dec(o.get("tick_size")),
        min_order_size=dec(o.get("min_order_size")),
        neg_risk=as_bool(o["neg_risk"]) if "neg_risk" in o else None,
        last_trade_price=dec(o.get("last_trade_price")),
    )


# ---------------------------------------------------------------------------------------- markets


def fee_schedule(o: Mapping[str, Any]) -> FeeSchedule | None:
    """Gamma `feeSchedule {rate, exponent, takerOnly}`; None when the market says nothing."""
    fs = o.get("feeSchedule")
    if isinstance(fs, Mapping):
        return FeeSchedule(
            rate=dec0(fs.get("rate")),
            exponent=int(fs.get("exponent") or 1),
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
    return FeeSchedule(rate=dec0(fd.get("r")), exponent=int(fd.get("e") or 1), taker_only=as_bool(fd.get("to", True)))


def gamma_market(raw: Any) -> Market:
    o = _obj(raw, "market")
    token_ids = [str(t) for t in json_list(o.get("clobTokenIds"))]
    names = [str(n) for n in json_list(o.get("outcomes"))]
    prices = [dec(p) for p in json_list(o.get("outcomePrices"))]
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
        condition_id=str(req(o, "conditionId", "market")),
        question=str(o.get("question") or ""),
        slug=str(o.get("slug") or ""),
        outcomes=outcomes,
        end_ms=epoch_ms(o.get("endDate")),
        start_ms=epoch_ms(o.get("eventStartTime") or event.get("startTime")),
        active=as_bool(o.get("active", True)),
        closed=as_bool(o.get("closed", False)),
        accepting_orders=as_bool(o.get("acceptingOrders", True)),
        neg_risk=as_bool(o.get("negRisk", False)),
        tick_size=dec(o.get("orderPriceMinTickSize")),
        min_order_size=dec(o.get("orderMinSize")),
        fees=fee_schedule(o),
        best_bid=dec(o.get("bestBid")),
        best_ask=dec(o.get("bestAsk")),
        event_slug=opt_str(event.get("slug")),
        series_slug=opt_str(series_slug),
        gamma_id=opt_str(o.get("id")),
    )


def gamma_markets(raw: Any) -> list[Market]:
    return [gamma_market(m) for m in _rows(raw, "markets")]


# ------------------------------------------------------------------------------------------ people


def profile(raw: Any) -> Profile:
    o = _obj(raw, "profile")
    return Profile(
        proxy_wallet=str(req(o, "proxyWallet", "profile")).lower(),
        name=opt_str(o.get("name")),
        pseudonym=opt_str(o.get("pseudonym")),
        bio=opt_str(o.get("bio")),
    )


def search_profiles(raw: Any) -> list[Profile]:
    o = _obj(raw, "public-search")
    return [profile(p) for p in o.get("profiles") or () if isinstance(p, Mapping) and p.get("proxyWallet")]


def activity(raw: Any) -> Activity:
    o = _obj(raw, "activity")
    return Activity(
        wallet=str(req(o, "proxyWallet", "activity")).lower(),
        type=str(o.get("type") or "TRADE"),
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        condition_id=opt_str(o.get("conditionId")),
        token_id=opt_str(o.get("asset")),
        side=opt_side(o.get("side")),
        size=dec0(o.get("size")),
        usdc_size=dec0(o.get("usdcSize")),
        price=dec0(o.get("price")),
        outcome=opt_str(o.get("outcome")),
        title=opt_str(o.get("title")),
        slug=opt_str(o.get("slug")),
        tx_hash=opt_str(o.get("transactionHash")),
        name=opt_str(o.get("name")),
    )


def data_trade(raw: Any, source: TradeSource = TradeSource.DATA_API) -> WalletTrade:
    """A Data API /trades row; RTDS `activity/trades` payloads have the same shape."""
    o = _obj(raw, "trade")
    return WalletTrade(
        source=source,
        wallet=str(req(o, "proxyWallet", "trade")).lower(),
        token_id=str(req(o, "asset", "trade")),
        side=side(o.get("side")),
        size=dec0(o.get("size")),
        price=dec0(o.get("price")),
        timestamp_ms=epoch_ms(o.get("timestamp")) or 0,
        tx_hash=str(o.get("transactionHash") or ""),
        condition_id=opt_str(o.get("conditionId")),
        outcome=opt_str(o.get("outcome")),
        slug=opt_str(o.get("slug")),
        name=opt_str(o.get("name")),
    )


def data_position(raw: Any) -> DataPosition:
    o = _obj(raw, "position")
    return DataPosition(
        wallet=str(req(o, "proxyWallet", "position")).lower(),
        token_id=str(req(o, "asset", "position")),
        condition_id=str(o.get("conditionId") or ""),
        size=dec0(o.get("size")),
        avg_price=dec0(o.get("avgPrice")),
        current_price=dec0(o.get("curPrice")),
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
    if _is_fixed(value) or (fixed and str(value).isdigit()):
        return d / _MICRO
    return d


def order_ack(raw: Any) -> OrderAck:
    o = _obj(raw, "order response")
    error = str(o.get("errorMsg") or o.get("error") or "")
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
    return amount(value, fixed=fixed) or Decimal(0)


def open_order(raw: Any) -> OpenOrder:
    o = _obj(raw, "order")
    return OpenOrder(
        order_id=str(req(o, "id", "order")),
        status=str(o.get("status") or "").upper(),
        market=str(o.get("market") or ""),
        token_id=str(o.get("asset_id") or ""),
        side=side(o.get("side")),
        price=dec0(o.get("price")),
        # an order is at least the 5-share minimum, so its original size shows the row's form (7+ digits
        # in fixed point); its matched size, which can be under a share, follows that form
        original_size=_size(o.get("original_size")),
        size_matched=_size(o.get("size_matched"), fixed=_is_fixed(o.get("original_size"))),
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
        size=dec0(o.get("size")),
        price=dec0(o.get("price")),
        status=str(o.get("status") or "").upper(),
        match_ms=epoch_ms(o.get("match_time") or o.get("matchtime")),
        trader_side=opt_str(o.get("trader_side")),
        maker_order_ids=tuple(str(m.get("order_id")) for m in makers if isinstance(m, Mapping)),
        fee_rate_bps=int(dec0(fee)) if fee not in (None, "") else 0,
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
        matched_amount=dec0(o.get("matched_amount")),
        price=dec0(o.get("price")),
        maker_address=maker.lower() if maker else None,
        outcome=opt_str(o.get("outcome")),
        side=opt_side(o.get("side")),
        fee_rate_bps=int(dec0(o.get("fee_rate_bps"))),
    )


def cancel_result(raw: Any) -> CancelResult:
    o = _obj(raw, "cancel response")
    not_canceled = o.get("not_canceled") or {}
    return CancelResult(
        canceled=tuple(str(i) for i in o.get("canceled") or ()),
        not_canceled={str(k): str(v) for k, v in not_canceled.items()} if isinstance(not_canceled, Mapping) else {},
    )


def page(raw: Any, what: str) -> tuple[list[Any], str | None]:
    """CLOB cursor pages: `{data, next_cursor}`; "LTE=" (base64 "-1") marks the end."""
    o = _obj(raw, what)
    cursor = o.get("next_cursor")
    rows = o.get("data") or []
    return list(rows), (None if cursor in (None, "", "LTE=") else str(cursor))


def clob_market(raw: Any) -> Market:
    """CLOB `/markets/{condition_id}` (snake_case; tokens carry outcome, price and winner)."""
    o = _obj(raw, "clob market")
    tokens = [t for t in o.get("tokens") or () if isinstance(t, Mapping) and t.get("token_id")]
    return Market(
        condition_id=str(req(o, "condition_id", "clob market")),
        question=str(o.get("question") or ""),
        slug=str(o.get("market_slug") or ""),
        outcomes=tuple(Outcome(str(t["token_id"]), str(t.get("outcome") or ""), dec(t.get("price"))) for t in tokens),
        end_ms=epoch_ms(o.get("end_date_iso")),
        start_ms=epoch_ms(o.get("game_start_time")),
        active=as_bool(o.get("active", True)),
        closed=as_bool(o.get("closed", False)),
        accepting_orders=as_bool(o.get("accepting_orders", True)),
        neg_risk=as_bool(o.get("neg_risk", False)),
        tick_size=dec(o.get("minimum_tick_size")),
        min_order_size=dec(o.get("minimum_order_size")),
    )
