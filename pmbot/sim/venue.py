"""The simulated venue: markets, books, the engine, API keys, Data API history and the event fan-out,
advanced second by second by the clock. Runs on one event-loop thread; nothing here blocks or sleeps.

Built-in scenario per second of sim time: resolve/open windows on 15-minute boundaries, re-quote the
market maker, expire GTD orders, let the whale trade, move trades MATCHED → MINED (OrderFilled logs)
→ CONFIRMED, and publish RTDS BTC prices. A replayed scenario (`replay.Replay`) instead re-broadcasts
recorded messages and keeps books from them.
"""

from __future__ import annotations

import contextlib
import json
import random
import secrets
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import partial
from typing import Any

from pmbot.sim import ids, messages, wire
from pmbot.sim.auth import ApiKey, ApiKeys
from pmbot.sim.book import BUY, ONE, SELL, ZERO, BookSnapshot
from pmbot.sim.clock import SimClock
from pmbot.sim.engine import CANCELED, LIVE, Engine, Order, OrderRejectedError, Trade
from pmbot.sim.faults import Faults
from pmbot.sim.hub import Hub, RtdsSub
from pmbot.sim.markets import SimMarket
from pmbot.sim.scenario import (
    PAST_WINDOWS,
    UPCOMING_WINDOWS,
    WINDOW,
    Ladder,
    MarketMaker,
    PricePath,
    Whale,
    make_market,
    make_v1_market,
    p_up,
    window_start,
)
from pmbot.sim.verify import (
    EXCHANGE_V2,
    EXCHANGE_V3,
    NEG_RISK_EXCHANGE_V2,
    POLY_1271,
    SignatureError,
    recover_order_signer,
)

MICRO = Decimal(1_000_000)
MINED_AFTER, CONFIRMED_AFTER = 2, 6  # seconds from match to block inclusion / finality
BLOCK_ZERO_TS, BLOCK_ZERO = 1_700_000_000, 50_000_000  # Polygon-like: one block every 2 s
MAX_BATCH = 15
# Every user wallet starts with this much pUSD (collateral) and no shares; `credit` / `split` change it.
DEFAULT_PUSD = Decimal(100_000)
MAX_UINT256 = 2**256 - 1
TICK_HIGH, TICK_LOW, FINE_TICK = Decimal("0.96"), Decimal("0.04"), Decimal("0.001")
NOT_ENOUGH_BALANCE_CANCEL = "CANCELED_NOT_ENOUGH_BALANCE"
BALANCE_MSG = "not enough balance / allowance"  # the venue's 400 (py-clob-client issue 290, py-sdk issue 101)


HEARTBEAT_TIMEOUT_S = 10.0  # the venue's order-heartbeat deadline (docs: api-reference/trade/send-heartbeat)


