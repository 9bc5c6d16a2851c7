"""Issue 13: the lean POST /order path (pmbot.polymarket.fastpost) over real sockets.

A small asyncio HTTP/1.1 server on 127.0.0.1 answers as told (keep-alive, chunked, huge, never, close),
so the rules can be checked one by one: kept-alive reuse, the "maybe sent" rule (an error before the
write is not sent, after it unknown), the answer cap, the deadline, TLS verification, https for any
non-loopback host, header injection refused, reconnect after the server closes an idle connection. The
executor-level tests run the same path against `pmbot sim`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pmbot.errors import ConfigError, OrderStateUnknownError, VenueUnavailableError
from pmbot.polymarket import fastpost
from pmbot.polymarket.fastpost import FastPoster
from pmbot.polymarket.ratelimit import RateLimiter
from pmbot.sim.testing import SimServer
from pmbot.store.models import OrderStatus
from tests.test_executor import Rig, intent, settings_for

OK = b'{"success":true,"orderID":"0xabc","status":"live"}'


# pytest-asyncio 1.x would have a pytest_asyncio_loop_factories hook in conftest.py, which parametrizes
# every async test of the suite; this module alone runs on both loops.
pytestmark = pytest.mark.filterwarnings('ignore:Overriding the "event_loop_policy" fixture is deprecated')


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def event_loop_policy(request: pytest.FixtureRequest) -> asyncio.AbstractEventLoopPolicy:
    """Every test here on both loops: the trading commands run on uvloop (pmbot.event_loop), whose
    transports are not asyncio's classes, the tests' own loop is asyncio's."""
    if request.param == "uvloop":
        import uvloop

        return uvloop.EventLoopPolicy()
    return asyncio.DefaultEventLoopPolicy()


def ok_answer(body: bytes = OK) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@dataclass
class Server:
    """Answers each request with `answer(n)` (n = request number): bytes to write, or None to stay silent."""

    answer: Callable[[int], bytes | None]
    close_after: bool = False  # close the connection after each answer
    requests: list[bytes] = field(default_factory=list)
    chunks: list[int] = field(default_factory=list)  # how many reads each request took
    connections: int = 0
    port: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                head = b""
                reads = 0
                while b"\r\n\r\n" not in head:
                    data = await reader.read(65536)
                    if not data:
                        return
                    head += data
                    reads += 1
                top, _, rest = head.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in top.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                while len(rest) < length:
                    rest += await reader.read(65536)
                    reads += 1
                self.requests.append(top + b"\r\n\r\n" + rest)
                self.chunks.append(reads)
                out = self.answer(len(self.requests))
                if out is None:
                    await asyncio.sleep(3600)
                    return
                writer.write(out)
                await writer.drain()
                if self.close_after:
                    writer.close()
                    return
        except (ConnectionError, asyncio.CancelledError):
            return
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@contextlib.asynccontextmanager
async def serve(srv: Server, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = await asyncio.start_server(srv.handle, "127.0.0.1", 0, ssl=ssl_ctx)
    srv.port = server.sockets[0].getsockname()[1]
    try:
        yield srv
    finally:
        for w in srv.writers:
            w.close()
        server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), 2)


def poster(port: int, **kw: object) -> FastPoster:
    return FastPoster(f"http://127.0.0.1:{port}", deadline=kw.pop("deadline", 2.0), **kw)  # type: ignore[arg-type]


HDRS = {"POLY_ADDRESS": "0x1", "POLY_SIGNATURE": "sig", "POLY_TIMESTAMP": "1", "POLY_API_KEY": "k"}


