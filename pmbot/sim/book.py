"""Order books.

A binary market has ONE book, kept in Up-token terms (`OutcomeBook`): a bid for Up at p is the same
liquidity as an ask for Down at 1 − p, which is how the CLOB shows the two tokens (mirrored books,
and every `price_change` carries both legs). Each level holds the synthetic market maker's size
plus real resting orders in time priority.

`BookSnapshot` is what the wire sees for one token: bids ascending and asks descending, so the best
level of each side is the LAST element, exactly like REST /book and the WS `book` message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from pmbot.sim.wire import dstr, price3

BUY, SELL = "BUY", "SELL"
ONE = Decimal(1)
ZERO = Decimal(0)


class Resting(Protocol):
    """What the book needs from a resting order: its unfilled shares."""

    remaining: Decimal


@dataclass
class Level:
    mm: Decimal = ZERO  # synthetic market-maker size
    orders: list[Resting] = field(default_factory=list)  # real orders, oldest first

    def size(self) -> Decimal:
        return self.mm + sum((o.remaining for o in self.orders), ZERO)


class OutcomeBook:
    """The canonical (Up-token) book of one market, with change tracking for `price_change`."""

    def __init__(self) -> None:
        self.sides: dict[str, dict[Decimal, Level]] = {BUY: {}, SELL: {}}
        self._changed: dict[tuple[str, Decimal], None] = {}  # ordered set of touched levels

    # -- reads ---------------------------------------------------------------------------------
    def best(self, side: str) -> Decimal | None:
        prices = [p for p, lv in self.sides[side].items() if lv.size() > 0]
        if not prices:
            return None
        return max(prices) if side == BUY else min(prices)

    def size_at(self, side: str, price: Decimal) -> Decimal:
        lv = self.sides[side].get(price)
        return lv.size() if lv else ZERO

    def levels_best_first(self, side: str) -> list[tuple[Decimal, Level]]:
        items = [(p, lv) for p, lv in self.sides[side].items() if lv.size() > 0]
        items.sort(key=lambda x: x[0], reverse=(side == BUY))
        return items

    def token_levels(self, index: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids ascending, asks descending) for outcome `index` (0 = Up as stored, 1 = Down mirrored)."""
        bids = [(p, s) for p, lv in self.sides[BUY].items() if (s := lv.size()) > 0]
        asks = [(p, s) for p, lv in self.sides[SELL].items() if (s := lv.size()) > 0]
        if index == 1:
            bids, asks = [(ONE - p, s) for p, s in asks], [(ONE - p, s) for p, s in bids]
        bids.sort(key=lambda x: x[0])
        asks.sort(key=lambda x: x[0], reverse=True)
        return bids, asks

    def best_for(self, index: int) -> tuple[Decimal | None, Decimal | None]:
        """(best bid, best ask) of outcome `index`."""
        bid, ask = self.best(BUY), self.best(SELL)
        if index == 0:
            return bid, ask
        return (ONE - ask if ask is not None else None), (ONE - bid if bid is not None else None)

    # -- writes --------------------------------------------------------------------------------
    def _level(self, side: str, price: Decimal) -> Level:
        lv = self.sides[side].get(price)
        if lv is None:
            lv = self.sides[side][price] = Level()
        return lv

    def touch(self, side: str, price: Decimal) -> None:
        self._changed[(side, price)] = None

    def set_mm(self, side: str, price: Decimal, size: Decimal) -> None:
        lv = self._level(side, price)
        if lv.mm != size:
            lv.mm = size
            self.touch(side, price)
        self._prune(side, price)

    def add_order(self, side: str, price: Decimal, order: Resting) -> None:
        self._level(side, price).orders.append(order)
        self.touch(side, price)

    def remove_order(self, side: str, price: Decimal, order: Resting) -> None:
        lv = self.sides[side].get(price)
        if lv is not None and order in lv.orders:
            lv.orders.remove(order)
            self.touch(side, price)
            self._prune(side, price)

    def _prune(self, side: str, price: Decimal) -> None:
        lv = self.sides[side].get(price)
        if lv is not None and lv.mm == 0 and not lv.orders:
            del self.sides[side][price]

    def mm_prices(self, side: str) -> list[Decimal]:
        return [p for p, lv in self.sides[side].items() if lv.mm > 0]

    def take_changes(self) -> list[tuple[str, Decimal, Decimal]]:
        """Levels touched since the last call, with their new total size (0 = removed)."""
        out = [(side, p, self.size_at(side, p)) for side, p in self._changed]
        self._changed.clear()
        return out

    def clear(self) -> None:
        for side in (BUY, SELL):
            for p in list(self.sides[side]):
                self.touch(side, p)
            self.sides[side].clear()


@dataclass(frozen=True)
class BookSnapshot:
    """One token's book as the wire shows it."""

    market: str
    asset_id: str
    timestamp_ms: int
    bids: list[tuple[Decimal, Decimal]]  # ascending: best bid last
    asks: list[tuple[Decimal, Decimal]]  # descending: best ask last
    min_order_size: Decimal
    tick_size: Decimal
    neg_risk: bool
    last_trade_price: Decimal

    def _levels(self, levels: list[tuple[Decimal, Decimal]]) -> list[dict[str, str]]:
        return [{"price": dstr(p), "size": dstr(s)} for p, s in levels]

    def rest_dict(self) -> dict[str, object]:
        """GET /book body. `hash` = SHA1 of the compact summary with hash "" (py-clob-client-v2's check)."""
        body: dict[str, object] = {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": str(self.timestamp_ms),
            "hash": "",
            "bids": self._levels(self.bids),
            "asks": self._levels(self.asks),
            "min_order_size": dstr(self.min_order_size),
            "tick_size": dstr(self.tick_size),
            "neg_risk": self.neg_risk,
            "last_trade_price": price3(self.last_trade_price),
        }
        body["hash"] = hashlib.sha1(  # noqa: S324 - the venue's own (non-security) book checksum
            json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        ).hexdigest()
        return body

    def ws_dict(self) -> dict[str, object]:
        """WS `book` message: same levels, plus tick_size/last_trade_price, no min_order_size/neg_risk."""
        rest = self.rest_dict()
        return {
            "market": self.market,
            "asset_id": self.asset_id,
            "timestamp": str(self.timestamp_ms),
            "hash": rest["hash"],
            "bids": rest["bids"],
            "asks": rest["asks"],
            "tick_size": rest["tick_size"],
            "event_type": "book",
            "last_trade_price": rest["last_trade_price"],
        }

    def best_bid(self) -> Decimal | None:
        return self.bids[-1][0] if self.bids else None

    def best_ask(self) -> Decimal | None:
        return self.asks[-1][0] if self.asks else None
