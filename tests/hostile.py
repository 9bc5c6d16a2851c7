"""A hostile stand-in venue for security tests: an aiohttp app on 127.0.0.1 in a background thread.

It forwards every request to an upstream (normally a `pmbot sim`), unless a test overrides a route;
an override gets the request and a `forward()` that returns the upstream's answer, so it can change a
real answer (inflate a trade, repeat a cursor) or make up its own (a 400 that echoes the headers).

    with HostileVenue(upstream=sim.url) as evil:
        async def trades(request, forward):
            status, body = await forward()
            ...
            return web.json_response(body)
        evil.override("GET", "/data/trades", trades)
        monkeypatch.setenv("PMBOT_CLOB_URL", evil.url)

Every request it saw (method, path, headers) is in `evil.seen`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from types import TracebackType
from typing import Any

from aiohttp import ClientSession, web

Forward = Callable[[], Awaitable[tuple[int, Any]]]
Override = Callable[[web.Request, Forward], Awaitable[web.StreamResponse]]


class HostileVenue:
    def __init__(self, upstream: str | None = None) -> None:
        self.upstream = upstream.rstrip("/") if upstream else None
        self.overrides: dict[tuple[str, str], Override] = {}
        self.seen: list[dict[str, Any]] = []
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def override(self, method: str, path: str, handler: Override) -> None:
        self.overrides[(method.upper(), path)] = handler

    def answer(
        self, method: str, path: str, body: bytes | str, *, status: int = 200, ctype: str = "application/json"
    ) -> None:
        """A fixed raw answer (any bytes: the point is that they need not be sane JSON)."""
        raw = body.encode() if isinstance(body, str) else body

        async def fixed(request: web.Request, forward: Forward) -> web.StreamResponse:
            return web.Response(body=raw, status=status, content_type=ctype)

        self.override(method, path, fixed)

    # -- server --------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append({"method": request.method, "path": request.path, "headers": dict(request.headers)})

        async def forward() -> tuple[int, Any]:
            assert self.upstream is not None and self._session is not None
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with self._session.request(
                request.method, self.upstream + request.path_qs, data=body or None, headers=headers
            ) as resp:
                text = await resp.text()
                try:
                    return resp.status, json.loads(text)
                except ValueError:
                    return resp.status, text

        handler = self.overrides.get((request.method, request.path))
        if handler is not None:
            return await handler(request, forward)
        if self.upstream is None:
            return web.json_response({"error": "not found"}, status=404)
        status, data = await forward()
        return web.json_response(data, status=status)

    def start(self) -> HostileVenue:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, args=(sock, ready), name="hostile-venue", daemon=True)
        self._thread.start()
        ready.result(timeout=10)
        return self

    def _run(self, sock: socket.socket, ready: Future[None]) -> None:
        loop = self._loop
        assert loop is not None
        asyncio.set_event_loop(loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)

        async def setup() -> None:
            self._session = ClientSession()
            await runner.setup()
            await web.SockSite(runner, sock).start()

        loop.run_until_complete(setup())
        ready.set_result(None)
        loop.run_forever()
        assert self._session is not None
        loop.run_until_complete(self._session.close())
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop = self._thread = None

    def __enter__(self) -> HostileVenue:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
