"""The market model and its JSON shapes (Gamma market/event objects, CLOB market objects).

Shapes follow the recorded samples (`gamma_markets_by_slug.json`, `gamma_market.json`,
`clob_market_closed_2026.json`): Gamma double-encodes `outcomes`, `outcomePrices`, `clobTokenIds`
and `umaResolutionStatuses` as JSON strings; numbers vs strings are as recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pmbot.sim import wire

ICON = "https://polymarket-upload.s3.us-east-2.amazonaws.com/BTC+fullsize.png"
RESOLUTION_SOURCE = "https://data.chain.link/streams/btc-usd"
DESCRIPTION = (
    'This market will resolve to "Up" if the Bitcoin price at the end of the time range specified in the title is '
    'greater than or equal to the price at the beginning of that range. Otherwise, it will resolve to "Down".\n'
    "The resolution source for this market is information from Chainlink, specifically the BTC/USD data stream "
    "available at https://data.chain.link/streams/btc-usd.\nPlease note that this market is about the price "
    "according to Chainlink data stream BTC/USD, not according to other sources or spot markets."
)


@dataclass(eq=False)
class SimMarket:
    gamma_id: str
    event_id: str
    condition_id: str
    question_id: str
    slug: str
    question: str
    token_ids: tuple[str, str]
    start_ts: int  # eventStartTime: the window's opening second
    end_ts: int
    created_ts: float
    outcomes: tuple[str, str] = ("Up", "Down")
    tick: Decimal = Decimal("0.01")
    min_size: Decimal = Decimal(5)
    neg_risk: bool = False
    fees_enabled: bool = True
    fee_rate: Decimal = Decimal("0.07")
    fee_exponent: int = 1
    taker_only: bool = True
    rebate_rate: Decimal = Decimal("0.2")
    base_fee_bps: int = 1000
    series_slug: str = "btc-up-or-down-15m"
    series_id: str = "10192"
    description: str = DESCRIPTION
    open_price: Decimal | None = None  # BTC at start_ts (price to beat), once known
    close_price: Decimal | None = None
    closed: bool = False
    closed_ts: float | None = None
    winner: int | None = None  # outcome index that won
    volume: Decimal = Decimal(0)
    last_trade: list[tuple[Decimal, str]] = field(default_factory=lambda: [(Decimal("0.5"), ""), (Decimal("0.5"), "")])
    raw: dict[str, Any] | None = None  # replayed markets are served exactly as recorded
    # Gamma `version`: "v1" trades clobTokenIds (CTFExchangeV2, domain "2"); "v2" trades positionIds
    # (ExchangeV3, domain "3") and Gamma shows its condition id in the 31-byte form.
    version: str = "v1"
    standing: bool = False  # a long-dated market next to the series: never "the current window"

    @property
    def gamma_condition_id(self) -> str:
        """What Gamma shows: the 31-byte form for a V2 market (the CLOB wants the 32-byte one)."""
        if self.version == "v2" and self.condition_id.endswith("00") and len(self.condition_id) == 66:
            return self.condition_id[:-2]
        return self.condition_id

    def index_of(self, token_id: str) -> int:
        return self.token_ids.index(token_id)

    def accepting_orders(self, now: float) -> bool:
        return not self.closed and now < self.end_ts

    def outcome_prices(self, up_mid: Decimal | None) -> list[str]:
        if self.closed and self.winner is not None:
            return ["1", "0"] if self.winner == 0 else ["0", "1"]
        p = up_mid if up_mid is not None else Decimal("0.5")
        return [wire.dstr(p), wire.dstr(Decimal(1) - p)]


def _fee_schedule(m: SimMarket) -> dict[str, Any]:
    return {
        "exponent": m.fee_exponent,
        "rate": wire.wire_number(m.fee_rate),
        "takerOnly": m.taker_only,
        "rebateRate": wire.wire_number(m.rebate_rate),
    }


def _series(m: SimMarket, now: float) -> dict[str, Any]:
    return {
        "id": m.series_id,
        "ticker": m.series_slug,
        "slug": m.series_slug,
        "title": "BTC Up or Down 15m",
        "seriesType": "single",
        "recurrence": "15m",
        "image": "",
        "icon": "",
        "active": True,
        "closed": False,
        "archived": False,
        "featured": False,
        "restricted": True,
        "createdAt": "2025-10-21T21:46:22.201627Z",
        "updatedAt": wire.iso_micro(now),
        "volume24hr": 0,
        "volume": 0,
        "liquidity": 0,
        "commentCount": 0,
        "requiresTranslation": False,
    }


def gamma_event(
    m: SimMarket, now: float, liquidity: Decimal, *, markets: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A Gamma event object. Embedded in a market's `events[]`, or served by /events with `markets`."""
    volume = wire.wire_number(m.volume)
    ev: dict[str, Any] = {
        "id": m.event_id,
        "ticker": m.slug,
        "slug": m.slug,
        "title": m.question,
        "description": m.description,
        "resolutionSource": RESOLUTION_SOURCE,
        "startDate": wire.iso_micro(m.created_ts + 90),
        "creationDate": wire.iso_micro(m.created_ts + 90),
        "endDate": wire.iso(m.end_ts),
        "image": ICON,
        "icon": ICON,
        "active": True,
        "closed": m.closed,
        "archived": False,
        "new": False,
        "featured": False,
        "restricted": True,
        "liquidity": wire.wire_number(liquidity),
        "volume": volume,
        "openInterest": 0,
        "createdAt": wire.iso_micro(m.created_ts),
        "updatedAt": wire.iso_micro(now),
        "competitive": 0.99,
        "volume24hr": volume,
        "volume1wk": volume,
        "volume1mo": volume,
        "volume1yr": volume,
        "enableOrderBook": True,
        "liquidityClob": wire.wire_number(liquidity),
        "negRisk": m.neg_risk,
        "commentCount": 0,
        "series": [_series(m, now)],
        "cyom": False,
        "showAllOutcomes": True,
        "showMarketImages": True,
        "enableNegRisk": False,
        "automaticallyActive": True,
        "startTime": wire.iso(m.start_ts),
        "seriesSlug": m.series_slug,
        "negRiskAugmented": False,
        "pendingDeployment": False,
        "deploying": False,
        "requiresTranslation": False,
    }
    if m.open_price is not None:
        ev["eventMetadata"] = {"priceToBeat": wire.wire_number(m.open_price)}
    if markets is not None:
        ev["markets"] = markets
        ev["tags"] = []
        ev["cumulativeMarkets"] = False
        ev["gmpChartMode"] = "default"
    return ev


