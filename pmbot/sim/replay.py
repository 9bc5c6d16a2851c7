"""Replaying a recorded scenario: serve the recorded markets over Gamma, keep books from `book` and
`price_change` messages so REST /book answers, and re-broadcast every message on its channel at the
recorded pace (relative to the first event, scaled by the clock's speed)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from pmbot.errors import InputError
from pmbot.sim.book import BUY, SELL
from pmbot.sim.markets import market_from_gamma
from pmbot.sim.scenario_file import RecordedEvent, RecordedScenario
from pmbot.sim.venue import Venue


class Replay:
    def __init__(self, venue: Venue, recorded: RecordedScenario) -> None:
        self.venue = venue
        self.recorded = recorded
        self._next = 0
        self._books: dict[str, dict[str, dict[Decimal, Decimal]]] = {}

    def install(self) -> None:
        for n, raw in enumerate(self.recorded.markets):
            try:
                m = market_from_gamma(raw)
            except (KeyError, ValueError, IndexError, TypeError) as e:
                raise InputError(f"scenario market #{n + 1} is not a usable Gamma market object ({e})") from None
            self.venue.add_market(m)
            for t in m.token_ids:
                self._books[t] = {BUY: {}, SELL: {}}
        self.venue.replay = self
        self.venue.t_done = int(self.venue.clock.now())

    @property
    def done(self) -> bool:
        return self._next >= len(self.recorded.events)

    def token_levels(self, token: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        book = self._books.get(token, {BUY: {}, SELL: {}})
        bids = sorted(book[BUY].items())
        asks = sorted(book[SELL].items(), reverse=True)
        return bids, asks

    def step_to(self, now: float) -> None:
        limit = now * 1000
        events = self.recorded.events
        while self._next < len(events) and events[self._next].ts <= limit:
            self._emit(events[self._next])
            self._next += 1

    # -- per source ----------------------------------------------------------------------------
    def _emit(self, ev: RecordedEvent) -> None:
        hub = self.venue.hub
        data = ev.data
        if ev.source == "market":
            msgs = data if isinstance(data, list) else [data]
            assets: set[str] = set()
            for msg in msgs:
                if isinstance(msg, dict):
                    assets |= self._apply(msg)
            hub.to_market(assets, lambda: data)
        elif ev.source == "user":
            hub.to_all_users(data)
        elif ev.source == "rtds":
            if isinstance(data, dict):
                hub.to_rtds_raw(str(data.get("topic", "")), str(data.get("type", "")), data)
        elif ev.source == "chain":
            log = data.get("params", {}).get("result") if isinstance(data, dict) and "params" in data else data
            if isinstance(log, dict) and "topics" in log and "address" in log:
                self.venue.chain_logs.append(log)
                hub.to_rpc(log)

    def _apply(self, msg: dict[str, Any]) -> set[str]:
        """Update books/markets from one market-channel message; return the assets it concerns."""
        kind = msg.get("event_type")
        try:
            if kind == "book":
                token = str(msg.get("asset_id"))
                self._books[token] = {
                    BUY: {Decimal(x["price"]): Decimal(x["size"]) for x in msg.get("bids", [])},
                    SELL: {Decimal(x["price"]): Decimal(x["size"]) for x in msg.get("asks", [])},
                }
                self._last_trade(token, msg.get("last_trade_price"))
                return {token}
            if kind == "price_change":
                tokens = set()
                for ch in msg.get("price_changes") or [msg]:  # current format, or the 2024 flat one
                    token = str(ch.get("asset_id"))
                    side = BUY if ch.get("side") == "BUY" else SELL
                    book = self._books.setdefault(token, {BUY: {}, SELL: {}})
                    size = Decimal(ch["size"])
                    if size == 0:
                        book[side].pop(Decimal(ch["price"]), None)
                    else:
                        book[side][Decimal(ch["price"])] = size
                    tokens.add(token)
                return tokens
            if kind == "last_trade_price":
                token = str(msg.get("asset_id"))
                self._last_trade(token, msg.get("price"), msg.get("side", ""))
                return {token}
            if kind == "tick_size_change":
                m = self.venue.market_by_token(str(msg.get("asset_id")))
                if m is not None:
                    m.tick = Decimal(msg["new_tick_size"])
                return {str(msg.get("asset_id"))}
            if kind == "market_resolved":
                m = self.venue.market_by_cid(str(msg.get("market")))
                if m is not None:
                    m.closed = True
                    win = str(msg.get("winning_asset_id"))
                    m.winner = m.token_ids.index(win) if win in m.token_ids else None
                return {str(a) for a in msg.get("assets_ids") or []}
        except (KeyError, InvalidOperation, TypeError):
            pass  # a malformed recorded message is still re-broadcast, just not applied
        asset = msg.get("asset_id")
        return {str(asset)} if asset else set()

    def _last_trade(self, token: str, price: Any, side: str = "") -> None:
        m = self.venue.market_by_token(token)
        if m is None or price in (None, ""):
            return
        i = m.index_of(token)
        m.last_trade[i] = (Decimal(str(price)), side)
