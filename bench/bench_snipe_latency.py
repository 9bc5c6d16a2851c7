"""Tick → order: the sim emits the message (market channel or RTDS) that makes the sniper's rules agree
→ the sim receives the `POST /order`. Live mode through the real runner, sniper and executor, with the
entries pre-armed (signed and recorded before the window, fired on the tick: `Runner(prearm=True)`),
against `pmbot sim serve --manual` in its own process (bench/sim_process.py, real sockets on 127.0.0.1).
Peer: the shortest script a user would write with the official SDK (websockets on the market channel +
polymarket-client `place_limit_order`, sign-and-post) on the same trigger, against the same sim process,
same method.

Why a separate process: the venue is another machine. In process (its own thread, as this benchmark first
ran) the sim shared our GIL: its work after each step (the rest of the second's events, serialising and
writing the frames, parsing and checking the POST) competed with the trader's for one interpreter, and a
thread waiting for the GIL can wait the 5 ms switch interval; its share was ~0.7 ms of a 1.3 ms p50.

Method: the sim's clock is manual; the driver (in the trader's process, its connection idle while the
trader works: see SimTime) moves it with POST /_sim/advance. Each 15-minute window is advanced in one step to
65 s before its end, then one second at a time with a pause, so every sim emission of that second is out
before the next. The sim process stamps `perf_counter()` (CLOCK_MONOTONIC: one clock for every process
on Linux) when it queues a market-channel or RTDS message (`Hub.to_market` / `to_rtds`), right before its
writer hands a frame to a socket (any WebSocket connection, with the emission that queued it), and when a
POST /order reaches its HTTP server (outermost middleware). A POST's trigger is the last message queued
before it (nothing else is emitted in between: the clock does not move). Timer ticks are off, so only a
message can trigger. Both sides read the sim's time from a plain variable the driver sets from
/_sim/advance's answer (`SimTime`). Markets come from Gamma (pmbot) and the driver's /_sim/state (the peer).

The start: the update leaving the venue, i.e. its frame written to the socket, not the sim queueing it
(the issue: "the sim emits the market-channel update"). Queued, a step's messages wait for the rest of
the simulated second, the advance's answer and the writers' turns before any frame is written: time the
venue spends before anything leaves, which no trader can win back. Which frame a POST reacted to is not
known (its trigger is found as the last emission queued; the frame that fired may be an earlier one of
the step, or on the other stream), so the start is taken conservatively: the FIRST frame write on any
connection after the trigger was queued. Every frame of a step is written after all of its emissions were
queued, so no frame of the trigger can have left before that moment: the figure can only overstate the
latency (also when the sim corks a connection's burst of frames: the stamp is taken before the write, the
bytes leave at the uncork). The rows "…, from the sim queueing the update" keep the old
start (the trigger queued), with no goal, for comparison; both sides are measured the same way.
`BENCH_SNIPE_PROFILE=1` checks the start against pmbot's own stamp of the step's first frame (it must not
be later) and prints the violations.
Goal (issue 14): p50 ≤ 0.6 ms, p99 ≤ 2 ms; ≥ 2× faster than the peer at p50.
The floor rows (`_floor`): a client that does nothing but write a ready POST when the first bytes of a step
reach it, measured the same way: the venue's side of the figure (the step's frames leaving the sim, the
kernel, the sim reading and parsing the POST), which no client can go below.
`BENCH_SNIPE_PIN=1` runs the sim on a core of its own (`bench.sim_process.pinned_apart`).
`BENCH_SNIPE_PROFILE=1` also prints where the time goes (first stamp of each stage after the trigger was
queued): pmbot's in-process stages, and the sim's own (first frame write, the trigger's own frame written,
a frame's send returned, the loop read the POST, POST reached `submit_wire_order`)."""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
from typing import Any

