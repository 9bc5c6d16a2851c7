"""Is a wallet worth copying? Replay its trade history under our copy rules, with the delay and slippage a
copy really has, and compare (`pmbot copy analyze`). Pure: typed trades in, a typed result out; no socket,
store or clock. The runner (or a recorded file) supplies the history, resolutions and, when it has them, the
book's price path.

The replay, in time order (resolutions take effect at their time, or at the end when they have none):

- the TARGET's PnL: its own trades at its own prices and sizes (cash in minus cash out, fees from the
  market's schedule when given, charged on its taker fills), plus what it still holds at the end valued at
  1 / 0 for resolved markets and at the last known price otherwise;
- the COPY's PnL: each trade copied with our sizing rules (`CopyRules`, the same modes, caps, minimums and
  filters as the live strategy), as a taker, `delay_ms` later: at the book's best ask (BUY) / bid (SELL) at
  that time when a price path is given, and skipped (`slippage`) when that is worse than the target's price
  ± `slippage` (our FAK limit); without a path at the target's price ± `slippage`. Sells mirror the target's
  reduction in proportion to our holding, never more than we hold;
- the IDEAL copy: the same rules with no delay and no slippage, at the target's prices. `share_kept` =
  copy PnL / ideal PnL: how much of the target's edge survives a real copy.

The verdict and its rule are in the result (`VerdictRule`): `toxic` when copying loses money, `copyable`
when it earns, keeps at least `min_kept` of the ideal and the target's maker share stays under `max_maker`
(maker fills are liquidity the copy cannot provide: a copy arrives later as a taker), `marginal` otherwise.

Shares a target sells beyond what the history shows it buying (a history that starts mid-position) have no
known cost: only the part it was seen holding counts.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_UP, Decimal
from types import MappingProxyType
from typing import Literal

from pmbot.money import fmt
from pmbot.polymarket.models import FeeSchedule
from pmbot.store.models import Side
from pmbot.strategies.copy import MIN_MARKETABLE_USDC, SHARE_STEP, CopyConfig, SkipReason
from pmbot.strategies.copy import _shares_down as _down

__all__ = [
    "CopyAnalysis",
    "CopyRules",
    "HistoryTrade",
    "PricePoint",
    "Resolution",
    "Verdict",
    "VerdictRule",
    "analyze",
]

_ZERO = Decimal(0)
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
Verdict = Literal["copyable", "marginal", "toxic"]


# ------------------------------------------------------------------------------------------ inputs


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryTrade:
    """One of the target's fills (Data API v2 trades / activity)."""

    token_id: str
    condition_id: str
    side: Side
    price: Decimal
    size: Decimal  # shares
    ts_ms: int
    maker: bool | None = None  # None: the history does not say (counted apart in `maker_unknown_share`)
    outcome: str = ""
    tx_hash: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolution:
    """A market resolved: `winning_token_id` pays 1, every other token of the market 0."""

    condition_id: str
    winning_token_id: str
    ts_ms: int | None = None  # None: applied after the last trade