def gamma_market(
    m: SimMarket,
    now: float,
    *,
    best_bid: Decimal | None,
    best_ask: Decimal | None,
    liquidity: Decimal,
    with_events: bool = True,
) -> dict[str, Any]:
    """A Gamma market object (GET /markets item), best bid/ask are the Up token's."""
    if m.raw is not None:
        return m.raw
    mid = (best_bid + best_ask) / 2 if best_bid is not None and best_ask is not None else None
    volume = m.volume
    vol_n = wire.wire_number(volume)
    liq_n = wire.wire_number(liquidity)
    obj: dict[str, Any] = {
        "id": m.gamma_id,
        "question": m.question,
        "conditionId": m.gamma_condition_id,
        "slug": m.slug,
        "resolutionSource": RESOLUTION_SOURCE,
        "endDate": wire.iso(m.end_ts),
        "liquidity": wire.dstr(liquidity),
        "startDate": wire.iso_micro(m.created_ts + 66),
        "image": ICON,
        "icon": ICON,
        "description": m.description,
        "outcomes": json.dumps(list(m.outcomes)),
        "outcomePrices": json.dumps(m.outcome_prices(mid)),
        "volume": wire.dstr(volume),
        "active": True,
        "closed": m.closed,
        "marketMakerAddress": "",
        "createdAt": wire.iso_micro(m.created_ts),
        "updatedAt": wire.iso_micro(now),
        "new": False,
        "featured": False,
        "archived": False,
        "restricted": True,
        "groupItemThreshold": "0",
        "questionID": m.question_id,
        "enableOrderBook": True,
        "orderPriceMinTickSize": wire.wire_number(m.tick),
        "orderMinSize": wire.wire_number(m.min_size),
        "volumeNum": vol_n,
        "liquidityNum": liq_n,
        "endDateIso": wire.date_only(m.end_ts),
        "startDateIso": wire.date_only(m.created_ts),
        "hasReviewedDates": True,
        "volume24hr": vol_n,
        "volume1wk": vol_n,
        "volume1mo": vol_n,
        "volume1yr": vol_n,
        "version": m.version,
        "volume24hrClob": vol_n,
        "volume1wkClob": vol_n,
        "volume1moClob": vol_n,
        "volume1yrClob": vol_n,
        "volumeClob": vol_n,
        "liquidityClob": liq_n,
        "makerBaseFee": m.base_fee_bps,
        "takerBaseFee": m.base_fee_bps,
        # a resolved market still says true (gamma_market_closed_resolved.json): the flag is never reset
        "acceptingOrders": m.accepting_orders(now) or m.closed,
        "negRisk": m.neg_risk,
        "ready": False,
        "funded": False,
        "acceptingOrdersTimestamp": wire.iso(m.created_ts + 8),
        "cyom": False,
        "competitive": 0.99,
        "pagerDutyNotificationEnabled": False,
        "approved": True,
        "rewardsMinSize": 50,
        "rewardsMaxSpread": 4.5,
        "spread": wire.wire_number(best_ask - best_bid) if best_bid is not None and best_ask is not None else 1,
        "lastTradePrice": wire.wire_number(m.last_trade[0][0]),
        "automaticallyActive": True,
        "clearBookOnStart": False,
        "showGmpSeries": False,
        "showGmpOutcome": False,
        "manualActivation": False,
        "negRiskOther": False,
        "umaResolutionStatuses": "[]",
        "pendingDeployment": False,
        "deploying": False,
        "rfqEnabled": False,
        "eventStartTime": wire.iso(m.start_ts),
        "holdingRewardsEnabled": False,
        "feesEnabled": m.fees_enabled,
        "requiresTranslation": False,
        "makerRebatesFeeShareBps": 10000,
        "feeType": "crypto_fees",
        "feeSchedule": _fee_schedule(m),
    }
    # Protocol V2: positionIds is a real JSON array (gamma_markets_list_2026-09.json), and they are
    # what the V2 market's book trades; clobTokenIds (a JSON-encoded string) is kept on both, as the
    # CLOB keys a V2 book by its position id.
    obj["clobTokenIds"] = json.dumps(list(m.token_ids))
    if m.version == "v2":
        obj["positionIds"] = list(m.token_ids)
    # Recordings omit bestBid/bestAsk when that side of the book is empty.
    if best_bid is not None:
        obj["bestBid"] = wire.wire_number(best_bid)
    if best_ask is not None:
        obj["bestAsk"] = wire.wire_number(best_ask)
    if m.closed:
        obj["closedTime"] = wire.iso_space(m.closed_ts or m.end_ts)
        obj["umaResolutionStatuses"] = json.dumps(["resolved"])
    if with_events:
        obj["events"] = [gamma_event(m, now, liquidity)]
    return obj


