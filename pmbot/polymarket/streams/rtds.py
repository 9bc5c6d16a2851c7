"""RTDS, the real-time data socket (`rtds_url`): whale activity (`activity/trades`) and crypto
reference prices (`crypto_prices` from Binance, `crypto_prices_chainlink`)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.ws import RtdsEvent
from pmbot.polymarket.streams.base import Backoff, Clock, Connector, WsStream


@dataclass(frozen=True, slots=True)
class RtdsSubscription:
    """One `subscriptions[]` entry. `filters` is a string: JSON for activity and Chainlink prices,
    a bare symbol for Binance prices."""

    topic: str
    type: str
    filters: str | None = None

    def wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"topic": self.topic, "type": self.type}
        if self.filters is not None:
            out["filters"] = self.filters
        return out

    @classmethod
    def activity(cls, *, event_slug: str | None = None, market_slug: str | None = None) -> RtdsSubscription:
        """Every trade on Polymarket, or one event's / one market's (server-side filter)."""
        if event_slug and market_slug:
            raise ValueError("filter activity by event_slug or market_slug, not both")
        if event_slug:
            return cls("activity", "trades", ws.compact_json({"event_slug": event_slug}))
        if market_slug:
            return cls("activity", "trades", ws.compact_json({"market_slug": market_slug}))
        return cls("activity", "trades")

    @classmethod
    def crypto_prices(cls, symbol: str) -> RtdsSubscription:
        """Binance prices, e.g. "btcusdt". One symbol per subscription: the live server rejects the
        comma-separated list the docs show."""
        return cls("crypto_prices", "update", symbol.lower())

    @classmethod
    def chainlink(cls, symbol: str) -> RtdsSubscription:
        """Chainlink spot relay, e.g. "btc/usd"; the filter must be compact JSON."""
        return cls("crypto_prices_chainlink", "*", ws.compact_json({"symbol": symbol.lower()}))


class RtdsStream(WsStream[RtdsEvent]):
    """`async for ev in RtdsStream(url, subscriptions, wallets=…)` yields WalletTrade
    (source=RTDS), CryptoPrice and StreamStatus.

    `wallets` filters activity client-side (RTDS cannot filter by trader): None passes every trade,
    a set passes only those wallets' (compared lowercase; RTDS sends EIP-55 mixed case)."""

    name = "rtds"

    def __init__(
        self,
        rtds_url: str,
        subscriptions: Iterable[RtdsSubscription] = (),
        *,
        wallets: Iterable[str] | None = None,
        connect: Connector | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        heartbeat_interval: float = 5.0,
        stale_after: float | None = 30.0,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(
            rtds_url,
            connect=connect,
            heartbeat_interval=heartbeat_interval,
            clock=clock,
            rng=rng,
            backoff=backoff,
            stale_after=stale_after,
            stale_reconnect_after=stale_reconnect_after,
            queue_size=queue_size,
        )
        self._subs: dict[RtdsSubscription, None] = dict.fromkeys(subscriptions)
        self._wallets: set[str] | None = None if wallets is None else {w.lower() for w in wallets}

    @property
    def subscriptions(self) -> tuple[RtdsSubscription, ...]:
        return tuple(self._subs)

    @property
    def wallets(self) -> frozenset[str] | None:
        return None if self._wallets is None else frozenset(self._wallets)

    def follow(self, wallets: Iterable[str]) -> None:
        """Add wallets to the client-side filter (turns "all trades" into a filter if it was None)."""
        self._wallets = (self._wallets or set()) | {w.lower() for w in wallets}

    def unfollow(self, wallets: Iterable[str]) -> None:
        if self._wallets is not None:
            self._wallets -= {w.lower() for w in wallets}

    async def subscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        async with self._send_lock:
            new = [s for s in subscriptions if s not in self._subs]
            if not new:
                return
            self._subs.update(dict.fromkeys(new))
            await self._send_control({"action": "subscribe", "subscriptions": [s.wire() for s in new]})

    async def unsubscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        async with self._send_lock:
            gone = [s for s in subscriptions if s in self._subs]
            if not gone:
                return
            for s in gone:
                del self._subs[s]
            await self._send_control({"action": "unsubscribe", "subscriptions": [s.wire() for s in gone]})

    def _subscribe_messages(self) -> list[dict[str, Any]]:
        if not self._subs:
            return []
        return [{"action": "subscribe", "subscriptions": [s.wire() for s in self._subs]}]

    def _handle_one(self, item: Any) -> None:
        events = ws.rtds_events(item, self._wallets)
        if not events:
            self.counters.ignored += 1
        for ev in events:
            self._emit(ev)
