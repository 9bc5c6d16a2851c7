"""One HTTP client per Polymarket API (CLOB, Gamma, Data): rate limits, retries, error mapping.

Reads (GET, and POSTs the caller marks idempotent) retry on 429 / 425 / 5xx / timeouts with jittered
exponential backoff, honouring Retry-After. Writes never retry here: an order POST whose answer got
lost may already be on the book, and the venue has no idempotency key. Such a request raises
`OrderStateUnknownError` when it may have been sent, `VenueUnavailableError` when it cannot have been
(the connection was never made).

Bounds, because the venue is not trusted to be sane: every attempt has an overall deadline (httpx's
timeout is per read, so one byte every few seconds would otherwise keep a request alive forever),
and an answer may be at most `max_body` bytes (decoded), checked while it streams in.

The httpx transport is injectable (httpx.MockTransport, ASGI, a custom one) and so is the clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from pmbot.errors import (
    AuthError,
    HeartbeatMismatchError,
    NotFoundError,
    OrderStateUnknownError,
    PostOnlyModeError,
    RateLimitedError,
    VenueError,
    VenueUnavailableError,
    scrub_venue_text,
)
from pmbot.polymarket.ratelimit import RateLimiter, parse_retry_after
from pmbot.polymarket.schemas.common import loads_venue

log = logging.getLogger("pmbot.polymarket.http")

_RETRY_STATUSES = frozenset({425, 429, 500, 502, 503, 504})
# 16 MiB: a deep /book is ~100 kB and a 500-row trades page ~300 kB; more is a broken or hostile venue.
MAX_BODY = 16 * 1024 * 1024
# Cursor paging: more pages than this is a venue that never says "last page".
MAX_PAGES = 500


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 4
    base: float = 0.2  # seconds; doubles each attempt, full jitter
    cap: float = 5.0
    max_retry_after: float = 30.0  # a longer Retry-After is surfaced, not slept through


DEFAULT_RETRY = RetryPolicy()


class _RetryableError(Exception):
    def __init__(self, error: VenueError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def compact_json(body: Any) -> str:
    """The exact text we send and HMAC: Polymarket signs the body byte for byte."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


class HttpClient:
    def __init__(
        self,
        api: str,
        base_url: str,
        *,
        limiter: RateLimiter,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        user_agent: str = "pmbot",
        deadline: float | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.api = api
        self.deadline = deadline if deadline is not None else timeout  # per attempt: connect, send, read it all
        self.max_body = max_body
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.retry = retry
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"User-Agent": user_agent, "Accept": "application/json"},
            # Keep connections warm: a new TLS handshake costs more than the whole order POST.
            limits=httpx.Limits(max_keepalive_connections=20, keepalive_expiry=60),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------------------------ public

    async def get(
        self, path: str, params: Mapping[str, Any] | None = None, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        return await self.request("GET", path, params=params, headers=headers, idempotent=True)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: str | None = None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
        idempotent: bool = False,
        unknown_on_timeout: bool = False,
    ) -> Any:
        """JSON in, JSON out. `headers` may be a callable so signed headers are fresh per attempt."""
        if not idempotent:
            return await self._once(method, path, params, body, headers, unknown_on_timeout)
        wait = self._wait
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.attempts),
            retry=retry_if_exception(lambda e: isinstance(e, _RetryableError)),
            wait=wait,
            reraise=True,
            sleep=self._sleep,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._once(method, path, params, body, headers, False, retryable=True)
        except _RetryableError as final:
            raise final.error from None
        raise AssertionError("unreachable")  # pragma: no cover - tenacity either returns or raises

    # ----------------------------------------------------------------------------------- private

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableError) and exc.retry_after is not None:
            if exc.retry_after > self.retry.max_retry_after:
                raise exc.error
            return exc.retry_after
        ceiling = min(self.retry.cap, self.retry.base * 2 ** (state.attempt_number - 1))
        return self._rng.uniform(0, ceiling)

    async def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | None,
        body: str | None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None,
        unknown_on_timeout: bool,
        *,
        retryable: bool = False,
    ) -> Any:
        await self.limiter.acquire(self.api, method, path)
        hdrs = dict(headers() if callable(headers) else (headers or {}))
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        what = f"{method} {self.api}{path}"
        loop = asyncio.get_running_loop()
        try:
            # The deadline starts when the request starts going out: waiting for a pooled connection
            # (httpx's pool timeout) must not turn an order that was never sent into an unknown one.
            async with asyncio.timeout(None) as deadline:

                async def trace(event: str, info: Mapping[str, Any]) -> None:
                    if event.endswith("send_request_headers.started") and deadline.when() is None:
                        deadline.reschedule(loop.time() + self.deadline)

                request = self._client.build_request(
                    method,
                    path,
                    params=_clean(params),
                    content=body.encode() if body is not None else None,
                    headers=hdrs,
                    extensions={"trace": trace},
                )
                resp = await self._client.send(request, stream=True)
                if deadline.when() is None:  # a transport without traces (mock, ASGI): bound the body at least
                    deadline.reschedule(loop.time() + self.deadline)
                try:
                    await _read_capped(resp, self.max_body)
                finally:
                    await resp.aclose()
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as e:
            # Nothing reached the venue: safe to report as unavailable (and to retry a read).
            err = VenueUnavailableError(f"{what}: cannot connect to {self.base_url} ({type(e).__name__})")
            if retryable:
                raise _RetryableError(err) from None
            raise err from None
        except (httpx.TransportError, TimeoutError) as e:
            why = "no answer within the deadline" if isinstance(e, TimeoutError) else f"no answer ({type(e).__name__})"
            if unknown_on_timeout:
                raise OrderStateUnknownError(f"{what}: {why}; the order may exist") from None
            err = VenueUnavailableError(f"{what}: {why} from {self.base_url}")
            # Not past the deadline: a venue that answered that slowly once would only make a retry
            # wait as long again, and the deadline is meant to bound the whole call.
            if retryable and not isinstance(e, TimeoutError):
                raise _RetryableError(err) from None
            raise err from None
        except _BodyTooLargeError:
            if unknown_on_timeout:
                raise OrderStateUnknownError(f"{what}: answer too large; the order may exist") from None
            raise VenueError(f"{what}: answer larger than {self.max_body // 1_048_576} MB, refused") from None
        if resp.status_code == 429:
            retry_after = _retry_after(resp)
            self.limiter.pause(self.api, method, path, retry_after if retry_after is not None else 1.0)
        if resp.is_success:
            return _json(resp, what)
        error = _error_for(resp, what)
        if retryable and resp.status_code in _RETRY_STATUSES:
            raise _RetryableError(error, _retry_after(resp))
        raise error