async def test_one_connection_is_kept_alive_and_each_request_is_one_write() -> None:
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port)
        try:
            assert await p.prewarm() == 1
            for _ in range(5):
                a = await p.post("/order", b'{"x":1}', HDRS)
                assert a.status == 200 and a.body == OK
            assert srv.connections == 1 and p.connects == 1
            req = srv.requests[0]
            assert req.startswith(b"POST /order HTTP/1.1\r\n") and req.endswith(b'\r\n\r\n{"x":1}')
            assert b"POLY_SIGNATURE: sig\r\n" in req and b"Content-Length: 7\r\n" in req
            assert b"Host: 127.0.0.1:%d\r\n" % srv.port in req
            assert srv.chunks == [1] * 5  # head and body arrived together: one write each
        finally:
            await p.aclose()


async def test_a_chunked_answer_is_read_whole() -> None:
    body = b'{"success":true,"orderID":"0x1","status":"matched"}'
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        10,
        body[:10],
        len(body) - 10,
        body[10:],
    )
    async with serve(Server(lambda n: chunked)) as srv:
        p = poster(srv.port)
        try:
            a1 = await p.post("/order", b"{}", HDRS)
            a2 = await p.post("/order", b"{}", HDRS)
            assert a1.body == body and a2.body == body and p.connects == 1
        finally:
            await p.aclose()


async def test_no_connection_means_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        p = poster(port)
        with pytest.raises(VenueUnavailableError) as e:
            await p.post("/order", b"{}", HDRS)
        assert e.value.status is None  # the executor's "not sent"
        await p.aclose()


async def test_no_answer_within_the_deadline_is_unknown() -> None:
    async with serve(Server(lambda n: None)) as srv:
        p = poster(srv.port, deadline=0.2)
        try:
            with pytest.raises(OrderStateUnknownError):
                await p.post("/order", b"{}", HDRS)
            assert len(srv.requests) == 1  # it was sent, once
        finally:
            await p.aclose()


async def test_an_oversized_answer_is_refused_as_unknown() -> None:
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 5000000\r\n\r\n" + b"x" * 1000
    async with serve(Server(lambda n: huge)) as srv:
        p = poster(srv.port)
        try:
            with pytest.raises(OrderStateUnknownError, match="too large"):
                await p.post("/order", b"{}", HDRS)
        finally:
            await p.aclose()
    endless_head = b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"y" * 100_000
    async with serve(Server(lambda n: endless_head)) as srv:
        p = poster(srv.port)
        try:
            with pytest.raises(OrderStateUnknownError, match="head too large"):
                await p.post("/order", b"{}", HDRS)
        finally:
            await p.aclose()


async def test_a_reset_after_the_write_is_unknown() -> None:
    async with serve(Server(lambda n: b"HTTP/1.1 200 OK\r\nContent-Le", close_after=True)) as srv:
        p = poster(srv.port)
        try:
            with pytest.raises(OrderStateUnknownError):
                await p.post("/order", b"{}", HDRS)
        finally:
            await p.aclose()


async def test_the_server_closing_an_idle_connection_costs_a_reconnect_not_an_unknown() -> None:
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port)
        try:
            await p.post("/order", b"{}", HDRS)
            for w in srv.writers:  # the server's idle timeout
                w.close()
            await asyncio.sleep(0.05)  # let the FIN arrive
            a = await p.post("/order", b"{}", HDRS)
            assert a.status == 200 and p.connects == 2 and len(srv.requests) == 2
        finally:
            await p.aclose()


async def test_connection_close_answers_are_not_reused_and_idle_ones_expire() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
    async with serve(Server(lambda n: answer, close_after=True)) as srv:
        p = poster(srv.port)
        try:
            await p.post("/order", b"{}", HDRS)
            await p.post("/order", b"{}", HDRS)
            assert p.connects == 2
        finally:
            await p.aclose()
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port, idle_s=0.05)
        try:
            await p.post("/order", b"{}", HDRS)
            await asyncio.sleep(0.1)
            assert p.warm == 0  # older than idle_s: never written to again
            await p.post("/order", b"{}", HDRS)
            assert p.connects == 2
        finally:
            await p.aclose()