def block_at(ts: float) -> int:
    return BLOCK_ZERO + int((ts - BLOCK_ZERO_TS) // 2)


@dataclass(frozen=True)
class Fill:
    """One side of one trade, as the Data API and positions see it."""

    order: Order
    trade: Trade
    is_taker: bool


class Venue:
    def __init__(
        self, *, seed: int, clock: SimClock, rng: random.Random | None = None, faults: Faults | None = None
    ) -> None:
        self.seed = seed
        self.clock = clock
        rng = rng or random.Random(seed)
        # One child generator per concern, so changing one never shifts another's stream.
        self._rng_path = random.Random(rng.getrandbits(64))
        self._rng_mm = random.Random(rng.getrandbits(64))
        self._rng_whale = random.Random(rng.getrandbits(64))
        self.faults = faults or Faults()
        self.hub = Hub(self.faults)
        self.api_keys = ApiKeys(seed)
        # Order heartbeats by API key: (the id the next beat must carry, sim time of the last beat). A key
        # here is armed: HEARTBEAT_TIMEOUT_S without a beat cancels all its open orders (then it is disarmed).
        self.heartbeats: dict[str, tuple[str, float]] = {}
        self.mm_owner = ids.uuid(seed, "owner", "market-maker")
        self.mm_address = ids.address(seed, "market-maker")
        self._stepping: float | None = None  # the simulated second (or a phased requote's time) being processed
        # Real time: each market requotes at its own phase of the second (see _second); manual clocks keep
        # every requote at the second's start (tests step whole seconds and read the books right after).
        self.phased_requotes = not clock.manual
        self._due: list[tuple[float, int, SimMarket]] = []  # this second's requotes still to run, latest first
        self.engine = Engine(seed, self.now, self, self.mm_owner, self.mm_address)
        self.markets: list[SimMarket] = []
        self._by_token: dict[str, SimMarket] = {}
        self._by_cid: dict[str, SimMarket] = {}
        self.fills: list[Fill] = []
        self.chain_logs: list[dict[str, Any]] = []  # every OrderFilled log emitted
        self.received_orders: list[dict[str, Any]] = []  # raw POST /order bodies, for test assertions
        # Benchmark stamps (time.perf_counter_ns, one clock for every thread of the process): when a fill of
        # `stamp_wallet` (the whale by default) was emitted on each source, and when each POST /order was
        # received. Emission: RTDS `activity` and the Data API row at the match (both are built from the
        # match; the Data API serves it from then on), the chain's OrderFilled log at block inclusion.
        self.stamp_wallet: str | None = None
        self.emit_stamps: deque[dict[str, Any]] = deque(maxlen=20_000)
        self.order_stamps: deque[dict[str, Any]] = deque(maxlen=20_000)
        self.profiles: dict[str, dict[str, str]] = {}  # lowercase wallet → public profile
        self._pending: list[Trade] = []  # not yet CONFIRMED
        # Balances of user wallets (lowercase address): pUSD and shares per token, moved by every fill of
        # a user order. The venue refuses an order its wallet cannot cover (BALANCE_MSG).
        self._cash: dict[str, Decimal] = {}
        self._shares: dict[tuple[str, str], Decimal] = {}
        self._deferred: list[Order] = []  # FOK/FAK answered "live" (fault fak_live), matched next second
        self._traded: set[str] = set()  # markets that traded since their last `book` message
        self._ladders: dict[str, Ladder] = {}
        self._best: dict[str, tuple[Decimal | None, Decimal | None]] = {}
        self._log_index = 0
        self.replay: Any = None  # replay.Replay when serving a recorded scenario
        self.mm = MarketMaker(self._rng_mm)
        self.whale = Whale(self._rng_whale, seed)
        self.stamp_wallet = self.whale.address.lower()
        self.whale_owner = ids.uuid(seed, "owner", "whale")
        self.path: PricePath | None = None
        self.t_done = int(clock.now())
        self.series_protocol = "v2"
        # Drawn last, so the series' streams above are the same with or without standing markets.
        self._rng_standing = random.Random(rng.getrandbits(64))
        self.mm_standing = MarketMaker(self._rng_standing)

    # -- setup ---------------------------------------------------------------------------------
    def add_market(self, m: SimMarket) -> None:
        self.markets.append(m)
        self._by_cid[m.condition_id] = m
        for t in m.token_ids:
            self._by_token[t] = m
        self.engine.book(m)

    def start_btc_15m(self, series_protocol: str = "v2") -> None:
        """Build the built-in scenario at the clock's current time: the BTC 15-minute series as
        `series_protocol` markets (V2 positions by default, as on the venue since the canaries) and
        one standing V1 market."""
        if series_protocol not in ("v1", "v2"):
            raise ValueError(f"series protocol must be v1 or v2, not {series_protocol!r}")
        self.series_protocol = series_protocol
        now = int(self.clock.now())
        ws = window_start(now)
        self.path = PricePath(self._rng_path, ws - PAST_WINDOWS * WINDOW)
        self.profiles[self.whale.address.lower()] = {
            "name": self.whale.name,
            "pseudonym": "Distinct-Baguette",
            "bio": "15-minute BTC, all day.",
            "profileImage": "",
        }
        for k in range(-PAST_WINDOWS, UPCOMING_WINDOWS + 1):
            m = make_market(self.seed, ws + k * WINDOW, series_protocol)
            if k <= 0:
                m.open_price = self.path.chainlink_at(m.start_ts)
            if k < 0:
                self._resolve_quietly(m)
            self.add_market(m)
        self.add_market(make_v1_market(self.seed, now))
        self.t_done = now
        for m in self.open_markets(now):
            self._requote(m, now)
        self.whale.schedule(now)

    def _resolve_quietly(self, m: SimMarket) -> None:
        assert self.path is not None
        assert m.open_price is not None
        m.close_price = self.path.chainlink_at(m.end_ts)
        m.winner = 0 if m.close_price >= m.open_price else 1
        m.closed = True
        m.closed_ts = m.end_ts + 5
        m.last_trade = [(ONE if m.winner == 0 else ZERO, ""), (ZERO if m.winner == 0 else ONE, "")]

    # -- lookups -------------------------------------------------------------------------------
    def market_by_token(self, token_id: str) -> SimMarket | None:
        return self._by_token.get(token_id)

    def market_by_cid(self, cid: str) -> SimMarket | None:
        return self._by_cid.get(cid) or self._by_cid.get(cid.lower())

    def open_markets(self, now: float) -> list[SimMarket]:
        return [m for m in self.markets if not m.closed and now < m.end_ts]

    def current_market(self) -> SimMarket | None:
        now = self.clock.now()
        return next((m for m in self.markets if m.start_ts <= now < m.end_ts and not m.closed and not m.standing), None)

    def book_snapshot(self, token_id: str) -> BookSnapshot | None:
        m = self._by_token.get(token_id)
        if m is None or m.closed:
            return None
        i = m.index_of(token_id)
        if self.replay is not None:
            bids, asks = self.replay.token_levels(token_id)
        else:
            bids, asks = self.engine.book(m).token_levels(i)
        return BookSnapshot(
            market=m.condition_id,
            asset_id=token_id,
            timestamp_ms=self.now_ms(),
            bids=bids,
            asks=asks,
            min_order_size=m.min_size,
            tick_size=m.tick,
            neg_risk=m.neg_risk,
            last_trade_price=m.last_trade[i][0],
        )

    def best_up(self, m: SimMarket) -> tuple[Decimal | None, Decimal | None]:
        snap = self.book_snapshot(m.token_ids[0])
        return (snap.best_bid(), snap.best_ask()) if snap else (None, None)

    def liquidity(self, m: SimMarket) -> Decimal:
        snap = self.book_snapshot(m.token_ids[0])
        if snap is None:
            return ZERO
        return sum((p * s for p, s in snap.bids + snap.asks), ZERO).quantize(Decimal("0.0001"))

    # -- time ----------------------------------------------------------------------------------
    def now(self) -> float:
        """Sim time as the venue sees it: while catching up second by second, the second in progress
        (so a trade simulated for 12:00:05 is stamped 12:00:05 even if the clock already reads :20)."""
        return self._stepping if self._stepping is not None else self.clock.now()

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.step_to(self.clock.now())

    def heartbeat(self, key: str, heartbeat_id: str) -> tuple[bool, str]:
        """POST /v1/heartbeats: (accepted, id for the next beat). The first beat (any id) arms the key;
        later ones must carry the id the previous answer gave, else (False, expected id)."""
        self.check_heartbeats(self.clock.now())
        known = self.heartbeats.get(key)
        if known is not None and heartbeat_id != known[0]:
            return False, known[0]
        next_id = secrets.token_hex(16)
        self.heartbeats[key] = (next_id, self.clock.now())
        return True, next_id

    def check_heartbeats(self, now: float) -> None:
        """The dead man's switch: a key whose last beat is HEARTBEAT_TIMEOUT_S old loses its open orders."""
        for key, (_, last) in list(self.heartbeats.items()):
            if now - last >= HEARTBEAT_TIMEOUT_S:
                del self.heartbeats[key]
                for o in self.engine.live_orders():
                    if o.owner == key:
                        self.engine.cancel(o)

    def step_to(self, now: float) -> None:
        if self.heartbeats:
            self.check_heartbeats(now)
        if self.replay is not None:
            self.replay.step_to(now)
            return
        if self.path is None:
            return
        try:
            while True:
                # The current second's requotes that are due (all of them before the next second begins).
                self._requote_due(now if int(now) <= self.t_done else float("inf"))
                if self.t_done >= int(now):
                    break
                self.t_done += 1
                self._stepping = self.t_done
                self._second(self.t_done)
        finally:
            self._stepping = None

    def next_due(self) -> float:
        """Sim time of the next thing `step_to` has to do: the next phased requote, else the next second
        (infinity for a replay or a venue without a price path: they step no seconds, `t_done` stays put,
        and a time in the past would have the ticker wake at its floor)."""
        if self.replay is not None or self.path is None:
            return float("inf")
        return self._due[-1][0] if self._due else float(self.t_done + 1)

    def _second(self, s: int) -> None:
        assert self.path is not None
        self._match_deferred()
        if s % WINDOW == 0:
            self._roll_windows(s)
        # Upcoming windows have no price to beat yet: quote them lazily (every 10 s).
        due = [m for m in self.open_markets(s) if m.open_price is not None or s % 10 == 0]
        if self.phased_requotes:
            # Each market's maker requotes at its own moment of the second, as on the venue, where makers
            # act on their own clocks: requoting every book at the second's start sent the whole second's
            # book traffic (200 markets: 200 frames) to every subscriber as one burst. Latest first: pop().
            self._due = sorted(((s + _phase(m), i, m) for i, m in enumerate(due)), reverse=True)
        else:
            for m in due:
                self._requote(m, s)
        self.engine.expire(s)
        if self.whale.next_ts is not None and s >= self.whale.next_ts:
            self._whale_trade(s)
            self.whale.schedule(s)
        self._progress_trades(s)
        self._publish_prices(s)

    def _roll_windows(self, s: int) -> None:
        assert self.path is not None
        for m in list(self.markets):
            if m.end_ts == s and not m.closed:
                m.close_price = self.path.chainlink_at(s)
                m.winner = 0 if m.close_price >= (m.open_price or m.close_price) else 1
                self.engine.close_market(m)
                m.closed = True
                m.closed_ts = s
                m.last_trade = [(ONE if m.winner == 0 else ZERO, ""), (ZERO if m.winner == 0 else ONE, "")]
                self.hub.to_market(m.token_ids, partial(self._resolved_message, m), custom=True)
            elif m.start_ts == s:
                m.open_price = self.path.chainlink_at(s)
        nxt = s + UPCOMING_WINDOWS * WINDOW
        if nxt not in {m.start_ts for m in self.markets}:
            fresh = make_market(self.seed, nxt, self.series_protocol)
            self.add_market(fresh)
            self.hub.to_custom(partial(self._new_market_message, fresh))

    def _new_market_message(self, m: SimMarket) -> dict[str, Any]:
        """Market-channel `new_market` (custom feature), docs example shape (docs_examples/)."""
        return {
            "event_type": "new_market",
            "id": m.gamma_id,
            "question": m.question,
            "market": m.condition_id,
            "slug": m.slug,
            "description": m.description,
            "assets_ids": list(m.token_ids),
            "outcomes": list(m.outcomes),
            "event_message": {
                "id": m.event_id,
                "ticker": m.slug,
                "slug": m.slug,
                "title": m.question,
                "description": m.description,
            },
            "timestamp": str(self.now_ms()),
            "tags": ["crypto"],
            "condition_id": m.condition_id,
            "active": True,
            "clob_token_ids": list(m.token_ids),
            "sports_market_type": "",
            "line": "",
            "game_start_time": "",
            "order_price_min_tick_size": wire.dstr(m.tick),
            "group_item_title": "",
        }

    def _resolved_message(self, m: SimMarket) -> dict[str, Any]:
        assert m.winner is not None
        return {
            "event_type": "market_resolved",
            "id": m.gamma_id,
            "market": m.condition_id,
            "assets_ids": list(m.token_ids),
            "winning_asset_id": m.token_ids[m.winner],
            "winning_outcome": m.outcomes[m.winner],
            "timestamp": str(self.now_ms()),
            "tags": ["crypto"],
        }

    def _match_deferred(self) -> None:
        """Fault fak_live: the FOK/FAK orders answered "live" now match (or are killed), as on the venue
        where such an order is settled later and reported on the user channel."""
        deferred, self._deferred = self._deferred, []
        for o in deferred:
            if o.status != LIVE:  # cancelled meanwhile
                continue
            del self.engine.orders[o.id]
            try:
                self.engine.place(o)
            except OrderRejectedError:
                if not o.status.startswith("CANCELED_"):  # a killed FOK already said so
                    o.status = CANCELED
                    self.on_order(o, "CANCELLATION")
                o.remaining = ZERO
                self.engine.orders[o.id] = o

    # -- market maker --------------------------------------------------------------------------
    def _requote_due(self, until: float) -> None:
        """The phased requotes of the second in progress due at or before `until` (sim time), in order."""
        due = self._due
        while due and due[-1][0] <= until:
            t, _, m = due.pop()
            if m.closed:
                continue
            self._stepping = t
            self._requote(m, self.t_done)

    def _requote(self, m: SimMarket, s: int) -> None:
        assert self.path is not None
        fair = p_up(self.path, m, s)
        # A standing market has its own generator: listing it must not shift the series' books.
        rng, mm = (self._rng_standing, self.mm_standing) if m.standing else (self._rng_mm, self.mm)
        if m.open_price is None:
            fair = 0.5 + rng.uniform(-0.015, 0.015)
        ladder = mm.ladder(fair, self._ladders.get(m.condition_id))
        book = self.engine.book(m)
        # Never quote through real resting orders: that would cross the book.
        user_bids = [p for p, lv in book.sides[BUY].items() if lv.orders]
        user_asks = [p for p, lv in book.sides[SELL].items() if lv.orders]
        top_user_bid, low_user_ask = max(user_bids, default=None), min(user_asks, default=None)
        bids = {p: q for p, q in ladder.bids.items() if low_user_ask is None or p < low_user_ask}
        asks = {p: q for p, q in ladder.asks.items() if top_user_bid is None or p > top_user_bid}
        for side, want in ((BUY, bids), (SELL, asks)):
            for p in book.mm_prices(side):
                if p not in want:
                    book.set_mm(side, p, ZERO)
            for p, q in want.items():
                book.set_mm(side, p, q)
        self._ladders[m.condition_id] = ladder
        self.on_book_change(m)

    # -- whale ---------------------------------------------------------------------------------
    def _whale_trade(self, s: int) -> None:
        assert self.path is not None
        m = next((x for x in self.open_markets(s) if x.start_ts <= s and x.end_ts - s > 5), None)
        if m is None:
            return
        held = self.holdings(self.whale.address, m)
        intent = self.whale.intent(m, p_up(self.path, m, s), held)
        bid, ask = self.engine.book(m).best_for(intent.index)
        if intent.side == "BUY":
            if ask is None:
                return
            limit = min(ask + intent.slippage, ONE - m.tick)
        else:
            if bid is None:
                return
            limit = max(bid - intent.slippage, m.tick)
        order = Order(
            id=ids.hex32(self.seed, "whale-order", s),
            market=m,
            index=intent.index,
            side=intent.side,
            price=limit,
            original_size=intent.size,
            order_type="FAK",
            owner=self.whale_owner,
            maker_address=self.whale.address,
            created_at=s,
            is_user=False,
        )
        # Nothing to take right now is fine: the whale tries again in a few seconds.
        with contextlib.suppress(OrderRejectedError):
            self.engine.place(order)

    def holdings(self, wallet: str, m: SimMarket) -> dict[int, Decimal]:
        held = {0: ZERO, 1: ZERO}
        w = wallet.lower()
        for f in self.fills:
            if f.order.market is m and f.order.maker_address.lower() == w:
                held[f.order.index] += f.trade.size if f.order.side == BUY else -f.trade.size
        return held

    # -- trades lifecycle ----------------------------------------------------------------------
    def _progress_trades(self, s: int) -> None:
        still: list[Trade] = []
        for t in self._pending:  # heads of trade groups
            members = t.group or [t]
            if t.status == "MATCHED" and s >= t.match_time + MINED_AFTER and self.faults.take("trade_fail"):
                for g in members:
                    g.status, g.last_update = "FAILED", s
                self._revert(members)
                self._notify_trade(t)
            if t.status == "MATCHED" and s >= t.match_time + MINED_AFTER:
                for g in members:
                    g.status, g.last_update, g.block = "MINED", s, block_at(s)
                self._emit_logs(t)
                self._notify_trade(t)
            if t.status == "MINED" and s >= t.match_time + CONFIRMED_AFTER:
                for g in members:
                    g.status, g.last_update = "CONFIRMED", s
                self._notify_trade(t)
            if t.status not in ("CONFIRMED", "FAILED"):
                still.append(t)
        self._pending = still

    def _revert(self, members: list[Trade]) -> None:
        """A failed settlement: the fills of these trades never happened on-chain, so the wallets'
        balances and the Data API history go back to before them."""
        failed = {id(g) for g in members}
        for g in members:
            for order, is_taker in ((g.taker, True), (g.maker, False)):
                if order.is_user:
                    price = g.price if is_taker else g.maker_price
                    w = order.maker_address.lower()
                    sign = 1 if order.side == BUY else -1
                    self._cash[w] = self.cash(w) + sign * (g.size * price) + (g.fee if is_taker else ZERO)
                    key = (w, order.token_id)
                    self._shares[key] = self._shares.get(key, ZERO) - sign * g.size
        self.fills = [f for f in self.fills if id(f.trade) not in failed]

    def _emit_logs(self, t: Trade) -> None:
        if t.market.version == "v2":
            exchange = EXCHANGE_V3  # Protocol V2 positions settle on ExchangeV3 (same OrderFilled event)
        else:
            exchange = NEG_RISK_EXCHANGE_V2 if t.market.neg_risk else EXCHANGE_V2
        # matchOrders: each maker order's fill names the taker's maker as counterparty; the taker
        # order's own fill names the exchange (it is the exchange that trades with the taker).
        members = t.group or [t]
        total = replace(t, size=t.group_size)  # the taker order's fill is the whole trade
        legs = [(g.maker, g, t.taker.maker_address, ZERO) for g in members]
        legs.append((t.taker, total, exchange, t.group_fee))
        for order, fill, counterparty, fee in legs:
            self._log_index += 1
            log = messages.order_filled_log(
                order, fill, counterparty=counterparty, fee=fee, exchange=exchange, log_index=self._log_index
            )
            self.chain_logs.append(log)
            stamp = self._stamp("chain", order, fill) if order.maker_address.lower() == self.stamp_wallet else None
            self.hub.to_rpc(log, on_send=stamp)

    def _notify_trade(self, t: Trade) -> None:
        now_ms = self.now_ms()
        owners = {t.taker.owner: t.taker} | {g.maker.owner: g.maker for g in t.group or [t]}
        for o in owners.values():
            if o.is_user:
                self.hub.to_user(
                    o.owner, t.market.condition_id, partial(messages.user_trade_message, t, o.owner, now_ms)
                )

    # -- RTDS prices ---------------------------------------------------------------------------
    def _publish_prices(self, s: int) -> None:
        assert self.path is not None
        ms = s * 1000
        binance = self.path.at(s)
        chainlink = self.path.chainlink_at(s)
        self.hub.to_rtds(
            "crypto_prices",
            "update",
            lambda sub: _symbol_ok(sub, "btcusdt"),
            lambda: {
                "topic": "crypto_prices",
                "type": "update",
                "timestamp": ms + 137,
                "payload": {
                    "symbol": "btcusdt",
                    "timestamp": ms,
                    "value": wire.wire_number(binance),
                    "full_accuracy_value": f"{binance:.8f}",
                },
            },
        )
        self.hub.to_rtds(
            "crypto_prices_chainlink",
            "update",
            lambda sub: _symbol_ok(sub, "btc/usd"),
            lambda: {
                "topic": "crypto_prices_chainlink",
                "type": "update",
                "timestamp": ms + 412,
                "payload": {
                    "symbol": "btc/usd",
                    "timestamp": ms,
                    "value": wire.wire_number(chainlink),
                    "full_accuracy_value": str(int(chainlink * 10**18)),
                },
            },
        )

    def price_snapshot(self, topic: str, now: int) -> dict[str, Any] | None:
        """First message after a filtered crypto_prices subscribe: ~2 minutes of history."""
        if self.path is None:
            return None
        symbol = "btcusdt" if topic == "crypto_prices" else "btc/usd"
        at = self.path.at if topic == "crypto_prices" else self.path.chainlink_at
        data = [{"timestamp": t * 1000, "value": wire.wire_number(at(t))} for t in range(now - 120, now + 1)]
        return {
            "topic": topic,
            "type": "subscribe",
            "timestamp": now * 1000 + 50,
            "payload": {"symbol": symbol, "data": data},
        }

    # -- engine listener -----------------------------------------------------------------------
    def on_order(self, order: Order, kind: str) -> None:
        if order.is_user:
            now_ms = self.now_ms()
            self.hub.to_user(
                order.owner, order.market.condition_id, lambda: messages.user_order_message(order, kind, now_ms)
            )

    def on_match(self, group: list[Trade]) -> None:
        """One public trade (a taker order at one price, N makers): last_trade_price, the user channel
        and the MATCHED → MINED → CONFIRMED progress are per trade, as on the venue."""
        head = group[0]
        self._pending.append(head)
        self.hub.to_market(
            [head.taker.token_id],
            lambda: messages.last_trade_price_message(replace(head, size=head.group_size)),
        )
        self._notify_trade(head)

    def on_trade(self, trade: Trade) -> None:
        self._traded.add(trade.market.condition_id)
        for order, is_taker in ((trade.taker, True), (trade.maker, False)):
            if order.is_user:
                price = trade.price if is_taker else trade.maker_price
                w = order.maker_address.lower()
                sign = 1 if order.side == BUY else -1
                self._cash[w] = self.cash(w) - sign * (trade.size * price) - (trade.fee if is_taker else ZERO)
                key = (w, order.token_id)
                self._shares[key] = self._shares.get(key, ZERO) + sign * trade.size
        for order, is_taker in ((trade.taker, True), (trade.maker, False)):
            self.fills.append(Fill(order, trade, is_taker))
            stamp = None
            if order.maker_address.lower() == self.stamp_wallet:
                self._stamp("data_api", order, trade)(sent=False)  # served from the match on: its stamp is the match
                stamp = self._stamp("rtds", order, trade)
            self.hub.to_rtds(
                "activity",
                "trades",
                partial(_activity_ok, m=order.market),
                partial(self._activity_envelope, order, trade, is_taker),
                on_send=stamp,
            )

    def _stamp(self, source: str, order: Order, trade: Trade) -> Callable[..., None]:
        """Record the emission of a `stamp_wallet` fill on `source`: `queued_ns` now, `ns` when the first
        frame carrying it leaves on a socket (call the returned function then; `sent=False`: now)."""
        entry: dict[str, Any] = {
            "source": source,
            "ns": None,
            "queued_ns": time.perf_counter_ns(),
            "tx_hash": trade.tx_hash,
            "token_id": order.token_id,
            "side": order.side,
            "size": trade.size,
            "match_time": trade.match_time,
            "sim_ts": self.now(),
        }
        self.emit_stamps.append(entry)

        def sent(sent: bool = True) -> None:
            if entry["ns"] is None:
                entry["ns"] = time.perf_counter_ns() if sent else entry["queued_ns"]

        return sent

    def _activity_envelope(self, order: Order, trade: Trade, is_taker: bool) -> dict[str, Any]:
        payload = messages.activity_payload(
            order, trade, is_taker=is_taker, profile=self.profile(order.maker_address), checksummed=True
        )
        return {"topic": "activity", "type": "trades", "timestamp": self.now_ms(), "payload": payload}

    def on_book_change(self, m: SimMarket) -> None:
        book = self.engine.book(m)
        changes = book.take_changes()
        if not changes:
            return
        self._follow_tick(m, book.best(BUY), book.best(SELL))
        up, down = m.token_ids
        best_now = book.best(BUY), book.best(SELL)
        if self.hub.market_listeners(m.token_ids):
            snaps = (self.book_snapshot(up), self.book_snapshot(down))
            hashes = [str(s.rest_dict()["hash"]) if s else "" for s in snaps]
            bests = [(s.best_bid(), s.best_ask()) if s else (None, None) for s in snaps]

            entries: list[dict[str, str]] = []
            for side, price, size in changes:
                other_side = SELL if side == BUY else BUY
                for token, p, sd, i in ((up, price, side, 0), (down, ONE - price, other_side, 1)):
                    entries.append(
                        {
                            "asset_id": token,
                            "price": wire.dstr(p),
                            "size": wire.dstr(size),
                            "side": sd,
                            "hash": hashes[i],
                            "best_bid": _fmt(bests[i][0]),
                            "best_ask": _fmt(bests[i][1]),
                        }
                    )
            msg = {
                "market": m.condition_id,
                "price_changes": entries,
                "timestamp": str(self.now_ms()),
                "event_type": "price_change",
            }
            self.hub.to_market(m.token_ids, lambda: msg)
            if m.condition_id in self._traded:
                # The venue follows a trade with a full `book` snapshot per token (market-channel docs:
                # "emitted when … a trade affects the book"); clients resync their local book from it.
                for token, snap in zip(m.token_ids, snaps, strict=True):
                    if snap is not None:
                        self.hub.to_market([token], partial(snap.ws_dict))
            if self._best.get(m.condition_id) != best_now:
                for i, token in enumerate(m.token_ids):
                    bb, ba = bests[i]
                    self.hub.to_market([token], partial(_best_bid_ask, m, token, bb, ba, self.now_ms()), custom=True)
        self._traded.discard(m.condition_id)
        self._best[m.condition_id] = best_now

    # -- balances ------------------------------------------------------------------------------
    def cash(self, wallet: str) -> Decimal:
        """pUSD the wallet holds (not net of open orders)."""
        return self._cash.get(wallet.lower(), DEFAULT_PUSD)

    def shares_of(self, wallet: str, token_id: str) -> Decimal:
        return self._shares.get((wallet.lower(), token_id), ZERO)

    def held(self, wallet: str, m: SimMarket, index: int) -> Decimal:
        """Shares of outcome `index` the wallet holds: the balance ledger for user wallets (splits
        included), the fills for the scenario's own traders."""
        key = (wallet.lower(), m.token_ids[index])
        return self._shares[key] if key in self._shares else self.holdings(wallet, m)[index]

    def credit(self, wallet: str, *, pusd: Decimal | None = None, shares: dict[str, Decimal] | None = None) -> None:
        """Set a wallet's pUSD balance and/or share balances (test and scenario set-up)."""
        w = wallet.lower()
        if pusd is not None:
            self._cash[w] = pusd
        for token, n in (shares or {}).items():
            self._shares[(w, token)] = n
        self._cancel_uncovered(w)

    def _cancel_uncovered(self, wallet: str) -> None:
        """The venue cancels resting orders the wallet's balance no longer covers (a withdrawal, a
        transfer), newest first, with status CANCELED_NOT_ENOUGH_BALANCE (SDK KnownUserOrderStatus)."""
        mine = [o for o in self.engine.live_orders() if o.maker_address.lower() == wallet]
        for o in sorted(mine, key=lambda x: x.created_at, reverse=True):
            cash_locked, shares_locked = self._reserved(wallet)
            short_cash = o.side == BUY and cash_locked > self.cash(wallet)
            short_shares = o.side == SELL and shares_locked.get(o.token_id, ZERO) > self.shares_of(wallet, o.token_id)
            if short_cash or short_shares:
                self.engine.cancel(o, NOT_ENOUGH_BALANCE_CANCEL)

    def split(self, wallet: str, condition_id: str, amount: Decimal) -> None:
        """CTF splitPosition: `amount` pUSD becomes `amount` shares of every outcome of the market."""
        m = self.market_by_cid(condition_id)
        if m is None or amount <= 0 or amount > self.cash(wallet):
            raise ValueError("split: unknown market or not enough pUSD")
        w = wallet.lower()
        self._cash[w] = self.cash(w) - amount
        for t in m.token_ids:
            self._shares[(w, t)] = self.shares_of(w, t) + amount

    def _reserved(self, wallet: str) -> tuple[Decimal, dict[str, Decimal]]:
        """pUSD and shares locked by the wallet's open orders."""
        w = wallet.lower()
        cash, shares = ZERO, dict[str, Decimal]()
        for o in self.engine.live_orders():
            if o.maker_address.lower() != w:
                continue
            if o.side == BUY:
                cash += o.budget if o.budget is not None else o.remaining * o.price
            else:
                shares[o.token_id] = shares.get(o.token_id, ZERO) + o.remaining
        return cash, shares

    def _check_balance(self, o: Order) -> None:
        """The venue's balance check at placement: a BUY needs its pUSD (size × price, or the FOK/FAK
        budget), a SELL its shares, each net of what the wallet's open orders already lock."""
        cash_locked, shares_locked = self._reserved(o.maker_address)
        if o.side == BUY:
            need = o.budget if o.budget is not None else o.original_size * o.price
            have = self.cash(o.maker_address) - cash_locked
        else:
            need = o.original_size
            have = self.shares_of(o.maker_address, o.token_id) - shares_locked.get(o.token_id, ZERO)
        if need > have:
            raise OrderRejectedError(
                f"{BALANCE_MSG}: the balance is not enough -> balance: {int(max(have, ZERO) * MICRO)}, "
                f"order amount: {int(need * MICRO)}"
            )

    def balance_allowance(self, wallet: str, asset_type: str, token_id: str | None) -> dict[str, Any]:
        """GET /balance-allowance: base units (6 decimals) as strings, allowances per exchange contract
        (the SDK's BalanceAllowance model; every sim wallet has approved every exchange)."""
        bal = self.cash(wallet) if asset_type == "COLLATERAL" else self.shares_of(wallet, token_id or "")
        allowance = str(MAX_UINT256)
        return {
            "balance": str(int(bal * MICRO)),
            "allowances": {EXCHANGE_V2: allowance, NEG_RISK_EXCHANGE_V2: allowance},
        }

    def _follow_tick(self, m: SimMarket, bid: Decimal | None, ask: Decimal | None) -> None:
        """The venue's tick rule (market-channel docs, `tick_size_change`): when the book's price goes
        above 0.96 or below 0.04 the market's tick becomes 0.001; back inside, 0.01 again. Both tokens
        get a `tick_size_change` (recording ws_market_tick_size_change.json). Up-terms prices suffice:
        the Down book mirrors them (Up bid > 0.96 is a Down ask < 0.04). One way: no source shows the
        venue coarsening a tick again (which would put resting orders off the grid), so neither does the
        sim; a new window starts at its base tick."""
        extreme = (bid is not None and bid > TICK_HIGH) or (ask is not None and ask < TICK_LOW)
        if not extreme or m.tick <= FINE_TICK:
            return
        want = FINE_TICK
        old, m.tick = m.tick, want
        ms = self.now_ms()
        for token in m.token_ids:
            msg = {
                "event_type": "tick_size_change",
                "asset_id": token,
                "market": m.condition_id,
                "old_tick_size": wire.dstr(old),
                "new_tick_size": wire.dstr(want),
                "timestamp": str(ms),
            }
            self.hub.to_market([token], partial(dict, msg))

    # -- profiles / Data API -------------------------------------------------------------------
    def profile(self, wallet: str) -> dict[str, str]:
        return self.profiles.get(wallet.lower(), {})

    # -- orders from the API -------------------------------------------------------------------
    def submit_wire_order(self, body: Any, key: ApiKey) -> dict[str, Any]:
        """POST /order: validate the V2 wire body, verify the signature, match. Raises OrderRejectedError."""
        received_ns = time.perf_counter_ns()  # before the signature check: the stamp is the POST's arrival
        order = _parse_wire_order(body)
        if body.get("owner") != key.key:
            raise OrderRejectedError("the order owner has to be the owner of the API KEY")
        deposit_wallet = str(order["signatureType"]) == str(POLY_1271)
        if deposit_wallet:
            # A deposit wallet signs as itself (ERC-1271); its owner key holds the API key.
            if str(order["signer"]).lower() != str(order["maker"]).lower():
                raise OrderRejectedError("a deposit wallet order's signer has to be the wallet (the maker)")
        elif str(order["signer"]).lower() != key.address.lower():
            raise OrderRejectedError("the order signer address has to be the address of the API KEY")
        m = self._by_token.get(str(order["tokenId"]))
        if m is None:
            raise OrderRejectedError(f"market not found for token id {order['tokenId']}", status=404)
        try:
            order_id, recovered = recover_order_signer(order, neg_risk=m.neg_risk)
        except SignatureError:
            raise OrderRejectedError("invalid signature") from None
        if recovered.lower() != (key.address if deposit_wallet else str(order["signer"])).lower():
            raise OrderRejectedError("invalid signature")
        self.received_orders.append(body)
        self.order_stamps.append(
            {
                "ns": received_ns,
                "order_id": order_id,
                "token_id": str(order["tokenId"]),
                "side": order["side"],
                "sim_ts": self.now(),
            }
        )
        maker_amt, taker_amt = Decimal(int(order["makerAmount"])), Decimal(int(order["takerAmount"]))
        side = order["side"]
        order_type = body["orderType"]
        if side == BUY:
            price, size = maker_amt / taker_amt, taker_amt / MICRO
        else:
            price, size = taker_amt / maker_amt, maker_amt / MICRO
        o = Order(
            id=order_id,
            market=m,
            index=m.index_of(str(order["tokenId"])),
            side=side,
            price=price.normalize() if order_type in ("GTC", "GTD") else price,
            original_size=size,
            order_type=order_type,
            owner=key.key,
            maker_address=str(order["maker"]),
            created_at=int(self.now()),
            expiration=int(order.get("expiration") or 0),
            budget=maker_amt / MICRO if side == BUY and order_type in ("FOK", "FAK") else None,
            post_only=bool(body.get("postOnly", False)),
        )
        self._check_balance(o)
        if order_type in ("FOK", "FAK") and self.faults.take("fak_live"):
            if o.id in self.engine.orders:
                raise OrderRejectedError(f"order {o.id} is invalid. Duplicated.")
            o.remaining = o.original_size
            self.engine.orders[o.id] = o
            self._deferred.append(o)
            trades: list[Trade] = []
        else:
            trades = self.engine.place(o)
        if not trades:
            return {
                "errorMsg": "",
                "orderID": o.id,
                "takingAmount": "",
                "makingAmount": "",
                "status": "live",
                "success": True,
            }
        shares = sum((t.size for t in trades), ZERO)
        usdc = sum((t.size * t.price for t in trades), ZERO)
        making, taking = (usdc, shares) if side == BUY else (shares, usdc)
        return {
            "errorMsg": "",
            "orderID": o.id,
            "takingAmount": wire.dstr(taking),
            "makingAmount": wire.dstr(making),
            "status": "matched",
            "transactionsHashes": sorted({t.tx_hash for t in trades}),
            "tradeIDs": list(dict.fromkeys(t.public_id for t in trades)),  # one per taker trade, not per maker
            "success": True,
        }

    def summary(self) -> dict[str, Any]:
        now = self.clock.now()
        cur = self.current_market()
        return {
            "mode": "replay" if self.replay is not None else "btc-15m",
            "seed": self.seed,
            "now": now,
            "manual_clock": self.clock.manual,
            "speed": self.clock.speed,
            "btc": wire.dstr(self.path.at(int(now))) if self.path else None,
            "current_market": cur.slug if cur else None,
            "markets": [
                {
                    "slug": m.slug,
                    "condition_id": m.condition_id,
                    "token_ids": list(m.token_ids),
                    "start": m.start_ts,
                    "end": m.end_ts,
                    "closed": m.closed,
                    "winner": m.outcomes[m.winner] if m.winner is not None else None,
                    "price_to_beat": wire.dstr(m.open_price) if m.open_price is not None else None,
                }
                for m in self.markets
            ],
            "whale": {"name": self.whale.name, "address": self.whale.address},
            "orders": len(self.engine.live_orders()),
            "received_orders": len(self.received_orders),
            "trades": len(self.engine.trades),
            "connections": {k: len(getattr(self.hub, k)) for k in ("market", "user", "rtds", "rpc")},
            "faults": self.faults.as_dict(),
        }


_REQUIRED = (
    "salt",
    "maker",
    "signer",
    "tokenId",
    "makerAmount",
    "takerAmount",
    "side",
    "signatureType",
    "timestamp",
    "signature",
)


def _parse_wire_order(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("order"), dict):
        raise OrderRejectedError("Invalid order payload")
    order = body["order"]
    if any(k not in order for k in _REQUIRED) or body.get("orderType") not in ("GTC", "GTD", "FOK", "FAK"):
        raise OrderRejectedError("Invalid order payload")
    if order["side"] not in (BUY, SELL):
        raise OrderRejectedError("Invalid order payload")
    try:
        if int(order["makerAmount"]) <= 0 or int(order["takerAmount"]) <= 0:
            raise OrderRejectedError("Invalid order payload")
        int(order["tokenId"])
        int(order.get("expiration") or 0)
    except (TypeError, ValueError):
        raise OrderRejectedError("Invalid order payload") from None
    return order


def _fmt(p: Decimal | None) -> str:
    return wire.dstr(p) if p is not None else "0"


def _best_bid_ask(m: SimMarket, token: str, bb: Decimal | None, ba: Decimal | None, now_ms: int) -> dict[str, Any]:
    """Market-channel `best_bid_ask` (custom feature), docs example shape."""
    return {
        "event_type": "best_bid_ask",
        "market": m.condition_id,
        "asset_id": token,
        "best_bid": _fmt(bb),
        "best_ask": _fmt(ba),
        "spread": wire.dstr(ba - bb) if bb is not None and ba is not None else "0",
        "timestamp": str(now_ms),
    }


def _symbol_ok(sub: RtdsSub, symbol: str) -> bool:
    """crypto_prices filters are "btcusdt,ethusdt"; chainlink ones '{"symbol":"btc/usd"}'; "" = all."""
    f = sub.filters.strip()
    if not f:
        return True
    if f.startswith("{"):
        try:
            return str(json.loads(f).get("symbol", "")).lower() == symbol
        except (ValueError, AttributeError):
            return False
    return symbol in [x.strip().lower() for x in f.split(",")]


def _activity_ok(sub: RtdsSub, m: SimMarket) -> bool:
    """activity filters: '{"event_slug":"…"}' or '{"market_slug":"…"}' (JSON text); empty = all."""
    f = sub.filters.strip() if isinstance(sub.filters, str) else ""
    if not f:
        return True
    try:
        obj = json.loads(f)
    except ValueError:
        return False
    if not isinstance(obj, dict):
        return False
    return all(obj.get(k) in (None, m.slug) for k in ("event_slug", "market_slug"))


def _phase(m: SimMarket) -> float:
    """The market's requote moment within each second, in [0, 0.95): fixed per market (from its condition id),
    so its book updates come about once a second, spread across the markets. A hash: the sim's ids share
    their leading digits."""
    return zlib.crc32(m.condition_id.encode()) / 2**32 * 0.95
