"""Live feed: venue streams → typed events → Runner, for live, dry-run and `pmbot sim` alike.

    feed = LiveFeed(venue, runner, translator, executor, targets=...)
    await feed.run(duration_s=…, stop=asyncio.Event())

It owns every socket of a strategy run: the market channel (books, trades, resolutions) for the armed
markets' tokens, RTDS Chainlink prices for the symbols their resolution rules name, a timer tick every
`tick_s`, and (live only) the user channel and the executor's reconciler. A `MarketResolved` reaches the
executor (`apply_resolution`) before the strategy. In dry-run, a book change that may cross a resting
paper order goes to `executor.on_book`.

Targets (`Targets`): a fixed list of markets (`--token-id`, `--market`), or series discovered on Gamma
every `rediscover_s` (`--auto`): markets ending within the horizon are armed (view + subscriptions)
before their window; armed markets are refreshed from Gamma (accepting orders, closed) at the same pace,
and dropped a while after they ended.

Time is the `clock` given (run_session: a VenueClock, which also learns from the market channel's own
timestamps here); timer ticks, pre-arming and discovery keep the venue's pace. Pre-arming
(`Runner.arm_ahead`) runs on its own loop, twice a second; the decision log is written once a second
(every 3 s while an armed order waits for its trigger: its commit would delay the entry).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pmbot.errors import InputError, NotFoundError, VenueError
from pmbot.lookup import check_token_id
from pmbot.polymarket.models import (
    BookSnapshot,
    Market,
    MarketResolved,
    OrderBook,
    PriceChange,
    StreamState,
    StreamStatus,
)
from pmbot.runner.core import Runner
from pmbot.runner.feed import BookResync, Translator
from pmbot.strategies.base import MarketInfo
from pmbot.strategies.events import ReferencePrice
from pmbot.strategies.reference import ReferenceTracker, parse_resolution_rule

if TYPE_CHECKING:
    from pmbot.executor.engine import Executor
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.streams import MarketStream, RtdsStream

__all__ = [
    "GcPacer",
    "LiveFeed",
    "LocalFirstBooks",
    "Targets",
    "discover",
    "lean_market_stream",
    "market_info",
    "resolve_market",
]

log = logging.getLogger("pmbot.runner")
_KEEP_AFTER_END_MS = 120_000  # an ended market stays armed this long, to see its resolution


async def market_info(venue: Venue, m: Market) -> MarketInfo:
    """The strategy's MarketInfo for a Gamma market (tick size and fees from the CLOB when Gamma lacks them)."""
    params = None
    if (m.tick_size is None or m.fees is None) and m.token_ids:
        params = await venue.params.get(m.token_ids[0])
    return MarketInfo.from_market(
        m,
        params=params,
        description=m.description,
        resolution_source=m.resolution_source,
        reference_open=m.price_to_beat,
    )


async def resolve_market(venue: Venue, *, token_id: str | None = None, slug: str | None = None) -> Market:
    """The market of `--token-id` or `--market`; InputError when unknown or closed (nothing is armed)."""
    try:
        if token_id is not None:
            m = await venue.gamma.market_by_token(check_token_id(token_id))
        else:
            assert slug is not None
            m = await venue.gamma.market_by_slug(slug)
    except NotFoundError:
        what = f"token id {token_id}" if token_id is not None else f"market slug {slug!r}"
        raise InputError(f"unknown {what}", hint="find markets with `pmbot markets`") from None
    if m.closed:
        raise InputError(f"market {m.slug or m.condition_id} is closed", hint="pick a market that is still trading")
    if len(m.outcomes) < 2:
        raise InputError(f"market {m.slug or m.condition_id} has no sibling outcome to compare against")
    return m


def in_series(m: Market, series: Sequence[str]) -> bool:
    return any(m.slug.startswith(f"{s}-") or m.series_slug == s or (m.event_slug or "").startswith(s) for s in series)


