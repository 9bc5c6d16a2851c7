"""Reliability of the executor against `pmbot sim` faults, over real sockets and real SQLite files.

The two promises under test: an intent is never sent twice, and no record is ever lost. Every test
checks them from both sides: the venue (what `pmbot sim` received, holds and traded) and the store.

- a live soak through 429s, 500s, latency and dropped answers, then reconcile();
- SIGTERM (graceful) and SIGKILL (crash) of a live executor process in the middle of a 1 000-intent burst,
  then a fresh executor on the same database;
- a dry-run executor reading books from a market stream whose WebSocket keeps dropping;
- an in-process crash in the middle of a paper burst.

The tests under "regressions" demonstrated executor bugs found by this suite, since fixed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.executor.books import VenueBooks
from pmbot.executor.budget import LocalBudget
from pmbot.executor.engine import DRY_RUN_PREFIX, Executor, SubmitResult
from pmbot.executor.factory import ExecutorHandle, build_executor
from pmbot.executor.intents import OrderIntent
from pmbot.polymarket.models import OrderBook
from pmbot.polymarket.signing import OrderSigner
from pmbot.polymarket.streams import MarketStream
from pmbot.sim.testing import SimServer
from pmbot.sim.venue import Venue as SimVenue
from pmbot.sim.verify import recover_order_signer
from pmbot.store import open_store
from pmbot.store.base import Store
from pmbot.store.models import OrderRecord, OrderStatus, OrderType, Query
from tests.executor_worker import FOK_EVERY, burst_intent
from tests.test_executor import KEY, Rig, settings_for

REPO = Path(__file__).resolve().parents[1]
UNSETTLED = frozenset({OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.UNKNOWN})
RESTING = frozenset({OrderStatus.LIVE, OrderStatus.PARTIALLY_FILLED})
# The same limits as tests/test_executor.py's settings_for, for the worker process's environment.
WORKER_LIMITS = {
    "PMBOT_EXECUTOR__ORDERS_PER_MINUTE": "600000",
    "PMBOT_RISK__MAX_OPEN_ORDERS": "5000",
    "PMBOT_RISK__MAX_ORDER_NOTIONAL": "100000",
    "PMBOT_RISK__MAX_TOTAL_EXPOSURE": "100000",
    "PMBOT_RISK__MAX_POSITION_PER_MARKET": "100000",
}


# ----------------------------------------------------------------------------------------- helpers


def market(sim: SimServer) -> tuple[str, list[str]]:
    m = sim.current_market()
    return m["condition_id"], list(m["token_ids"])


def burst(sim: SimServer, indices: Iterable[int]) -> list[OrderIntent]:
    condition, tokens = market(sim)
    now_ms = int(sim.now() * 1000)
    return [burst_intent(i, condition, tokens, now_ms) for i in indices]


async def eventually(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Poll until `cond()` holds: waiting for a state, never asserting how long it took."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


@dataclass(frozen=True, slots=True)
class VenueOrder:
    status: str
    size_matched: Decimal
    owner: str


@dataclass(frozen=True, slots=True)
class VenueView:
    received: list[tuple[str, str]]  # (order hash, signature) of every POST /order body the venue accepted to read
    orders: dict[str, VenueOrder]  # every order the venue's engine holds, by hash

    @property
    def hashes(self) -> list[str]:
        return [h for h, _ in self.received]


def venue_view(sim: SimServer) -> VenueView:
    def collect(v: SimVenue) -> VenueView:
        received = []
        for body in v.received_orders:
            order = body["order"]
            m = v.market_by_token(str(order["tokenId"]))
            assert m is not None
            order_hash, _ = recover_order_signer(order, neg_risk=m.neg_risk)
            received.append((order_hash, str(order["signature"])))
        held = {oid: VenueOrder(o.status, o.size_matched, o.owner) for oid, o in v.engine.orders.items()}
        return VenueView(received, held)

    return sim.call(collect)


def our_api_key(sim: SimServer) -> str:
    return sim.creds(OrderSigner(KEY).address)["apiKey"]


def assert_consistent_with_venue(store: Store, sim: SimServer, keys: Iterable[str]) -> dict[str, OrderRecord]:
    """The invariants every live test ends with. Returns the stored orders by key."""
    keys = set(keys)
    view = venue_view(sim)
    records = {r.key: r for r in store.list_orders(query=Query(dry_run=False))}
    # 0 lost records: every key stored exactly once (the key is the table's unique key), nothing else stored,
    # and nothing left between "written ahead" and "known".
    assert set(records) == keys, f"missing {len(keys - set(records))}, unexpected {len(set(records) - keys)}"
    unsettled = Counter(r.status.value for r in records.values() if r.status in UNSETTLED)
    assert not unsettled, f"orders left unsettled: {dict(unsettled)}"
    # 0 duplicates: every order the venue received is distinct, and is the one order stored for its key.
    # (A re-send of a key would be signed again, so it would carry a new salt, signature and hash.)
    signatures = [s for _, s in view.received]
    assert len(signatures) == len(set(signatures)), "the venue received the same signed order twice"
    by_hash = {r.venue_order_id: r for r in records.values() if r.venue_order_id}
    assert len(by_hash) == sum(1 for r in records.values() if r.venue_order_id), "two keys share a venue order"
    strangers = [h for h in view.hashes if h not in by_hash]
    assert not strangers, f"{len(strangers)} orders reached the venue that no stored order accounts for"
    sent_per_key = Counter(by_hash[h].key for h in view.hashes)
    assert max(sent_per_key.values(), default=0) <= 1
    # Every stored state agrees with what the venue holds.
    api_key = our_api_key(sim)
    for r in records.values():
        held = view.orders.get(r.venue_order_id) if r.venue_order_id else None
        where = f"{r.key} {r.order_type} stored {r.status.value}, venue {held}"
        if r.status in RESTING:
            assert held is not None and held.status == "LIVE" and held.owner == api_key, where
            assert r.filled_size == held.size_matched, where
        elif r.status is OrderStatus.FILLED:
            assert held is not None and held.status == "MATCHED", where
        elif r.status is OrderStatus.REJECTED:
            assert held is None, where  # "never reached the book"
        elif r.status is OrderStatus.CANCELLED:
            assert held is None or held.status.startswith("CANCELED"), where
    ours_open = {o["id"] for o in sim.open_orders() if o["owner"] == api_key}
    assert ours_open == {r.venue_order_id for r in records.values() if r.status in RESTING}
    # Every venue trade of one of our orders is a stored fill of that order, and nothing else is.
    trades = {
        t["id"]: t
        for t in sim.trades()
        if t["taker_order_id"] in by_hash or any(m["order_id"] in by_hash for m in t["maker_orders"])
    }
    fills = {t.fill.trade_id: t.fill for t in store.list_trades(Query(dry_run=False))}
    assert set(fills) == set(trades), f"venue trades not stored: {len(set(trades) - set(fills))}"
    for trade_id, fill in fills.items():
        t = trades[trade_id]
        assert fill.size == Decimal(t["size"]) and fill.price == Decimal(t["price"])
        assert fill.order_key == by_hash[fill.venue_order_id or ""].key
    return records


async def resubmit_changes_nothing(
    ex: Executor, store: Store, sim: SimServer, intents: list[OrderIntent], *, answers_match_store: bool = True
) -> None:
    """Replaying every known intent (twice at once) is answered from the records: nothing reaches the venue.
    Intents stored `not_sent` (nothing of them reached the venue) are left out: they may be sent again.

    `answers_match_store=False` skips comparing the answers' statuses with the store: after reconcile() in the
    same process they are stale (see test_a_duplicate_after_reconcile_is_answered_with_the_reconciled_status)."""
    received, orders = len(sim.received_orders()), store.list_orders()
    never_sent = {r.key for r in orders if r.status is OrderStatus.NOT_SENT}
    intents = [i for i in intents if i.key not in never_sent]
    fills = len(store.list_trades())
    first, again = await asyncio.gather(ex.submit_many(intents), ex.submit_many(intents))
    assert all(r.duplicate for r in first) and all(r.duplicate for r in again)
    if answers_match_store:
        stored = {r.key: r.status for r in orders}
        stale = Counter((stored[r.key].value, r.status.value) for r in first if r.status is not stored[r.key])
        assert not stale, f"(stored, answered) pairs that disagree: {dict(stale)}"
    assert len(sim.received_orders()) == received
    assert store.list_orders() == orders and len(store.list_trades()) == fills


def spawn_worker(sim: SimServer, db_url: str, lock_dir: Path, *, count: int, batch: int) -> subprocess.Popen[str]:
    condition, tokens = market(sim)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env())
    env.update(WORKER_LIMITS)
    env.update({"PMBOT_PRIVATE_KEY": KEY, "PMBOT_DATABASE_URL": db_url, "PYTHONPATH": str(REPO)})
    cmd = [
        sys.executable,
        "-m",
        "tests.executor_worker",
        "--condition",
        condition,
        "--tokens",
        ",".join(tokens),
        "--count",
        str(count),
        "--batch",
        str(batch),
        "--lock-dir",
        str(lock_dir),
        "--sim-now",
        repr(sim.now()),
    ]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def wait_exit(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    out, err = await asyncio.to_thread(proc.communicate, timeout=timeout)
    return proc.returncode, out, err


def on_disk(db_path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Query the database file as another process sees it (read-only: no migrations, no writes)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def live_restart(rig: Rig) -> tuple[ExecutorHandle, dict[str, int]]:
    """A fresh live executor on the rig's database: start() reconciles what the previous run left."""
    h = await build_executor(
        rig.settings, rig.store, rig.venue, dry_run=False, lock_dir=rig.tmp / "locks", clock=rig.sim.now
    )
    rig.handles.append(h)
    # The worker is gone: a request it gave up on cannot still be in the venue's pipeline, so no grace
    # period (test_executor.py covers the grace period itself).
    h.executor.unknown_grace_s = 0
    return h, await h.executor.start()


