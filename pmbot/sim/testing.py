"""`SimServer`: the sim on a free 127.0.0.1 port, in a background thread with its own event loop.

Usable from sync and async tests alike (all control calls are thread-safe: they run on the sim's
loop and wait for the result). In tests use the `sim` / `sim_env` fixtures from tests/conftest.py:

    def test_book(sim: SimServer) -> None:
        token = sim.current_market()["token_ids"][0]
        book = httpx.get(f"{sim.url}/book", params={"token_id": token}).json()

    def test_client(sim_env: SimServer) -> None:      # PMBOT_* env now points at the sim
        ...

API (exact signatures):

    SimServer(*, seed: int = 7, start: float = DEFAULT_START, speed: float = 1.0, manual: bool = True,
              scenario: str | Path | None = None, faults: dict | None = None, host: str = "127.0.0.1",
              port: int = 0)
    .start() -> SimServer            .stop() -> None            with SimServer() as sim: ...
    .url -> str   "http://127.0.0.1:P"       .ws_url -> str   "ws://127.0.0.1:P"      .port -> int
    .env() -> dict[str, str]         PMBOT_CLOB_URL, PMBOT_GAMMA_URL (…/gamma), PMBOT_DATA_URL (…/data-api),
                                     PMBOT_CLOB_WS_URL (…/ws), PMBOT_RTDS_URL (…/rtds), PMBOT_RPC_WS_URL (…/rpc)
    .now() -> float                  sim time, epoch seconds
    .advance(seconds: float) -> None manual clock: move time, run every simulated second (whale trades,
                                     requotes, resolutions, trade MATCHED→MINED (+2 s, OrderFilled logs)
                                     →CONFIRMED (+6 s)) before returning
    .set_faults(**changes) -> dict   e.g. set_faults(rate_limit=2, retry_after=3, rate_limit_path="/book"),
                                     server_error=N, latency_ms=N, drop_order_responses=N,
                                     ws_drop_every=seconds, ws_malformed_every=N, fak_live=N (FOK/FAK
                                     answered "live", settled a second later), trade_fail=N (trades
                                     revert on-chain: FAILED), api_key_create_fail=N, api_key_derive_fail=N
    .clear_faults() -> None
    .fund(address, pusd=None, shares=None) -> None   set a wallet's pUSD and/or {token_id: shares}
                                     (every wallet starts with venue.DEFAULT_PUSD and no shares; the sim
                                     refuses orders a wallet cannot cover, like the venue)
    .split(address, condition_id, amount) -> None    CTF split: `amount` pUSD → `amount` of each outcome
    .creds(address: str, nonce: int = 0) -> dict[str, str]   L2 creds {"apiKey","secret","passphrase"} that
                                     the sim accepts for that wallet (same as POST /auth/api-key returns)
    .markets() -> list[dict]         [{"slug","condition_id","token_ids":[up, down],"start","end","closed",
                                     "winner","price_to_beat"}], oldest first
    .current_market() -> dict        the window open now (same keys)
    .whale_address -> str            checksummed proxy wallet of `distinct-baguette`
    .state() -> dict                 same as GET /_sim/state
    .book(token_id: str) -> dict | None      REST /book body
    .received_orders() -> list[dict] raw POST /order bodies that passed auth + signature checks
    .open_orders() -> list[dict]     /data/orders rows of every API key
    .trades() -> list[dict]          every trade (taker view rows, like /data/trades)
    .chain_logs() -> list[dict]      every OrderFilled log emitted so far
    .call(fn: Callable[[Venue], T]) -> T     run fn(venue) on the sim loop (escape hatch)

Default `start` (1_795_000_000 = 2026-11-18 06:06:40 ET) is 400 s into a window, so the current
market has 500 s left; the fixture seed is 7.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from pmbot.sim import env_lines
from pmbot.sim.faults import Faults
from pmbot.sim.venue import Venue

T = TypeVar("T")
DEFAULT_START = 1_795_000_000.0


class SimServer:
    def __init__(
        self,
        *,
        seed: int = 7,
        start: float = DEFAULT_START,
        speed: float = 1.0,
        manual: bool = True,
        scenario: str | Path | None = None,
        faults: dict[str, Any] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.seed, self.start_ts, self.speed, self.manual = seed, start, speed, manual
        self.scenario, self.host, self._port_wanted = scenario, host, port
        self._faults = Faults()
        if faults:
            self._faults.update(faults)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self.venue: Venue | None = None
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> SimServer:
        from pmbot.sim.factory import make_venue
        from pmbot.sim.server.app import bind

        self.venue = make_venue(
            scenario=self.scenario,
            seed=self.seed,
            start=self.start_ts,
            speed=self.speed,
            manual=self.manual,
            faults=self._faults,
        )
        sock = bind(self.host, self._port_wanted)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(sock, ready), name="pmbot-sim", daemon=True)
        self._thread.start()
        ready.result(timeout=10)
        return self

    def _run(self, sock: Any, ready: Future[None]) -> None:
        from pmbot.sim.server.app import start

        loop = self._loop
        assert loop is not None
        assert self.venue is not None
        asyncio.set_event_loop(loop)
        try:
            self._runner = loop.run_until_complete(start(self.venue, sock))
        except BaseException as e:
            ready.set_exception(e)
            return
        ready.set_result(None)
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def env(self) -> dict[str, str]:
        return env_lines(self.host, self.port)

    # -- control -------------------------------------------------------------------------------
    def call(self, fn: Callable[[Venue], T]) -> T:
        """Run fn(venue) on the sim's loop thread and return its result."""
        if self._loop is None or self.venue is None:
            raise RuntimeError("SimServer is not running")
        venue = self.venue

        async def run() -> T:
            return fn(venue)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def now(self) -> float:
        return self.call(lambda v: v.clock.now())

    def advance(self, seconds: float) -> None:
        self.call(lambda v: v.advance(seconds))

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        def apply(v: Venue) -> dict[str, Any]:
            v.faults.update(changes)
            return v.faults.as_dict()

        return self.call(apply)

    def clear_faults(self) -> None:
        self.call(lambda v: v.faults.clear())

    def fund(self, address: str, *, pusd: Any = None, shares: dict[str, Any] | None = None) -> None:
        from decimal import Decimal

        amounts = {t: Decimal(str(n)) for t, n in (shares or {}).items()}
        cash = Decimal(str(pusd)) if pusd is not None else None
        self.call(lambda v: v.credit(address, pusd=cash, shares=amounts))

    def split(self, address: str, condition_id: str, amount: Any) -> None:
        from decimal import Decimal

        self.call(lambda v: v.split(address, condition_id, Decimal(str(amount))))

    def creds(self, address: str, nonce: int = 0) -> dict[str, str]:
        return self.call(lambda v: v.api_keys.derive(address, nonce).creds())

    def state(self) -> dict[str, Any]:
        return self.call(lambda v: v.summary())

    def markets(self) -> list[dict[str, Any]]:
        return list(self.state()["markets"])

    def current_market(self) -> dict[str, Any]:
        state = self.state()
        return next(m for m in state["markets"] if m["slug"] == state["current_market"])

    @property
    def whale_address(self) -> str:
        return self.call(lambda v: v.whale.address)

    def book(self, token_id: str) -> dict[str, Any] | None:
        def get(v: Venue) -> dict[str, Any] | None:
            snap = v.book_snapshot(token_id)
            return snap.rest_dict() if snap else None

        return self.call(get)

    def received_orders(self) -> list[dict[str, Any]]:
        return self.call(lambda v: list(v.received_orders))

    def open_orders(self) -> list[dict[str, Any]]:
        from pmbot.sim.messages import order_row

        return self.call(lambda v: [order_row(o) for o in v.engine.live_orders()])

    def trades(self) -> list[dict[str, Any]]:
        from pmbot.sim.messages import trade_row

        return self.call(lambda v: [trade_row(t, t.taker.owner) for t in v.engine.trades.values() if t.head is t])

    def chain_logs(self) -> list[dict[str, Any]]:
        return self.call(lambda v: list(v.chain_logs))


