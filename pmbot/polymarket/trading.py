"""CLOB trading: API-key derivation (L1), order building and signing, POST /order(s), cancels,
open orders and trade history (L2).

The rule that matters for money: a POST /order is sent exactly once. Nothing here retries it; if its
answer is lost the caller gets `OrderStateUnknownError` and must reconcile via `open_orders` /
`trades` (the order hash is known before sending, so reconciliation can match it exactly).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx

from pmbot.errors import (
    AuthError,
    HeartbeatMismatchError,
    NotFoundError,
    OrderStateUnknownError,
    PostOnlyModeError,
    RateLimitedError,
    VenueError,
    VenueUnavailableError,
)
from pmbot.polymarket.auth import L1Signer, creds_from, l2_headers
from pmbot.polymarket.http import HttpClient, _error_for, check_cursor, compact_json
from pmbot.polymarket.models import (
    ApiCreds,
    CancelResult,
    MarketParams,
    OpenOrder,
    OrderAck,
    OrderType,
    Side,
    UserTrade,
)
from pmbot.polymarket.params import MarketParamsCache
from pmbot.polymarket.schemas import rest
from pmbot.polymarket.schemas.common import loads_venue
from pmbot.polymarket.schemas.refusals import explain_refusal
from pmbot.polymarket.signing import (
    SIDE_BUY,
    SIDE_SELL,
    OrderSigner,
    SignedOrder,
    buy_spend,
    limit_amounts,
    market_amounts,
)

if TYPE_CHECKING:
    from pmbot.polymarket.balances import BalanceAllowance
    from pmbot.polymarket.fastpost import FastPoster

MAX_BATCH = 15  # POST /orders accepts at most 15 orders (docs: trading/orders/create)
_AHEAD_MAX = 4096  # L2 header sets kept ahead (armed orders × seconds: a handful in practice)
_START_CURSOR = "MA=="  # base64 "0"


@dataclass(frozen=True, slots=True)
class PreparedPost:
    """A signed order's POST /order body, serialized once (at arm time for a pre-armed order): sending it
    costs only the HMAC headers and the write."""

    order_hash: str
    text: str  # the exact JSON we send and HMAC
    body: bytes


def tick_text(tick: Decimal) -> str:
    """0.01 / 0.010 / 1E-2 all mean the tick "0.01" the amount tables are keyed by."""
    return format(tick.normalize(), "f")


class TradingClient:
    def __init__(
        self,
        http: HttpClient,
        *,
        signer: OrderSigner,
        params: MarketParamsCache,
        clock: Callable[[], float],
        l1: L1Signer | None = None,
        creds: ApiCreds | None = None,
        poster: FastPoster | None = None,
    ) -> None:
        self.http = http
        # The lean POST /order path (kept-alive connections, one write); None: POSTs go through `http`.
        self.poster = poster
        self.signer = signer
        self.params = params
        self._clock = clock
        self._l1 = l1
        self.creds = creds
        # L2 headers of prepared POSTs worked out ahead (`headers_ahead`): (body text, timestamp second) →
        # (the credentials and address they were made with, the headers)
        self._ahead: dict[tuple[str, int], tuple[ApiCreds, str, dict[str, str]]] = {}

    # ------------------------------------------------------------------------------------- auth

    async def ensure_creds(self, nonce: int = 0, *, create: bool = True) -> ApiCreds:
        """Derive the wallet's existing API key; create one only if there is none (and `create`)."""
        if self.creds is not None:
            return self.creds
        if self._l1 is None:
            raise AuthError("no API credentials and no wallet key to derive them")
        l1 = self._l1
        try:
            raw = await self.http.request(
                "GET", "/auth/derive-api-key", headers=lambda: l1.headers(nonce), idempotent=True
            )
        except VenueError as e:
            if isinstance(e, AuthError | RateLimitedError) or (e.status or 0) >= 500:
                raise
            if not create:
                if isinstance(e, VenueUnavailableError) or not 400 <= (e.status or 0) < 500:
                    raise  # could not ask (or an odd answer): not "there is no key"
                raise AuthError(
                    "this wallet has no CLOB API key yet (read-only: none was created)",
                    hint="the first live order creates one",
                ) from e
            raw = await self.http.request("POST", "/auth/api-key", headers=lambda: l1.headers(nonce))
        self.creds = creds_from(raw)
        return self.creds

    def _creds(self) -> ApiCreds:
        if self.creds is None:
            raise AuthError("API credentials are not loaded (call ensure_creds first)")
        return self.creds

    def _signed(self, method: str, path: str, body: str | None) -> Callable[[], dict[str, str]]:
        creds = self._creds()
        address = self.signer.address
        return lambda: l2_headers(address, creds, method, path, body, int(self._clock()))

    async def _private(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        idempotent: bool = False,
        unknown_on_timeout: bool = False,
    ) -> Any:
        text = compact_json(body) if body is not None else None
        return await self.http.request(
            method,
            path,
            params=params,
            body=text,
            headers=self._signed(method, path, text),
            idempotent=idempotent,
            unknown_on_timeout=unknown_on_timeout,
        )

    async def balance_allowance(self, asset_type: str, token_id: str | None = None) -> BalanceAllowance:
        """GET /balance-allowance for this wallet (see pmbot.polymarket.balances)."""
        from pmbot.polymarket.balances import balance_allowance

        return await balance_allowance(self, asset_type, token_id)

    # ----------------------------------------------------------------------------------- orders

    async def build_order(
        self,
        token_id: str,
        side: Side,
        price: Decimal,
        size: Decimal,
        *,
        order_type: OrderType = OrderType.GTC,
        expiration_s: int = 0,
        params: MarketParams | None = None,
    ) -> SignedOrder:
        """Sign an order. For FOK/FAK `size` is shares like a limit order; the amounts follow the
        market-order rules (USDC for a BUY, 2 dp maker / 4 dp taker) with `price` as the worst price:
        a marketable BUY spends `buy_spend(size, price)` USDC (see there), a SELL sells `size` shares.
        `params`: the token's market parameters when the caller holds them already (the executor)."""
        if params is None or params.token_id != token_id:
            params = await self.params.get(token_id)
        tick = tick_text(params.tick_size)
        side_int = SIDE_BUY if side is Side.BUY else SIDE_SELL
        if order_type in (OrderType.FOK, OrderType.FAK):
            amount = buy_spend(size, price) if side is Side.BUY else size
            amounts = market_amounts(side_int, amount, price, tick)
        else:
            amounts = limit_amounts(side_int, price, size, tick)
        return self.signer.sign(
            token_id,
            side_int,
            amounts,
            neg_risk=params.neg_risk,
            timestamp_ms=int(self._clock() * 1000),
            expiration=expiration_s if order_type is OrderType.GTD else 0,
        )

    def prepare_post(
        self, order: SignedOrder, order_type: OrderType, *, post_only: bool = False, defer_exec: bool = False
    ) -> PreparedPost:
        wire = order.to_wire(self._creds().api_key, order_type.value, post_only=post_only, defer_exec=defer_exec)
        text = compact_json(wire)
        return PreparedPost(order.order_hash, text, text.encode())

    async def post_order(
        self, order: SignedOrder, order_type: OrderType, *, post_only: bool = False, defer_exec: bool = False
    ) -> OrderAck:
        """Send once. A venue refusal (400) is an OrderAck with accepted=False and the venue's reason;
        a lost answer is OrderStateUnknownError; 429/425/401 raise (the order was not placed)."""
        return await self.post_prepared(
            self.prepare_post(order, order_type, post_only=post_only, defer_exec=defer_exec)
        )

    async def prewarm(self, n: int = 1) -> int:
        """Open the order path's connections now (TCP + TLS), so the next POST pays neither. Returns how
        many are ready (0 without the lean path: httpx opens its own on first use)."""
        return await self.poster.prewarm(n) if self.poster is not None else 0

    async def post_prepared(self, prep: PreparedPost) -> OrderAck:
        """POST a prepared body once (see `post_order`)."""
        try:
            if self.poster is None:
                raw = await self.http.request(
                    "POST",
                    "/order",
                    body=prep.text,
                    headers=self._signed("POST", "/order", prep.text),
                    unknown_on_timeout=True,
                )
            else:
                raw = await self._fast_post(prep)
        except VenueError as e:
            return self._refusal(e, prep.order_hash)
        try:
            ack = rest.order_ack(raw)
        except VenueError as e:  # the venue took the request; what it said cannot be read
            raise OrderStateUnknownError(f"POST /order answer unreadable ({e.message}); the order may exist") from e
        return ack if ack.order_id else replace(ack, order_id=prep.order_hash)

    def headers_ahead(self, preps: Iterable[PreparedPost], *, seconds: int = 2) -> int:
        """Work out the L2 headers of prepared POSTs (armed orders) for this second and the next
        `seconds - 1`, so that firing one in those seconds costs no HMAC. The HMAC covers the timestamp
        (whole seconds), method, path and the exact body; an armed order's body is fixed, so these are
        exactly the headers the POST would compute itself in that second. It uses them only if they were
        made with the credentials and address it would use (else, or in a second not worked out, it
        computes its own, as always). Seconds already past are dropped. Returns how many were computed."""
        creds = self.creds
        if creds is None or self.poster is None:
            return 0
        now = int(self._clock())
        ahead = self._ahead
        for key in [k for k in ahead if k[1] < now]:
            del ahead[key]
        address = self.signer.address
        n = 0
        for prep in preps:
            for ts in range(now, now + seconds):
                key = (prep.text, ts)
                hit = ahead.get(key)
                if hit is not None and hit[0] is creds and hit[1] == address:
                    continue
                if len(ahead) >= _AHEAD_MAX:
                    return n
                ahead[key] = (creds, address, l2_headers(address, creds, "POST", "/order", prep.text, ts))
                n += 1
        return n

    def _post_headers(self, prep: PreparedPost) -> dict[str, str]:
        """The L2 headers of POST /order with `prep`'s body, now: worked out ahead when they were (see
        `headers_ahead`), else computed here."""
        creds = self._creds()
        address = self.signer.address
        ts = int(self._clock())
        hit = self._ahead.pop((prep.text, ts), None)  # an order is sent once: its entry is not needed again
        if hit is not None and hit[0] is creds and hit[1] == address:
            return hit[2]
        return l2_headers(address, creds, "POST", "/order", prep.text, ts)

    async def _fast_post(self, prep: PreparedPost) -> Any:
        assert self.poster is not None
        headers = self._post_headers(prep)
        answer = await self.poster.post("/order", prep.body, headers)
        what = "POST clob/order"
        if 200 <= answer.status < 300:
            if not answer.body:
                return None
            try:
                return loads_venue(answer.body, what)
            except VenueError as e:
                e.status = answer.status
                raise
        # The error path only: the same mapping and scrubbing of the venue's words as every other request.
        resp = httpx.Response(answer.status, headers=answer.headers, content=answer.body)
        raise _error_for(resp, what)

    async def post_orders(self, orders: list[tuple[SignedOrder, OrderType]]) -> list[OrderAck]:
        if not orders:
            return []
        if len(orders) > MAX_BATCH:
            raise VenueError(f"POST /orders takes at most {MAX_BATCH} orders, got {len(orders)}")
        api_key = self._creds().api_key
        wire = [o.to_wire(api_key, t.value) for o, t in orders]
        try:
            raw = await self._private("POST", "/orders", body=wire, unknown_on_timeout=True)
        except VenueError as e:
            return [self._refusal(e, o.order_hash) for o, _ in orders]
        rows = rest._rows(raw, "orders response")
        acks = [rest.order_ack(r) for r in rows]
        return [a if a.order_id else replace(a, order_id=o.order_hash) for a, (o, _) in zip(acks, orders, strict=False)]

    @staticmethod
    def _refusal(error: VenueError, order_hash: str) -> OrderAck:
        status = error.status or 0
        if (
            isinstance(error, OrderStateUnknownError | RateLimitedError | AuthError | PostOnlyModeError)
            or status == 425
        ):
            # not placed (425: the matching engine is restarting; post-only mode): the caller may send it again
            raise error
        if isinstance(error, VenueUnavailableError) and error.status is None:
            # could not connect (POST timeouts after connecting are OrderStateUnknownError): nothing was sent
            raise error
        if not 400 <= status < 500:
            # 5xx ("could not insert order"), or a 2xx whose body was unreadable: the venue may hold it.
            raise OrderStateUnknownError(f"{error.message}; the order may exist") from error
        return OrderAck(
            accepted=False,
            order_id=order_hash,
            status="rejected",
            making_amount=None,
            taking_amount=None,
            error=explain_refusal(error.detail or error.message),
        )

    async def heartbeat(self, heartbeat_id: str = "") -> str:
        """POST /v1/heartbeats once; returns the id to send with the next beat ("" for the first). The
        venue answers a stale id with 400 {"error_msg": "Invalid Heartbeat ID", "heartbeat_id": expected}
        (polymarket-client `OrderHeartbeatMismatchError`): the beat is sent again at once with that id
        (e.g. after a restart within 10 s of the previous process's last beat); a second refusal raises."""
        try:
            raw = await self._private("POST", "/v1/heartbeats", body={"heartbeat_id": heartbeat_id})
        except HeartbeatMismatchError as e:
            raw = await self._private("POST", "/v1/heartbeats", body={"heartbeat_id": e.expected_id})
        next_id = raw.get("heartbeat_id") if isinstance(raw, dict) else None
        if not isinstance(next_id, str) or not next_id:
            raise VenueError("POST /v1/heartbeats: answer has no heartbeat_id")
        return next_id

    # ---------------------------------------------------------------------------------- cancels

    async def cancel(self, order_id: str) -> CancelResult:
        return rest.cancel_result(await self._private("DELETE", "/order", body={"orderID": order_id}))

    async def cancel_many(self, order_ids: list[str]) -> CancelResult:
        return rest.cancel_result(await self._private("DELETE", "/orders", body=list(order_ids)))

    async def cancel_all(self) -> CancelResult:
        return rest.cancel_result(await self._private("DELETE", "/cancel-all"))

    async def cancel_market(self, *, market: str | None = None, token_id: str | None = None) -> CancelResult:
        body = {k: v for k, v in (("market", market), ("asset_id", token_id)) if v}
        return rest.cancel_result(await self._private("DELETE", "/cancel-market-orders", body=body))

    # ---------------------------------------------------------------------------------- queries

    async def _pages(self, path: str, params: dict[str, Any]) -> list[Any]:
        rows: list[Any] = []
        cursor: str | None = _START_CURSOR
        seen: set[str] = set()  # a venue that repeats a cursor (or never ends) must not page forever
        while (cursor := check_cursor(seen, cursor, path)) is not None:
            raw = await self._private("GET", path, params={**params, "next_cursor": cursor}, idempotent=True)
            page, cursor = rest.page(raw, path)
            rows.extend(page)
        return rows

    async def open_orders(
        self, *, market: str | None = None, token_id: str | None = None, order_id: str | None = None
    ) -> list[OpenOrder]:
        rows = await self._pages("/data/orders", {"market": market, "asset_id": token_id, "id": order_id})
        return [rest.open_order(r) for r in rows]

    async def order(self, order_id: str) -> OpenOrder | None:
        try:
            raw = await self._private("GET", f"/data/order/{order_id}", idempotent=True)
        except NotFoundError:
            return None
        return rest.open_order(raw) if raw else None

    async def trades(
        self,
        *,
        market: str | None = None,
        token_id: str | None = None,
        after_s: int | None = None,
        before_s: int | None = None,
    ) -> list[UserTrade]:
        rows = await self._pages(
            "/data/trades", {"market": market, "asset_id": token_id, "after": after_s, "before": before_s}
        )
        return [rest.user_trade(r) for r in rows]