from bench.harness import Result, percentile, run_pmbot
from bench.sim_process import SimProcess, pinned_apart

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat test key #0
WINDOWS = int(os.environ.get("BENCH_SNIPE_WINDOWS", "40"))
PROFILE = os.environ.get("BENCH_SNIPE_PROFILE") == "1"
PIN = os.environ.get("BENCH_SNIPE_PIN") == "1"  # the sim on its own core, the traders on another (see below)
START = 1_795_000_000  # pmbot.sim.testing.DEFAULT_START: 400 s into a window
SEED = 11


def run() -> list[Result]:
    import tempfile

    with (
        tempfile.TemporaryDirectory(prefix="pmbot-bench-snipe-") as tmp,
        SimProcess("--seed", str(SEED), "--start", str(START)) as sim,
        pinned_apart(sim) if PIN else contextlib.nullcontext(),
    ):
        env = {
            **sim.env,
            "PMBOT_PRIVATE_KEY": KEY,
            "PMBOT_DATABASE_URL": f"sqlite:///{tmp}/bench.db",
            "HOME": tmp,
            "XDG_DATA_HOME": tmp,
        }
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        stages = _stage_stamps() if PROFILE else {}
        try:
            n0 = len(sim.stamps()["receipts"])
            run_pmbot(_drive(sim))  # pmbot on its trading commands' loop (uvloop); the peers on asyncio's
            n1 = len(sim.stamps()["receipts"])
            asyncio.run(_peer(sim))
            n2 = len(sim.stamps()["receipts"])
            asyncio.run(_floor(sim))
            stamps = sim.stamps()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    ours, peer, floor = stamps["receipts"][n0:n1], stamps["receipts"][n1:n2], stamps["receipts"][n2:]
    emits, writes = stamps["emits"], [t for t, _, _ in stamps["writes"]]
    samples, peer_samples = _latencies(emits, writes, ours), _latencies(emits, writes, peer)
    queued, peer_queued = _latencies(emits, None, ours), _latencies(emits, None, peer)
    floor_samples = _latencies(emits, writes, floor)
    if PROFILE:
        _print_stages(stages, stamps, ours, "pmbot")
        _print_stages({}, stamps, peer, "peer")
        _print_stages({_WRITE: FLOOR_WRITES}, stamps, floor, "floor")
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    q50, q99 = percentile(peer_samples, 50), percentile(peer_samples, 99)
    missing = len(ours) - len(samples), len(peer) - len(peer_samples)
    note = (
        f"{len(samples)} entries (peer {len(peer_samples)}); pre-armed orders fired on the tick; sim in its own"
        f" process{' (own core)' if PIN else ''}; start: the first frame the sim wrote after queueing the trigger"
        + (f" ({missing[0]} POSTs (peer {missing[1]}) without one left out)" if any(missing) else "")
    )
    qnote = f"{len(queued)} entries (peer {len(peer_queued)}); start: the sim queued the trigger (Hub.to_market, …)"
    return [
        Result(
            "snipe: tick → POST received p50 (live, sim)", round(p50, 3), "ms", "<= 0.6", p50 <= 0.6,
            peer=round(q50, 3), note=note,
        ),
        Result(
            "snipe: tick → POST received p99 (live, sim)", round(p99, 3), "ms", "<= 2", p99 <= 2.0,
            peer=round(q99, 3), note=note,
        ),
        Result(
            "snipe: tick → POST received p50 (live, sim), from the sim queueing the update",
            round(percentile(queued, 50), 3), "ms", "report", peer=round(percentile(peer_queued, 50), 3), note=qnote,
        ),
        Result(
            "snipe: tick → POST received p99 (live, sim), from the sim queueing the update",
            round(percentile(queued, 99), 3), "ms", "report", peer=round(percentile(peer_queued, 99), 3), note=qnote,
        ),
        Result(
            "snipe: tick → POST received p50, floor (a client that only writes a ready POST)",
            round(percentile(floor_samples, 50), 3), "ms", "report",
            note=f"{len(floor_samples)} POSTs; the venue's side of the figure: see bench/bench_snipe_latency.py _floor",
        ),
        Result(
            "snipe: tick → POST received p99, floor (a client that only writes a ready POST)",
            round(percentile(floor_samples, 99), 3), "ms", "report",
            note=f"{len(floor_samples)} POSTs; start and end as the rows above",
        ),
    ]  # fmt: skip