@pytest.fixture
async def rig(sim: SimServer, tmp_path: Path, db_url: str) -> AsyncIterator[Rig]:
    r = Rig(sim, tmp_path, settings_for(sim, db_url))
    yield r
    await r.close()


# -------------------------------------------------------------------------------- 1. live soak

# (what, faults) in turns; each turn's counts are consumed by its first requests to /order.
FAULT_TURNS: list[tuple[str, dict[str, Any]]] = [
    ("429 with Retry-After", {"rate_limit": 6, "retry_after": 1, "rate_limit_path": "/order"}),
    ("500", {"server_error": 6, "server_error_path": "/order"}),
    ("latency", {"latency_ms": 120}),
    ("accepted, answer dropped", {"drop_order_responses": 8}),
    (
        "all at once",
        {
            "rate_limit": 3,
            "retry_after": 1,
            "rate_limit_path": "/order",
            "server_error": 3,
            "server_error_path": "/order",
            "drop_order_responses": 4,
            "latency_ms": 40,
        },
    ),
    ("none", {}),
]


async def test_live_soak_through_venue_faults_sends_each_intent_at_most_once(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    intents = burst(rig.sim, range(300))
    per_turn = len(intents) // len(FAULT_TURNS)
    for turn, (_what, faults) in enumerate(FAULT_TURNS):
        rig.sim.clear_faults()
        if faults:
            rig.sim.set_faults(**faults)
        todo = intents[turn * per_turn : (turn + 1) * per_turn]
        batches = [todo[i : i + 10] for i in range(0, len(todo), 10)]
        # Five strategies at once, each emitting its batch twice (a retried signal).
        results = await asyncio.gather(*(ex.submit_many(b) for b in batches + batches))
        flat = [r for rs in results for r in rs]
        assert sum(not r.duplicate for r in flat) == len(todo)
    rig.sim.clear_faults()

    before = {r.key: r for r in rig.store.list_orders()}
    unknown = [k for k, r in before.items() if r.status is OrderStatus.UNKNOWN]
    # Every submit has returned: nothing is pending or half-sent, only lost answers are left open.
    assert not [r for r in before.values() if r.status in (OrderStatus.PENDING, OrderStatus.SUBMITTED)]
    ex.unknown_grace_s = 0  # the sim answers at once and its clock is frozen; test_executor.py covers the grace
    report = await ex.reconcile()
    assert sum(report.values()) == sum(not r.status.is_final for r in before.values())  # it visits every open one
    records = assert_consistent_with_venue(rig.store, rig.sim, (i.key for i in intents))

    # The faults really happened, and each kind ended where it should.
    refused = [r for r in records.values() if r.status is OrderStatus.NOT_SENT and "429" in (r.error or "")]
    assert len(refused) == 6 + 3  # a 429: the venue did not take it; not retried, but its key may be used again
    settled = {k: records[k].status for k in unknown}
    never_placed = [k for k, s in settled.items() if s is OrderStatus.REJECTED]
    placed = [k for k, s in settled.items() if s in (OrderStatus.LIVE, OrderStatus.FILLED)]
    assert len(never_placed) == 6 + 3  # the 500s: the venue never held them
    assert len(placed) == 8 + 4  # dropped answers: on the book (or filled) all along, found by hash
    assert all(
        [e.status for e in rig.store.order_events(k)][:3]
        == [OrderStatus.PENDING, OrderStatus.SUBMITTED, OrderStatus.UNKNOWN]
        for k in unknown
    )
    assert any(r.status is OrderStatus.FILLED for r in records.values())
    assert rig.store.list_trades(Query(dry_run=False))

    await resubmit_changes_nothing(ex, rig.store, rig.sim, intents)
    assert_consistent_with_venue(rig.store, rig.sim, (i.key for i in intents))
    # The 429'd intents, signalled again (twice at once), are sent now: each exactly once.
    received = len(rig.sim.received_orders())
    again = [i for i in intents if i.key in {r.key for r in refused}]
    first, second = await asyncio.gather(ex.submit_many(again), ex.submit_many(again))
    assert len(rig.sim.received_orders()) == received + len(again)
    assert all(r.status is not OrderStatus.NOT_SENT for r in first + second)
    assert_consistent_with_venue(rig.store, rig.sim, (i.key for i in intents))


# ------------------------------------------------------------------- 2. stop a live process mid-burst


async def test_sigterm_mid_burst_then_restart_settles_everything_and_resends_nothing(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    count = 1000
    lock_dir = tmp_path / "locks"
    # Slow enough that SIGTERM lands mid-burst; the first answers are lost, so the restart has work to do.
    sim.set_faults(latency_ms=15, drop_order_responses=5)
    proc = spawn_worker(sim, db_url, lock_dir, count=count, batch=20)
    try:
        await eventually(lambda: len(sim.received_orders()) >= 100 or proc.poll() is not None, "the burst")
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        code, out, err = await wait_exit(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == 0, err  # the handler ran: a clean exit, not death by signal (-15 / 143)
    assert "Traceback" not in err, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["signal"] is True and summary["submitted"] < count  # it really was interrupted
    sim.clear_faults()

    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        left = {r.key: r for r in rig.store.list_orders()}
        assert len(left) == summary["submitted"]
        # Graceful: what was taken was finished (sent and recorded); only the lost answers are open.
        assert {r.status for r in left.values()} & UNSETTLED <= {OrderStatus.UNKNOWN}
        unknown = [k for k, r in left.items() if r.status is OrderStatus.UNKNOWN]
        assert len(unknown) == 5
        assert len(sim.received_orders()) == sum(r.venue_order_id is not None for r in left.values())

        h, report = await live_restart(rig)  # also proves the worker released the wallet lock
        assert sum(report.values()) == sum(not r.status.is_final for r in left.values())
        records = assert_consistent_with_venue(rig.store, sim, left)
        assert all(records[k].status in RESTING | {OrderStatus.FILLED} for k in unknown)  # placed all along

        intents = burst(sim, range(count))
        received = len(sim.received_orders())
        results = await h.executor.submit_many(intents)
        fresh = {r.key for r in results if not r.duplicate}
        assert fresh == {i.key for i in intents} - set(left)  # only the intents never stored before ...
        assert len(sim.received_orders()) - received == len(fresh)  # ... each sent once
        assert_consistent_with_venue(rig.store, sim, (i.key for i in intents))
        await resubmit_changes_nothing(h.executor, rig.store, sim, intents)
    finally:
        await rig.close()


async def test_sigkill_mid_burst_then_restart_settles_everything_and_resends_nothing(
    sim: SimServer, tmp_path: Path, db_url: str
) -> None:
    count = 1000
    db_path = tmp_path / "pmbot.db"
    assert db_url.endswith(str(db_path))
    sim.set_faults(latency_ms=15)
    proc = spawn_worker(sim, db_url, tmp_path / "locks", count=count, batch=20)
    try:
        await eventually(lambda: len(sim.received_orders()) >= 100 or proc.poll() is not None, "the burst")
        assert proc.poll() is None, proc.communicate()
        # Hold every request from now on, so that a batch the worker writes ahead after this point is still
        # in flight (its POSTs sleeping in the sim) when the worker dies.
        sim.set_faults(latency_ms=2000)
        ((last_id,),) = on_disk(db_path, "SELECT COALESCE(MAX(id), 0) FROM orders")
        doomed: set[str] = set()

        def written_ahead_after_the_switch() -> bool:
            doomed.update(
                k for (k,) in on_disk(db_path, "SELECT key FROM orders WHERE status='pending' AND id>?", last_id)
            )
            return bool(doomed)

        await eventually(written_ahead_after_the_switch, "a batch written ahead under the held requests")
        proc.kill()
        code, _out, err = await wait_exit(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert code == -signal.SIGKILL, err
    sim.clear_faults()

    rig = Rig(sim, tmp_path, settings_for(sim, db_url))
    try:
        left = {r.key: r for r in rig.store.list_orders()}
        pending = {k for k, r in left.items() if r.status is OrderStatus.PENDING}
        assert doomed <= pending and all(left[k].venue_order_id for k in pending)  # written ahead with hashes
        h, report = await live_restart(rig)
        assert sum(report.values()) == sum(not r.status.is_final for r in left.values())
        records = assert_consistent_with_venue(rig.store, sim, left)
        # The crash cut them off before the venue took them: found nowhere, so rejected (never re-sent).
        assert all(records[k].status is OrderStatus.REJECTED for k in doomed)

        intents = burst(sim, range(count))
        received = len(sim.received_orders())
        results = await h.executor.submit_many(intents)
        fresh = {r.key for r in results if not r.duplicate}
        assert fresh == {i.key for i in intents} - set(left)
        assert len(sim.received_orders()) - received == len(fresh)
        assert_consistent_with_venue(rig.store, sim, (i.key for i in intents))
    finally:
        await rig.close()


# --------------------------------------------------------- 3. dry-run on a stream that keeps dropping


class CountingBooks:
    """VenueBooks, counting every read (VenueBooks counts the REST ones)."""

    def __init__(self, inner: VenueBooks) -> None:
        self.inner = inner
        self.reads = 0

    async def book(self, token_id: str) -> OrderBook:
        self.reads += 1
        return await self.inner.book(token_id)


async def test_dry_run_on_a_dropping_market_stream_serves_every_book(rig: Rig) -> None:
    sim = rig.sim
    _, tokens = market(sim)
    # Before connecting (drops apply to new sockets). The book does not move on the manual clock, so each
    # connection carries one frame, its snapshot: put a malformed frame before every frame.
    sim.set_faults(ws_drop_every=0.3, ws_malformed_every=1)
    stream: MarketStream = rig.venue.market_stream(tokens)

    async def consume() -> None:
        async for _ in stream:
            pass

    reader = asyncio.create_task(consume())
    books = CountingBooks(VenueBooks(rig.venue.clob, stream))
    h = await build_executor(
        rig.settings, rig.store, rig.venue, dry_run=True, lock_dir=rig.tmp / "locks", clock=sim.now, books=books
    )
    rig.handles.append(h)
    ex = h.executor
    await ex.start()

    def synced() -> bool:
        return all(t in stream.books and stream.books[t].synced for t in tokens)

    def unsynced() -> bool:
        return bool(stream.books) and not all(b.synced for b in stream.books.values())

    intents = burst(sim, range(200))
    results: list[SubmitResult] = []
    try:
        for n, lo in enumerate(range(0, len(intents), 17)):
            # Alternate: a batch while the local books are in sync, one while the stream is down.
            await eventually(synced if n % 2 == 0 else unsynced, "the stream to " + ("sync" if n % 2 == 0 else "drop"))
            batch = intents[lo : lo + 17]
            first, again = await asyncio.gather(ex.submit_many(batch), ex.submit_many(batch))
            assert all(r.duplicate for r in again)
            results.extend(first)
    finally:
        await stream.close()
        await reader
    sim.clear_faults()

    # The faults happened: connections dropped and came back, malformed frames were skipped.
    assert stream.counters.reconnects > 0 and stream.counters.malformed > 0
    # Every intent got a book, from the local copy when in sync and from REST when not.
    assert books.reads == len(intents)
    assert 0 < books.inner.rest_reads < books.reads
    assert all(not r.duplicate for r in results) and len(results) == len(intents)
    expected = {
        DRY_RUN_PREFIX + i.key: OrderStatus.FILLED if i.order_type is OrderType.FOK else OrderStatus.LIVE
        for i in intents
    }
    assert {r.key: r.status for r in results} == expected  # no "no_book" rejections, no FOK without a book
    stored = {r.key: r.status for r in rig.store.list_orders(query=Query(dry_run=True))}
    assert stored == expected  # every key stored once, nothing pending
    fills = rig.store.list_trades(Query(dry_run=True))
    filled_keys = Counter(t.fill.order_key for t in fills)
    assert set(filled_keys) == {k for k, s in expected.items() if s is OrderStatus.FILLED}
    assert sim.received_orders() == []  # dry-run never touches the venue's order endpoint
    await resubmit_changes_nothing(ex, rig.store, sim, intents)


# ---------------------------------------------------------------- 4. crash in the middle of a paper burst


class GatedBooks:
    """Serves `serve` books, then hangs (like a book read that never answers) until the crash."""

    def __init__(self, inner: VenueBooks, serve: int) -> None:
        self.inner = inner
        self.left = serve
        self.hung = asyncio.Event()
        self._never = asyncio.Event()

    async def book(self, token_id: str) -> OrderBook:
        if self.left <= 0:
            self.hung.set()
            await self._never.wait()
        self.left -= 1
        return await self.inner.book(token_id)


async def test_paper_crash_mid_burst_then_restart_leaves_nothing_pending(rig: Rig) -> None:
    sim = rig.sim
    gate = GatedBooks(VenueBooks(rig.venue.clob), serve=50)
    first = await build_executor(
        rig.settings, rig.store, rig.venue, dry_run=True, lock_dir=rig.tmp / "locks", clock=sim.now, books=gate
    )
    crashed = first.executor
    await crashed.start()
    intents = burst(sim, range(200))
    batch = 20

    async def strategy() -> None:
        for lo in range(0, len(intents), batch):
            await asyncio.gather(*(crashed.submit_many(intents[lo : lo + batch]) for _ in range(2)))

    running = asyncio.create_task(strategy())
    await eventually(gate.hung.is_set, "the burst to hang")
    # Crash: every task dies where it stands; close() never runs.
    doomed, orphans = [running, *crashed._tasks], list(crashed._inflight.values())
    for t in doomed:
        t.cancel()
    await asyncio.gather(*doomed, return_exceptions=True)
    for f in orphans:  # their callers died with the crash; mark their errors seen so asyncio does not log them
        if f.done() and not f.cancelled():
            f.exception()
    for release in first._cleanup:  # a dead process's file locks (its paper wallet's among them) go with it
        release()

    before = {r.key: r for r in rig.store.list_orders()}
    assert len(before) == 3 * batch  # two batches done, the third written ahead and cut off
    assert Counter(r.status for r in before.values())[OrderStatus.PENDING] == batch

    store = open_store(rig.settings.database_url, clock=sim.now)  # what is on disk, through a new connection
    h = await build_executor(rig.settings, store, rig.venue, dry_run=True, lock_dir=rig.tmp / "locks", clock=sim.now)
    try:
        report = await h.executor.start()
        expected_report = Counter(
            {OrderStatus.PENDING: "not_sent", OrderStatus.LIVE: "cancelled"}[r.status]
            for r in before.values()
            if r.status in (OrderStatus.PENDING, OrderStatus.LIVE)
        )
        assert report == dict(expected_report)
        after = {r.key: r for r in store.list_orders()}
        assert set(after) == set(before) and all(r.status.is_final for r in after.values())
        fills_before = Counter(t.fill.order_key for t in store.list_trades())

        never_ran = {k for k, r in after.items() if r.status is OrderStatus.NOT_SENT}  # cut off before execution
        assert len(never_ran) == batch
        results = await h.executor.submit_many(intents)
        for r in results:
            if r.key in never_ran:  # nothing of them was executed: the strategy's replay runs them now, once
                assert not r.duplicate and r.status in (OrderStatus.LIVE, OrderStatus.FILLED)
            elif r.key in before:
                assert r.duplicate and r.status is after[r.key].status
            else:
                assert not r.duplicate and r.status in (OrderStatus.LIVE, OrderStatus.FILLED)
        final = store.list_orders()
        assert len(final) == len(intents) and {r.key for r in final} == {DRY_RUN_PREFIX + i.key for i in intents}
        assert not [r for r in final if r.status in UNSETTLED]
        fills_after = Counter(t.fill.order_key for t in store.list_trades())
        assert all(fills_after[k] == n for k, n in fills_before.items())  # no stored key executed again
        fok = {
            DRY_RUN_PREFIX + i.key
            for i in intents
            if i.order_type is OrderType.FOK
            and (DRY_RUN_PREFIX + i.key not in before or DRY_RUN_PREFIX + i.key in never_ran)
        }
        assert {k for k in fills_after if k not in before or k in never_ran} == fok
        assert all(
            [e.status for e in store.order_events(k)].count(OrderStatus.PENDING) == (2 if k in never_ran else 1)
            for k in after
        )  # written ahead once; a never-executed one once more when it was run
    finally:
        await h.close()
        store.close()


# ------------------------------------------------------------ regressions: bugs this suite found, fixed


async def test_fills_of_an_immediate_match_survive_a_trade_history_outage(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (fok,) = burst(rig.sim, [FOK_EVERY - 1])
    assert fok.order_type is OrderType.FOK
    rig.sim.set_faults(server_error=10, server_error_path="/data/trades")  # outlasts the read retries
    res = await ex.submit(fok)
    assert res.status is OrderStatus.UNKNOWN  # matched, but its trades are not readable: not final yet
    rig.sim.clear_faults()
    assert await ex.reconcile() == {"filled": 1}
    venue_trades = {t["id"] for t in rig.sim.trades() if t["taker_order_id"] == res.venue_order_id}
    assert venue_trades
    stored = {t.fill.trade_id for t in rig.store.list_trades(Query(dry_run=False))}
    assert stored == venue_trades
    pos = rig.store.get_position(fok.strategy, fok.token_id, dry_run=False)
    assert pos is not None and pos.size > 0


async def test_a_duplicate_after_reconcile_is_answered_with_the_reconciled_status(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (gtc,) = burst(rig.sim, [0])
    rig.sim.set_faults(drop_order_responses=1)
    assert (await ex.submit(gtc)).status is OrderStatus.UNKNOWN
    rig.sim.clear_faults()
    assert await ex.reconcile() == {"live": 1}
    rec = rig.store.get_order(gtc.key)
    assert rec is not None and rec.status is OrderStatus.LIVE
    again = await ex.submit(gtc)
    assert again.duplicate and len(rig.sim.received_orders()) == 1  # the part that works: nothing re-sent
    assert again.status is OrderStatus.LIVE  # fails: UNKNOWN, from before reconcile()


async def test_filled_size_of_an_immediate_match_agrees_with_its_fills(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    (fok,) = burst(rig.sim, [FOK_EVERY - 1])  # worst price 0.60, the asks start at 0.55
    res = await ex.submit(fok)
    assert res.status is OrderStatus.FILLED
    rec = rig.store.get_order(fok.key)
    assert rec is not None
    fills = sum((t.fill.size for t in rig.store.list_trades(Query(dry_run=False))), Decimal(0))
    assert fills > 0
    # Today: fills 5.45 shares (the USDC amount 5 x 0.60 bought at 0.55), filled_size 5.
    assert rec.filled_size == fills


class _FakeTime:
    """Clock and sleep for LocalBudget: waiting is instant, so the budget's 60 s max_wait is reached at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def test_one_orders_budget_failure_does_not_fail_the_orders_already_sent(rig: Rig) -> None:
    ex = (await rig.executor(dry_run=False)).executor
    fake = _FakeTime()
    ex.budget = LocalBudget(1, clock=fake.clock, sleep=fake.sleep)  # one order now, the next a minute later
    rig.sim.set_faults(latency_ms=100)  # the sent orders are still in flight when the third gives up
    intents = burst(rig.sim, [0, 1, 2])
    outcomes = await asyncio.gather(*(ex.submit(i) for i in intents), return_exceptions=True)
    await eventually(lambda: len(rig.sim.open_orders()) == 2, "two orders sent and resting")
    sent_hashes = set(venue_view(rig.sim).hashes)

    def stored(key: str) -> OrderRecord:
        rec = rig.store.get_order(key)
        assert rec is not None
        return rec

    sent = {i.key for i in intents if stored(i.key).venue_order_id in sent_hashes}
    assert len(sent) == 2
    await eventually(lambda: all(stored(k).status is OrderStatus.LIVE for k in sent), "the sent orders to settle")
    results = {i.key: r for i, r in zip(intents, outcomes, strict=True)}
    for key in sent:  # on the book at the venue: the strategy must hear so, and the risk gate must count it
        assert isinstance(results[key], SubmitResult), f"sent and live, but the caller got {results[key]!r}"
        assert key in ex.risk.open_keys()
    (unsent,) = {i.key for i in intents} - sent
    assert stored(unsent).status is OrderStatus.NOT_SENT  # never sent: final now, not left pending
    unsent_result = results[unsent]
    assert isinstance(unsent_result, SubmitResult) and unsent_result.status is OrderStatus.NOT_SENT