HARDHAT_KEYS = (
    # Hardhat's public test accounts #0-#2: well known, hold nothing. For tests only.
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3d0f5b9e8e6ebf70",
)


class SimTrader:
    """A wallet trading on a SimServer over real HTTP, for tests: signs orders with
    pmbot.polymarket.signing (which the sim verifies independently) and L2 headers with
    polymarket-client's HMAC (the official SDK, a dev dependency: tests only).

        t = SimTrader(sim, HARDHAT_KEYS[0])
        resp = t.post_order(token, "BUY", Decimal("0.55"), Decimal("10"))          # GTC limit
        resp = t.post_order(token, "BUY", Decimal("0.99"), amount=Decimal("20"), order_type="FOK")  # $20 market
        rows = t.get("/data/orders").json()["data"]
    """

    def __init__(self, sim: SimServer, private_key: str, *, nonce: int = 0) -> None:
        import httpx

        from pmbot.polymarket.signing import OrderSigner

        self.sim = sim
        self.signer = OrderSigner(private_key)
        self.address = self.signer.address
        self.creds = sim.creds(self.address, nonce)
        self.http = httpx.Client(base_url=sim.url, timeout=10)
        self._ts = 1_700_000_000_000

    def l2_headers(self, method: str, path: str, body: str = "") -> dict[str, str]:
        from polymarket._internal.hmac import build_hmac_signature

        ts = int(self.sim.now())
        sig = build_hmac_signature(
            secret=self.creds["secret"], timestamp=ts, method=method, path=path, body=body or None
        )
        return {
            "POLY_ADDRESS": self.address,
            "POLY_SIGNATURE": sig,
            "POLY_TIMESTAMP": str(ts),
            "POLY_API_KEY": self.creds["apiKey"],
            "POLY_PASSPHRASE": self.creds["passphrase"],
            "Content-Type": "application/json",
        }

    def order_body(
        self,
        token_id: str,
        side: str,
        price: Any,
        size: Any = None,
        *,
        amount: Any = None,
        order_type: str = "GTC",
        post_only: bool = False,
        expiration: int = 0,
        tick: str = "0.01",
    ) -> dict[str, Any]:
        """Signed V2 wire body. Limit orders take `size` shares; FOK/FAK take `amount` (USDC to spend
        for BUY, shares for SELL) with `price` as the worst acceptable price."""
        from pmbot.polymarket.signing import SIDE_BUY, SIDE_SELL, limit_amounts, market_amounts

        s = SIDE_BUY if side == "BUY" else SIDE_SELL
        amounts = market_amounts(s, amount, price, tick) if amount is not None else limit_amounts(s, price, size, tick)
        self._ts += 1
        signed = self.signer.sign(token_id, s, amounts, timestamp_ms=self._ts, salt=self._ts, expiration=expiration)
        return signed.to_wire(self.creds["apiKey"], order_type, post_only=post_only)

    def request(self, method: str, path: str, payload: Any = None, params: dict[str, str] | None = None) -> Any:
        import json

        body = "" if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        return self.http.request(
            method, path, content=body or None, params=params, headers=self.l2_headers(method, path, body)
        )

    def post_order(self, token_id: str, side: str, price: Any, size: Any = None, **kw: Any) -> Any:
        return self.request("POST", "/order", self.order_body(token_id, side, price, size, **kw))

    def get(self, path: str, **params: str) -> Any:
        return self.request("GET", path, params=params or None)

    def close(self) -> None:
        self.http.close()