def _trigger(emits: list[float], t_post: float) -> float | None:
    """The last emission queued at or before `t_post` (emits are in order: the sim is one thread)."""
    i = bisect.bisect_right(emits, t_post)
    return emits[i - 1] if i else None


def _wire_start(writes: list[float], t0: float, t_post: float) -> float | None:
    """The first frame write (any connection) after the trigger's queue stamp `t0` and at or before the
    POST, or None. `writes` are in order (one thread)."""
    i = bisect.bisect_right(writes, t0)
    return writes[i] if i < len(writes) and writes[i] <= t_post else None


def _latencies(emits: list[float], writes: list[float] | None, posts: list[float]) -> list[float]:
    """Per POST, ms from its start to its receipt: the start is the first frame write after its trigger
    was queued (`writes` given: the goal's figure), else the trigger's queue stamp. A POST with no such
    write (it cannot happen while the trigger is a frame) is left out."""
    out: list[float] = []
    for t_post in posts:
        t0 = _trigger(emits, t_post)
        if t0 is None:
            continue
        start = t0 if writes is None else _wire_start(writes, t0, t_post)
        if start is not None:
            out.append((t_post - start) * 1000)
    return out


class SimTime:
    """The manual sim's time as the driver last set it: a plain read (live, the runner's clock is a
    VenueClock over time.time, a few float operations). Both sides read this one.

    `advance` and `state` talk to the sim process over one kept-alive HTTP/1.1 connection, written out
    here (asyncio streams) rather than through an HTTP client for one reason: the driver runs in the
    trader's process and must not compete with it. The sim answers an advance right after its sockets
    wrote the frames of that second (pmbot/sim/server/admin.py advance), so an HTTP client would parse
    the answer right when the trigger arrives. Here the connection's reading is paused while the
    sim's second plays out (`quiet_s`), and the answer is read after that. The time moves to the step's
    end when the request is sent: the frames that step emits are of that second."""

    def __init__(self, sim: SimProcess, *, quiet_s: float = 0.02) -> None:
        self.sim = sim
        self.quiet_s = quiet_s
        self.t = 0.0
        # Venue seconds per wall second while the driver steps (one second every ~50 ms): the runner paces
        # its loops by a venue's `rate` (pmbot/runner/live.py `_pace`), as against `pmbot sim --speed N`.
        # Without it the runner's twice-a-second pass (pre-arming, the armed orders' L2 headers worked out
        # for this second and the next) would run once per ~10 venue seconds here: a fire would find its
        # headers stale and compute them on its path, which against a venue in real time it never does.
        self.rate = 1.0
        self._stepped = 0.0  # wall time of the last one-second step
        self.markets: list[dict[str, Any]] = []  # as of the last `state()`
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> SimTime:
        from urllib.parse import urlsplit

        url = urlsplit(self.sim.url)
        self._host = f"{url.hostname}:{url.port}"
        self._reader, self._writer = await asyncio.open_connection(url.hostname, url.port)
        self.t = float((await self.state())["now"])
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()

    def __call__(self) -> float:
        return self.t

    async def _request(self, method: str, path: str, body: Any = None, *, quiet: bool = False) -> Any:
        import json

        assert self._reader is not None
        assert self._writer is not None
        data = b"" if body is None else json.dumps(body).encode()
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        async with self._lock:
            transport = self._writer.transport
            if quiet:
                transport.pause_reading()  # type: ignore[attr-defined]
            self._writer.write(head.encode() + data)
            if quiet:
                await asyncio.sleep(self.quiet_s)
                transport.resume_reading()  # type: ignore[attr-defined]
            raw = await self._reader.readuntil(b"\r\n\r\n")
            status = raw.split(b" ", 2)[1]
            length = next(
                int(line.split(b":", 1)[1])
                for line in raw.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            answer = await self._reader.readexactly(length)
        if status != b"200":
            raise RuntimeError(f"sim {method} {path}: {status.decode()} {answer[:200]!r}")
        return json.loads(answer)

    async def state(self) -> dict[str, Any]:
        body: dict[str, Any] = await self._request("GET", "/_sim/state")
        self.markets = body["markets"]
        return body

    async def advance(self, seconds: float) -> None:
        wall = time.monotonic()
        if seconds <= 1 and 0 < wall - self._stepped < 0.5:  # the pace of the one-second steps, not the jumps
            self.rate = max(1.0, 0.8 * self.rate + 0.2 * seconds / (wall - self._stepped))
        self._stepped = wall
        self.t += seconds
        body = await self._request("POST", "/_sim/advance", {"seconds": seconds}, quiet=True)
        self.t = float(body["now"])


async def _windows(clock: SimTime, windows: int, done: Any) -> None:
    """Step the sim through `windows` windows (the sim process stamps what happens)."""
    for _ in range(windows):
        state = await clock.state()
        cur = next(m for m in state["markets"] if m["slug"] == state["current_market"])
        lead = cur["end"] - clock() - 65
        if lead > 0:
            await clock.advance(lead)
            await asyncio.sleep(1.2)  # discovery arms the next markets
        for _ in range(70):
            await clock.advance(1)
            await asyncio.sleep(0.03)
        await asyncio.sleep(0.2)
        if done():
            break


async def _drive(sim: SimProcess) -> None:
    from pmbot.app import App
    from pmbot.runner.session import TargetSpec, run_session
    from pmbot.strategies.snipe import SnipeStrategy

    async with SimTime(sim) as clock:
        app = App(clock=clock)
        stop = asyncio.Event()
        spec = TargetSpec(series=("btc-updown-15m",), max_markets=3, horizon_s=1800)
        task = asyncio.create_task(
            run_session(
                app,
                lambda v: SnipeStrategy(v, {"min_price": "0.80"}),
                spec,
                dry_run=False,
                duration_s=None,
                stop=stop,
                tick_s=3600.0,  # no timer ticks: only a venue message can trigger an entry
                # the driver owns the manual sim's clock: no VenueClock sampling GET /time (a sample taken
                # while a step is under way would pair the new sim time with the old one)
                clock=clock,
                rediscover_s=1.0,
            )
        )
        await asyncio.sleep(1.0)
        try:
            await _windows(clock, WINDOWS, task.done)
        finally:
            stop.set()
            await task
            app.close()


async def _peer(sim: SimProcess) -> None:
    """The shortest script a user would write: websockets on the market channel, the official SDK's
    (polymarket-client, its async client) place_limit_order when the leading side's best ask is in the band
    in the last 60 s (no reference check, no fee check: that only makes it faster). The SDK has no URL
    setting: its production environment is copied with the sim's URLs; wallet = the key's own address.
    New markets (from the driver's last /_sim/state) are subscribed by a task of their own."""
    import json
    from dataclasses import replace as dc_replace
    from decimal import Decimal

    import websockets
    from eth_account import Account
    from polymarket.clients.async_secure import AsyncSecureClient
    from polymarket.environments import PRODUCTION, _create_environment

    cfg = dc_replace(PRODUCTION._config, clob_url=sim.url, gamma_url=f"{sim.url}/gamma", data_url=f"{sim.url}/data-api")
    env = _create_environment(name="pmbot-sim", config=cfg)
    client = await AsyncSecureClient.create(private_key=KEY, wallet=Account.from_key(KEY).address, environment=env)
    bought: set[str] = set()

    async with SimTime(sim) as clock:

        async def trade() -> None:
            async with websockets.connect(sim.ws_url + "/ws/market") as ws:
                ends: dict[str, float] = {}  # token → its market's end (epoch s)

                async def subscribe() -> None:  # the markets the driver last read (no HTTP of our own)
                    while True:
                        for m in clock.markets:
                            if not m["closed"] and m["token_ids"][0] not in ends:
                                kind = {"operation": "subscribe"} if ends else {"type": "market"}
                                ends.update(dict.fromkeys(m["token_ids"], m["end"]))
                                await ws.send(json.dumps({"assets_ids": m["token_ids"], **kind}))
                        await asyncio.sleep(0.5)

                sub = asyncio.create_task(subscribe())
                try:
                    async for raw in ws:
                        msgs = json.loads(raw)
                        now = clock()
                        for msg in msgs if isinstance(msgs, list) else [msgs]:
                            for ch in msg.get("price_changes", []):
                                token, ask = ch["asset_id"], float(ch.get("best_ask") or 0)
                                left = ends.get(token, 0) - now
                                if 2 < left <= 60 and 0.80 <= ask <= 0.99 and token not in bought:
                                    bought.add(token)
                                    await client.place_limit_order(
                                        asset_id=token, price=Decimal("0.99"), size=Decimal("10.1"), side="BUY"
                                    )
                finally:
                    sub.cancel()

        task = asyncio.create_task(trade())
        await asyncio.sleep(1.0)
        try:
            await _windows(clock, max(5, WINDOWS // 2), task.done)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            await client.close()


FLOOR_WRITES: list[float] = []  # the floor client's POST writes (profile)


async def _floor(sim: SimProcess) -> None:
    """The least any client could do: a POST /order written the moment the first bytes of a step reach it.
    The same connections as pmbot's session (market channel and RTDS subscribed through `websockets`,
    which only does the handshake and the subscriptions); a kept-alive HTTP connection holds a ready POST
    /order (a signed order's size of body; its headers carry no valid L2 signature: the sim refuses it
    after its receipt stamp, which is taken before any check). The socket's first bytes of a step in a
    market's entry window (2 < seconds left ≤ 60; one POST per step) are answered from the socket's
    `data_received` callback: no frame is parsed, no decision made. What it measures is the venue's
    side of the figure on this machine: the step's frames leaving the sim, the kernel carrying them, and
    the sim reading and parsing a POST. No client's figure can be lower."""
    import json
    from urllib.parse import urlsplit

    import websockets

    url = urlsplit(sim.url)
    body = json.dumps({"order": {"salt": 1, "signature": "0x" + "ab" * 65, "pad": "x" * 560}, "owner": "x"}).encode()
    head = (
        f"POST /order HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nContent-Type: application/json\r\n"
        "POLY_ADDRESS: 0x0000000000000000000000000000000000000000\r\nPOLY_SIGNATURE: x\r\n"
        f"POLY_TIMESTAMP: 0\r\nPOLY_API_KEY: x\r\nPOLY_PASSPHRASE: x\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    request = head + body
    loop = asyncio.get_running_loop()

    class Discard(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:  # the sim's 401 answers: not read
            pass

    transport, _ = await loop.create_connection(Discard, url.hostname, url.port)
    fired: list[float] = [-1.0]  # the sim time of the last step answered: one POST per step

    async with SimTime(sim) as clock:
        ends: dict[str, float] = {}  # condition id → its end

        def first_bytes() -> None:
            now = clock()
            if now != fired[0] and any(2 < end - now <= 60 for end in ends.values()):
                fired[0] = now
                transport.write(request)
                FLOOR_WRITES.append(time.perf_counter())

        async def follow(ws_path: str, first: dict[str, Any] | None) -> None:
            async with websockets.connect(sim.ws_url + ws_path, compression=None) as ws:
                received = ws.data_received

                def hooked(data: bytes) -> None:
                    first_bytes()
                    received(data)

                ws.data_received = hooked  # type: ignore[method-assign]
                if first is not None:
                    await ws.send(json.dumps(first))
                async for _ in ws:
                    if ws_path == "/ws/market":
                        for m in clock.markets:
                            if not m["closed"] and m["condition_id"] not in ends:
                                ends[m["condition_id"]] = m["end"]
                                kind = {"operation": "subscribe"} if len(ends) > 1 else {"type": "market"}
                                await ws.send(json.dumps({"assets_ids": m["token_ids"], **kind}))

        rtds = {
            "action": "subscribe",
            "subscriptions": [{"topic": "crypto_prices_chainlink", "type": "*", "filters": '{"symbol":"btc/usd"}'}],
        }

        async def market() -> None:
            await clock.state()
            first = {"assets_ids": [], "type": "market"}
            for m in clock.markets:
                if not m["closed"]:
                    ends[m["condition_id"]] = m["end"]
                    first["assets_ids"] += m["token_ids"]
            await follow("/ws/market", first)

        tasks = [asyncio.create_task(market()), asyncio.create_task(follow("/rtds", rtds))]
        await asyncio.sleep(1.0)
        try:
            await _windows(clock, max(2, WINDOWS // 8), lambda: False)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            transport.close()


def _stage_stamps() -> dict[str, list[float]]:
    """Wrap the hot path's stages to stamp perf_counter() on entry (profiling only: costs a few µs each)."""
    from pmbot.executor.engine import Executor
    from pmbot.polymarket import fastpost
    from pmbot.polymarket.streams.base import WsStream
    from pmbot.polymarket.trading import TradingClient
    from pmbot.runner.core import Runner
    from pmbot.runner.feed import Translator
    from pmbot.strategies.base import Strategy

    stamps: dict[str, list[float]] = {}

    def wrap(owner: Any, attr: str, name: str, is_async: bool) -> None:
        f = getattr(owner, attr)
        if is_async:

            async def aw(*a: Any, **k: Any) -> Any:
                stamps.setdefault(name, []).append(time.perf_counter())
                return await f(*a, **k)

            setattr(owner, attr, aw)
        else:

            def w(*a: Any, **k: Any) -> Any:
                stamps.setdefault(name, []).append(time.perf_counter())
                return f(*a, **k)

            setattr(owner, attr, w)

    wrap(WsStream, "_ingest", _FRAME, False)
    from pmbot.polymarket.streams import MarketStream, RtdsStream

    market_next, rtds_next = MarketStream.__anext__, RtdsStream.__anext__

    async def market_item(self: Any) -> Any:
        item = await market_next(self)
        if self.current_arrival is not None:  # the item's frame reached the process (socket read), not now
            stamps.setdefault("1b market item's frame arrived (socket)", []).append(self.current_arrival)
        return item

    async def rtds_item(self: Any) -> Any:
        item = await rtds_next(self)
        stamps.setdefault("1r RTDS item handed to its feed", []).append(time.perf_counter())
        return item

    MarketStream.__anext__ = market_item  # type: ignore[method-assign]
    RtdsStream.__anext__ = rtds_item  # type: ignore[method-assign]
    wrap(MarketStream, "_ingest", "1m market frame ingested", False)
    wrap(RtdsStream, "_ingest", "1x RTDS frame ingested", False)
    from websockets.asyncio.client import ClientConnection

    wrap(ClientConnection, "data_received", "0b websockets data_received (any)", False)
    wrap(Translator, "translate", "2 runner feed has it (stream queue → LiveFeed)", False)
    wrap(Runner, "deliver", "3 runner.deliver (view, strategy)", True)
    handle = Strategy.handle

    def decided(self: Any, event: Any) -> Any:
        out = handle(self, event)
        if out.intents:
            stamps.setdefault("4 strategy decided", []).append(time.perf_counter())
        return out

    Strategy.handle = decided  # type: ignore[method-assign]
    wrap(Runner, "submit", "4a runner.submit (decisions buffered)", True)
    wrap(Executor, "fire", "5 executor.fire (armed order)", True)
    wrap(Executor, "_execute_live", "5a risk gate done", True)
    wrap(TradingClient, "post_prepared", "6 post_prepared (budget, lock done)", True)
    wrap(fastpost.FastPoster, "post", "6a fastpost.post (L2 headers done)", True)
    from pmbot.polymarket import trading

    wrap(trading, "l2_headers", "6b L2 headers computed (not worked out ahead)", False)
    wrap(fastpost._Conn, "send", _WRITE, False)
    return stamps


_WRITE = "7 socket write"
_FRAME = "1 frame received (websockets → our stream)"


def _print_stages(stages: dict[str, list[float]], sim: dict[str, list[Any]], posts: list[float], who: str) -> None:
    """Per stage, ms after the trigger was queued (p50, p99): its first stamp after the trigger and (pmbot's
    stages) its last one before the POST's socket write, with how many there were. A step's frames reach
    the trader in a burst (the sim writes them once the second has played out) and are handled in order: a
    stage's first stamp may be an earlier frame of the burst, its last one is the frame that fired. The
    sim's stamps: the first frame write after the trigger (the goal's start), the trigger's own frame
    written, its send of a frame returned, the loop read the POST, the POST received (the figure), the POST
    reached the venue's order code. Then the check that the start is not after pmbot received a frame."""
    emits: list[float] = sim["emits"]
    writes = [t for t, _, _ in sim["writes"]]
    stamps = {
        **stages,
        "0a sim: first frame write after it (the start)": writes,
        "0c sim: its send of a frame returned": sim["sent"],
        "9 sim: POST reached submit_wire_order": sim["orders"],
        "7a sim: its loop read the POST's bytes": sim["reads"],
    }
    rows: dict[str, list[float]] = {}
    lasts: dict[str, list[float]] = {}
    counts: dict[str, list[float]] = {}
    late: list[str] = []  # the start after pmbot had a frame of the step: the start would be wrong
    for t_post in posts:
        k = bisect.bisect_right(emits, t_post) - 1
        if k < 0:
            continue
        t0 = emits[k]
        own = [t for t, e, _ in sim["writes"] if e == k and t0 <= t <= t_post]  # the trigger's own frame
        if own:
            rows.setdefault("0b sim: the trigger's own frame written", []).append((own[0] - t0) * 1000)
        writes_pm = [t for t in stages.get(_WRITE, ()) if t0 <= t <= t_post]
        t_write = writes_pm[0] if writes_pm else t_post  # pmbot's stages: up to the POST's socket write
        for name, ts in stamps.items():
            if name.startswith("0"):  # the sim's next stamp after the trigger
                after = ts[(i := bisect.bisect_right(ts, t0)) : i + 1]
            elif name.startswith("7a"):  # the read just before this POST's receipt
                after = ts[(i := bisect.bisect_right(ts, t_post)) - 1 : i] if i else []
            elif name.startswith("9"):  # after this POST's receipt
                after = ts[(i := bisect.bisect_left(ts, t_post)) : i + 1]
            else:
                after = [t for t in ts if t0 <= t <= t_write]
                if after:
                    lasts.setdefault(name, []).append((after[-1] - t0) * 1000)
                    counts.setdefault(name, []).append(len(after))
            if after:
                rows.setdefault(name, []).append((after[0] - t0) * 1000)
        rows.setdefault("8 sim received POST /order", []).append((t_post - t0) * 1000)
        start = _wire_start(writes, t0, t_post)
        got = [t for t in stages.get(_FRAME, ()) if t0 <= t <= t_post]
        if got and (start is None or start > got[0]):
            shown = "none" if start is None else f"{(start - t0) * 1000:.3f}"
            late.append(f"start {shown} > frame {(got[0] - t0) * 1000:.3f}")
    print(f"snipe tick → order ({who}), ms after the trigger was queued:")
    print(f"  {'stage':<48} {'first p50':>9} {'p99':>7} {'last p50':>9} {'p99':>7} {'n/step':>6}")
    for name in sorted(rows):
        r, last, n = rows[name], lasts.get(name), counts.get(name)
        tail = ""
        if last and n:
            tail = f" {percentile(last, 50):9.3f} {percentile(last, 99):7.3f} {percentile(n, 50):6.0f}"
        print(f"  {name:<48} {percentile(r, 50):9.3f} {percentile(r, 99):7.3f}{tail}  (n={len(r)})")
    if stages:
        total = len(rows.get("8 sim received POST /order", []))
        bad = f"; violations (ms after the trigger): {late}" if late else ""
        print(f"  start ≤ pmbot's first frame of the step: {total - len(late)}/{total}{bad}")
