"""The built-in `btc-15m` scenario: a seeded BTC price path and the 15-minute "Bitcoin Up or Down"
markets that trade on it, with a synthetic market maker quoting fair value and a whale taker.

Everything random comes from child generators of the injected `random.Random`, one per concern, so
that (for example) a change in the whale's behaviour does not shift the price path.

Fair value of Up with τ seconds left: P(Up) = Φ(ln(S/S_open) / (σ√τ)) with σ the per-second vol.
Near the end τ → 0 so quotes run to 0.97–0.99 on the likely side, and the path's occasional jumps
flip some windows late.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from zoneinfo import ZoneInfo

from pmbot.sim import ids
from pmbot.sim.markets import SimMarket

WINDOW = 900
PAST_WINDOWS = 3
UPCOMING_WINDOWS = 3
SERIES_SLUG = "btc-up-or-down-15m"
START_PRICE = 95_000.0
# ~50 % annualised volatility, as per-second log-return stdev.
SIGMA = 0.50 / math.sqrt(365 * 24 * 3600)
JUMP_PROB = 0.004  # per second; jumps make late flips possible
JUMP_SIGMA = 0.0008
CENT = Decimal("0.01")
TICK = Decimal("0.01")
MM_LEVELS = 6

WHALE_NAME = "distinct-baguette"
_ET = ZoneInfo("America/New_York")


def window_start(ts: float) -> int:
    return int(ts // WINDOW) * WINDOW


def window_title(start: int) -> str:
    """'Bitcoin Up or Down - November 23, 7:00AM-7:15AM ET'."""
    a = datetime.fromtimestamp(start, _ET)
    b = datetime.fromtimestamp(start + WINDOW, _ET)

    def hm(d: datetime) -> str:
        return f"{d.hour % 12 or 12}:{d.minute:02d}{'AM' if d.hour < 12 else 'PM'}"

    return f"Bitcoin Up or Down - {a.strftime('%B')} {a.day}, {hm(a)}-{hm(b)} ET"


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


class PricePath:
    """BTC/USD per second from `origin`, extended lazily; Decimal cents (Binance-like) and a Chainlink
    relay that lags slightly (what RTDS `crypto_prices_chainlink` carries)."""

    def __init__(self, rng: random.Random, origin: int, s0: float = START_PRICE) -> None:
        self._rng = rng
        self.origin = origin
        self._log = [math.log(s0)]
        self._prices = [Decimal(s0).quantize(CENT)]

    def _extend(self, upto: int) -> None:
        need = upto - self.origin
        while len(self._log) <= need:
            r = self._rng.gauss(0.0, SIGMA)
            if self._rng.random() < JUMP_PROB:
                r += self._rng.gauss(0.0, JUMP_SIGMA)
            self._log.append(self._log[-1] + r)
            self._prices.append(Decimal(math.exp(self._log[-1])).quantize(CENT))

    def at(self, ts: int) -> Decimal:
        ts = max(ts, self.origin)
        self._extend(ts)
        return self._prices[ts - self.origin]

    def chainlink_at(self, ts: int) -> Decimal:
        """The oracle lags the exchange by about a second."""
        return self.at(ts - 1)


def p_up(path: PricePath, market: SimMarket, now: int) -> float:
    """Fair probability that Up wins, from the price vs the window's open and the time left."""
    if market.open_price is None or now < market.start_ts:
        return 0.5
    tau = max(market.end_ts - now, 1)
    s, s0 = float(path.chainlink_at(now)), float(market.open_price)
    z = math.log(s / s0) / (SIGMA * math.sqrt(tau))
    return norm_cdf(z)


def make_market(seed: int, start: int, version: str = "v2") -> SimMarket:
    """One window of the series. Since Protocol V2 (2026-10-05; crypto Up/Down were the canaries) the
    series trades V2 positions; version="v1" builds the CTF-token form the series had before."""
    slug = f"btc-updown-15m-{start}"
    if version == "v2":
        cid = ids.v2_condition_id(seed, "condition", start)
        tokens = (ids.v2_position_id(cid, 0), ids.v2_position_id(cid, 1))
    else:
        cid = ids.hex32(seed, "condition", start)
        tokens = (ids.token_id(seed, start, "Up"), ids.token_id(seed, start, "Down"))
    return SimMarket(
        gamma_id=str(ids.small_int(seed, "market", start)),
        event_id=str(ids.small_int(seed, "event", start, lo=100_000, hi=999_999)),
        condition_id=cid,
        question_id=ids.hex32(seed, "question", start),
        slug=slug,
        question=window_title(start),
        token_ids=tokens,
        start_ts=start,
        end_ts=start + WINDOW,
        created_ts=start - 86400 + 37.1234,  # listed ~a day ahead, like the real series
        version=version,
    )