def clob_market(m: SimMarket, now: float, up_price: Decimal) -> dict[str, Any]:
    """CLOB GET /markets/{condition_id} object (snake_case, numbers as in clob_market_closed_2026.json)."""
    prices = [up_price, Decimal(1) - up_price]
    if m.closed and m.winner is not None:
        prices = [Decimal(1), Decimal(0)] if m.winner == 0 else [Decimal(0), Decimal(1)]
    return {
        "accepting_order_timestamp": wire.iso(m.created_ts + 8),
        # closed yet accepting_orders: true, with enable_order_book: false (clob_market_closed_2026.json)
        "accepting_orders": m.accepting_orders(now) or m.closed,
        "active": True,
        "archived": False,
        "closed": m.closed,
        "condition_id": m.condition_id,
        "description": m.description,
        "enable_order_book": not m.closed,
        "end_date_iso": wire.iso(m.end_ts),
        "fpmm": "",
        "game_start_time": wire.iso(m.start_ts),
        "icon": ICON,
        "image": ICON,
        "is_50_50_outcome": False,
        "maker_base_fee": m.base_fee_bps,
        "market_slug": m.slug,
        "minimum_order_size": wire.wire_number(m.min_size),
        "minimum_tick_size": wire.wire_number(m.tick),
        "neg_risk": m.neg_risk,
        "neg_risk_market_id": "",
        "neg_risk_request_id": "",
        "notifications_enabled": True,
        "question": m.question,
        "question_id": m.question_id,
        "rewards": {"max_spread": 4.5, "min_size": 50, "rates": None},
        "seconds_delay": 0,
        "tags": ["Crypto", "Bitcoin", "Up or Down", "15M"],
        "taker_base_fee": m.base_fee_bps,
        "tokens": [
            {
                "outcome": m.outcomes[i],
                "price": wire.wire_number(prices[i]),
                "token_id": m.token_ids[i],
                "winner": m.closed and m.winner == i,
            }
            for i in (0, 1)
        ],
    }


