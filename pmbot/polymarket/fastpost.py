"""The order POST's own lean HTTP/1.1 path: kept-alive connections to one venue host, each request's head
and body in one write, a minimal response parse.

Why not httpx here: on the order path httpx spends ~400 µs from `request()` to the first socket write
(request building, URL merge, the pool, h11, headers and body in two writes); measured on this machine,
order in hand → the sim receives it, p50: httpx 433 µs, aiohttp 297 µs, this module ~180 µs. aiohttp's
client is the lighter library but still builds a ClientRequest, a connector lease and a tracing context
per call, and writes head and body separately; what an order POST needs is small and fixed (one path,
JSON in and out, keep-alive), so it is written out here. Everything else (reads, cancels, auth) stays
on httpx (`pmbot.polymarket.http`).

The rules it keeps from `HttpClient`:
- https for any non-loopback host (TLS verified with the system's trust store, ALPN http/1.1);
- an overall deadline from the write to the last byte of the answer, and a connect timeout;
- the answer is capped (`max_body`), head and body, while it streams in;
- the venue's rate-limit buckets are taken before sending, and a 429 pauses them;
- error text from the venue is mapped and scrubbed by `http._error_for` (no echoed POLY_* header).

And the one rule that matters for money, exactly: an error before the request was written (no connection,
TLS failure, a connection that had closed) raises `VenueUnavailableError` with no status: **not sent**.
Anything after the write (reset, timeout, an unreadable or oversized answer) raises
`OrderStateUnknownError`: **maybe sent**, the caller reconciles. A request is never re-sent here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pmbot.config import is_loopback_host
from pmbot.errors import ConfigError, OrderStateUnknownError, VenueUnavailableError
from pmbot.polymarket.ratelimit import RateLimiter, parse_retry_after

log = logging.getLogger("pmbot.polymarket.fastpost")

MAX_ANSWER = 1024 * 1024  # an order answer is ~300 bytes; 1 MiB is a broken or hostile venue
MAX_HEAD = 64 * 1024
# Most servers close an idle keep-alive connection after 60-120 s (aiohttp 75 s, nginx 75 s, Cloudflare
# ~100 s): a connection idle longer than this is not used, the warmer replaces it before that.
IDLE_S = 30.0
# At most this many requests in flight per host; more wait for a free connection *before* anything is
# written (so the wait is neither "maybe sent" nor counted in the deadline), as httpx's pool does.
MAX_CONNECTIONS = 32


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class _BadAnswerError(Exception):
    pass


class _Conn(asyncio.Protocol):
    """One kept-alive connection: at most one request at a time (no pipelining)."""

    def __init__(self, max_body: int) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.used_at = time.monotonic()
        self._buf = bytearray()
        self._waiter: asyncio.Future[Answer] | None = None
        self._max_body = max_body
        self._head: tuple[int, str, dict[str, str], int] | None = None  # status, reason, headers, body start
        self.keep_alive = True

    # -- asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # a write transport (asyncio's, or uvloop's, which does not subclass asyncio.Transport)
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # unasked-for bytes on an idle connection (a 408, garbage): drop it
            self.close()
            return
        self._buf += data
        try:
            answer = self._parse(eof=False)
        except _BadAnswerError as e:
            self._fail(e)
            return
        if answer is not None:
            self._done(answer)

    def eof_received(self) -> bool | None:
        if self._waiter is not None:
            try:
                answer = self._parse(eof=True)
            except _BadAnswerError as e:
                self._fail(e)
                return None
            if answer is not None:
                self.keep_alive = False
                self._done(answer)
        self.closed = True
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(exc or ConnectionResetError("connection closed"))

    # -- use
    @property
    def usable(self) -> bool:
        t = self.transport
        return not self.closed and t is not None and not t.is_closing()

    def send(self, data: bytes) -> asyncio.Future[Answer]:
        """Write the whole request at once; the future resolves with the answer."""
        assert self.transport is not None
        assert self._waiter is None
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        self._buf.clear()
        self._head = None
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def _done(self, answer: Answer) -> None:
        waiter, self._waiter = self._waiter, None
        self.used_at = time.monotonic()
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def _fail(self, exc: BaseException) -> None:
        waiter, self._waiter = self._waiter, None
        if not self.closed:
            self.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _parse(self, *, eof: bool) -> Answer | None:
        buf = self._buf
        if self._head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > MAX_HEAD:
                    raise _BadAnswerError("answer head too large")
                if eof:
                    raise _BadAnswerError("connection closed before the answer's head")
                return None
            lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise _BadAnswerError("not an HTTP/1.x answer")
            status = int(parts[1])
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, sep, value = line.partition(":")
                if not sep:
                    raise _BadAnswerError("malformed answer header")
                headers[name.strip().lower()] = value.strip()
            if 100 <= status < 200:  # an interim answer (we never send Expect): skip it
                del buf[: end + 4]
                return self._parse(eof=eof)
            conn = headers.get("connection", "").lower()
            self.keep_alive = parts[0] != "HTTP/1.0" and "close" not in conn
            self._head = (status, parts[2] if len(parts) > 2 else "", headers, end + 4)
        status, reason, headers, start = self._head
        body: bytes | None
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._dechunk(start, eof)
        elif "content-length" in headers:
            raw = headers["content-length"]
            if not raw.isdigit():
                raise _BadAnswerError("bad Content-Length")
            n = int(raw)
            if n > self._max_body:
                raise _BadAnswerError("answer too large")
            body = bytes(buf[start : start + n]) if len(buf) - start >= n else None
            if body is None and eof:
                raise _BadAnswerError("connection closed inside the answer")
            if len(buf) - start > n:  # bytes past the answer: this connection is out of step, not reused
                self.keep_alive = False
        elif status in (204, 304):
            body = b""
        else:  # delimited by the close
            if len(buf) - start > self._max_body:
                raise _BadAnswerError("answer too large")
            body = bytes(buf[start:]) if eof else None
            self.keep_alive = False
        if body is None:
            return None
        return Answer(status, reason, headers, body)

    def _dechunk(self, pos: int, eof: bool) -> bytes | None:
        buf, out = self._buf, bytearray()
        while True:
            line_end = buf.find(b"\r\n", pos)
            if line_end < 0:
                if len(buf) - pos > 1024:
                    raise _BadAnswerError("bad chunk")
                break
            size_text = bytes(buf[pos:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadAnswerError("bad chunk size") from None
            if size == 0:
                trailer_end = buf.find(b"\r\n\r\n", line_end)  # optional trailers, then the empty line
                if buf[line_end : line_end + 4] == b"\r\n\r\n" or trailer_end >= 0:
                    return bytes(out)
                break
            if len(out) + size > self._max_body:
                raise _BadAnswerError("answer too large")
            start = line_end + 2
            if len(buf) < start + size + 2:
                break
            out += buf[start : start + size]
            pos = start + size + 2
        if eof:
            raise _BadAnswerError("connection closed inside a chunked answer")
        return None


class FastPoster:
    """POSTs to one venue host over kept-alive connections. `prewarm()` opens them ahead of time and
    `keep_warm()` keeps them open (re-opening what the server closes or what idled too long)."""

    def __init__(
        self,
        base_url: str,
        *,
        limiter: RateLimiter | None = None,
        api: str = "clob",
        deadline: float = 10.0,
        connect_timeout: float | None = None,
        max_body: int = MAX_ANSWER,
        user_agent: str = "pmbot",
        idle_s: float = IDLE_S,
        ssl_context: ssl.SSLContext | None = None,
        rng: random.Random | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {base_url!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ConfigError("orders go over https:// to any host but this machine", hint="fix PMBOT_CLOB_URL")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        default_port = self.port == (443 if self.tls else 80)
        host_header = self.host if ":" not in self.host else f"[{self.host}]"
        self._host_header = host_header if default_port else f"{host_header}:{self.port}"
        self._prefix = parts.path.rstrip("/")
        self.api = api
        self.limiter = limiter
        self.deadline = deadline
        self.connect_timeout = connect_timeout if connect_timeout is not None else deadline
        self.max_body = max_body
        self.idle_s = idle_s
        self._ua = user_agent
        self._ssl: ssl.SSLContext | None = None
        if self.tls:
            self._ssl = ssl_context or ssl.create_default_context()
            self._ssl.set_alpn_protocols(["http/1.1"])
        self._idle: list[_Conn] = []
        self._fixed_heads: dict[str, str] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._warm_target = 0
        self._warmer: asyncio.Task[None] | None = None
        self._rng = rng or random.Random()
        self._failures = 0
        self._closed = False
        self.connects = 0  # connections opened (tests, metrics)

    # ------------------------------------------------------------------------------ connections

    async def _connect(self) -> _Conn:
        loop = asyncio.get_running_loop()
        max_body = self.max_body
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(max_body),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except (OSError, TimeoutError, ssl.SSLError) as e:
            self._failures += 1
            raise VenueUnavailableError(
                f"POST {self.api}: cannot connect to {self.host}:{self.port} ({type(e).__name__})"
            ) from None
        self._failures = 0
        self.connects += 1
        sock = conn.transport.get_extra_info("socket") if conn.transport is not None else None
        if sock is not None:
            import socket as _socket

            with contextlib.suppress(OSError):
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        return conn

    def _take_idle(self) -> _Conn | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and now - conn.used_at < self.idle_s:
                return conn
            conn.close()
        return None

    async def prewarm(self, n: int = 1) -> int:
        """Open connections until `n` are idle and ready (TLS done). Returns how many are ready; a host
        that cannot be reached raises VenueUnavailableError."""
        self._warm_target = max(self._warm_target, n)
        fresh = [c for c in self._idle if c.usable and time.monotonic() - c.used_at < self.idle_s]
        for c in self._idle:
            if c not in fresh:
                c.close()
        self._idle = fresh
        while len(self._idle) < n:
            self._idle.append(await self._connect())
        return len(self._idle)

    def keep_warm(self, n: int = 1, *, every_s: float = 1.0) -> None:
        """Background: keep `n` connections open and fresh until `aclose()`; after a failed connect it
        backs off (jittered, doubling up to 30 s)."""
        self._warm_target = max(self._warm_target, n)
        if self._warmer is None or self._warmer.done():
            self._warmer = asyncio.ensure_future(self._warm_loop(every_s))

    async def _warm_loop(self, every_s: float) -> None:
        while not self._closed:
            try:
                # re-open a little before the idle limit so the hot path never finds a stale one
                now = time.monotonic()
                for c in list(self._idle):
                    if not c.usable or now - c.used_at > self.idle_s * 0.8:
                        self._idle.remove(c)
                        c.close()
                await self.prewarm(self._warm_target)
                wait = every_s
            except VenueUnavailableError as e:
                wait = self._rng.uniform(0, min(30.0, 0.1 * 2 ** min(self._failures, 10)))
                log.warning("%s; retrying in %.1f s", e.message, wait)
            except Exception:  # the warmer must not die silently
                log.exception("keep-warm of %s failed", self.host)
                wait = every_s
            await asyncio.sleep(wait)

    @property
    def warm(self) -> int:
        now = time.monotonic()
        return sum(1 for c in self._idle if c.usable and now - c.used_at < self.idle_s)

    async def aclose(self) -> None:
        self._closed = True
        if self._warmer is not None:
            self._warmer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._warmer
        for c in self._idle:
            c.close()
        self._idle.clear()

    # ----------------------------------------------------------------------------------- request

    def head(self, path: str, headers: Mapping[str, str], length: int) -> bytes:
        fixed = self._fixed_heads.get(path)
        if fixed is None:  # the lines every POST to `path` shares, built once (the order path's first POST)
            fixed = (
                f"POST {self._prefix}{path} HTTP/1.1\r\nHost: {self._host_header}\r\nUser-Agent: {self._ua}\r\n"
                "Accept: application/json\r\nContent-Type: application/json\r\n"
            )
            if len(self._fixed_heads) < 64:  # a handful of paths; never a cache that grows with the input
                self._fixed_heads[path] = fixed
        lines = [fixed, f"Content-Length: {length}\r\n"]
        for name, value in headers.items():
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise VenueUnavailableError(f"POST {self.api}{path}: refused a header with a line break; not sent")
            lines.append(f"{name}: {value}\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1")

    async def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        """One POST, sent at most once. VenueUnavailableError (status None): not sent. OrderStateUnknownError:
        written, no (readable) answer. Any HTTP status is returned as an Answer."""
        async with self._slots:  # a free connection first: waiting here sends nothing
            return await self._post(path, body, headers)

    async def _post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Answer:
        what = f"POST {self.api}{path}"
        if self.limiter is not None:
            await self.limiter.acquire(self.api, "POST", path)
        data = self.head(path, headers, len(body)) + body
        conn = self._take_idle() or await self._connect()
        if not conn.usable:  # closed after it was taken (the venue's FIN, a reset): nothing written yet
            conn.abort()
            raise VenueUnavailableError(f"{what}: the connection closed before the request was written; not sent")
        try:
            waiter = conn.send(data)  # from here on the venue may have it
        except Exception as e:
            # write() raised: nothing was written (asyncio's and uvloop's transports both check before they
            # write, and report a failed send through connection_lost, not by raising; uvloop raises
            # RuntimeError on a transport that closed): not sent
            conn.abort()
            raise VenueUnavailableError(f"{what}: the write failed ({type(e).__name__}); not sent") from None
        try:
            async with asyncio.timeout(self.deadline):
                answer = await waiter
        except TimeoutError:
            conn.abort()
            raise OrderStateUnknownError(f"{what}: no answer within the deadline; the order may exist") from None
        except _BadAnswerError as e:
            conn.abort()
            raise OrderStateUnknownError(f"{what}: {e}; the order may exist") from None
        except (OSError, ConnectionError) as e:
            conn.abort()
            raise OrderStateUnknownError(f"{what}: no answer ({type(e).__name__}); the order may exist") from None
        except BaseException:  # cancelled while waiting: the connection's next answer would be this one's
            conn.abort()
            raise
        if conn.keep_alive and conn.usable and not self._closed:
            self._idle.append(conn)
        else:
            conn.close()
        if answer.status == 429 and self.limiter is not None:
            pause = parse_retry_after(answer.headers.get("retry-after"))
            self.limiter.pause(self.api, "POST", path, 1.0 if pause is None else pause)
        return answer


__all__ = ["MAX_ANSWER", "Answer", "FastPoster"]