V1_MARKET_DAYS = 30


def make_v1_market(seed: int, now: int) -> SimMarket:
    """A standing Protocol V1 market (CTF tokens, CTFExchangeV2): most of the venue still trades
    these, so the sim always lists one next to the V2 series."""
    end = (now // 86400 + V1_MARKET_DAYS) * 86400
    return SimMarket(
        gamma_id=str(ids.small_int(seed, "market", "v1-standing")),
        event_id=str(ids.small_int(seed, "event", "v1-standing", lo=100_000, hi=999_999)),
        condition_id=ids.hex32(seed, "condition", "v1-standing"),
        question_id=ids.hex32(seed, "question", "v1-standing"),
        slug="will-bitcoin-close-the-month-above-100k",
        question="Will Bitcoin close the month above $100,000?",
        token_ids=(ids.token_id(seed, "v1-standing", "Yes"), ids.token_id(seed, "v1-standing", "No")),
        outcomes=("Yes", "No"),
        start_ts=now - 86400,
        end_ts=end,
        created_ts=now - 7 * 86400 + 11.5,
        series_slug="bitcoin-monthly",
        series_id="10001",
        version="v1",
        standing=True,
    )


@dataclass
class Ladder:
    """Market-maker quotes in Up terms: price → size per side."""

    bids: dict[Decimal, Decimal]
    asks: dict[Decimal, Decimal]


class MarketMaker:
    """Quotes a ladder around fair value; keeps sizes sticky so a second's requote only touches a few
    levels (like a real book), and refills levels that takers ate."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def _size(self, depth: int) -> Decimal:
        base = self._rng.uniform(40, 600) * (1 + 0.5 * depth)
        if self._rng.random() < 0.05:
            base *= 8  # the occasional wall
        return Decimal(base).quantize(CENT)

    def ladder(self, fair: float, previous: Ladder | None) -> Ladder:
        f = Decimal(fair)
        bid0 = ((f - Decimal("0.005")) / TICK).to_integral_value(ROUND_FLOOR) * TICK
        ask0 = ((f + Decimal("0.005")) / TICK).to_integral_value(ROUND_CEILING) * TICK
        if ask0 <= bid0:
            ask0 = bid0 + TICK
        lo, hi = TICK, 1 - TICK
        # Near 0 or 1 keep the book two-sided (0.98/0.99, 0.01/0.02) as makers do on settling markets.
        if ask0 > hi:
            ask0, bid0 = hi, min(bid0, hi - TICK)
        if bid0 < lo:
            bid0, ask0 = lo, max(ask0, lo + TICK)
        bids = [bid0 - TICK * k for k in range(MM_LEVELS) if lo <= bid0 - TICK * k <= hi]
        asks = [ask0 + TICK * k for k in range(MM_LEVELS) if lo <= ask0 + TICK * k <= hi]
        prev_b = previous.bids if previous else {}
        prev_a = previous.asks if previous else {}
        return Ladder(
            bids={p: self._keep_or_draw(prev_b.get(p), k) for k, p in enumerate(bids)},
            asks={p: self._keep_or_draw(prev_a.get(p), k) for k, p in enumerate(asks)},
        )

    def _keep_or_draw(self, old: Decimal | None, depth: int) -> Decimal:
        if old is not None and self._rng.random() > 0.12:
            return old
        return self._size(depth)


@dataclass(frozen=True)
class WhaleIntent:
    market: SimMarket
    index: int
    side: str
    size: Decimal
    slippage: Decimal


class Whale:
    """`distinct-baguette`: takes liquidity every few seconds in the current window, mostly on the
    side the price favours, occasionally selling part of what it holds."""

    def __init__(self, rng: random.Random, seed: int) -> None:
        self._rng = rng
        self.address = ids.address(seed, "whale", WHALE_NAME)
        self.name = WHALE_NAME
        self.next_ts: int | None = None

    def schedule(self, now: int) -> None:
        self.next_ts = now + self._rng.randint(3, 8)

    def intent(self, market: SimMarket, fair_up: float, held: dict[int, Decimal]) -> WhaleIntent:
        rng = self._rng
        likely = 0 if fair_up >= 0.5 else 1
        sellable = [i for i, q in held.items() if q >= 10]
        if sellable and rng.random() < 0.15:
            i = rng.choice(sellable)
            size = (held[i] * Decimal(rng.uniform(0.2, 0.6))).quantize(CENT)
            return WhaleIntent(market, i, "SELL", max(size, Decimal(5)), Decimal("0.02"))
        index = likely if rng.random() < 0.75 else 1 - likely
        size = Decimal(rng.uniform(10, 250)).quantize(CENT)
        return WhaleIntent(market, index, "BUY", size, Decimal("0.02"))