@dataclass(frozen=True, slots=True)
class PricePoint:
    """The book's best prices for one token from `ts_ms` on (until the next point)."""

    ts_ms: int
    bid: Decimal | None
    ask: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyRules:
    """The sizing and filters of the live strategy, for a replay. `balance` is the starting USDC (mode
    percent sizes from the replay's running cash)."""

    mode: Literal["ratio", "fixed", "percent"] = "ratio"
    ratio: Decimal = Decimal("0.1")
    fixed_usdc: Decimal = Decimal(10)
    percent: Decimal = Decimal(1)
    balance: Decimal = Decimal(1000)
    max_per_trade_usdc: Decimal | None = Decimal(25)
    max_per_market_usdc: Decimal | None = Decimal(100)
    max_total_usdc: Decimal | None = Decimal(500)
    min_target_usdc: Decimal = _ZERO
    buys_only: bool = False
    copy_maker_fills: bool = True
    round_up_to_min: bool = False

    @classmethod
    def from_config(cls, cfg: CopyConfig, *, balance: Decimal = Decimal(1000)) -> CopyRules:
        return cls(
            mode=cfg.mode,
            ratio=cfg.ratio,
            fixed_usdc=cfg.fixed_usdc,
            percent=cfg.percent,
            balance=balance,
            max_per_trade_usdc=cfg.max_per_trade_usdc,
            max_per_market_usdc=cfg.max_per_market_usdc,
            max_total_usdc=cfg.max_total_usdc,
            min_target_usdc=cfg.min_target_usdc,
            buys_only=cfg.buys_only,
            copy_maker_fills=cfg.copy_maker_fills,
            round_up_to_min=cfg.round_up_to_min,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class VerdictRule:
    min_kept: Decimal = Decimal("0.5")  # copyable keeps at least this share of the ideal copy's PnL
    max_maker: Decimal = Decimal("0.5")  # copyable: under this share of the target's volume was maker fills

    def text(self) -> str:
        kept = fmt(self.min_kept * _HUNDRED)
        maker = fmt(self.max_maker * _HUNDRED)
        return (
            f"toxic when the copy's PnL <= 0; copyable when the copy's PnL > 0, it keeps >= {kept} % of the "
            f"ideal copy's PnL (no delay, no slippage) and < {maker} % of the target's volume was maker fills; "
            "marginal otherwise (also when nothing could be copied)"
        )

    def apply(self, copied: int, copy_pnl: Decimal, kept: Decimal | None, maker: Decimal | None) -> Verdict:
        if copied == 0:
            return "marginal"
        if copy_pnl <= 0:
            return "toxic"
        if kept is not None and kept >= self.min_kept and (maker is None or maker < self.max_maker):
            return "copyable"
        return "marginal"


# ------------------------------------------------------------------------------------------ result


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyAnalysis:
    trades: int
    copied: int  # target trades the copy mirrored
    skipped: Mapping[str, int]  # by SkipReason (slippage, min_size, cap, filtered, no_position)
    delay_ms: int
    slippage: Decimal
    target_volume: Decimal  # USDC, price × size over every trade
    target_pnl: Decimal
    copy_volume: Decimal
    copy_pnl: Decimal
    ideal_pnl: Decimal  # our sizing at the target's prices, no delay
    share_kept: Decimal | None  # copy / ideal PnL; None when the ideal did not earn
    maker_share: Decimal | None  # share of the target's volume that was maker fills; None without volume
    maker_unknown_share: Decimal | None  # share of the volume whose maker flag the history did not give
    unresolved_markets: int  # markets held at the end without a resolution (valued at the last price)
    verdict: Verdict
    rule: str

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (money as exact text)."""

        def s(v: Decimal | None) -> str | None:
            return None if v is None else fmt(v)

        return {
            "trades": self.trades,
            "copied": self.copied,
            "skipped": dict(self.skipped),
            "delay_ms": self.delay_ms,
            "slippage": fmt(self.slippage),
            "target_volume": s(self.target_volume),
            "target_pnl": s(self.target_pnl),
            "copy_volume": s(self.copy_volume),
            "copy_pnl": s(self.copy_pnl),
            "ideal_pnl": s(self.ideal_pnl),
            "share_kept": s(self.share_kept),
            "maker_share": s(self.maker_share),
            "maker_unknown_share": s(self.maker_unknown_share),
            "unresolved_markets": self.unresolved_markets,
            "verdict": self.verdict,
            "rule": self.rule,
        }


# ------------------------------------------------------------------------------------------ replay


@dataclass(slots=True)
class _Book:
    """Avg-cost holdings and cash of one replayed account."""

    cash: Decimal = _ZERO
    volume: Decimal = _ZERO
    shares: dict[str, Decimal] = field(default_factory=dict)
    cost: dict[str, Decimal] = field(default_factory=dict)
    market_of: dict[str, str] = field(default_factory=dict)
    market_cost: dict[str, Decimal] = field(default_factory=dict)  # running sums: exposure() is O(1)
    total_cost: Decimal = _ZERO

    def _add_cost(self, token: str, delta: Decimal) -> None:
        self.cost[token] = self.cost.get(token, _ZERO) + delta
        cid = self.market_of[token]
        self.market_cost[cid] = self.market_cost.get(cid, _ZERO) + delta
        self.total_cost += delta

    def buy(self, token: str, cid: str, price: Decimal, size: Decimal, fee: Decimal) -> None:
        spend = price * size + fee
        self.cash -= spend
        self.volume += price * size
        self.shares[token] = self.shares.get(token, _ZERO) + size
        self.market_of[token] = cid
        self._add_cost(token, spend)

    def sell(self, token: str, price: Decimal, size: Decimal, fee: Decimal) -> Decimal:
        """Sell up to `size` (never more than held); returns what was sold."""
        held = self.shares.get(token, _ZERO)
        sold = min(size, held)
        if sold <= 0:
            return _ZERO
        self.cash += price * sold - fee
        self.volume += price * sold
        self._add_cost(token, -(self.cost[token] * sold / held))
        self.shares[token] = held - sold
        return sold

    def resolve(self, r: Resolution) -> None:
        for token, cid in self.market_of.items():
            if cid == r.condition_id and self.shares.get(token, _ZERO) > 0:
                if token == r.winning_token_id:
                    self.cash += self.shares[token]
                self.shares[token] = _ZERO
                self._add_cost(token, -self.cost[token])

    def exposure(self, cid: str | None) -> Decimal:
        return self.total_cost if cid is None else self.market_cost.get(cid, _ZERO)

    def value(self, marks: Mapping[str, Decimal]) -> tuple[Decimal, set[str]]:
        """Cash plus what is still held at its mark; and the markets still held."""
        total = self.cash
        open_markets: set[str] = set()
        for token, n in self.shares.items():
            if n > 0:
                total += n * marks.get(token, _ZERO)
                open_markets.add(self.market_of[token])
        return total, open_markets


class _Replayer:
    def __init__(
        self,
        rules: CopyRules,
        delay_ms: int,
        slippage: Decimal,
        paths: Mapping[str, tuple[list[int], Sequence[PricePoint]]] | None,
        fees: Mapping[str, FeeSchedule],
    ) -> None:
        self.rules = rules
        self.delay_ms = delay_ms
        self.slippage = slippage
        self.paths = paths
        self.fees = fees
        self.book = _Book(cash=_ZERO)
        self.target_held: dict[str, Decimal] = {}
        self.copied = 0
        self.skipped: dict[str, int] = {}

    def _skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def _price(self, t: HistoryTrade) -> Decimal | None:
        """Our fill price, or None when the copy would not fill inside its limit."""
        buy = t.side is Side.BUY
        limit = t.price + self.slippage if buy else t.price - self.slippage
        if self.paths is None:
            return min(limit, _ONE) if buy else max(limit, _ZERO)
        found = self.paths.get(t.token_id)
        if found is None:
            return min(limit, _ONE) if buy else max(limit, _ZERO)
        times, points = found
        i = bisect.bisect_right(times, t.ts_ms + self.delay_ms) - 1
        if i < 0:
            return min(limit, _ONE) if buy else max(limit, _ZERO)
        p = points[i].ask if buy else points[i].bid
        if p is None or (p > limit if buy else p < limit):
            return None
        return p

    def trade(self, t: HistoryTrade) -> None:
        r = self.rules
        before = self.target_held.get(t.token_id, _ZERO)
        if t.side is Side.BUY:
            self.target_held[t.token_id] = before + t.size
        else:
            self.target_held[t.token_id] = max(_ZERO, before - t.size)
        if (
            (t.side is Side.SELL and r.buys_only)
            or (t.maker and not r.copy_maker_fills)
            or t.price * t.size < r.min_target_usdc
        ):
            self._skip(SkipReason.FILTERED)
            return
        held = self.book.shares.get(t.token_id, _ZERO)
        if t.side is Side.SELL and held <= 0:
            self._skip(SkipReason.NO_POSITION)
            return
        price = self._price(t)
        if price is None or not 0 < price < 1:
            self._skip(SkipReason.SLIPPAGE)
            return
        fee_schedule = self.fees.get(t.condition_id)
        minimum = (MIN_MARKETABLE_USDC / price).quantize(SHARE_STEP, rounding=ROUND_UP)
        if t.side is Side.SELL:
            fraction = _ONE if before <= t.size else t.size / before
            shares = _down(held * fraction)
            if held - shares < SHARE_STEP:
                shares = held
            if shares < minimum:
                if not (r.round_up_to_min and minimum <= held):
                    self._skip(SkipReason.MIN_SIZE)
                    return
                shares = minimum
            fee = fee_schedule.fee(shares, price) if fee_schedule else _ZERO
            self.book.sell(t.token_id, price, shares, fee)
            self.copied += 1
            return
        if r.mode == "ratio":
            shares = _down(t.size * r.ratio)
        elif r.mode == "fixed":
            shares = _down(r.fixed_usdc / price)
        else:
            shares = _down((r.balance + self.book.cash) * r.percent / _HUNDRED / price)
        capped = False
        for cap, used in (
            (r.max_per_trade_usdc, _ZERO),
            (r.max_per_market_usdc, self.book.exposure(t.condition_id)),
            (r.max_total_usdc, self.book.exposure(None)),
        ):
            if cap is not None:
                fit = _down((cap - used) / price)
                if fit < shares:
                    shares, capped = fit, True
        if shares < minimum or shares <= 0:
            if capped or not r.round_up_to_min:
                self._skip(SkipReason.CAP if capped else SkipReason.MIN_SIZE)
                return
            shares = minimum
            for cap, used in (
                (r.max_per_trade_usdc, _ZERO),
                (r.max_per_market_usdc, self.book.exposure(t.condition_id)),
                (r.max_total_usdc, self.book.exposure(None)),
            ):
                if cap is not None and shares * price > cap - used:
                    self._skip(SkipReason.CAP)
                    return
        fee = fee_schedule.fee(shares, price) if fee_schedule else _ZERO
        self.book.buy(t.token_id, t.condition_id, price, shares, fee)
        self.copied += 1


def _target_pnl(ordered: Sequence[HistoryTrade | Resolution], fees: Mapping[str, FeeSchedule]) -> tuple[_Book, Decimal]:
    book = _Book()
    volume = _ZERO
    for item in ordered:
        if isinstance(item, Resolution):
            book.resolve(item)
            continue
        volume += item.price * item.size
        schedule = fees.get(item.condition_id)
        fee = schedule.fee(item.size, item.price) if schedule and item.maker is not True else _ZERO
        if item.side is Side.BUY:
            book.buy(item.token_id, item.condition_id, item.price, item.size, fee)
        else:
            held = book.shares.get(item.token_id, _ZERO)
            sold = min(held, item.size)
            if sold > 0:
                book.sell(item.token_id, item.price, sold, fee * sold / item.size)
    return book, volume


def analyze(
    trades: Iterable[HistoryTrade],
    resolutions: Iterable[Resolution] = (),
    *,
    rules: CopyRules | None = None,
    delay_ms: int = 2000,
    slippage: Decimal = Decimal("0.01"),
    price_paths: Mapping[str, Sequence[PricePoint]] | None = None,
    marks: Mapping[str, Decimal] | None = None,
    fees: Mapping[str, FeeSchedule] | None = None,
    verdict_rule: VerdictRule | None = None,
) -> CopyAnalysis:
    """Replay `trades` (any order) under `rules`. `marks` value what is still held in unresolved markets per
    token (default: the last price of the path, else the token's last trade price in the history); `fees`
    per condition id (default: none)."""
    if delay_ms < 0:
        raise ValueError("delay_ms must be >= 0")
    if not (slippage.is_finite() and 0 <= slippage < 1):
        raise ValueError("slippage must be in [0, 1)")
    rules = rules or CopyRules()
    verdict_rule = verdict_rule or VerdictRule()
    fees = fees or {}
    history = sorted(trades, key=lambda t: t.ts_ms)
    res = list(resolutions)
    timed = sorted((r for r in res if r.ts_ms is not None), key=lambda r: r.ts_ms or 0)
    # Resolutions at their time (after trades of the same ms), untimed ones after the last trade.
    ordered: list[HistoryTrade | Resolution] = []
    j = 0
    for t in history:
        while j < len(timed) and (timed[j].ts_ms or 0) < t.ts_ms:
            ordered.append(timed[j])
            j += 1
        ordered.append(t)
    ordered.extend(timed[j:])
    ordered.extend(r for r in res if r.ts_ms is None)

    last_price: dict[str, Decimal] = {}
    for t in history:
        last_price[t.token_id] = t.price
    paths = None
    if price_paths is not None:
        paths = {}
        for token, pts in price_paths.items():
            pts_sorted = sorted(pts, key=lambda p: p.ts_ms)
            paths[token] = ([p.ts_ms for p in pts_sorted], pts_sorted)
            if pts_sorted:
                last = pts_sorted[-1]
                if last.bid is not None and last.ask is not None:
                    last_price[token] = (last.bid + last.ask) / 2
    mark = {**last_price, **(marks or {})}

    target_book, target_volume = _target_pnl(ordered, fees)
    target_value, target_open = target_book.value(mark)

    def replay(delay: int, slip: Decimal, use_paths: bool) -> _Replayer:
        rp = _Replayer(rules, delay, slip, paths if use_paths else None, fees)
        for item in ordered:
            if isinstance(item, Resolution):
                rp.book.resolve(item)
            else:
                rp.trade(item)
        return rp

    copy = replay(delay_ms, slippage, True)
    ideal = replay(0, _ZERO, False)
    copy_pnl, copy_open = copy.book.value(mark)
    ideal_pnl, _ = ideal.book.value(mark)

    maker_vol = sum((t.price * t.size for t in history if t.maker is True), _ZERO)
    unknown_vol = sum((t.price * t.size for t in history if t.maker is None), _ZERO)
    maker_share = maker_vol / target_volume if target_volume else None
    unknown_share = unknown_vol / target_volume if target_volume else None
    kept = copy_pnl / ideal_pnl if ideal_pnl > 0 else None
    return CopyAnalysis(
        trades=len(history),
        copied=copy.copied,
        skipped=MappingProxyType(dict(sorted(copy.skipped.items()))),
        delay_ms=delay_ms,
        slippage=slippage,
        target_volume=target_volume,
        target_pnl=target_value,
        copy_volume=copy.book.volume,
        copy_pnl=copy_pnl,
        ideal_pnl=ideal_pnl,
        share_kept=kept,
        maker_share=maker_share,
        maker_unknown_share=unknown_share,
        unresolved_markets=len(target_open | copy_open),
        verdict=verdict_rule.apply(copy.copied, copy_pnl, kept, maker_share),
        rule=verdict_rule.text(),
    )