async def discover(
    venue: Venue, series: Sequence[str], now_ms: int, horizon_ms: int, limit: int
) -> tuple[list[Market], set[str]]:
    """Open markets of `series` ending within (now, now + horizon], soonest first (at most `limit`), and
    the series that have no open market at all on Gamma (unknown, or finished)."""
    found = await venue.gamma.markets(end_min_ms=now_ms, end_max_ms=now_ms + horizon_ms, limit=500)
    due = [m for m in found if in_series(m, series) and not m.closed and m.end_ms is not None]
    due.sort(key=lambda m: m.end_ms or 0)
    seen = {s for s in series if any(in_series(m, [s]) for m in due)}
    if len(seen) < len(series):  # nothing due within the horizon: does the series exist at all?
        later = await venue.gamma.markets(end_min_ms=now_ms, limit=500)
        seen |= {s for s in series if any(in_series(m, [s]) for m in later)}
    return due[:limit], set(series) - seen


UNREAD_KINDS = frozenset({"best_bid_ask"})


def lean_market_stream(stream: Any) -> None:
    """Trim what the feed's own market stream does before an event reaches the feed (the reader runs it
    for every message, ahead of the entry's trigger):

    - skip, right after decoding, the message types this feed never reads, as the run-all hub does:
      `best_bid_ask` (the Translator ignores it; price_change carries the same best bid/ask). The venue
      sends one per token right after the price_change that moved the top, so the frame that triggers an
      entry is followed by two of them; unskipped, the reader builds their models before this feed gets
      the entry's event, and the feed then wakes up once for each;
    - no books of its own (`keep_books`): the Translator keeps the feed's books from the same events, and
      nothing reads the stream's. Only a MarketStream of this feed's own: a run-all hub consumer's books
      are the hub's, shared with other feeds (it has no `keep_books`)."""
    skip = getattr(stream, "skip_kinds", None)
    if isinstance(skip, frozenset):  # a MarketStream (a test double may have none)
        stream.skip_kinds = skip | UNREAD_KINDS
    if getattr(stream, "keep_books", None) is True:
        stream.keep_books = False


def _unchanged(old: MarketInfo, new: MarketInfo) -> bool:
    """Equal but for Gamma's outcomePrices: they move with the market on every refresh of a live one, and
    nothing a strategy decides on comes from them (its books do), so keeping the old object loses nothing."""
    if old == new:
        return True
    if len(old.outcomes) != len(new.outcomes):
        return False
    same = tuple(replace(o, price=was.price) for o, was in zip(new.outcomes, old.outcomes, strict=True))
    return replace(new, outcomes=same) == old


class LocalFirstBooks:
    """The paper exchange's BookSource: the market channel's local book when it is synced, else REST."""

    def __init__(self, translator: Translator, fallback: Any) -> None:
        self._t = translator
        self._fallback = fallback

    async def book(self, token_id: str) -> OrderBook:
        b = self._t.order_book(token_id)
        if b is not None:
            return b
        result: OrderBook = await self._fallback.book(token_id)
        return result


@dataclass
class Targets:
    """What to arm: fixed markets, or series to discover (`auto`)."""

    markets: list[Market] = field(default_factory=list)
    series: list[str] = field(default_factory=list)
    max_markets: int = 4
    horizon_s: int = 20 * 60

    @property
    def auto(self) -> bool:
        return bool(self.series)


class GcPacer:
    """Python's cyclic garbage collector, run between events instead of whenever allocations happen to
    cross a threshold: measured in the tick → order benchmark, a young collection that lands on an entry
    costs it ~4 ms and a full one 60–120 ms. While feeds run, automatic collection is off; `step()` (each
    feed calls it about once a second) collects the young generation each time, the middle one every
    `middle_every_s` and everything every `full_every_s`, but only while no feed is `hot` (an armed order
    waiting for its trigger), and never later than `max_defer_s`. What start-up allocated is frozen
    (never scanned again). The collector is one per process: feeds share `GcPacer.shared()` (begin/end
    are counted); the last `end()` restores it as it was."""

    _shared: GcPacer | None = None

    def __init__(self, *, middle_every_s: float = 10.0, full_every_s: float = 60.0, max_defer_s: float = 30.0):
        self.middle_every_s = middle_every_s
        self.full_every_s = full_every_s
        self.max_defer_s = max_defer_s
        self._was_enabled = False
        self._users = 0
        self._hot: dict[int, bool] = {}
        now = time.monotonic()
        self._last = [now, now, now]  # per generation

    @classmethod
    def shared(cls) -> GcPacer:
        if cls._shared is None:
            cls._shared = cls()
        return cls._shared

    def begin(self) -> None:
        import gc

        self._users += 1
        if self._users > 1:
            return
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        now = time.monotonic()
        self._last = [now, now, now]

    def step(self, *, hot: bool, source: object = None) -> int | None:
        """`source` (a feed) is hot or not; collect what is due unless some source is hot. Returns the
        generation collected, or None."""
        import gc

        if self._users == 0:
            return None
        self._hot[id(source)] = hot
        hot = any(self._hot.values())
        now = time.monotonic()
        overdue = now - self._last[0] >= self.max_defer_s
        if hot and not overdue:
            return None
        gen = 2 if now - self._last[2] >= self.full_every_s else 1 if now - self._last[1] >= self.middle_every_s else 0
        if hot:  # overdue while hot: only what is cheap
            gen = 0
        gc.collect(gen)
        for g in range(gen + 1):
            self._last[g] = now
        return gen

    def end(self, source: object = None) -> None:
        import gc

        if self._users == 0:
            return
        self._hot.pop(id(source), None)
        self._users -= 1
        if self._users > 0:
            return
        self._hot.clear()
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()