class _BodyTooLargeError(Exception):
    pass


async def _read_capped(resp: httpx.Response, limit: int) -> None:
    """Read the body (decoded: a gzip bomb counts at its real size), refusing past `limit` bytes."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit and "content-encoding" not in resp.headers:
        raise _BodyTooLargeError
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise _BodyTooLargeError
    # What Response.aread() does itself; the public API has no capped read.
    resp._content = bytes(buf)


def check_cursor(seen: set[str], cursor: str | None, what: str) -> str | None:
    """For cursor-paging loops: the next cursor, or VenueError when the venue repeats one (an endless
    loop) or pages past MAX_PAGES. `seen` is the loop's own set."""
    if cursor is None:
        return None
    if cursor in seen:
        raise VenueError(f"{what}: the venue repeated page cursor {cursor[:40]!r}; stopped paging")
    if len(seen) >= MAX_PAGES:
        raise VenueError(f"{what}: more than {MAX_PAGES} pages; stopped paging")
    seen.add(cursor)
    return cursor


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop None, send booleans as the lowercase words the APIs expect, lists as repeated keys."""
    if not params:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, list | tuple):
            out[key] = [str(v) for v in value]
        else:
            out[key] = str(value)
    return out


def _json(resp: httpx.Response, what: str) -> Any:
    if not resp.content:
        return None
    try:
        return loads_venue(resp.content, what)
    except VenueError as e:
        e.status = resp.status_code
        raise


def _body(resp: httpx.Response) -> Any:
    """The body as JSON for error handling, or None when it is not (safely) JSON."""
    try:
        return loads_venue(resp.content, "error body") if resp.content else None
    except VenueError:
        return None


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("Retry-After")
    if raw is None:
        body = _body(resp)
        raw = body.get("retry_after_seconds") if isinstance(body, dict) else None
    return parse_retry_after(raw)


def _error_for(resp: httpx.Response, what: str) -> VenueError:
    message = resp.reason_phrase or "error"
    body = _body(resp)
    if isinstance(body, dict):
        message = str(
            body.get("error") or body.get("errorMsg") or body.get("error_msg") or body.get("message") or message
        )
    elif isinstance(body, str):
        message = body
    elif body is None and resp.content:
        message = resp.content[:800].decode(errors="replace")
    # The venue's words end up in orders.error and on screen: no echoed POLY_* header, no secret, short.
    message = scrub_venue_text(message, limit=300)
    status = resp.status_code
    text = f"{what}: {status} {message}"
    err: VenueError
    if status == 429:
        err = RateLimitedError(text, retry_after=_retry_after(resp))
    elif status in (401, 403):
        err = AuthError(text, status=status)
    elif status == 404:
        err = NotFoundError(text, status=status)
    elif status == 400 and isinstance(body, dict) and isinstance(body.get("heartbeat_id"), str):
        err = HeartbeatMismatchError(text, expected_id=scrub_venue_text(body["heartbeat_id"], limit=200))
    elif status == 503 and isinstance(body, dict) and body.get("code") == "post_only_mode":
        err = PostOnlyModeError(text, status=status)  # a definite refusal: nothing was placed
    elif status >= 500 or status == 425:
        err = VenueUnavailableError(text, status=status)
    else:
        err = VenueError(text, status=status)
    err.detail = message
    return err
