"""Builds the adapter from settings: one rate limiter, one HTTP client per API, the clients over them.

The App (composition root) calls `build_venue`; tests pass a transport, clock or RNG. Trading
(signer, API key) is built on first use so read-only commands never touch the private key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx

from pmbot.config import require_secure_endpoints
from pmbot.errors import ConfigError
from pmbot.polymarket.clob import ClobPublicClient
from pmbot.polymarket.data import DataClient
from pmbot.polymarket.gamma import GammaClient
from pmbot.polymarket.http import DEFAULT_RETRY, HttpClient, RetryPolicy
from pmbot.polymarket.params import MarketParamsCache
from pmbot.polymarket.ratelimit import RateLimiter

if TYPE_CHECKING:
    from pmbot.config import Settings
    from pmbot.polymarket.streams import ChainFillStream, MarketStream, RtdsStream, RtdsSubscription, UserStream
    from pmbot.polymarket.trading import TradingClient


@dataclass
class Venue:
    settings: Settings
    limiter: RateLimiter
    clob_http: HttpClient
    gamma: GammaClient
    clob: ClobPublicClient
    data: DataClient
    params: MarketParamsCache
    clock: Callable[[], float]
    rng: random.Random
    _trading: TradingClient | None = field(default=None, repr=False)
    # POST /order over the lean kept-alive path (pmbot.polymarket.fastpost); off when a test injects an
    # httpx transport (the lean path speaks to real sockets only).
    fast_post: bool = True

    async def trading(self, *, create_key: bool = True) -> TradingClient:
        """The signed-order client for the configured wallet, with its API key derived (and created if
        there is none, unless `create_key` is False: read-only commands send nothing)."""
        if self._trading is None:
            from pmbot.polymarket.auth import L1Signer
            from pmbot.polymarket.signing import OrderSigner
            from pmbot.polymarket.trading import TradingClient

            s = self.settings
            if s.private_key is None:
                raise ConfigError("trading needs a wallet key", hint="set PMBOT_PRIVATE_KEY in the environment or .env")
            require_secure_endpoints(s)  # before any signed header leaves: never in plaintext off this machine
            key = s.private_key.get_secret_value()
            signer = OrderSigner(key, chain_id=s.chain_id, signature_type=s.signature_type, funder=s.funder)
            l1 = L1Signer(key, s.chain_id, self.clock)
            poster = None
            if self.fast_post:
                from pmbot.polymarket.fastpost import FastPoster

                poster = FastPoster(s.clob_url, limiter=self.limiter, deadline=self.clob_http.deadline)
            self._trading = TradingClient(
                self.clob_http, signer=signer, params=self.params, clock=self.clock, l1=l1, poster=poster
            )
        await self._trading.ensure_creds(create=create_key)
        return self._trading

    # Streams: built here so every caller gets the configured URLs, clock and RNG.

    def market_stream(self, token_ids: Iterable[str] = ()) -> MarketStream:
        from pmbot.polymarket.streams import MarketStream

        # tick_size_change updates the cached tick the signer and the paper checks read
        return MarketStream(
            self.settings.clob_ws_url,
            token_ids,
            clock=self.clock,
            rng=self.rng,
            on_tick_size=self.params.set_tick_size,
        )

    def user_stream(self, markets: Iterable[str] = ()) -> UserStream:
        """Our own orders and trades; call `await trading()` first (it derives the API key)."""
        from pmbot.polymarket.streams import UserStream

        if self._trading is None or self._trading.creds is None:
            raise ConfigError("the user channel needs API credentials: call trading() first")
        return UserStream(self.settings.clob_ws_url, self._trading.creds, markets, clock=self.clock, rng=self.rng)

    def rtds_stream(
        self, subscriptions: Iterable[RtdsSubscription], wallets: Iterable[str] | None = None
    ) -> RtdsStream:
        from pmbot.polymarket.streams import RtdsStream

        return RtdsStream(self.settings.rtds_url, subscriptions, wallets=wallets, clock=self.clock, rng=self.rng)

    def chain_stream(self, wallets: Iterable[str]) -> ChainFillStream:
        from pmbot.polymarket.streams import ChainFillStream

        if not self.settings.rpc_ws_url:
            raise ConfigError("following fills on-chain needs a Polygon WebSocket RPC", hint="set PMBOT_RPC_WS_URL")
        return ChainFillStream(self.settings.rpc_ws_url, wallets, clock=self.clock, rng=self.rng)

    async def aclose(self) -> None:
        if self._trading is not None and self._trading.poster is not None:
            await self._trading.poster.aclose()
        for client in {self.clob_http, self.gamma.http, self.data.http}:
            await client.aclose()

    async def __aenter__(self) -> Venue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def build_venue(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Callable[[], float] = time.time,
    monotonic: Callable[[], float] = time.monotonic,
    rng: random.Random | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float = 10.0,
) -> Venue:
    rng = rng or random.Random()
    limiter = RateLimiter(clock=monotonic, fraction=settings.executor.rate_limit_safety)

    def http(api: str, url: str) -> HttpClient:
        return HttpClient(api, url, limiter=limiter, transport=transport, timeout=timeout, retry=retry, rng=rng)

    clob_http = http("clob", settings.clob_url)
    clob = ClobPublicClient(clob_http)
    return Venue(
        settings=settings,
        limiter=limiter,
        clob_http=clob_http,
        gamma=GammaClient(http("gamma", settings.gamma_url)),
        clob=clob,
        data=DataClient(http("data", settings.data_url)),
        params=MarketParamsCache(clob),
        clock=clock,
        rng=rng,
        fast_post=transport is None,
    )
