"""Copy feed: a target wallet's fills from three sources → `TargetFill` events → the copy strategy's Runner.

    feed = CopyFeed(venue, runners, executor, targets, clock=app.clock)
    await feed.run(duration_s=…, stop=asyncio.Event())

Sources, each in its own task (one failing never stops the others; each reconnects or retries on its own):

- `chain`: `OrderFilled` logs on CTFExchangeV2, NegRisk V2 and ExchangeV3 with maker = a target (one topic
  filter: a wallet's own fill is always a log where it is the maker; the taker filter of ChainFillStream is
  not subscribed). The log index is kept; the target was the taker when the log's counterparty is the
  exchange. Logs carry no time: the block's `blockTimestamp` when the RPC sends it, else our receipt time.
- `rtds`: RTDS `activity/trades` on a connection of its own, filtered by `proxyWallet`, with a data-level
  watchdog (silent for `rtds_silence_s`: marked stale; for twice that: reconnected), so an open socket that
  stopped sending is noticed even though its pings still answer.

In `pmbot run-all` the chain and RTDS sources are consumers of the process's one connection of each
(`open_chain` / `open_rtds`: pmbot.runner.chain_hub, pmbot.runner.rtds_hub), which look like the streams
above; `pmbot copy` opens its own.
- `data_api`: Data API v2 `/v2/activity?type=TRADE` every `poll_s` (2 s), cursor-paged, ascending from the
  watermark less an overlap; rows already delivered in this run are not delivered again.

Books: the markets the targets trade (and those we hold) are followed on the market channel, so the strategy's
book guards (moved since the target's fill, spread) see the current book and a market's resolution reaches the
executor (paper and live positions are settled) and the strategy. A market is followed from its first fill on.

Every sighting's token id is decoded to market and outcome from our own cache (`MarketCache`: Gamma by token
id, or by the condition id a V2 position id names; never assumed YES); combos positions are skipped; a token
no lookup places is still delivered (the strategy records it `unknown_market`, never copies it). The
strategy de-duplicates sightings across sources (pmbot.strategies.copy_dedup). After each delivery the feed
wakes the strategy at `next_wakeup_ms()` (the end of a fill's aggregation window) with a TimerTick.

Watermarks: every second (and at the end) each target's per-source watermark goes to the store
(`set_copy_watermarks`); at start the session reads them back, restores the decisions made since, and the
Data API catch-up starts from the newest watermark less `match_window_ms`, so fills missed while down are
decided (copied when younger than `max_age_s`, else recorded `stale`) and nothing is copied twice. A first
run (no watermark) mirrors what happens from its start: older Data API rows are history, not missed fills.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pmbot.errors import PmbotError
from pmbot.polymarket import identity
from pmbot.polymarket.models import BookSnapshot, MarketResolved, PriceChange, StreamState, StreamStatus, WalletTrade
from pmbot.runner.core import Runner
from pmbot.runner.feed import BookResync, Translator
from pmbot.strategies.base import MarketInfo
from pmbot.strategies.copy import CopyConfig, CopyStrategy
from pmbot.strategies.events import TargetFill, TargetSource

if TYPE_CHECKING:
    from pmbot.executor.engine import Executor
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.streams import ChainFillStream, MarketStream, RtdsStream
    from pmbot.store.base import Store

__all__ = [
    "ALL_SOURCES",
    "CopyFeed",
    "CopyTarget",
    "MarketCache",
    "SourceHealth",
    "chain_fill",
    "copy_chain_stream_class",
    "trade_fill",
]

log = logging.getLogger("pmbot.runner.copy")
ALL_SOURCES = (TargetSource.CHAIN, TargetSource.RTDS, TargetSource.DATA_API)
_SEEN_LIMIT = 20_000  # Data API rows remembered per run (keys), to deliver each once
_LATENCIES_KEPT = 500


@dataclass(frozen=True, slots=True)
class CopyTarget:
    """One wallet to mirror: its address (lowercase), what the operator called it, and its rules."""

    wallet: str
    label: str
    config: CopyConfig
    name_matches: bool = True  # False: an address with no profile (nothing to show but the address)

    @property
    def strategy_name(self) -> str:
        """The strategy instance's name: stable per wallet (orders, positions and keys are kept under it)."""
        return f"copy-{self.wallet[2:10]}"