class LiveFeed:
    def __init__(
        self,
        venue: Venue,
        runner: Runner,
        translator: Translator,
        executor: Executor,
        targets: Targets,
        *,
        clock: Callable[[], float] = time.time,
        tick_s: float = 0.25,
        rediscover_s: float = 30.0,
        live: bool = False,
    ) -> None:
        self.venue = venue
        self.runner = runner
        self.translator = translator
        self.executor = executor
        self.targets = targets
        self.clock = clock
        # A VenueClock learns from the venue's own message timestamps, and says how fast the venue's time
        # runs (an accelerated sim): ticks and discovery keep pace with it, not with the wall.
        self._observe: Callable[[int], None] | None = getattr(clock, "observe", None)
        self.tick_s = tick_s
        self.rediscover_s = rediscover_s
        self.live = live
        self.market_stream: MarketStream | None = None
        self.rtds: RtdsStream | None = None
        self.armed: dict[str, MarketInfo] = {}
        self._symbols: set[str] = set()
        self.status: dict[str, str] = {}
        self._prewarmed = False
        self.arm_every_s = 0.5  # how often anticipated orders are armed (venue seconds at pace 1)
        self.flush_every_s = 1.0  # how often the decision log is written (wall seconds)
        # ... but while an armed order waits for its trigger, at most this often: a trigger arriving during
        # the log's commit waits for it (without an fsync, record_decisions' commit is ~0.1 ms, but a
        # large batch of rows takes longer). Decisions are reports (the orders' own records are written
        # ahead by the executor); a crash loses at most this much of them, the run's end writes the rest.
        self.flush_hot_every_s = 3.0
        self._flushed_at = time.monotonic()
        self.gc: GcPacer | None = GcPacer.shared()  # None: Python's own collection schedule
        # reference prices seen, for views (the strategy keeps its own)
        self.references = ReferenceTracker(max_age_ms=10_000)

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ------------------------------------------------------------------ arming

    async def arm(self, infos: Sequence[MarketInfo]) -> None:
        """Add (or refresh) markets: the view, the translator, and the streams' subscriptions."""
        new_tokens: list[str] = []
        for info in infos:
            old = self.armed.get(info.condition_id)
            if old is None:
                new_tokens += info.token_ids
            elif _unchanged(old, info):
                # Unchanged (refresh re-reads every armed market each `rediscover_s`): keep the object the
                # view holds. A strategy keys its per-market work on the MarketInfo's identity (the
                # sniper's entry terms: limit, sizes, keys, edges); an equal copy would make the next
                # event, possibly the entry's trigger, work them out again on the hot path (~25 µs warm).
                continue
            self.armed[info.condition_id] = info
            self.runner.view.set_market(info)
            self.translator.add_tokens({t: info.condition_id for t in info.token_ids})
            rule = parse_resolution_rule(info.description, info.resolution_source)
            if rule is not None and rule.symbol not in self._symbols:
                self._symbols.add(rule.symbol)
                if self.rtds is not None:
                    from pmbot.polymarket.streams import RtdsSubscription

                    await self.rtds.subscribe([RtdsSubscription.chainlink(rule.symbol)])
        if new_tokens and self.market_stream is not None:
            await self.market_stream.subscribe(new_tokens)

    async def disarm_ended(self) -> None:
        now = self.now_ms()
        gone = [i for i in self.armed.values() if i.end_ms is not None and now - i.end_ms > _KEEP_AFTER_END_MS]
        for info in gone:
            del self.armed[info.condition_id]
            self.runner.view.remove_market(info.condition_id)
            self.translator.remove_tokens(info.token_ids)
        if gone and self.market_stream is not None:
            await self.market_stream.unsubscribe([t for i in gone for t in i.token_ids])

    async def refresh(self) -> None:
        """Re-read the armed markets (accepting orders, closed) and, with --auto, arm the next ones."""
        infos: list[MarketInfo] = []
        if self.armed:
            try:
                ms = await self.venue.gamma.markets(
                    condition_ids=list(self.armed), closed=None, active=None, order=None, limit=len(self.armed) + 10
                )
                infos += [await market_info(self.venue, m) for m in ms if m.condition_id in self.armed]
            except (VenueError, InputError) as e:
                log.warning("could not refresh markets: %s", e.message)
        if self.targets.auto:
            room = self.targets.max_markets - sum(
                1 for i in self.armed.values() if i.end_ms and i.end_ms > self.now_ms()
            )
            if room > 0:
                try:
                    due, _ = await discover(
                        self.venue, self.targets.series, self.now_ms(), self.targets.horizon_s * 1000, room + 10
                    )
                except VenueError as e:
                    log.warning("market discovery failed: %s", e.message)
                    due = []
                fresh = [m for m in due if m.condition_id not in self.armed][:room]
                for m in fresh:
                    try:
                        infos.append(await market_info(self.venue, m))
                    except (VenueError, InputError) as e:
                        log.warning("market %s not armed: %s", m.slug, e.message)
        if infos:
            await self.arm(infos)
        await self.disarm_ended()

    # ------------------------------------------------------------------ running

    async def run(self, *, duration_s: float | None = None, stop: asyncio.Event | None = None) -> None:
        from pmbot.polymarket.streams import RtdsSubscription

        stop = stop or asyncio.Event()
        infos = [await market_info(self.venue, m) for m in self.targets.markets]
        self.market_stream = self.venue.market_stream([t for i in infos for t in i.token_ids])
        lean_market_stream(self.market_stream)
        symbols = {r.symbol for i in infos if (r := parse_resolution_rule(i.description, i.resolution_source))}
        self.rtds = self.venue.rtds_stream([RtdsSubscription.chainlink(s) for s in sorted(symbols) or ["btc/usd"]])
        self._symbols |= symbols or {"btc/usd"}
        await self.arm(infos)
        await self.runner.start()
        await self._arm_ahead()
        tasks = [
            asyncio.create_task(self._market_loop(), name="runner-market"),
            asyncio.create_task(self._rtds_loop(), name="runner-rtds"),
            asyncio.create_task(self._timer_loop(), name="runner-timer"),
        ]
        if self.targets.auto or self.armed:
            tasks.append(asyncio.create_task(self._refresh_loop(), name="runner-refresh"))
        if self.runner.prearm:
            tasks.append(asyncio.create_task(self._arm_loop(), name="runner-arm"))
        self.runner.defer_decisions = True
        tasks.append(asyncio.create_task(self._flush_loop(), name="runner-decisions"))
        if self.live:
            tasks.append(asyncio.create_task(self.executor.follow_user(self.venue.user_stream()), name="runner-user"))
            tasks.append(asyncio.create_task(self.executor.run_reconciler(), name="runner-reconciler"))
        waiter = asyncio.create_task(stop.wait())
        if self.gc is not None:
            self.gc.begin()
        try:
            done, _ = await asyncio.wait([waiter, *tasks], timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
            for t in done:
                if t is not waiter and not t.cancelled() and t.exception() is not None:
                    raise t.exception()  # type: ignore[misc]
        finally:
            for t in [waiter, *tasks]:
                t.cancel()
            for t in [waiter, *tasks]:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            for s in (self.market_stream, self.rtds):
                if s is not None:
                    with contextlib.suppress(Exception):
                        await s.close()
            with contextlib.suppress(Exception):
                self.runner.retire_armed()
            if self.gc is not None:
                self.gc.end(self)
            await self.runner.stop()

    async def _market_loop(self) -> None:
        assert self.market_stream is not None
        from pmbot.settle import resolution_from_event

        paper = self.executor.paper
        resync = BookResync(self.translator)
        async with self.market_stream as stream:
            observe = self._observe
            async for item in stream:
                if observe is not None and not isinstance(item, StreamStatus):  # the venue's stamps, not ours
                    ts = item.book.timestamp_ms if isinstance(item, BookSnapshot) else getattr(item, "timestamp_ms", 0)
                    if ts:
                        observe(ts)
                now = self.now_ms()
                if isinstance(item, StreamStatus):
                    self.status["market"] = item.state.value
                    if item.state is not StreamState.CONNECTED:
                        for blind in self.translator.blind(now):  # stale books must not trigger an entry
                            await self.runner.deliver(blind)
                    resync.status(item, stream)  # blinded books that no re-subscribe will dump: asked for
                    continue
                if isinstance(item, MarketResolved):
                    resolution = resolution_from_event(item)
                    if resolution is not None:
                        self.executor.apply_resolution(resolution)
                events = self.translator.translate(item, now)
                resync.check(stream)  # a book the venue contradicted: ask for its snapshot
                for e in events:
                    await self.runner.deliver(e)
                if paper is not None and isinstance(item, BookSnapshot | PriceChange):
                    for e in events:
                        token = getattr(e, "token_id", "")
                        if token and paper.open_orders(token):
                            book = self.translator.order_book(token)
                            if book is not None and await self.executor.on_book(book):
                                await self.runner.sync_orders()  # the strategy hears of its paper fills

    async def _rtds_loop(self) -> None:
        assert self.rtds is not None
        async with self.rtds as stream:
            async for item in stream:
                for e in self.translator.translate(item, self.now_ms()):
                    await self.runner.deliver(e)  # first: a reference price may be an entry's trigger
                    if isinstance(e, ReferencePrice):
                        self.references.add(e)  # the views' copy (the strategy keeps its own)

    async def _arm_ahead(self) -> None:
        """Pre-arm what the strategy anticipates (Runner.arm_ahead); live, the order path's connection is
        opened and kept warm from the first armed order on."""
        if await self.runner.arm_ahead() and self.live and not self._prewarmed:
            self._prewarmed = True
            try:
                await self.executor.prewarm()
            except Exception as e:  # a cold connection is slower, not wrong
                log.warning("could not prewarm the order connection: %s", e)

    async def _flush_loop(self) -> None:
        """The decision log, written about once a second (not after every event: see Runner.defer_decisions)."""
        while True:
            await asyncio.sleep(self.flush_every_s)
            self.flush_step()
            if self.gc is not None:
                self.gc.step(hot=bool(self.runner.armed), source=self)  # between events, not while an entry may fire

    def flush_step(self) -> bool:
        """Write the decisions buffered so far, unless an armed order may fire (then every
        `flush_hot_every_s` at most). True when they were written."""
        now = time.monotonic()
        if self.runner.armed and now - self._flushed_at < self.flush_hot_every_s:
            return False
        try:
            self.runner.flush_decisions()
        except Exception as e:  # a report that could not be written must not stop trading; kept for the next
            log.warning("decisions not stored yet: %s", e)
            return False
        self._flushed_at = now
        return True

    async def _arm_loop(self) -> None:
        """Pre-arm on its own pace (timer ticks may be off): twice a second, faster on an accelerated venue."""
        while True:
            await asyncio.sleep(max(self.arm_every_s / self._pace(), 0.02))
            try:
                await self._arm_ahead()
            except Exception as e:  # e.g. the store refused a retire: entries are still submitted as usual
                log.warning("pre-arming failed: %s", e)

    def _pace(self) -> float:
        """How many venue seconds pass per wall second (1 against Polymarket)."""
        rate = getattr(self.clock, "rate", 1.0)
        return rate if isinstance(rate, float) and rate > 1.0 else 1.0

    async def _timer_loop(self) -> None:
        last_sync = 0.0
        while True:
            await asyncio.sleep(max(self.tick_s / self._pace(), 0.01))
            await self.runner.tick(self.now_ms())
            if time.monotonic() - last_sync >= 1.0:  # fills the user channel / reconciler recorded since
                last_sync = time.monotonic()
                await self.runner.sync_orders()

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(max(self.rediscover_s / self._pace(), 0.5))
            await self.refresh()
