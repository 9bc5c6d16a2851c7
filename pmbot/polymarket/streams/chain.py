"""Polygon `OrderFilled` logs for the wallets we follow, over an RPC WebSocket (web3.py).

Chain logs are the authoritative record of a fill (RTDS can drop messages, the Data API lags).
web3 costs ~1.3 s to import, so it is imported inside the connection code only: importing this
module stays cheap and pmbot's CLI path never loads web3.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pmbot.errors import VenueError
from pmbot.polymarket.models import WalletTrade
from pmbot.polymarket.schemas import ws
from pmbot.polymarket.schemas.common import loads_venue
from pmbot.polymarket.streams.base import Backoff, Clock, StreamBase, StreamError, log
from pmbot.timeutil import now_ms

if TYPE_CHECKING:
    from web3 import AsyncWeb3, WebSocketProvider
    from web3.providers.persistent import PersistentConnectionProvider

ProviderFactory = Callable[[str], "PersistentConnectionProvider"]

_SEEN_LIMIT = 4096  # (tx, log index) pairs remembered to drop a log delivered twice


def websocket_provider(url: str, on_malformed: Callable[[Any], None] | None = None) -> PersistentConnectionProvider:
    """The production provider. One connection attempt: the stream's own backoff does the retrying
    (web3's built-in retry would sleep 1.75 s, 3 s, … invisibly). Non-JSON frames are skipped and
    reported to `on_malformed`: stock web3 would end its listener task and so the connection."""
    provider = _tolerant_provider_class()(
        url,
        websocket_kwargs={"open_timeout": 10, "ping_interval": 20, "ping_timeout": 30},
        max_connection_retries=1,
        request_timeout=10,
        # JSON-RPC is text; some servers (the sim among them) ignore web3's default binary frames.
        use_text_frames=True,
    )
    provider._pmbot_on_malformed = on_malformed  # type: ignore[attr-defined]
    return provider


@functools.cache
def _tolerant_provider_class() -> type[WebSocketProvider]:
    from web3 import WebSocketProvider as Base

    class TolerantWebSocketProvider(Base):
        _pmbot_on_malformed: Callable[[Any], None] | None = None

        async def socket_recv(self) -> Any:
            assert self._ws is not None  # only called by the listener of a connected provider
            while True:
                raw = await self._ws.recv()
                try:
                    return loads_venue(raw, "RPC frame")  # deep nesting / NaN from an RPC are malformed too
                except VenueError:
                    if self._pmbot_on_malformed is not None:
                        self._pmbot_on_malformed(raw)

    return TolerantWebSocketProvider


class ChainFillStream(StreamBase[WalletTrade]):
    """`async for ev in ChainFillStream(rpc_ws_url, wallets)` yields WalletTrade (source=CHAIN) and
    StreamStatus.

    Two `eth_subscribe("logs")` per connection on both V2 exchanges: the followed wallets as maker
    (topic 2) and as taker (topic 3). Only maker logs become trades: a wallet's own fill is always a
    log where it is the maker; the taker subscription shows the counterparties' fills of its taker
    orders (counted in `counterparty_fills`). `timestamp_ms` is our clock at receipt.
    Fills that happen while disconnected are not replayed (eth_subscribe has no history); the copy
    strategy reconciles those from the Data API.

    stale_after defaults to off: a followed wallet can be quiet for hours, and the subscription only
    delivers its fills.
    """

    name = "chain"

    def __init__(
        self,
        rpc_ws_url: str,
        wallets: Iterable[str],
        *,
        exchanges: Iterable[str] = ws.EXCHANGES,
        provider_factory: ProviderFactory | None = None,
        clock: Clock = time.time,
        rng: random.Random | None = None,
        backoff: Backoff | None = None,
        stale_after: float | None = None,
        stale_reconnect_after: float | None = None,
        queue_size: int = 10_000,
    ) -> None:
        super().__init__(
            clock=clock,
            rng=rng,
            backoff=backoff,
            stale_after=stale_after,
            stale_reconnect_after=stale_reconnect_after,
            queue_size=queue_size,
        )
        if not rpc_ws_url.startswith(("ws://", "wss://")):
            raise StreamError(f"chain: not a WebSocket URL: {rpc_ws_url!r}")
        self.url = rpc_ws_url
        self.exchanges = tuple(exchanges)
        self._wallets: set[str] = {w.lower() for w in wallets}
        self._provider_factory = provider_factory or functools.partial(websocket_provider, on_malformed=self._malformed)
        self._w3: AsyncWeb3[Any] | None = None
        self._sub_ids: list[str] = []
        self._sub_lock = asyncio.Lock()
        self._seen: OrderedDict[tuple[str, int], None] = OrderedDict()
        self.counterparty_fills = 0  # logs where a followed wallet is only the taker: not its own fill

    @property
    def wallets(self) -> frozenset[str]:
        return frozenset(self._wallets)

    @property
    def connected(self) -> bool:
        return self._w3 is not None

    def log_filters(self) -> list[dict[str, Any]]:
        """The eth_subscribe("logs") filters for the current wallets: maker, then taker."""
        if not self._wallets:
            return []
        wallets = [ws.address_topic(w) for w in sorted(self._wallets)]
        addresses = [_checksum(a) for a in self.exchanges]
        return [
            {"address": addresses, "topics": [ws.ORDER_FILLED_TOPIC, None, wallets]},
            {"address": addresses, "topics": [ws.ORDER_FILLED_TOPIC, None, None, wallets]},
        ]

    async def follow(self, wallets: Iterable[str]) -> None:
        """Add wallets; on a live connection the subscriptions are replaced without reconnecting."""
        async with self._sub_lock:
            before = set(self._wallets)
            self._wallets |= {w.lower() for w in wallets}
            if self._wallets != before:
                await self._resubscribe()

    async def unfollow(self, wallets: Iterable[str]) -> None:
        async with self._sub_lock:
            before = set(self._wallets)
            self._wallets -= {w.lower() for w in wallets}
            if self._wallets != before:
                await self._resubscribe()

    # ---------------------------------------------------------------------------------- internals

    async def _subscribe_all(self, w3: AsyncWeb3[Any]) -> list[str]:
        ids = []
        for flt in self.log_filters():
            ids.append(str(await w3.eth.subscribe("logs", flt)))  # type: ignore[arg-type]
        return ids

    async def _resubscribe(self) -> None:
        """New subscriptions first, then drop the old: no gap (a log seen twice is de-duplicated)."""
        w3 = self._w3
        if w3 is None:
            return  # the next connection subscribes with the new set
        old, self._sub_ids = self._sub_ids, await self._subscribe_all(w3)
        for sub_id in old:
            with contextlib.suppress(Exception):
                await w3.eth.unsubscribe(sub_id)  # type: ignore[arg-type]

    async def _session(self) -> None:
        from web3 import AsyncWeb3

        provider = self._provider_factory(self.url)
        w3: AsyncWeb3[Any] = AsyncWeb3(provider)
        await provider.connect()
        try:
            async with self._sub_lock:
                self._sub_ids = await self._subscribe_all(w3)
                self._w3 = w3
            self._connected()
            messages = w3.socket.process_subscriptions()
            loop = asyncio.get_running_loop()
            last_data = loop.time()
            while True:
                try:
                    msg = await self._recv_watching(messages.__anext__, last_data)
                except StopAsyncIteration:
                    return  # the provider's listener ended: the connection closed
                last_data = loop.time()
                self._data_arrived()
                self._guarded(self._handle_log, msg.get("result"))
        finally:
            self._w3 = None
            self._sub_ids = []
            with contextlib.suppress(Exception):
                await asyncio.wait_for(provider.disconnect(), 5)

    def _malformed(self, frame: Any) -> None:
        self.counters.malformed += 1
        log.log(self._malformed_level(), "chain: skipped a malformed frame: %.120r", frame)

    def _handle_log(self, log_entry: Any) -> None:
        if not isinstance(log_entry, Mapping):
            raise StreamError(f"chain: expected a log object, got {type(log_entry).__name__}")
        key = (ws.hex_str(log_entry.get("transactionHash"), "transactionHash"), _int(log_entry.get("logIndex")))
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.popitem(last=False)
        trade = ws.order_filled(log_entry, self._wallets, now_ms(self.clock))
        if trade is None:
            # A counterparty's fill naming our wallet as taker (see ws.order_filled), or a removed log.
            self.counterparty_fills += 1
            return
        log.info("chain: %s %s %s @ %s (tx %s)", trade.wallet, trade.side, trade.size, trade.price, trade.tx_hash)
        self._emit(trade)


def _checksum(address: str) -> str:
    from web3 import Web3

    return str(Web3.to_checksum_address(address))


def _int(value: Any) -> int:
    """web3 formats quantities as int; a raw JSON-RPC log has "0x…" strings."""
    if isinstance(value, str):
        return int(value, 16) if value.startswith("0x") else int(value)
    return int(value or 0)