def clob_market_info(m: SimMarket, now: float) -> dict[str, Any]:
    """GET /clob-markets/{condition_id}: the compact parameter object py-clob-client-v2 reads (notes §1.11)."""
    return {
        "gst": wire.iso(m.start_ts),
        "r": {"mis": 50, "mas": 4.5},
        "t": [{"t": m.token_ids[i], "o": m.outcomes[i]} for i in (0, 1)],
        "mos": wire.wire_number(m.min_size),
        "mts": wire.wire_number(m.tick),
        "mbf": m.base_fee_bps,
        "tbf": m.base_fee_bps,
        "rfqe": False,
        "itode": False,
        "ibce": False,
        "fd": {"r": wire.wire_number(m.fee_rate), "e": m.fee_exponent, "to": m.taker_only},
        "oas": int(m.created_ts + 8),
    }


def market_from_gamma(raw: dict[str, Any]) -> SimMarket:
    """Model of a recorded Gamma market (replay). Raises KeyError/ValueError on a malformed object."""
    # Protocol V2 markets trade their positionIds; by `version`, even when both fields are present.
    version = "v2" if raw.get("version") == "v2" else "v1"
    ids_field = raw["positionIds"] if version == "v2" else raw["clobTokenIds"]
    tokens = json.loads(ids_field) if isinstance(ids_field, str) else ids_field
    cid = str(raw["conditionId"])
    if version == "v2" and len(cid) == 64:  # Gamma's 31-byte form; the sim keys markets by the 32-byte one
        cid += "00"
    outcomes = json.loads(raw.get("outcomes") or '["Yes", "No"]')
    end = wire.parse_iso(raw["endDate"]) if raw.get("endDate") else 0.0
    start = wire.parse_iso(raw["eventStartTime"]) if raw.get("eventStartTime") else end - 900
    events = raw.get("events") or [{}]
    return SimMarket(
        gamma_id=str(raw.get("id", "")),
        event_id=str(events[0].get("id", "")),
        condition_id=cid,
        question_id=str(raw.get("questionID", "")),
        slug=str(raw.get("slug", "")),
        question=str(raw.get("question", "")),
        token_ids=(str(tokens[0]), str(tokens[1])),
        outcomes=(str(outcomes[0]), str(outcomes[1])),
        start_ts=int(start),
        end_ts=int(end),
        created_ts=start - 86400,
        tick=Decimal(str(raw.get("orderPriceMinTickSize", "0.01"))),
        min_size=Decimal(str(raw.get("orderMinSize", "5"))),
        neg_risk=bool(raw.get("negRisk", False)),
        closed=bool(raw.get("closed", False)),
        raw=raw,
        version=version,
    )