@dataclass
class SourceHealth:
    """What the live view shows per source: state, last event, counts, and detection latency (seen − fill)."""

    source: TargetSource
    state: str = "starting"
    detail: str = ""
    events: int = 0
    errors: int = 0
    last_event_ms: int | None = None
    last_error: str = ""
    latencies_ms: list[int] = field(default_factory=list)

    def saw(self, now_ms: int, target_ts_ms: int) -> None:
        self.events += 1
        self.last_event_ms = now_ms
        self.latencies_ms.append(max(0, now_ms - target_ts_ms))
        if len(self.latencies_ms) > _LATENCIES_KEPT:
            del self.latencies_ms[: len(self.latencies_ms) - _LATENCIES_KEPT]

    def failed(self, why: str) -> None:
        self.errors += 1
        self.last_error = why
        self.state = "error"
        self.detail = why


# ------------------------------------------------------------------------------------------- markets


class MarketCache:
    """Token id → MarketInfo, from Gamma (and the CLOB for tick size / fees), looked up once per market.

    V1 token ids are found by `clob_token_ids`; a V2 position id names its market's condition id, which is
    looked up instead. A token no lookup finds is remembered as unknown for `miss_ttl_s`."""

    def __init__(self, venue: Venue, *, clock: Callable[[], float] = time.time, miss_ttl_s: float = 30.0) -> None:
        self.venue = venue
        self.clock = clock
        self.miss_ttl_s = miss_ttl_s
        self._by_token: dict[str, MarketInfo] = {}
        self._tags: dict[str, tuple[str, ...]] = {}
        self._missing: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.on_new: Callable[[MarketInfo], None] | None = None

    def get(self, token_id: str) -> MarketInfo | None:
        return self._by_token.get(token_id)

    def markets(self) -> list[MarketInfo]:
        return list({m.condition_id: m for m in self._by_token.values()}.values())

    def add(self, info: MarketInfo) -> None:
        new = info.token_ids[0] not in self._by_token if info.token_ids else False
        for t in info.token_ids:
            self._by_token[t] = info
        if new and self.on_new is not None:
            self.on_new(info)

    async def preload(self, limit: int = 200) -> int:
        """Open markets ending soonest (the ones a 5m / 15m trader trades next): one Gamma page, no CLOB call
        (a market Gamma gives without tick size or fees is looked up, with the CLOB, on its first fill)."""
        found = await self.venue.gamma.markets(limit=limit)
        n = 0
        for m in found:
            if m.closed or not m.token_ids or m.module is identity.Module.COMBOS:
                continue
            with contextlib.suppress(PmbotError):
                self.add(
                    MarketInfo.from_market(
                        m,
                        description=m.description,
                        resolution_source=m.resolution_source,
                        reference_open=m.price_to_beat,
                    )
                )
                n += 1
        return n

    async def lookup(self, token_id: str) -> MarketInfo | None:
        info = self._by_token.get(token_id)
        if info is not None:
            return info
        missed = self._missing.get(token_id)
        if missed is not None and self.clock() - missed < self.miss_ttl_s:
            return None
        lock = self._locks.setdefault(token_id, asyncio.Lock())
        async with lock:  # three sources seeing one new market make one lookup
            info = self._by_token.get(token_id)
            if info is not None:
                return info
            info = await self._fetch(token_id)
        self._locks.pop(token_id, None)
        if info is None:
            self._missing[token_id] = self.clock()
            return None
        self.add(info)
        return info

    async def _fetch(self, token_id: str) -> MarketInfo | None:
        from pmbot.runner.live import market_info

        position = identity.decode_position_id(token_id)
        try:
            if position is not None:
                found = await self.venue.gamma.markets(
                    condition_ids=[position.condition_id], closed=None, active=None, order=None
                )
            else:
                found = await self.venue.gamma.markets(token_ids=[token_id], closed=None, active=None, order=None)
            m = next((x for x in found if token_id in x.token_ids), None)
            return None if m is None else await market_info(self.venue, m)
        except PmbotError as e:
            log.warning("copy: no market for token %s…: %s", token_id[:16], e.one_line())
            return None


