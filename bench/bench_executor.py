"""Executor benchmarks against `pmbot sim serve` run as a separate process.

1. dry-run throughput: one process, real SQLite file (synchronous=FULL), mixed FOK/GTC intents that
   pass risk, submitted with `submit_many` in bursts; books from one sim snapshot per token (no HTTP
   on the measured path).
2. live latency: intent → signed POST /order as received by the sim process, sequential resting GTC
   BUYs, the order connection prewarmed; also intent → ack. Peer: the official SDK polymarket-client
   (`AsyncSecureClient.place_limit_order`), against the same sim process. Also: a pre-armed order's
   `fire` → POST received, and the POST alone per transport (the lean path, aiohttp, httpx).
3. fleet: 4 worker processes on one wallet with a shared redis-server: the global orders/min budget
   and the "0 duplicates" rule of the Redis SET NX claim.

The sim process is the real `pmbot sim serve --manual` CLI, started through a small wrapper
(bench/sim_process.py) that adds an outermost aiohttp middleware stamping `time.perf_counter()`
(CLOCK_MONOTONIC on Linux, one clock for every process) when a POST /order reaches the server, and a
GET /_bench/receipts route to read the stamps. The sim itself is unchanged.

`python -m bench executor` runs this suite. PMBOT_BENCH_PROFILE=1 dumps a cProfile of each throughput
run to bench/executor-throughput-{mixed,taker}.prof.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.harness import Result, percentile, pmbot_loop, run_pmbot
from bench.sim_process import ROOT, SimProcess, pinned_apart
from pmbot.event_loop import loop_factory, loop_name

if TYPE_CHECKING:
    from pmbot.config import Settings
    from pmbot.executor.factory import ExecutorHandle
    from pmbot.executor.intents import OrderIntent
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.models import OrderBook
    from pmbot.store.base import Store

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat test key #0

THROUGHPUT_MIXED = 5_000  # a quarter rest: the open-order count grows by 1 250 during the run
THROUGHPUT_TAKER = 20_000  # nothing rests
THROUGHPUT_BATCH = 200
LIVE_WARMUP = 100
LIVE_ORDERS = 1_000
DURABILITY_ROUNDS = 4  # the live latency run, per durability, in this many alternating parts
PEER_ORDERS = 400
MARKET_LASTING_S = 300  # the markets used still run this long by the wall clock (the suite takes ~2 min)
FLEET_WORKERS = 4
FLEET_PER_MINUTE = 6_000  # 100 orders/s for the whole fleet
FLEET_SECONDS = 10.0
FLEET_BATCH = 20  # small: a batch whose keys are claimed waits for budget after the deadline
FLEET_SUBMITTERS = 2  # concurrent submit_many loops per worker

# ----------------------------------------------------------------------------------------- plumbing


def _settings(sim_env: dict[str, str], db: Path, **extra: str) -> Settings:
    from pmbot.config import load_settings

    env = {
        **sim_env,
        "PMBOT_PRIVATE_KEY": KEY,
        "PMBOT_DATABASE_URL": f"sqlite:///{db}",
        "PMBOT_EXECUTOR__ORDERS_PER_MINUTE": "100000000",
        "PMBOT_EXECUTOR__DRY_RUN_BALANCE": "100000000",
        "PMBOT_RISK__MAX_OPEN_ORDERS": "10000000",
        "PMBOT_RISK__MAX_ORDER_NOTIONAL": "1000000",
        "PMBOT_RISK__MAX_TOTAL_EXPOSURE": "1000000000",
        "PMBOT_RISK__MAX_POSITION_PER_MARKET": "1000000000",
        "PMBOT_RISK__DAILY_LOSS_LIMIT": "1000000000",
        # The sim's clock is manual, so a key's heartbeat session never times out there: each later
        # engine's first beat ("" id) is refused as stale, and the engine (which does not resync the id)
        # refuses every intent. A beat is a bool check on the order path, so leaving it out measures the same.
        "PMBOT_EXECUTOR__HEARTBEAT": "false",
        **extra,
    }
    return load_settings(env_file=None, environ=env).settings


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server")
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class SnapshotBooks:
    """A BookSource serving one GET /book snapshot per token, fetched once before timing. Each read is
    re-stamped (as a synced market stream's book would be), so the paper exchange's liquidity overlay
    starts afresh and FOKs keep finding the sim's liquidity."""

    def __init__(self, books: dict[str, OrderBook]) -> None:
        self._books = books
        self._n = 0

    async def book(self, token_id: str) -> OrderBook:
        self._n += 1
        snap = self._books[token_id]
        return replace(snap, timestamp_ms=snap.timestamp_ms + self._n)


class StampedBudget:
    """Wraps the executor's OrderBudget: records when each order got its budget (= is sent)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.per_minute = inner.per_minute
        self.stamps: list[float] = []

    async def acquire(self, max_wait: float = 60.0) -> float:
        waited = float(await self.inner.acquire(max_wait))
        self.stamps.append(time.perf_counter())
        return waited


def _mixed_intents(
    prefix: str,
    start: int,
    n: int,
    markets: list[dict[str, Any]],
    asks: dict[str, D],
    now_ms: int,
    *,
    rest: bool = True,
) -> list[OrderIntent]:
    """Mixed BUYs across every open market's tokens: half FOK at the best ask (fill), a quarter GTC at
    the best ask (fill at once, as taker), a quarter GTC resting at 0.01–0.05 (`rest=False`: also at
    the best ask, so nothing rests)."""
    from pmbot.executor.intents import OrderIntent, intent_key
    from pmbot.store.models import OrderType, Side

    tokens = [(m, i, t) for m in markets for i, t in enumerate(m["token_ids"]) if t in asks]
    out = []
    for k in range(start, start + n):
        m, idx, token = tokens[k % len(tokens)]
        kind = (k // len(tokens)) % 4
        if kind == 3 and rest:
            price, otype, size = D(1 + k % 5) / 100, OrderType.GTC, D(10)
        else:
            price, otype, size = asks[token], (OrderType.GTC if kind == 2 else OrderType.FOK), D(5)
        out.append(
            OrderIntent(
                key=intent_key(prefix, m["condition_id"], k),
                strategy=prefix,
                token_id=token,
                condition_id=m["condition_id"],
                side=Side.BUY,
                price=price,
                size=size,
                order_type=otype,
                signal_ms=now_ms,
                meta={"market": m["slug"], "outcome": "Up" if idx == 0 else "Down"},
            )
        )
    return out


async def _dry_run_setup(
    markets: list[dict[str, Any]], settings: Settings, lock_dir: Path
) -> tuple[Store, Venue, ExecutorHandle, dict[str, D]]:
    """(store, venue, executor handle, best ask per token) with params and books fetched once."""
    from pmbot.executor.factory import build_executor
    from pmbot.polymarket.factory import build_venue
    from pmbot.store import open_store

    store = open_store(settings.database_url)
    venue = build_venue(settings, timeout=10.0)
    tokens = [t for m in markets for t in m["token_ids"]]
    await venue.params.warm(tokens)
    books = {t: await venue.clob.book(t) for t in tokens}
    asks = {t: b.best_ask for t, b in books.items() if b.best_ask is not None}  # FOKs take the best ask
    handle = await build_executor(settings, store, venue, dry_run=True, lock_dir=lock_dir, books=SnapshotBooks(books))
    await handle.executor.start()
    return store, venue, handle, asks


# ------------------------------------------------------------------------------- 1. dry-run throughput


async def _throughput(sim: SimProcess, tmp: Path, *, rest: bool) -> Result:
    from pmbot.store.models import OrderStatus

    n = THROUGHPUT_MIXED if rest else THROUGHPUT_TAKER
    tag = "mixed" if rest else "taker"
    markets = sim.open_markets(lasting_s=MARKET_LASTING_S)
    settings = _settings(sim.env, tmp / f"throughput-{tag}.db")
    store, venue, handle, asks = await _dry_run_setup(markets, settings, tmp / "locks")
    ex = handle.executor
    now_ms = int(time.time() * 1000)
    warm = _mixed_intents(f"warm{tag}", 0, 400, markets, asks, now_ms, rest=rest)
    intents = _mixed_intents(tag, 0, n, markets, asks, now_ms, rest=rest)  # built outside the timing
    batches = [intents[i : i + THROUGHPUT_BATCH] for i in range(0, len(intents), THROUGHPUT_BATCH)]
    await ex.submit_many(warm)
    open_before = len(ex.risk.open_keys())

    profiler = None
    if os.environ.get("PMBOT_BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    results = []
    t = time.perf_counter()
    for b in batches:
        results.extend(await ex.submit_many(b))
    elapsed = time.perf_counter() - t
    if profiler is not None:
        profiler.disable()
        out = Path(__file__).parent / f"executor-throughput-{tag}.prof"
        profiler.dump_stats(out)
        print(f"cProfile of the {tag} throughput run: {out}")
    open_after = len(ex.risk.open_keys())
    await handle.close()
    await venue.aclose()
    store.close()

    statuses: dict[str, int] = {}
    for r in results:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1
    rejected = statuses.get(OrderStatus.REJECTED.value, 0)
    dup = sum(r.duplicate for r in results)
    rate = len(results) / elapsed
    tokens = len(asks)
    if rest:
        name, mix = "executor: dry-run throughput (mixed, 1/4 resting)", "FOK + GTC, a quarter resting"
    else:
        name, mix = "executor: dry-run throughput (nothing rests)", "FOK + marketable GTC"
    return Result(
        name,
        round(rate),
        "intents/s",
        ">= 5000 intents/s, one process (books: one sim snapshot per token, re-stamped per read; no HTTP)",
        rate >= 5_000 and rejected == 0 and dup == 0,
        note=(
            f"{len(results)} BUYs ({mix}) in submit_many bursts of {THROUGHPUT_BATCH} over {len(markets)}"
            f" markets/{tokens} tokens, SQLite synchronous=FULL; open orders {open_before}→{open_after};"
            f" {', '.join(f'{k} {v}' for k, v in sorted(statuses.items()))}"
        ),
    )


# ----------------------------------------------------------------------------------- 2. live latency


def _pcts(samples: list[float]) -> tuple[float, float, float]:
    return percentile(samples, 50), percentile(samples, 95), percentile(samples, 99)


async def _live(
    sim: SimProcess,
    tmp: Path,
    *,
    cancel: bool,
    durability: str = "full",
    orders: int = LIVE_ORDERS,
    run: int = 0,
    tag: str = "",
) -> dict[str, list[float]]:
    """Sequential resting GTC BUYs. `cancel`: each is cancelled right after its measurement (outside the
    timing), so at most one order is open, as with a realistic max_open_orders; else they pile up.
    `durability`: the store's `[store] durability` ("full": synchronous=FULL, "normal": synchronous=NORMAL);
    `run` numbers the runs of one kind (a fresh database and key space each), `tag` names the kind."""
    from pmbot.executor.factory import build_executor
    from pmbot.executor.intents import OrderIntent, intent_key
    from pmbot.polymarket.factory import build_venue
    from pmbot.store import open_store
    from pmbot.store.models import OrderStatus, OrderType, Side

    m = sim.open_markets(lasting_s=MARKET_LASTING_S)[0]
    token = m["token_ids"][0]
    tag = f"{'cancel' if cancel else 'rest'}{'-' + tag if tag else ''}"
    settings = _settings(sim.env, tmp / f"live-{tag}-{durability}-{run}.db", PMBOT_STORE__DURABILITY=durability)
    store = open_store(settings.database_url, durability=settings.store.durability)
    venue = build_venue(settings, timeout=10.0)
    handle = await build_executor(settings, store, venue, dry_run=False, lock_dir=tmp / "locks")
    ex = handle.executor
    await ex.start()
    await venue.params.warm([token])
    await ex.prewarm()  # what a strategy runner does before its window: the order connection is open
    trading = ex.trading
    assert trading is not None
    acks: list[float] = []
    post = trading.post_order

    async def stamped_post(*a: Any, **kw: Any) -> Any:
        try:
            return await post(*a, **kw)
        finally:
            acks.append(time.perf_counter())

    trading.post_order = stamped_post  # type: ignore[method-assign]
    commits: list[float] = []
    write_ahead = ex._write_ahead

    def timed_write_ahead(rows: Any) -> Any:  # the durable commit before the POST: its fsync is the disk's
        t = time.perf_counter()
        try:
            return write_ahead(rows)
        finally:
            commits.append((time.perf_counter() - t) * 1000)

    ex._write_ahead = timed_write_ahead  # type: ignore[method-assign]

    def intent(n: int) -> OrderIntent:
        return OrderIntent(
            key=intent_key(f"latency-{tag}-{durability}-{run}", m["condition_id"], n),
            strategy="latency",
            token_id=token,
            condition_id=m["condition_id"],
            side=Side.BUY,
            price=D(1 + n % 5) / 100,
            size=D(10),
            order_type=OrderType.GTC,
            signal_ms=int(time.time() * 1000),
        )

    before = len(sim.receipts())
    starts: list[float] = []
    ends: list[float] = []
    bad = 0
    for n in range(LIVE_WARMUP + orders):
        i = intent(n)
        t = time.perf_counter()
        res = await ex.submit(i)
        ends.append(time.perf_counter())
        starts.append(t)
        bad += res.status is not OrderStatus.LIVE
        if cancel:
            await ex.cancel(res.key)
    open_after = len(ex.risk.open_keys())
    await handle.close()
    await venue.aclose()
    store.close()
    receipts = sim.receipts()[before:]
    if bad or len(receipts) != len(starts) or len(acks) != len(starts):
        raise RuntimeError(f"live run: {bad} not LIVE, {len(receipts)} receipts / {len(acks)} acks for {len(starts)}")
    w = LIVE_WARMUP
    return {
        "recv": [(r[0] - s) * 1000 for s, r in zip(starts[w:], receipts[w:], strict=True)],
        "ack": [(a - s) * 1000 for s, a in zip(starts[w:], acks[w:], strict=True)],
        "done": [(e - s) * 1000 for s, e in zip(starts[w:], ends[w:], strict=True)],
        "sim": [(r[1] - r[0]) * 1000 for r in receipts[w:]],
        "commit": commits[w:],
        "open": [float(open_after)],
    }


async def _armed(sim: SimProcess, tmp: Path) -> dict[str, list[float]]:
    """Pre-armed orders (Executor.arm ahead, outside the timing), then `fire` one at a time: the risk gate,
    the budget and one POST, no signing, no commit before it. Each is cancelled after it was timed."""
    from pmbot.executor.factory import build_executor
    from pmbot.executor.intents import OrderIntent, intent_key
    from pmbot.polymarket.factory import build_venue
    from pmbot.store import open_store
    from pmbot.store.models import OrderStatus, OrderType, Side

    m = sim.open_markets(lasting_s=MARKET_LASTING_S)[0]
    token = m["token_ids"][0]
    settings = _settings(sim.env, tmp / "live-armed.db")
    store = open_store(settings.database_url)
    venue = build_venue(settings, timeout=10.0)
    handle = await build_executor(settings, store, venue, dry_run=False, lock_dir=tmp / "locks")
    ex = handle.executor
    await ex.start()
    await venue.params.warm([token])
    await ex.prewarm()
    trading = ex.trading
    assert trading is not None
    acks: list[float] = []
    post = trading.post_prepared

    async def stamped_post(*a: Any, **kw: Any) -> Any:
        try:
            return await post(*a, **kw)
        finally:
            acks.append(time.perf_counter())

    trading.post_prepared = stamped_post  # type: ignore[method-assign]

    def intent(n: int) -> OrderIntent:
        return OrderIntent(
            key=intent_key("armed", m["condition_id"], n),
            strategy="armed",
            token_id=token,
            condition_id=m["condition_id"],
            side=Side.BUY,
            price=D(1 + n % 5) / 100,
            size=D(10),
            order_type=OrderType.GTC,
            signal_ms=int(time.time() * 1000),
        )

    before = len(sim.receipts())
    starts: list[float] = []
    ends: list[float] = []
    bad = 0
    total = LIVE_WARMUP + LIVE_ORDERS
    for lo in range(0, total, 50):
        armed = await ex.arm([intent(n) for n in range(lo, min(lo + 50, total))])  # a window's candidates
        gc.collect()
        for a in armed:
            t = time.perf_counter()
            res = await ex.fire(a.key)
            ends.append(time.perf_counter())
            starts.append(t)
            bad += res.status is not OrderStatus.LIVE
            await ex.cancel(res.key)
    await handle.close()
    await venue.aclose()
    store.close()
    receipts = sim.receipts()[before:]
    if bad or len(receipts) != len(starts) or len(acks) != len(starts):
        raise RuntimeError(f"armed run: {bad} not LIVE, {len(receipts)} receipts / {len(acks)} acks for {len(starts)}")
    w = LIVE_WARMUP
    return {
        "recv": [(r[0] - s) * 1000 for s, r in zip(starts[w:], receipts[w:], strict=True)],
        "ack": [(a - s) * 1000 for s, a in zip(starts[w:], acks[w:], strict=True)],
        "done": [(e - s) * 1000 for s, e in zip(starts[w:], ends[w:], strict=True)],
    }


POST_PATH_ORDERS = 300  # per transport


async def _post_paths(sim: SimProcess, tmp: Path) -> dict[str, list[float]]:
    """The POST alone, signed order in hand → the sim receives it, for three transports in rotation (same
    orders, same process, same sim): the lean path (pmbot.polymarket.fastpost), aiohttp's ClientSession
    (kept alive) and httpx through HttpClient (the path before issue 13)."""
    import aiohttp

    from pmbot.polymarket.auth import l2_headers
    from pmbot.polymarket.factory import build_venue
    from pmbot.store.models import OrderType, Side

    m = sim.open_markets(lasting_s=MARKET_LASTING_S)[0]
    token = m["token_ids"][0]
    settings = _settings(sim.env, tmp / "post-paths.db")
    venue = build_venue(settings, timeout=10.0)
    trading = await venue.trading()
    await venue.params.warm([token])
    poster = trading.poster
    assert poster is not None
    assert trading.creds is not None
    await poster.prewarm()
    kinds = ["fastpost", "aiohttp", "httpx"]
    preps = []
    for n in range(POST_PATH_ORDERS * len(kinds) + 30):
        order = await trading.build_order(token, Side.BUY, D(1 + n % 5) / 100, D(10) + n, order_type=OrderType.GTC)
        preps.append(trading.prepare_post(order, OrderType.GTC))
    session = aiohttp.ClientSession(sim.url, connector=aiohttp.TCPConnector(limit=4, keepalive_timeout=60))
    creds, address = trading.creds, trading.signer.address

    async def via_aiohttp(prep: Any) -> None:
        headers = l2_headers(address, creds, "POST", "/order", prep.text, int(time.time()))
        headers["Content-Type"] = "application/json"
        async with session.post("/order", data=prep.body, headers=headers) as resp:
            await resp.read()

    async def via_httpx(prep: Any) -> None:
        trading.poster = None
        try:
            await trading.post_prepared(prep)
        finally:
            trading.poster = poster

    send = {"fastpost": trading.post_prepared, "aiohttp": via_aiohttp, "httpx": via_httpx}
    starts: dict[str, list[float]] = {k: [] for k in kinds}
    order_of: list[str] = []
    before = len(sim.receipts())
    for n, prep in enumerate(preps):
        kind = kinds[(n + n // len(kinds)) % len(kinds)]  # rotate which one goes first
        t = time.perf_counter()
        await send[kind](prep)
        starts[kind].append(t)
        order_of.append(kind)
    await session.close()
    await venue.aclose()
    receipts = sim.receipts()[before:]
    if len(receipts) != len(preps):
        raise RuntimeError(f"post paths: {len(receipts)} receipts for {len(preps)} orders")
    out: dict[str, list[float]] = {k: [] for k in kinds}
    seen: dict[str, int] = {k: 0 for k in kinds}
    for kind, r in zip(order_of, receipts, strict=True):
        i = seen[kind]
        seen[kind] += 1
        if i >= 10:  # warm-up of each transport
            out[kind].append((r[0] - starts[kind][i]) * 1000)
    return out


def _post_path_results(paths: dict[str, list[float]]) -> list[Result]:
    f50, f95, f99 = _pcts(paths["fastpost"])
    a50, a95, a99 = _pcts(paths["aiohttp"])
    x50, x95, x99 = _pcts(paths["httpx"])
    return [
        Result(
            "executor: POST path, order in hand → POST received p50 (lean path)",
            round(f50, 3),
            "ms",
            "(no goal; faster than aiohttp and httpx)",
            f50 < a50 and f50 < x50,
            peer=round(a50, 3),
            note=(
                f"same signed orders, transports in rotation, {len(paths['fastpost'])} each: lean asyncio path"
                f" p50 {f50:.3f} p95 {f95:.3f} p99 {f99:.3f}; aiohttp ClientSession (kept alive) p50 {a50:.3f}"
                f" p95 {a95:.3f} p99 {a99:.3f}; httpx via HttpClient p50 {x50:.3f} p95 {x95:.3f} p99 {x99:.3f} ms;"
                " peer column = aiohttp"
            ),
        ),
        Result(
            "executor: POST path, order in hand → POST received p50 (httpx, before)",
            round(x50, 3),
            "ms",
            "(no goal; the path before issue 13)",
            None,
        ),
    ]


async def _peer_sdk(sim: SimProcess, *, orders: int = PEER_ORDERS, run: int = 0) -> dict[str, list[float]]:
    """polymarket-client (Polymarket/py-sdk, the official SDK): `AsyncSecureClient.place_limit_order`
    (create, sign and post) for the same kind of order, same sim process. The SDK has no setting for
    its URLs, so its production environment is copied with the sim's; wallet = the key's own address
    (an EOA: no deposit-wallet lookups). `orders` after a warm-up of its own; `run` numbers the parts."""
    from dataclasses import replace as dc_replace

    from eth_account import Account
    from polymarket.clients.async_secure import AsyncSecureClient
    from polymarket.environments import PRODUCTION, _create_environment

    cfg = dc_replace(PRODUCTION._config, clob_url=sim.url, gamma_url=sim.url, data_url=sim.url)
    env = _create_environment(name="pmbot-sim", config=cfg)
    client = await AsyncSecureClient.create(private_key=KEY, wallet=Account.from_key(KEY).address, environment=env)
    token = sim.open_markets(lasting_s=MARKET_LASTING_S)[0]["token_ids"][0]

    base = run * (LIVE_WARMUP + orders)  # distinct sizes across parts

    async def one(n: int) -> str | None:
        n += base
        placed = await client.place_limit_order(
            token_id=token, price=str(D(1 + n % 5) / 100), size=str(10 + n), side="BUY"
        )
        return getattr(placed, "order_id", None)

    async def cancel(order_id: str | None) -> None:
        # As ours: each order cancelled right after it was timed, so both sides meet the same book (one
        # order open) and run the same cancel between two orders, which cools the order path's caches.
        if order_id is None:
            raise RuntimeError("SDK peer run: an order was not accepted")
        await client.cancel_order(order_id=order_id)

    try:
        for n in range(LIVE_WARMUP // 2):  # tick size, neg-risk and fee caches, connection
            await cancel(await one(n))
        before = len(sim.receipts())
        starts, ends = [], []
        for n in range(orders):
            t = time.perf_counter()
            order_id = await one(LIVE_WARMUP + n)
            ends.append(time.perf_counter())
            starts.append(t)
            await cancel(order_id)
        await client.cancel_all()  # nothing should be left; the next part (ours or the peer's) finds no pile-up
    finally:
        await client.close()
    receipts = sim.receipts()[before:]
    if len(receipts) != len(starts):
        raise RuntimeError(f"SDK peer run: {len(receipts)} receipts for {len(starts)} orders")
    return {
        "recv": [(r[0] - s) * 1000 for s, r in zip(starts, receipts, strict=True)],
        "ack": [(e - s) * 1000 for s, e in zip(starts, ends, strict=True)],
    }


def _latency_results(
    ours: dict[str, list[float]],
    piled: dict[str, list[float]],
    peer: dict[str, list[float]],
    armed: dict[str, list[float]],
    *,
    pinned: bool,
) -> list[Result]:
    """`peer`: the official SDK (polymarket-client); `pinned`: the sim had a core of its own."""
    r50, r95, r99 = _pcts(ours["recv"])
    p50, p95, p99 = _pcts(peer["recv"])
    a50, a95, a99 = _pcts(ours["ack"])
    q50, q95, q99 = _pcts(peer["ack"])
    d50, d95, d99 = _pcts(ours["done"])
    s50, _, s99 = _pcts(ours["sim"])
    x50, x95, x99 = _pcts(piled["recv"])
    y50, _, y99 = _pcts(piled["ack"])
    n = len(ours["recv"])
    c50, _, c99 = _pcts(ours["commit"])
    rest = [r - c for r, c in zip(ours["recv"], ours["commit"], strict=False)]
    e50, _, e99 = _pcts(rest)
    what = "submit() → the sim process receives POST /order (CLOCK_MONOTONIC stamp in the sim)"
    how = (
        f"{n} sequential resting GTC BUYs in {DURABILITY_ROUNDS} parts interleaved with the durability=normal ones"
        f" and the peer's, each part after {LIVE_WARMUP} warm-up, each order cancelled after it was timed;"
        f" pmbot on {loop_name(loop_factory(pmbot_loop()))} (its trading commands' event loop), the peer on"
        " asyncio's (see the event-loop rows);"
        + (
            " the sim on a core of its own, both clients on the other (bench.sim_process.pinned_apart)"
            if pinned
            else " the sim sharing the cores with the clients (the default; BENCH_EXECUTOR_PIN=1 pins it apart)"
        )
    )
    peer_note = (
        f"peer: polymarket-client AsyncSecureClient.place_limit_order, {len(peer['recv'])} orders in"
        f" {DURABILITY_ROUNDS} parts (each after {LIVE_WARMUP // 2} warm-up), same sim process, each order"
        " cancelled (cancel_order) after it was timed, as ours"
    )
    f50, f95, f99 = _pcts(armed["recv"])
    g50, _, g99 = _pcts(armed["ack"])
    h50, _, h99 = _pcts(armed["done"])
    return [
        Result(
            "executor: live intent → POST received p50",
            round(r50, 3),
            "ms",
            "<= 0.70 ms and >= 1.25x faster than the SDK (issue 13)",
            r50 <= 0.70 and p50 / r50 >= 1.25,
            peer=round(p50, 3),
            note=(
                f"{what}; {how}; {peer_note}; ratio = peer / ours; durability=full (the default); of which the"
                f" write-ahead commit (synchronous=FULL, its fsync; WAL checkpoints run in the store's background"
                f" thread, never inside a commit) p50 {c50:.3f} p99 {c99:.3f} ms, the rest of the"
                f" path (per order, POST received − commit) p50 {e50:.3f} p99 {e99:.3f} ms"
            ),
        ),
        Result("executor: live intent → POST received p95", round(r95, 3), "ms", "(no goal)", None, peer=round(p95, 3)),
        Result(
            "executor: live intent → POST received p99",
            round(r99, 3),
            "ms",
            "<= 1.5 ms (issue 13)",
            r99 <= 1.5,
            peer=round(p99, 3),
        ),
        Result(
            "executor: live armed fire → POST received p50",
            round(f50, 3),
            "ms",
            "(no goal; issue 14's prototype: 0.29 ms)",
            None,
            peer=round(p50, 3),
            note=(
                f"Executor.fire() of a pre-armed order (signed and stored `armed` ahead, outside the timing)"
                f" → the sim receives POST /order: p95 {f95:.3f} p99 {f99:.3f} ms; fire → answer in hand"
                f" p50 {g50:.3f} p99 {g99:.3f} ms; fire() return incl. the settle commit p50 {h50:.3f}"
                f" p99 {h99:.3f} ms; {len(armed['recv'])} GTC BUYs, each cancelled after it was timed;"
                " peer: the SDK's create_and_post_order as above"
            ),
        ),
        Result(
            "executor: live intent → ack p50",
            round(a50, 3),
            "ms",
            ">= 1.2x faster than the SDK (issue 13)",
            q50 / a50 >= 1.2,
            peer=round(q50, 3),
            note=(
                f"submit() → POST /order answer in hand (peer: call → return): p95 {a95:.3f} (peer {q95:.3f}) ms;"
                f" sim handler p50 {s50:.3f} p99 {s99:.3f} ms; submit() return incl. the settle commit"
                f" p50 {d50:.3f} p95 {d95:.3f} p99 {d99:.3f} ms"
            ),
        ),
        Result("executor: live intent → ack p99", round(a99, 3), "ms", "(no goal)", None, peer=round(q99, 3)),
        Result(
            "executor: live intent → POST received p50, orders left open",
            round(x50, 3),
            "ms",
            "(no goal; open orders grow)",
            None,
            note=(
                f"same, but nothing cancelled: {LIVE_WARMUP}→{piled['open'][0]:.0f} open orders;"
                f" p95 {x95:.3f} p99 {x99:.3f} ms; ack p50 {y50:.3f} p99 {y99:.3f} ms"
            ),
        ),
    ]


def _merge(parts: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """One run's samples from several (`open`: the last part's)."""
    out: dict[str, list[float]] = {k: [x for p in parts for x in p[k]] for k in parts[0] if k != "open"}
    out["open"] = parts[-1]["open"]
    return out


def _loop_results(
    ours: dict[str, list[float]],
    ours_asyncio: dict[str, list[float]],
    peer: dict[str, list[float]],
    peer_uv: dict[str, list[float]],
) -> list[Result]:
    """The event loop's share: pmbot on asyncio's loop, and the SDK on uvloop, beside the main rows
    (pmbot on uvloop, the SDK on asyncio's loop), parts interleaved in the same run."""
    o50, _, o99 = _pcts(ours["recv"])
    a50, _, a99 = _pcts(ours_asyncio["recv"])
    p50, _, _ = _pcts(peer["recv"])
    u50, _, u99 = _pcts(peer_uv["recv"])
    oa50, _, _ = _pcts(ours["ack"])
    aa50, _, _ = _pcts(ours_asyncio["ack"])
    pa50, _, _ = _pcts(peer["ack"])
    ua50, _, _ = _pcts(peer_uv["ack"])
    return [
        Result(
            "executor: live intent → POST received p50, pmbot on asyncio's loop",
            round(a50, 3),
            "ms",
            '(no goal; event_loop = "asyncio")',
            None,
            peer=round(p50, 3),
            note=(
                f"pmbot with PMBOT_EVENT_LOOP=asyncio, {len(ours_asyncio['recv'])} orders in the same interleaved"
                f" parts: p99 {a99:.3f} ms, ack p50 {aa50:.3f} ms (on uvloop: p50 {o50:.3f}, p99 {o99:.3f}, ack"
                f" {oa50:.3f} ms); peer: the SDK on asyncio's loop (ack {pa50:.3f} ms)"
            ),
        ),
        Result(
            "executor: live intent → POST received p50, SDK peer on uvloop",
            round(o50, 3),
            "ms",
            "(no goal; both on uvloop)",
            None,
            peer=round(u50, 3),
            note=(
                f"value: pmbot (uvloop); peer: polymarket-client's place_limit_order run on uvloop,"
                f" {len(peer_uv['recv'])} orders in the same interleaved parts: p50 {u50:.3f} p99 {u99:.3f} ms,"
                f" ack p50 {ua50:.3f} ms (pmbot's ack {oa50:.3f} ms: ratio {ua50 / oa50:.2f})"
            ),
        ),
    ]


def _durability_results(
    full: dict[str, list[float]], normal: dict[str, list[float]], peer: dict[str, list[float]]
) -> list[Result]:
    """The same live run with `[store] durability = "normal"` (WAL, synchronous=NORMAL: no fsync per
    commit; survives a crash or SIGKILL of pmbot, not a power loss), beside the default's figures. The
    WAL's fsync happens at checkpoints, which run in the store's background thread (pmbot/store/checkpoint.py),
    so no commit pays for one."""
    r50, _, r99 = _pcts(normal["recv"])
    f50, _, f99 = _pcts(full["recv"])
    a50, _, a99 = _pcts(normal["ack"])
    c50, _, c99 = _pcts(normal["commit"])
    k50, _, k99 = _pcts(full["commit"])
    p50, _, p99 = _pcts(peer["recv"])
    note = (
        f"as the durability=full rows above, same sim process, {len(normal['recv'])} orders; durability=normal"
        f" write-ahead commit p50 {c50:.3f} p99 {c99:.3f} ms (durability=full: p50 {k50:.3f} p99 {k99:.3f} ms);"
        f" intent → POST received durability=full p50 {f50:.3f} p99 {f99:.3f} ms; intent → ack p50 {a50:.3f}"
        f" p99 {a99:.3f} ms; peer: polymarket-client as above; the WAL is fsynced by the background checkpoints,"
        " not by any commit. Not the default: the last commits may be lost on"
        " a power loss or OS crash"
    )
    return [
        Result(
            "executor: live intent → POST received p50, durability=normal",
            round(r50, 3),
            "ms",
            "(no goal; opt-in setting, issue 13)",
            None,
            peer=round(p50, 3),
            note=note,
        ),
        Result(
            "executor: live intent → POST received p99, durability=normal",
            round(r99, 3),
            "ms",
            "(no goal; opt-in setting, issue 13)",
            None,
            peer=round(p99, 3),
        ),
        Result(
            "executor: write-ahead commit p50, durability=normal",
            round(c50, 3),
            "ms",
            "(no goal)",
            None,
            note=f"durability=full: p50 {k50:.3f} p99 {k99:.3f} ms; normal p99 {c99:.3f} ms",
        ),
    ]


# --------------------------------------------------------------------------------------- 3. fleet


def _fleet_worker(cfg_json: str) -> int:
    """One fleet process: dry-run executor with its own SQLite file, shared Redis; submits the shared
    stream of keys from `go` until the deadline, then writes what it sent to cfg["out"]."""
    cfg = json.loads(cfg_json)
    return asyncio.run(_fleet_worker_main(cfg))


async def _fleet_worker_main(cfg: dict[str, Any]) -> int:
    tmp = Path(cfg["dir"])
    markets = cfg["markets"]
    settings = _settings(
        cfg["sim_env"],
        tmp / f"worker{cfg['n']}.db",
        PMBOT_REDIS_URL=cfg["redis_url"],
        PMBOT_EXECUTOR__ORDERS_PER_MINUTE=str(cfg["per_minute"]),
    )
    store, venue, handle, asks = await _dry_run_setup(markets, settings, tmp / f"locks{cfg['n']}")
    ex = handle.executor
    budget = StampedBudget(ex.budget)
    ex.budget = budget
    now_ms = int(time.time() * 1000)
    print("ready", flush=True)
    go, deadline = (float(x) for x in sys.stdin.readline().split())
    while (wait := go - time.perf_counter()) > 0:
        await asyncio.sleep(wait)
    nxt = 0

    async def submitter() -> None:
        nonlocal nxt
        while time.perf_counter() < deadline:
            start, nxt = nxt, nxt + FLEET_BATCH
            await ex.submit_many(_mixed_intents("fleet", start, FLEET_BATCH, markets, asks, now_ms))

    await asyncio.gather(*(submitter() for _ in range(FLEET_SUBMITTERS)))
    metrics = ex.metrics.snapshot()
    await handle.close()
    await venue.aclose()
    orders = store.list_orders()
    store.close()
    Path(cfg["out"]).write_text(
        json.dumps(
            {
                "stamps": budget.stamps,
                "keys": [o.key for o in orders],
                "statuses": [o.status.value for o in orders],
                "walked": nxt,
                "metrics": metrics,
            }
        )
    )
    return 0


def _fleet(sim: SimProcess, tmp: Path) -> list[Result]:
    from pmbot.executor.budget import burst_for

    name_rate, name_dup = "executor: fleet global rate error", "executor: fleet duplicate executions"
    goal_dup = "0 keys executed by more than one process (Redis SET NX)"
    goal_rate = f"<= 2 % off {FLEET_PER_MINUTE}/min over the steady state ({FLEET_WORKERS} processes, one wallet)"
    if shutil.which("redis-server") is None:
        print("executor fleet: redis-server not found; skipped (install redis-server)", flush=True)
        nan = float("nan")
        return [
            Result(name_rate, nan, "%", goal_rate, None, note="skipped: no redis-server"),
            Result(name_dup, nan, "keys", goal_dup, None, note="skipped: no redis-server"),
        ]
    redis = RedisProcess(tmp)
    procs: list[subprocess.Popen[str]] = []
    try:
        markets = sim.open_markets(lasting_s=MARKET_LASTING_S)
        outs = [tmp / f"fleet{n}.json" for n in range(FLEET_WORKERS)]
        for n in range(FLEET_WORKERS):
            cfg = {
                "n": n,
                "dir": str(tmp),
                "sim_env": sim.env,
                "markets": markets,
                "redis_url": redis.url,
                "per_minute": FLEET_PER_MINUTE,
                "out": str(outs[n]),
            }
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bench.bench_executor", "fleet-worker", json.dumps(cfg)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
            )
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a fleet worker failed to start")
        go = time.perf_counter() + 0.2
        deadline = go + FLEET_SECONDS
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(f"{go!r} {deadline!r}\n")
            p.stdin.flush()
        for p in procs:
            if p.wait(timeout=FLEET_SECONDS + 60) != 0:
                raise RuntimeError(f"fleet worker exited with {p.returncode}")
        data = [json.loads(o.read_text()) for o in outs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        redis.stop()

    rate = FLEET_PER_MINUTE / 60
    burst = burst_for(FLEET_PER_MINUTE)
    stamps = sorted(s for d in data for s in d["stamps"])
    t0 = stamps[0]
    # Steady state: from when the initial burst (a full bucket) is used up — the first stamp where the
    # count sent so far comes within a few tokens of burst + rate × elapsed (the most the bucket can have
    # given by then) — plus 0.5 s, to the deadline. Fallback if that is never seen: the second half.
    slack = 10
    drained = next((t for i, t in enumerate(stamps) if i + 1 >= burst + rate * (t - t0) - slack), None)
    how = "after the burst of" if drained is not None else "(burst end not seen: second half) burst"
    drained = drained if drained is not None else t0 + FLEET_SECONDS / 2
    ws, we = min(drained + 0.5, deadline - FLEET_SECONDS / 4), deadline
    in_window = sum(ws <= t < we for t in stamps)
    measured = in_window / (we - ws) if we > ws else float("nan")
    err = abs(measured - rate) / rate * 100
    by_deadline = sum(t < deadline for t in stamps)
    expected = burst + rate * (deadline - t0)
    owners: dict[str, int] = {}
    for d in data:
        for k in set(d["keys"]):
            owners[k] = owners.get(k, 0) + 1
    dups = sum(c > 1 for c in owners.values())
    per_worker = "/".join(str(len(d["stamps"])) for d in data)
    fleet_dups = sum(d["metrics"]["duplicates"] for d in data)
    return [
        Result(
            name_rate,
            round(err, 2),
            "%",
            goal_rate,
            err <= 2.0,
            note=(
                f"{measured:.2f} orders/s vs {rate:g}/s over {we - ws:.1f} s {how} {burst} drained"
                f" ({drained - t0:.2f} s); t0→deadline {by_deadline} sent vs burst + rate×t = {expected:.0f};"
                f" per worker {per_worker}; dry-run executors, RedisBudget on wallet 'paper'"
            ),
        ),
        Result(
            name_dup,
            dups,
            "keys",
            goal_dup,
            dups == 0,
            note=(
                f"{len(owners)} distinct keys executed, {len(stamps)} sent; {fleet_dups} submits answered as"
                f" duplicates; every worker walked the same key stream (up to {max(d['walked'] for d in data)})"
            ),
        ),
    ]


# ------------------------------------------------------------------------------------------- suite


@contextlib.contextmanager
def _sim() -> Iterator[SimProcess]:
    sim = SimProcess().start()
    try:
        yield sim
    finally:
        sim.stop()


def run() -> list[Result]:
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="pmbot-bench-") as d, _sim() as sim:
        tmp = Path(d)
        # Latency first: the throughput runs leave a bigger heap behind (longer GC pauses).
        # Both durabilities and the SDK peer in interleaved parts, in a rotating order: this machine's speed
        # (the disk's fsync, the CPU) drifts from minute to minute, and a ratio is only fair between
        # samples taken under the same conditions.
        # pmbot runs on its trading commands' event loop (uvloop: `run_pmbot`), the SDK on asyncio's, as each is
        # run by its users; "asyncio" (pmbot on asyncio's loop) and "peer_uvloop" (the SDK on uvloop) show
        # what the loop alone is worth, on each side.
        # BENCH_EXECUTOR_PIN=1: the latency parts with the sim on a core of its own (`pinned_apart`). Off by
        # default: in two runs each (2026-12-01) pinned was no fairer and slower for both clients (pmbot's
        # part besides the commit +0.06 ms p50; intent → ack ratio 1.08-1.09 pinned, 1.05-1.14 not).
        pin = pinned_apart(sim) if os.environ.get("BENCH_EXECUTOR_PIN") == "1" else contextlib.nullcontext(False)
        with pin as pinned:
            kinds = ("full", "peer", "normal", "asyncio", "peer_uvloop")
            runs: dict[str, list[dict[str, list[float]]]] = {k: [] for k in kinds}
            for r in range(DURABILITY_ROUNDS):
                for kind in kinds[r % len(kinds) :] + kinds[: r % len(kinds)]:
                    if kind.startswith("peer"):
                        part = _peer_sdk(sim, orders=PEER_ORDERS // DURABILITY_ROUNDS, run=r)
                        runs[kind].append(run_pmbot(part) if kind == "peer_uvloop" else asyncio.run(part))
                        continue
                    durability = "normal" if kind == "normal" else "full"
                    one = _live(sim, tmp, cancel=True, durability=durability, orders=LIVE_ORDERS // DURABILITY_ROUNDS,
                                run=r, tag=kind)  # fmt: skip
                    runs[kind].append(asyncio.run(one) if kind == "asyncio" else run_pmbot(one))
            ours, ours_normal, ours_asyncio = _merge(runs["full"]), _merge(runs["normal"]), _merge(runs["asyncio"])
            peer = {k: [x for p in runs["peer"] for x in p[k]] for k in ("recv", "ack")}
            peer_uv = {k: [x for p in runs["peer_uvloop"] for x in p[k]] for k in ("recv", "ack")}
            armed = run_pmbot(_armed(sim, tmp))
            paths = run_pmbot(_post_paths(sim, tmp))
            piled = run_pmbot(_live(sim, tmp, cancel=False))
        gc.collect()
        results.append(run_pmbot(_throughput(sim, tmp, rest=True)))
        gc.collect()
        results.append(run_pmbot(_throughput(sim, tmp, rest=False)))
        gc.collect()
        results[:0] = (
            _latency_results(ours, piled, peer, armed, pinned=pinned)
            + _durability_results(ours, ours_normal, peer)
            + _loop_results(ours, ours_asyncio, peer, peer_uv)
            + _post_path_results(paths)
        )
        results.extend(_fleet(sim, tmp))
    return results


if __name__ == "__main__" and sys.argv[1:2] == ["fleet-worker"]:
    sys.exit(_fleet_worker(sys.argv[2]))