async def test_keep_warm_reopens_what_the_server_closed() -> None:
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port)
        try:
            p.keep_warm(2, every_s=0.02)
            for _ in range(200):
                if p.warm == 2:
                    break
                await asyncio.sleep(0.01)
            assert p.warm == 2
            for w in srv.writers:
                w.close()
            for _ in range(200):
                await asyncio.sleep(0.01)
                if p.connects >= 4 and p.warm == 2:
                    break
            assert p.connects >= 4 and p.warm == 2
        finally:
            await p.aclose()


async def test_a_header_with_a_line_break_is_refused_before_sending() -> None:
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port)
        try:
            with pytest.raises(VenueUnavailableError):
                await p.post("/order", b"{}", {"POLY_API_KEY": "k\r\nX-Evil: 1"})
            assert srv.requests == []
        finally:
            await p.aclose()


def test_the_request_head_is_built_from_its_fixed_lines_and_checked_headers_every_time() -> None:
    """The lines every POST to a path shares are built once; the per-request lines (length, L2 headers)
    and their line-break check come every time; the shared part is kept for a handful of paths only."""
    p = FastPoster("http://127.0.0.1:8080/base", user_agent="pmbot-test")
    h = {"POLY_ADDRESS": "0xabc", "POLY_SIGNATURE": "sig=", "POLY_TIMESTAMP": "123"}
    want = (
        b"POST /base/order HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: pmbot-test\r\nAccept: application/json\r\n"
        b"Content-Type: application/json\r\nContent-Length: 42\r\nPOLY_ADDRESS: 0xabc\r\nPOLY_SIGNATURE: sig=\r\n"
        b"POLY_TIMESTAMP: 123\r\n\r\n"
    )
    assert p.head("/order", h, 42) == want
    assert p.head("/order", h, 42) == want  # from the kept lines: the same bytes
    assert p.head("/order", {**h, "POLY_TIMESTAMP": "124"}, 7) == want.replace(b"42", b"7").replace(b"123", b"124")
    with pytest.raises(VenueUnavailableError):
        p.head("/order", {"POLY_API_KEY": "k\r\nX-Evil: 1"}, 2)  # checked on the kept path too
    for n in range(200):
        assert p.head(f"/p{n}", {}, 0).startswith(f"POST /base/p{n} HTTP/1.1\r\n".encode())
    assert len(p._fixed_heads) <= 64


async def test_a_429_pauses_the_venue_bucket() -> None:
    limited = b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}"
    async with serve(Server(lambda n: limited)) as srv:
        now = [100.0]
        limiter = RateLimiter(clock=lambda: now[0])
        p = poster(srv.port, limiter=limiter)
        try:
            a = await p.post("/order", b"{}", HDRS)
            assert a.status == 429
            assert any(until >= 107.0 for until in limiter._paused_until.values())
        finally:
            await p.aclose()


def test_plaintext_to_another_host_is_refused() -> None:
    with pytest.raises(ConfigError):
        FastPoster("http://clob.polymarket.com")
    with pytest.raises(ConfigError):
        FastPoster("http://10.0.0.1:8080")
    assert FastPoster("https://clob.polymarket.com").tls
    assert not FastPoster("http://localhost:9").tls


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("tls")
    key, crt = d / "key.pem", d / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, crt


async def test_tls_is_verified(cert: tuple[Path, Path]) -> None:
    key, crt = cert
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(crt, key)
    async with serve(Server(lambda n: ok_answer()), ssl_ctx=server_ctx) as srv:
        trusting = ssl.create_default_context(cafile=str(crt))
        p = FastPoster(f"https://localhost:{srv.port}", ssl_context=trusting, deadline=2.0)
        try:
            a = await p.post("/order", b"{}", HDRS)
            assert a.status == 200 and a.body == OK
        finally:
            await p.aclose()
        stranger = FastPoster(f"https://localhost:{srv.port}", deadline=2.0)  # system trust store only
        with pytest.raises(VenueUnavailableError) as e:
            await stranger.post("/order", b"{}", HDRS)
        assert e.value.status is None  # refused before anything was written: not sent
        await stranger.aclose()
        assert len(srv.requests) == 1


