"""RTDS, the real-time data socket (`rtds_url`): whale activity (`activity/trades`) and crypto
reference prices (`crypto_prices` from Binance, `crypto_prices_chainlink`)."""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pmbot.polymarket.models import CryptoPrice, WalletTrade
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.ws import RtdsEvent
from pmbot.polymarket.streams.base import Backoff, Clock, Connector, WsStream


# `matches` runs for every message of a shared RTDS connection and every subscription of each consumer
# (pmbot.runner.rtds_hub), a reference price on the entry's path: a filter's text is parsed once, not per
# message. Few distinct filters exist in a process (one per symbol or market), hence the small caches.
@functools.lru_cache(maxsize=256)
def _filter_symbols(filters: str) -> frozenset[str] | None:
    text = filters.strip()
    if text.startswith("{"):
        try:
            symbol = json.loads(text).get("symbol")
        except (ValueError, AttributeError):
            return None
        return None if not isinstance(symbol, str) else frozenset({symbol.lower()})
    return frozenset(p.strip().lower() for p in text.split(",") if p.strip())


@functools.lru_cache(maxsize=256)
def _filter_market_slug(filters: str) -> Any:
    """An activity filter's `market_slug` (None: none, or a filter that is not a JSON object)."""
    try:
        return json.loads(filters).get("market_slug")
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True, slots=True)
class RtdsSubscription:
    """One `subscriptions[]` entry. `filters` is a string: JSON for activity and Chainlink prices,
    a bare symbol for Binance prices."""

    topic: str
    type: str
    filters: str | None = None

    def symbols(self) -> frozenset[str] | None:
        """The lowercase symbols the filter names (None: every symbol; activity: None)."""
        if not self.filters or self.topic == "activity":
            return None
        return _filter_symbols(self.filters)

    def matches(self, event: Any) -> bool:
        """Whether `event` (a CryptoPrice or an activity WalletTrade) is one this subscription asked for.
        An activity `event_slug` filter cannot be checked on a trade (it names its market only): passed."""
        if isinstance(event, WalletTrade):
            if self.topic != "activity":
                return False
            if self.filters and event.slug:
                market = _filter_market_slug(self.filters)
                return market is None or market == event.slug
            return True
        if isinstance(event, CryptoPrice):
            if event.topic != self.topic:
                return False
            symbols = self.symbols()
            return symbols is None or event.symbol.lower() in symbols
        return False

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
        # time.monotonic() of each topic's last message, filtered or not (a shared connection's watchdog
        # tells a silent topic from a silent socket: pmbot.runner.rtds_hub)
        self.topic_seen: dict[str, float] = {}

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

    def set_wallets(self, wallets: Iterable[str] | None) -> None:
        """Replace the client-side activity filter (None: every trader's trades)."""
        self._wallets = None if wallets is None else {w.lower() for w in wallets}

    async def subscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        async with self._send_lock:
            new = [s for s in subscriptions if s not in self._subs]
            if not new:
                return
            self._subs.update(dict.fromkeys(new))
            await self._send_control({"action": "subscribe", "subscriptions": [s.wire() for s in new]})

    async def unsubscribe(self, subscriptions: Iterable[RtdsSubscription]) -> None:
        """Forget `subscriptions` (the next connection does not ask for them) and unsubscribe on the wire
        those whose topic and type no remaining subscription shares: RTDS's unsubscribe may end every
        subscription of a topic and type whatever its filters (the sim's does), so `btc/usd` must not go
        when only `eth/usd` was dropped. A forgotten filtered one may keep sending until the next
        connection: a consumer filters what it did not ask for (`matches`)."""
        async with self._send_lock:
            gone = [s for s in subscriptions if s in self._subs]
            if not gone:
                return
            for s in gone:
                del self._subs[s]
            kept = {(s.topic, s.type) for s in self._subs}
            wire = [s.wire() for s in gone if (s.topic, s.type) not in kept]
            if wire:
                await self._send_control({"action": "unsubscribe", "subscriptions": wire})

    def _subscribe_messages(self) -> list[dict[str, Any]]:
        if not self._subs:
            return []
        return [{"action": "subscribe", "subscriptions": [s.wire() for s in self._subs]}]

    def _handle_one(self, item: Any) -> None:
        topic = item.get("topic") if isinstance(item, dict) else None
        if isinstance(topic, str):
            self.topic_seen[topic] = time.monotonic()
        events = ws.rtds_events(item, self._wallets)
        if not events:
            self.counters.ignored += 1
        for ev in events:
            self._emit(ev)
