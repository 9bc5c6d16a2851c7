"""Builds an Executor from settings: the one place that decides dry-run vs live parts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmbot.config import ExecutorSettings, Settings
from pmbot.executor.books import VenueBooks
from pmbot.executor.budget import LocalBudget, OrderBudget, RedisBudget, redis_window
from pmbot.executor.engine import BookSource, Executor
from pmbot.executor.lock import (
    FileWalletLock,
    PaperWalletLock,
    RedisWalletLock,
    WalletLockedError,
    paper_wallet_alive,
)
from pmbot.executor.paper import PaperExchange
from pmbot.executor.risk import RiskGate
from pmbot.polymarket.factory import Venue
from pmbot.store.base import Store
from pmbot.store.models import PositionState, Query

if TYPE_CHECKING:
    import redis.asyncio as aioredis

log = logging.getLogger("pmbot.executor")

INTENT_TTL_S = 7 * 86_400  # fleet idempotency keys outlive any retry of a signal


class RedisFleetKeys:
    """SET NX on `pmbot:intent:<key>`: the first process of the fleet to claim a key owns it."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._warned = False

    async def claim(self, key: str) -> bool:
        try:
            return bool(await self._client.set(f"pmbot:intent:{key}", "1", nx=True, ex=INTENT_TTL_S))
        except Exception as e:
            # The shared database's unique key still stops duplicates; Redis only makes it cheaper.
            if not self._warned:
                log.warning("fleet idempotency via Redis unavailable (%s); relying on the database", e)
                self._warned = True
            return True


def paper_wallet_id(name: str) -> str:
    """The paper wallet a dry-run process trades, from settings `executor.paper_wallet`: "paper:<name>".

    Per database (positions live in it) and per name: a restart with the same database and name is the
    same paper wallet and sees its positions; another name is another wallet, empty at first."""
    return f"paper:{name.lower()}"


def paper_balance(store: Store, start: Decimal, wallet: str) -> tuple[Decimal, dict[str, Decimal]]:
    """Paper wallet `wallet` after what is already recorded: cash = start + realized − cost still held
    (the ledger's identity), and the shares held per token. Only its own positions: another paper
    wallet's shares (another dry-run process's) are never this one's to sell."""
    positions = store.list_positions(Query(dry_run=True, wallet=wallet))
    realized = sum((p.realized_pnl for p in positions), Decimal(0))
    held_cost = sum((p.cost for p in positions if p.state is PositionState.OPEN), Decimal(0))
    shares: dict[str, Decimal] = {}
    for p in positions:
        if p.state is PositionState.OPEN and p.size > 0:
            shares[p.token_id] = shares.get(p.token_id, Decimal(0)) + p.size
    return max(Decimal(0), start + realized - held_cost), shares


def _never() -> bool:
    return False


@dataclass
class ExecutorHandle:
    """An executor plus what must be released with it (locks, Redis connections)."""

    executor: Executor
    _cleanup: list[Callable[[], Any]] = field(default_factory=list)

    async def close(self) -> None:
        await self.executor.close()
        await _run_cleanup(self._cleanup)


async def _run_cleanup(cleanup: list[Callable[[], Any]]) -> None:
    for fn in reversed(cleanup):
        res = fn()
        if hasattr(res, "__await__"):
            await res