def is_combos(token_id: str) -> bool:
    position = identity.decode_position_id(token_id)
    return position is not None and position.module is identity.Module.COMBOS


def trade_fill(
    trade: WalletTrade,
    info: MarketInfo,
    source: TargetSource,
    seen_ms: int,
    *,
    log_index: int | None = None,
    maker: bool | None = None,
) -> TargetFill | None:
    """A source's WalletTrade → TargetFill, market and outcome from `info` (never from the wire's outcome)."""
    outcome = info.outcome_of(trade.token_id)
    if outcome is None:
        return None
    return TargetFill(
        target=trade.wallet.lower(),
        source=source,
        tx_hash=trade.tx_hash.lower(),
        log_index=log_index,
        token_id=trade.token_id,
        condition_id=info.condition_id,
        outcome=outcome,
        side=trade.side,
        price=trade.price,
        size=trade.size,
        target_ts_ms=trade.timestamp_ms,
        seen_ts_ms=seen_ms,
        maker=maker,
    )


def unknown_market_fill(
    trade: WalletTrade, source: TargetSource, seen_ms: int, *, log_index: int | None, maker: bool | None
) -> TargetFill:
    """A fill on a token our cache cannot place: the market a V2 position id names (or none), no outcome."""
    position = identity.decode_position_id(trade.token_id)
    return TargetFill(
        target=trade.wallet.lower(),
        source=source,
        tx_hash=trade.tx_hash.lower(),
        log_index=log_index,
        token_id=trade.token_id,
        condition_id=position.condition_id if position is not None else "",
        outcome="",
        side=trade.side,
        price=trade.price,
        size=trade.size,
        target_ts_ms=trade.timestamp_ms,
        seen_ts_ms=seen_ms,
        maker=maker,
    )


# ---------------------------------------------------------------------------------------------- chain


@dataclass(frozen=True, slots=True)
class ChainSighting:
    """A target's own OrderFilled log: the trade, its log index, and whether the target was the maker."""

    trade: WalletTrade
    log_index: int
    maker: bool


def chain_fill(log_entry: Mapping[str, Any], wallets: Iterable[str], now_ms: int) -> ChainSighting | None:
    """An OrderFilled log with maker = one of `wallets` → ChainSighting; None for other logs (a counterparty's
    fill, a removed log, a combos leg). Raises VenueError for a log that is not a readable OrderFilled."""
    from dataclasses import replace

    from pmbot.polymarket.schemas import ws

    trade = ws.order_filled(log_entry, wallets, now_ms)
    if trade is None:
        return None
    block_ts = log_entry.get("blockTimestamp")
    if block_ts is not None:  # newer nodes stamp logs with their block's time (seconds, hex or int)
        seconds = int(block_ts, 16) if isinstance(block_ts, str) and block_ts.startswith("0x") else int(block_ts)
        trade = replace(trade, timestamp_ms=min(now_ms, seconds * 1000))
    counterparty = ws.topic_address(log_entry["topics"][3])
    exchanges = {a.lower() for a in ws.EXCHANGES}
    raw_index = log_entry.get("logIndex")
    index = int(raw_index, 16) if isinstance(raw_index, str) and raw_index.startswith("0x") else int(raw_index or 0)
    # matchOrders: the taker order's own log names the exchange as its counterparty.
    return ChainSighting(trade=trade, log_index=index, maker=counterparty not in exchanges)