# ------------------------------------------------------------------------------- through the executor


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


async def test_the_executor_posts_over_the_lean_path_and_prewarms(rig: Rig) -> None:
    h = await rig.executor(dry_run=False)
    ex = h.executor
    assert ex.trading is not None and ex.trading.poster is not None
    assert await ex.prewarm(2) == 2
    connects = ex.trading.poster.connects
    results = [await ex.submit(intent(rig.sim, f"lean-{n}", price="0.02")) for n in range(3)]
    assert [r.status for r in results] == [OrderStatus.LIVE] * 3
    assert ex.trading.poster.connects == connects  # the warm connections carried them
    assert len(rig.sim.received_orders()) == 3
    assert {r.venue_order_id for r in results} == {o["id"] for o in rig.sim.open_orders()}


async def test_a_venue_that_refuses_connections_leaves_the_order_not_sent(sim: SimServer, rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    it = intent(sim, "refused", price="0.02")
    await ex.params.get(it.token_id)
    assert ex.trading is not None and ex.trading.poster is not None
    p = ex.trading.poster
    await p.aclose()
    p._closed = False
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        real, p.port = p.port, s.getsockname()[1]
        first = await ex.submit(it)
    assert first.status is OrderStatus.NOT_SENT and sim.received_orders() == []
    p.port = real
    again = await ex.submit(it)  # not_sent: the same key is executed when it comes again
    assert again.status is OrderStatus.LIVE and len(sim.received_orders()) == 1


async def test_a_lost_answer_on_the_lean_path_is_unknown_then_reconciled(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    rig.sim.set_faults(drop_order_responses=1)
    res = await ex.submit(intent(rig.sim, "dropped", price="0.02"))
    rig.sim.clear_faults()
    assert res.status is OrderStatus.UNKNOWN
    ex.unknown_grace_s = 0
    await ex.reconcile()
    rec = rig.store.get_order(res.key)
    assert rec is not None and rec.status is OrderStatus.LIVE and len(rig.sim.received_orders()) == 1


async def test_a_burst_waits_for_a_free_connection_before_writing() -> None:
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port, max_connections=4, deadline=5.0)
        try:
            answers = await asyncio.gather(*(p.post("/order", b"{}", HDRS) for _ in range(50)))
            assert {a.status for a in answers} == {200} and len(srv.requests) == 50
            assert p.connects <= 4 and srv.connections <= 4
        finally:
            await p.aclose()


@pytest.mark.parametrize("how", ["closed", "write_raises"])
async def test_a_connection_that_closed_before_the_write_is_not_sent(how: str) -> None:
    """The review's race: the connection taken from the pool closes before the request is written (on uvloop
    write() then raises RuntimeError, on asyncio it would drop the bytes and wait for the deadline). Nothing
    was written: not sent (VenueUnavailableError, no status), never "maybe sent", and nothing reached the
    server."""
    async with serve(Server(lambda n: ok_answer())) as srv:
        p = poster(srv.port, deadline=1.0)
        try:
            await p.prewarm(1)
            conn = p._idle[-1]
            if how == "closed":
                assert conn.transport is not None
                conn.transport.close()  # the FIN or reset landing between the pool's check and the write
                p._take_idle = lambda: conn  # type: ignore[method-assign]  # the pool handed it out just before
            else:

                def refuse(data: bytes) -> asyncio.Future[fastpost.Answer]:
                    raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

                conn.send = refuse  # type: ignore[method-assign]
            with pytest.raises(VenueUnavailableError) as e:
                await p.post("/order", b"{}", HDRS)
            assert e.value.status is None and "not sent" in e.value.message
            await asyncio.sleep(0.05)
            assert srv.requests == []
        finally:
            await p.aclose()