async def build_executor(
    settings: Settings,
    store: Store,
    venue: Venue,
    *,
    dry_run: bool,
    lock_dir: Path,
    clock: Callable[[], float] = time.time,
    books: BookSource | None = None,
    one_shot: bool = False,
    paper_wallet: str | None = None,
) -> ExecutorHandle:
    """`one_shot`: a command that places or cancels one order and exits (`pmbot order`): no order
    heartbeats unless `executor.heartbeat` says so (the venue would cancel its resting order 10 s later).
    `paper_wallet`: dry-run, the paper wallet's name when not settings `executor.paper_wallet`'s (a
    command with a name of its own, e.g. per copy target); one process at a time holds a paper wallet."""
    if paper_wallet is not None:
        # validated (model_copy's update is not): a bad name is refused here, as in the config file
        executor = ExecutorSettings.model_validate({**settings.executor.model_dump(), "paper_wallet": paper_wallet})
        settings = settings.model_copy(update={"executor": executor})
    cleanup: list[Callable[[], Any]] = []
    redis_client: aioredis.Redis | None = None
    if settings.redis_url:
        import redis.asyncio as aioredis

        redis_client = aioredis.Redis.from_url(settings.redis_url, socket_connect_timeout=0.5, socket_timeout=0.5)
        cleanup.append(redis_client.aclose)

    try:
        handle = await _build(settings, store, venue, dry_run, lock_dir, clock, books, redis_client, cleanup)
        beat = settings.executor.heartbeat
        handle.executor.heartbeat = (not one_shot) if beat is None else beat
        return handle
    except BaseException:
        await _run_cleanup(cleanup)
        raise


async def _build(
    settings: Settings,
    store: Store,
    venue: Venue,
    dry_run: bool,
    lock_dir: Path,
    clock: Callable[[], float],
    books: BookSource | None,
    redis_client: aioredis.Redis | None,
    cleanup: list[Callable[[], Any]],
) -> ExecutorHandle:
    per_minute = settings.executor.orders_per_minute
    risk = RiskGate(settings.risk, clock)
    trading = None
    paper = None
    wallet = "paper"
    order_wallet: str | None = None
    lock_lost: Callable[[], bool] = _never
    if dry_run:
        # This process's paper wallet: one process at a time (the lock), seeded from its own positions
        # only after the lock is held, so no other process can be trading them meanwhile.
        order_wallet = paper_wallet_id(settings.executor.paper_wallet)
        wallet_lock = PaperWalletLock(lock_dir, order_wallet, database_url=settings.database_url)
        wallet_lock.acquire()
        cleanup.append(wallet_lock.release)
        # The file lock is per host and URL spelling; on a shared database (PostgreSQL) the database itself
        # holds the wallet too, so two hosts, users or spellings of one URL cannot trade it at once.
        hold = getattr(store, "hold_lock", None)
        if hold is not None:
            release = hold(f"paper-wallet:{order_wallet}")
            if release is None:
                raise WalletLockedError(
                    wallet_lock.held_message.replace("(pid {pid}) ", "(on another host or connection) "),
                    hint=wallet_lock.held_hint,
                )
            cleanup.append(release)
        balance, shares = paper_balance(store, settings.executor.dry_run_balance, order_wallet)
        paper = PaperExchange(balance, fees=settings.executor.dry_run_fees, clock=clock, positions=shares)
        books = books or VenueBooks(venue.clob)
    else:
        trading = await venue.trading()
        wallet = trading.signer.maker
        file_lock = FileWalletLock(lock_dir, wallet, database_url=settings.database_url)
        file_lock.acquire()
        cleanup.append(file_lock.release)
        if redis_client is not None:
            lease = RedisWalletLock(redis_client, wallet)
            await lease.acquire()
            cleanup.append(lease.release)
            lock_lost = lease.is_lost

    budget: OrderBudget
    if redis_client is not None:
        budget = RedisBudget(
            redis_client, wallet, per_minute, window=redis_window(redis_client, settings.redis_url or "")
        )
    else:
        budget = LocalBudget(per_minute, clock=time.monotonic)
    executor = Executor(
        store=store,
        risk=risk,
        budget=budget,
        params=venue.params,
        dry_run=dry_run,
        paper=paper,
        books=books,
        trading=trading,
        fleet=RedisFleetKeys(redis_client) if redis_client is not None else None,
        clock=clock,
        wallet=order_wallet or wallet,
        marketable_max_wait_s=float(settings.executor.marketable_max_wait_s),
        owner_gone=lambda w: (
            w.startswith("paper:") and not paper_wallet_alive(lock_dir, w, database_url=settings.database_url)
        ),
    )
    executor.lock_lost = lock_lost
    return ExecutorHandle(executor, cleanup)