def copy_chain_stream_class() -> type[ChainFillStream]:
    from pmbot.polymarket.schemas import ws
    from pmbot.polymarket.streams import ChainFillStream
    from pmbot.polymarket.streams.chain import _checksum
    from pmbot.timeutil import now_ms

    class CopyChainStream(ChainFillStream):
        """ChainFillStream with the maker filter only, yielding ChainSighting (log index, maker flag)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._seen_logs: OrderedDict[tuple[str, str], None] = OrderedDict()

        def log_filters(self) -> list[dict[str, Any]]:
            if not self._wallets:
                return []
            wallets = [ws.address_topic(w) for w in sorted(self._wallets)]
            return [
                {
                    "address": [_checksum(a) for a in self.exchanges],
                    "topics": [ws.ORDER_FILLED_TOPIC, None, wallets],
                }
            ]

        def _handle_log(self, log_entry: Any) -> None:
            if not isinstance(log_entry, Mapping):
                raise ValueError(f"chain: expected a log object, got {type(log_entry).__name__}")
            key = (ws.hex_str(log_entry.get("transactionHash"), "transactionHash"), str(log_entry.get("logIndex")))
            if key in self._seen_logs:  # delivered twice (two subscriptions overlap while they are replaced)
                return
            self._seen_logs[key] = None
            if len(self._seen_logs) > 4096:
                self._seen_logs.popitem(last=False)
            sighting = chain_fill(log_entry, self._wallets, now_ms(self.clock))
            if sighting is None:
                self.counterparty_fills += 1
                return
            self.counters.events += 1
            self._put(sighting)

    return CopyChainStream


# ----------------------------------------------------------------------------------------------- feed


class CopyFeed:
    """Owns the sources of a copy run and delivers each target's fills to that target's Runner.

    `runner` is one Runner (one target) or a mapping wallet → Runner (one strategy instance per target);
    every Runner shares `executor`. `sources` picks which of chain / rtds / data_api run."""

    def __init__(
        self,
        venue: Venue,
        runner: Runner | Mapping[str, Runner],
        executor: Executor,
        targets: Sequence[CopyTarget],
        *,
        clock: Callable[[], float] = time.time,
        sources: Iterable[TargetSource | str] = ALL_SOURCES,
        poll_s: float = 2.0,
        rtds_silence_s: float = 30.0,
        tick_s: float = 0.25,
        live: bool = False,
        store: Store | None = None,
        mode: str = "dry-run",
        catch_up_from_ms: Mapping[str, int] | None = None,
        markets: MarketCache | None = None,
        translator: Translator | None = None,
        follow_books: bool = True,
        follow_tokens: Iterable[str] = (),
        open_chain: Callable[[set[str]], Any] | None = None,
        open_rtds: Callable[[set[str], float], Any] | None = None,
    ) -> None:
        self.venue = venue
        self.targets = list(targets)
        self.wallets = {t.wallet for t in self.targets}
        if isinstance(runner, Runner):
            if len(self.targets) != 1:
                raise ValueError("one Runner serves one target: pass a mapping wallet -> Runner")
            self.runners: dict[str, Runner] = {self.targets[0].wallet: runner}
        else:
            self.runners = {w.lower(): r for w, r in runner.items()}
        self.executor = executor
        self.clock = clock
        self.sources = tuple(TargetSource(s) for s in sources)
        self.poll_s = poll_s
        self.rtds_silence_s = rtds_silence_s
        self.tick_s = tick_s
        self.live = live
        self.store = store
        self.mode = mode
        self.markets = markets or MarketCache(venue, clock=clock)
        self.markets.on_new = self._market_added
        self.health: dict[TargetSource, SourceHealth] = {s: SourceHealth(s) for s in self.sources}
        # Data API: per target, the target time (ms) to read from (the catch-up start), then the newest seen.
        self._poll_from_ms: dict[str, int] = dict(catch_up_from_ms or {})
        # A first run (no watermark) mirrors what happens from its start on: older rows are history, not missed.
        self._poll_floor_ms: dict[str, int] = {}
        self.before_start = 0  # Data API rows older than a first run's start, not delivered
        self._poll_seen: OrderedDict[str, None] = OrderedDict()
        self.last_fills: dict[str, list[TargetFill]] = {t.wallet: [] for t in self.targets}
        self.skipped_combos = 0
        self.unknown_tokens = 0
        self._wake = asyncio.Event()
        self._wake_at: float | None = None
        self._wake_handle: asyncio.TimerHandle | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self.chain_stream: ChainFillStream | Any = None
        self.rtds_stream: RtdsStream | Any = None
        # (wallets) -> a chain stream of ChainSighting; (wallets, silence_s) -> an RTDS activity stream.
        # None: a connection of this feed's own (see the module docstring).
        self.open_chain = open_chain
        self.open_rtds = open_rtds
        self.translator = translator or Translator()
        self.follow_books = follow_books
        self.market_stream: MarketStream | None = None
        self.market_state = "off"
        self._followed: set[str] = set()  # condition ids whose tokens the market channel follows
        self._follow_first = list(follow_tokens)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ running

    async def run(self, *, duration_s: float | None = None, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        for info in self.markets.markets():
            self._market_added(info)
        for r in self.runners.values():
            if r.strategy.state.value == "new":
                await r.start()
        loops: dict[str, Callable[[], Any]] = {
            TargetSource.CHAIN: self._chain_loop,
            TargetSource.RTDS: self._rtds_loop,
            TargetSource.DATA_API: self._poll_loop,
        }
        for s in self.sources:
            self.start_source(s, loops[s])
        self._tasks["timer"] = asyncio.create_task(self._timer_loop(), name="copy-timer")
        if self.follow_books:
            self.market_stream = self.venue.market_stream(())
            self._tasks["market"] = asyncio.create_task(self._market_guard(), name="copy-market")
            for token in self._follow_first:
                held = self.markets.get(token) or await self.markets.lookup(token)
                if held is not None:
                    await self.follow_market(held)
        if self.live:
            self._tasks["user"] = asyncio.create_task(
                self.executor.follow_user(self.venue.user_stream()), name="copy-user"
            )
            self._tasks["reconciler"] = asyncio.create_task(self.executor.run_reconciler(), name="copy-reconciler")
        waiter = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait([waiter], timeout=duration_s)
        finally:
            waiter.cancel()
            self.save_watermarks()  # before the strategies stop: fills still in their window stay above it
            await self._stop_tasks(list(self._tasks))
            if self._wake_handle is not None:
                self._wake_handle.cancel()
            if self.market_stream is not None:
                with contextlib.suppress(Exception):
                    await self.market_stream.close()
            for r in self.runners.values():
                await r.stop()

    def start_source(self, source: TargetSource | str, loop: Callable[[], Any] | None = None) -> None:
        """Start (or restart) one source's task."""
        src = TargetSource(source)
        if loop is None:
            loop = {
                TargetSource.CHAIN: self._chain_loop,
                TargetSource.RTDS: self._rtds_loop,
                TargetSource.DATA_API: self._poll_loop,
            }[src]
        self.health.setdefault(src, SourceHealth(src))
        self._tasks[str(src)] = asyncio.create_task(self._guard(src, loop), name=f"copy-{src}")

    async def stop_source(self, source: TargetSource | str) -> None:
        """Stop one source (the others carry on); `start_source` brings it back."""
        await self._stop_tasks([str(TargetSource(source))])
        self.health[TargetSource(source)].state = "stopped"

    async def add_target(self, target: CopyTarget, runner: Runner) -> None:
        """Follow one more target while running: its runner (started, restored), the live sources' filters
        (the chain subscription is replaced without a gap) and the Data API poll, from now on."""
        wallet = target.wallet.lower()
        if wallet in self.runners:
            return
        if runner.strategy.state.value == "new":
            await runner.start()
        for info in self.markets.markets():
            if runner.view.market(info.condition_id) is None:
                runner.view.set_market(info)
        self.targets.append(target)
        self.wallets.add(wallet)
        self.runners[wallet] = runner
        self.last_fills.setdefault(wallet, [])
        now = self.now_ms()
        self._poll_from_ms.setdefault(wallet, now)
        self._poll_floor_ms.setdefault(wallet, now // 1000 * 1000)
        if self.rtds_stream is not None:
            self.rtds_stream.follow([wallet])
        if self.chain_stream is not None:
            await self.chain_stream.follow([wallet])

    async def _stop_tasks(self, names: Sequence[str]) -> None:
        tasks = [self._tasks.pop(n) for n in names if n in self._tasks]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def _guard(self, source: TargetSource, loop: Callable[[], Any]) -> None:
        """A source's loop, restarted after any failure (backing off): one source failing never stops the rest."""
        health = self.health[source]
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                await loop()
                if health.state != "unavailable":
                    health.state = "ended"
                return
            except asyncio.CancelledError:
                raise
            except PmbotError as e:
                health.failed(e.one_line())
                log.warning("copy: source %s failed: %s", source, e.one_line())
            except Exception as e:  # a bug or an unexpected library error: logged, the source restarts
                health.failed(f"{type(e).__name__}: {e}")
                log.exception("copy: source %s failed", source)
            if time.monotonic() - started > 30:
                delay = 1.0
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)

    # ------------------------------------------------------------------ sources

    async def _chain_loop(self) -> None:
        rpc = self.venue.settings.rpc_ws_url
        health = self.health[TargetSource.CHAIN]
        if not rpc:  # no Polygon RPC configured: the other sources carry the run
            health.state, health.detail = "unavailable", "no PMBOT_RPC_WS_URL"
            log.warning("copy: chain source off: set PMBOT_RPC_WS_URL (a Polygon WebSocket RPC) to follow logs")
            return
        if self.open_chain is not None:
            stream = self.open_chain(set(self.wallets))
        else:
            stream = copy_chain_stream_class()(rpc, self.wallets, clock=self.clock, rng=self.venue.rng)
        self.chain_stream = stream
        async with stream:
            async for item in stream:
                if isinstance(item, StreamStatus):
                    self._status(TargetSource.CHAIN, item)
                    continue
                if isinstance(item, ChainSighting):
                    await self._sighting(
                        TargetSource.CHAIN, item.trade, log_index=item.log_index, maker=item.maker, now=self.now_ms()
                    )

    async def _rtds_loop(self) -> None:
        from pmbot.polymarket.streams import RtdsStream, RtdsSubscription

        silence = self.rtds_silence_s
        stream: Any
        if self.open_rtds is not None:
            stream = self.open_rtds(set(self.wallets), silence)
        else:
            stream = RtdsStream(
                self.venue.settings.rtds_url,
                [RtdsSubscription.activity()],
                wallets=self.wallets,
                clock=self.clock,
                rng=self.venue.rng,
                stale_after=silence,
                stale_reconnect_after=silence * 2,
            )
        self.rtds_stream = stream
        async with stream:
            async for item in stream:
                if isinstance(item, StreamStatus):
                    self._status(TargetSource.RTDS, item)
                    continue
                if isinstance(item, WalletTrade):
                    await self._sighting(TargetSource.RTDS, item, now=self.now_ms())

    async def _poll_loop(self) -> None:
        health = self.health[TargetSource.DATA_API]
        now = self.now_ms()
        for t in self.targets:
            if t.wallet not in self._poll_from_ms:
                self._poll_from_ms[t.wallet] = now
                self._poll_floor_ms[t.wallet] = now // 1000 * 1000  # the Data API's times are whole seconds
        while True:
            started = time.monotonic()
            for t in self.targets:
                try:
                    await self.poll_once(t.wallet)
                    health.state, health.detail = "polling", f"every {self.poll_s:g}s"
                except PmbotError as e:  # one failed poll: the next one reads the same window again
                    health.failed(e.one_line())
            await asyncio.sleep(max(0.0, self.poll_s - (time.monotonic() - started)))

    async def poll_once(self, wallet: str) -> int:
        """One Data API read of `wallet`'s trades since its cursor (less an overlap); returns rows delivered."""
        cfg = self.runners[wallet].strategy.config
        overlap_s = max(2, cfg.match_window_ms // 1000)
        start_s = max(0, self._poll_from_ms.get(wallet, self.now_ms()) // 1000 - overlap_s)
        rows = await self.venue.data.activity(wallet, types=["TRADE"], start_s=start_s, ascending=True, limit=2000)
        delivered = 0
        newest = self._poll_from_ms.get(wallet, 0)
        for a in rows:
            trade = a.as_trade()
            if trade is None or trade.wallet.lower() != wallet:
                continue
            parts = (wallet, trade.tx_hash.lower(), trade.token_id, trade.side, trade.size, trade.price, a.timestamp_ms)
            key = "|".join(str(p) for p in parts)
            if key in self._poll_seen:
                continue
            self._poll_seen[key] = None
            if len(self._poll_seen) > _SEEN_LIMIT:
                self._poll_seen.popitem(last=False)
            if trade.timestamp_ms < self._poll_floor_ms.get(wallet, 0):
                self.before_start += 1
                continue
            newest = max(newest, trade.timestamp_ms)
            await self._sighting(TargetSource.DATA_API, trade, now=self.now_ms())
            delivered += 1
        self._poll_from_ms[wallet] = newest
        return delivered

    async def follow_market(self, info: MarketInfo) -> None:
        """Follow a market's books and resolution on the market channel (once per market)."""
        if not self.follow_books or info.condition_id in self._followed:
            return
        self._followed.add(info.condition_id)
        self.translator.add_tokens({t: info.condition_id for t in info.token_ids})
        if self.market_stream is not None:
            try:
                await self.market_stream.subscribe(info.token_ids)
            except PmbotError as e:  # the next connection subscribes every token it has
                log.warning("copy: market channel subscribe failed: %s", e.one_line())

    async def _market_guard(self) -> None:
        while True:
            try:
                await self._market_loop()
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:  # books are a guard, not a source: the run goes on without them
                self.market_state = f"error: {type(e).__name__}: {e}"
                log.warning("copy: market channel failed: %s", e)
                await self._market_lost()
                await asyncio.sleep(2.0)

    async def _market_lost(self) -> None:
        """The market loop failed and its stream closed with it (`async with`): nothing follows the books any
        more. Blind them (a guard must not pass on a book frozen at the failure, still "synced") and follow
        them on a new stream of the same tokens, whose subscribe dumps them (re-entering the closed one
        fails for good)."""
        now = self.now_ms()
        for blind in self.translator.blind(now):
            for r in self.runners.values():
                with contextlib.suppress(Exception):
                    await r.deliver(blind)
        old = self.market_stream
        if old is not None:
            # the followed tokens are the translator's (follow_market): a run-all hub consumer forgets its own
            # when it closes
            tokens = list(dict.fromkeys([*old.token_ids, *self.translator.tokens]))
            with contextlib.suppress(Exception):
                await old.close()
            self.market_stream = self.venue.market_stream(tokens)

    async def _market_loop(self) -> None:
        from pmbot.settle import resolution_from_event

        assert self.market_stream is not None
        paper = self.executor.paper
        resync = BookResync(self.translator)
        async with self.market_stream as stream:
            # a new stream after a failed loop: not the failure's "error: …" any more (a run-all hub consumer
            # on a shard that stayed connected hears no StreamStatus, so it is read here)
            state = getattr(stream, "state", None)
            self.market_state = state.value if isinstance(state, StreamState) else "connecting"
            async for item in stream:
                now = self.now_ms()
                if isinstance(item, StreamStatus):
                    self.market_state = item.state.value
                    if item.state is not StreamState.CONNECTED:
                        for blind in self.translator.blind(now):  # a stale book must not pass a guard
                            for r in self.runners.values():
                                await r.deliver(blind)
                    resync.status(item, stream)  # blinded books that no re-subscribe will dump: asked for
                    continue
                if isinstance(item, MarketResolved):
                    resolution = resolution_from_event(item)
                    if resolution is not None:
                        self.executor.apply_resolution(resolution)
                events = self.translator.translate(item, now)
                resync.check(stream)  # a book the venue contradicted: ask for its snapshot
                for e in events:
                    for r in self.runners.values():
                        await r.deliver(e)
                if paper is not None and isinstance(item, BookSnapshot | PriceChange):
                    for e in events:
                        token = getattr(e, "token_id", "")
                        if token and paper.open_orders(token):
                            book = self.translator.order_book(token)
                            if book is not None and await self.executor.on_book(book):
                                for r in self.runners.values():
                                    await r.sync_orders()

    def _status(self, source: TargetSource, st: StreamStatus) -> None:
        h = self.health[source]
        h.state = {StreamState.CONNECTED: "connected", StreamState.STALE: "stale"}.get(st.state, "reconnecting")
        h.detail = st.detail
        if st.state is StreamState.RECONNECTING:
            h.errors += 1
            h.last_error = st.detail

    # ------------------------------------------------------------------ delivery

    async def _sighting(
        self,
        source: TargetSource,
        trade: WalletTrade,
        *,
        now: int,
        log_index: int | None = None,
        maker: bool | None = None,
    ) -> None:
        wallet = trade.wallet.lower()
        runner = self.runners.get(wallet)
        if runner is None:
            return
        if is_combos(trade.token_id):  # a combos leg is no market we can mirror
            self.skipped_combos += 1
            if self.skipped_combos == 1:
                log.info("copy: skipping %s's combos fills (not a market pmbot trades)", wallet)
            return
        info = self.markets.get(trade.token_id) or await self.markets.lookup(trade.token_id)
        if info is None:
            # Not silent: delivered without a market, the strategy records it `unknown_market` (never copied).
            self.unknown_tokens += 1
            log.warning("copy: %s fill of %s on unknown token %s…", source, wallet, trade.token_id[:16])
            fill: TargetFill | None = unknown_market_fill(trade, source, now, log_index=log_index, maker=maker)
        else:
            fill = trade_fill(trade, info, source, now, log_index=log_index, maker=maker)
        if fill is None:
            return
        self.health[source].saw(now, fill.target_ts_ms)
        recent = self.last_fills.setdefault(wallet, [])
        recent.append(fill)
        del recent[:-20]
        await runner.deliver(fill)
        self._schedule_wake(runner)
        if self.follow_books and info is not None and info.condition_id not in self._followed:
            await self.follow_market(info)  # after the decision's delivery: never on the fill's hot path

    def _market_added(self, info: MarketInfo) -> None:
        for r in self.runners.values():
            if r.view.market(info.condition_id) is None:
                r.view.set_market(info)

    def _schedule_wake(self, runner: Runner) -> None:
        strategy = runner.strategy
        if not isinstance(strategy, CopyStrategy):
            return
        at_ms = strategy.next_wakeup_ms()
        if at_ms is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, (at_ms - self.now_ms()) / 1000)
        when = loop.time() + delay
        if self._wake_at is not None and self._wake_at <= when and self._wake_handle is not None:
            return
        if self._wake_handle is not None:
            self._wake_handle.cancel()
        self._wake_at = when
        self._wake_handle = loop.call_at(when, self._wake.set)

    async def _timer_loop(self) -> None:
        last_sync = last_mark = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.tick_s)
            self._wake.clear()
            self._wake_at = None
            self._wake_handle = None
            now = self.now_ms()
            for r in self.runners.values():
                await r.tick(now)
                self._schedule_wake(r)
            mono = time.monotonic()
            if mono - last_sync >= 1.0:
                last_sync = mono
                for r in self.runners.values():
                    await r.sync_orders()  # fills the user channel / reconciler / paper book recorded since
            if mono - last_mark >= 1.0:
                last_mark = mono
                self.save_watermarks()

    # ------------------------------------------------------------------ watermarks

    def watermarks(self) -> dict[tuple[str, str], int]:
        out: dict[tuple[str, str], int] = {}
        for wallet, r in self.runners.items():
            strategy = r.strategy
            if not isinstance(strategy, CopyStrategy) or strategy.state.value == "new":
                continue
            for src in ALL_SOURCES:
                wm = strategy.watermark(src)
                if wm is not None:
                    out[(wallet, str(src))] = wm
        return out

    def save_watermarks(self) -> None:
        if self.store is None:
            return
        marks = self.watermarks()
        if marks:
            try:
                self.store.set_copy_watermarks(self.mode, marks)
            except PmbotError as e:  # the next save tries again; decisions themselves are stored apart
                log.warning("copy: watermarks not saved: %s", e.one_line())


def latency_quantiles(values: Sequence[int]) -> tuple[int | None, int | None]:
    """(p50, p99) of millisecond latencies, nearest rank; (None, None) when empty."""
    if not values:
        return None, None
    s = sorted(values)

    def q(p: Decimal) -> int:
        rank = max(1, int((p * len(s)).to_integral_value(rounding="ROUND_CEILING")))
        return s[min(rank, len(s)) - 1]

    return q(Decimal("0.5")), q(Decimal("0.99"))
