"""The CLOB user channel (`{clob_ws_url}/user`): our orders and trades, authenticated with the
L2 API credentials and filtered by market (condition id)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from typing import Any

from pmbot.polymarket.models import ApiCreds
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.ws import UserEvent
from pmbot.polymarket.streams.base import Backoff, Clock, Connector, WsStream


class UserStream(WsStream[UserEvent]):
    """`async for ev in UserStream(url, creds, markets)` yields UserOrderEvent, UserTradeEvent and
    StreamStatus. An empty `markets` asks for every market of the API key.

    The auth message carries the secret and passphrase; it is only ever sent, never logged (the base
    class logs neither sent messages nor `ApiCreds`, whose repr masks both)."""

    name = "user"

    def __init__(
        self,
        clob_ws_url: str,
        creds: ApiCreds,
        markets: Iterable[str] = (),
        *,
        connect: Connector | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        heartbeat_interval: float = 10.0,
        stale_after: float | None = None,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
    ) -> None:
        # stale_after defaults to off: an account with no open orders is legitimately silent.
        super().__init__(
            clob_ws_url.rstrip("/") + "/user",
            connect=connect,
            heartbeat_interval=heartbeat_interval,
            clock=clock,
            rng=rng,
            backoff=backoff,
            stale_after=stale_after,
            stale_reconnect_after=stale_reconnect_after,
            queue_size=queue_size,
        )
        self._creds = creds
        self._markets: dict[str, None] = dict.fromkeys(str(m) for m in markets)

    @property
    def markets(self) -> tuple[str, ...]:
        return tuple(self._markets)

    async def subscribe(self, markets: Iterable[str]) -> None:
        async with self._send_lock:
            new = [m for m in map(str, markets) if m not in self._markets]
            if not new:
                return
            self._markets.update(dict.fromkeys(new))
            await self._send_control({"markets": new, "operation": "subscribe"})

    async def unsubscribe(self, markets: Iterable[str]) -> None:
        async with self._send_lock:
            gone = [m for m in map(str, markets) if m in self._markets]
            if not gone:
                return
            for m in gone:
                del self._markets[m]
            await self._send_control({"markets": gone, "operation": "unsubscribe"})

    def _subscribe_messages(self) -> list[dict[str, Any]]:
        auth = {"apiKey": self._creds.api_key, "secret": self._creds.secret, "passphrase": self._creds.passphrase}
        return [{"auth": auth, "markets": list(self._markets), "type": "user"}]

    def _handle_one(self, item: Any) -> None:
        ev = ws.user_event(item)
        if ev is None:
            self.counters.ignored += 1
        else:
            self._emit(ev)
