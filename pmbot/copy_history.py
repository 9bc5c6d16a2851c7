"""A copy target's history for `pmbot copy analyze`: fetched from the venue, or read from / written to a
recorded file; the analysis run over it, stored, and the last verdict read back (`pmbot copy` warns at start
when it was `toxic`).

What comes from where (the venue's JSON is parsed in pmbot.polymarket only):

- the target's fills: Data API v2 `/v2/trades?user=` over the window, twice: `taker_only=false` (every
  fill) and `taker_only=true` (its taker fills). A fill in the first list and not in the second was a maker
  fill (a trade row has no maker flag; this is how the venue tells them apart);
- resolutions: Gamma markets by condition id (`closed` with an outcome price of 1; the time from
  `closedTime`, else `endDate`, else the target's REDEEM row in `/v2/activity`), with each market's fee
  schedule and current outcome prices (marks for what is still open);
- prices for the delay model: the market's tape (`/v2/trades?condition_id=`, every taker's fills, the
  target's included). A taker BUY at p means the ask was p and the other outcome's bid 1 − p; a SELL, the
  bid. `/prices-history` is not used: its finest grain is one minute, far coarser than a copy's delay.

The recorded file (`--save` / `--from`) is JSON Lines, one object per line, tagged by `kind`; decimals are
strings (exact), times epoch ms:

    {"kind": "header", "format": "pmbot-copy-history", "version": 1, "target": "distinct-baguette",
     "wallet": "0x…", "start_ms": 1, "end_ms": 2}                               (first line, once)
    {"kind": "trade", "token_id": "…", "condition_id": "0x…", "side": "BUY", "price": "0.52",
     "size": "10", "ts_ms": 1, "maker": false, "outcome": "Up", "tx_hash": "0x…"}   (maker: true|false|null)
    {"kind": "resolution", "condition_id": "0x…", "winning_token_id": "…", "ts_ms": 2}   (ts_ms may be null)
    {"kind": "price", "token_id": "…", "ts_ms": 1, "bid": "0.5", "ask": "0.52"}       (bid/ask may be null)
    {"kind": "fee", "condition_id": "0x…", "rate": "0.072", "exponent": 1, "taker_only": true}
    {"kind": "mark", "token_id": "…", "price": "0.61"}

Only `header` and `trade` lines are required; blank lines are skipped; anything else is an error naming
the line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pmbot.errors import InputError, PmbotError
from pmbot.money import fmt
from pmbot.polymarket.models import FeeSchedule, WalletTrade
from pmbot.store.models import CopyAnalysisRow, Side
from pmbot.strategies.copy_analysis import (
    CopyAnalysis,
    CopyRules,
    HistoryTrade,
    PricePoint,
    Resolution,
    VerdictRule,
    analyze,
)

if TYPE_CHECKING:
    from pmbot.polymarket.data import DataClient
    from pmbot.polymarket.gamma import GammaClient
    from pmbot.store.base import Store

__all__ = [
    "FORMAT",
    "History",
    "fetch_history",
    "last_analysis",
    "last_verdict",
    "read_history",
    "record_analysis",
    "run_analysis",
    "toxic_warning",
    "write_history",
]

log = logging.getLogger(__name__)
FORMAT = "pmbot-copy-history"
VERSION = 1
DAY_MS = 86_400_000
MAX_MS = 10**15  # epoch ms in the year 33658: any larger "time" in a file is an error
MAX_TRADES = 50_000  # per fetch of the target's fills (a week of a busy 5-minute taker is ~10 000)
TAPE_PER_MARKET = 1_000  # newest tape rows per market, for the delay model
TAPE_CONCURRENCY = 4
_ONE = Decimal(1)
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    target: str  # as the operator named it (a username or a 0x address)
    wallet: str  # lowercase proxy wallet
    start_ms: int | None
    end_ms: int | None
    trades: tuple[HistoryTrade, ...]
    resolutions: tuple[Resolution, ...] = ()
    prices: Mapping[str, tuple[PricePoint, ...]] = field(default_factory=dict)
    fees: Mapping[str, FeeSchedule] = field(default_factory=dict)
    marks: Mapping[str, Decimal] = field(default_factory=dict)
    source: str = "live"  # "live" or "file"
    notes: tuple[str, ...] = ()  # what the operator should know about this history (truncation, …)

    def is_of(self, target: str) -> bool:
        """Whether `target` (a username or a 0x address) names this history's target."""
        t = target.strip().lower().lstrip("@")
        return t in (self.target.lower().lstrip("@"), self.wallet)

    @property
    def name(self) -> str:
        """The username this history was asked for ("" when it was asked for by address)."""
        return "" if self.target.lower().startswith("0x") else self.target

    def window(self, days: int) -> History:
        """Only the trades of the last `days` days before `end_ms` (or the last trade)."""
        end = self.end_ms if self.end_ms is not None else max((t.ts_ms for t in self.trades), default=0)
        start = end - days * DAY_MS
        kept = tuple(t for t in self.trades if start <= t.ts_ms <= end)
        return replace(self, trades=kept, start_ms=max(start, self.start_ms or start), end_ms=end)


# ----------------------------------------------------------------------------------------- fetching


def _cid(value: str | None) -> str:
    from pmbot.polymarket import identity

    text = (value or "").strip()
    try:
        return identity.condition_id(text)
    except InputError:
        return text.lower()


def _key(t: WalletTrade) -> tuple[str, str, str, Decimal, Decimal]:
    return (t.tx_hash.lower(), t.token_id, t.side.value, t.size, t.price)


def _history_trade(t: WalletTrade, maker: bool | None) -> HistoryTrade:
    return HistoryTrade(
        token_id=t.token_id,
        condition_id=_cid(t.condition_id),
        side=Side(t.side.value),
        price=t.price,
        size=t.size,
        ts_ms=t.timestamp_ms,
        maker=maker,
        outcome=t.outcome or "",
        tx_hash=t.tx_hash,
    )


def mark_makers(every: Sequence[WalletTrade], taker: Sequence[WalletTrade]) -> list[HistoryTrade]:
    """Every fill (taker_only=false) and the taker fills (taker_only=true) → fills with a maker flag. A taker
    fill the full list lacks (the two requests straddled a new fill) is kept as a taker fill."""
    takers = Counter(_key(t) for t in taker)
    out: list[HistoryTrade] = []
    for t in every:
        k = _key(t)
        if takers[k] > 0:
            takers[k] -= 1
            out.append(_history_trade(t, False))
        else:
            out.append(_history_trade(t, True))
    for t in taker:
        k = _key(t)
        if takers[k] > 0:
            takers[k] -= 1
            out.append(_history_trade(t, False))
    return out


def tape_points(tape: Iterable[WalletTrade], pairs: Mapping[str, str]) -> dict[str, tuple[PricePoint, ...]]:
    """A market's taker fills → each token's best bid / ask over time (last seen, carried forward). `pairs`
    maps a token to the other outcome of its (binary) market.

    Fills of one second come in no known order, and a taker sweeping the book fills at several prices in one
    second: the book after it is at its worst fill. So per second the ask is the highest taker BUY price and
    the bid the lowest taker SELL price (a copy arriving later meets the book the sweep left)."""
    asks: dict[tuple[str, int], Decimal] = {}
    bids: dict[tuple[str, int], Decimal] = {}

    def ask(token: str, ts: int, p: Decimal) -> None:
        asks[token, ts] = max(p, asks.get((token, ts), p))

    def bid(token: str, ts: int, p: Decimal) -> None:
        bids[token, ts] = min(p, bids.get((token, ts), p))

    for t in tape:
        other = pairs.get(t.token_id)
        if t.side.value == "BUY":  # the ask was p; buying this outcome at p is selling the other at 1 − p
            ask(t.token_id, t.timestamp_ms, t.price)
            if other:
                bid(other, t.timestamp_ms, _ONE - t.price)
        else:
            bid(t.token_id, t.timestamp_ms, t.price)
            if other:
                ask(other, t.timestamp_ms, _ONE - t.price)
    stamps: dict[str, set[int]] = {}
    for token, ts in (*asks, *bids):
        stamps.setdefault(token, set()).add(ts)
    out: dict[str, tuple[PricePoint, ...]] = {}
    for token, times in stamps.items():
        last_bid: Decimal | None = None
        last_ask: Decimal | None = None
        points: list[PricePoint] = []
        for ts in sorted(times):
            last_bid = bids.get((token, ts), last_bid)
            last_ask = asks.get((token, ts), last_ask)
            points.append(PricePoint(ts, last_bid, last_ask))
        out[token] = tuple(points)
    return out


async def fetch_history(
    data: DataClient,
    gamma: GammaClient,
    target: str,
    wallet: str,
    *,
    days: int,
    now_ms: int,
    tape: bool = True,
    max_trades: int = MAX_TRADES,
    tape_per_market: int = TAPE_PER_MARKET,
) -> History:
    """The target's last `days` days up to `now_ms` (the venue's clock), everything `analyze` needs."""
    wallet = wallet.lower()
    start_ms = now_ms - days * DAY_MS
    start_s, end_s = start_ms // 1000, now_ms // 1000
    every, taker = await asyncio.gather(
        data.trades(user=wallet, taker_only=False, limit=max_trades, start_s=start_s, end_s=end_s),
        data.trades(user=wallet, taker_only=True, limit=max_trades, start_s=start_s, end_s=end_s),
    )
    notes: list[str] = []
    if len(every) >= max_trades:
        notes.append(f"only the newest {max_trades} fills were fetched: the window starts later than asked")
    # The v1 fallback has no window: keep what lies inside it.
    trades = [t for t in mark_makers(every, taker) if start_ms <= t.ts_ms <= now_ms + 999]
    cids = sorted({t.condition_id for t in trades if t.condition_id})
    redeems = await data.activity(wallet, types=["REDEEM"], start_s=start_s, end_s=end_s, limit=max_trades)
    redeemed: dict[str, int] = {}
    for r in redeems:
        if r.condition_id:
            cid = _cid(r.condition_id)
            redeemed[cid] = min(redeemed.get(cid, r.timestamp_ms), r.timestamp_ms)
    markets = await gamma.markets_by_condition(cids) if cids else []
    last_trade: dict[str, int] = {}
    for t in trades:
        last_trade[t.condition_id] = max(last_trade.get(t.condition_id, 0), t.ts_ms)
    resolutions: list[Resolution] = []
    fees: dict[str, FeeSchedule] = {}
    marks: dict[str, Decimal] = {}
    pairs: dict[str, str] = {}
    for m, closed_ms in markets:
        cid = m.condition_id
        if m.fees is not None:
            fees[cid] = m.fees
        if len(m.outcomes) == 2:
            a, b = m.token_ids
            pairs[a], pairs[b] = b, a
        winners = [o for o in m.outcomes if o.price == _ONE]
        if m.closed and len(winners) == 1:
            ts = closed_ms or m.end_ms or redeemed.get(cid)
            if ts is not None:
                ts = max(ts, last_trade.get(cid, ts) + 1)  # a market resolves after its last trade
            resolutions.append(Resolution(condition_id=cid, winning_token_id=winners[0].token_id, ts_ms=ts))
            continue
        for o in m.outcomes:
            if o.price is not None:
                marks[o.token_id] = o.price
    unknown = len(set(cids) - {m.condition_id for m, _ in markets})
    if unknown:
        notes.append(
            f"{unknown} market(s) missing or unreadable on Gamma: valued at their last trade price, fees unknown"
        )
    prices: dict[str, tuple[PricePoint, ...]] = {}
    if tape and cids:
        gate = asyncio.Semaphore(TAPE_CONCURRENCY)

        async def one(cid: str) -> list[WalletTrade]:
            async with gate:
                return await data.trades(condition_ids=[cid], taker_only=True, limit=tape_per_market)

        tapes = await asyncio.gather(*(one(c) for c in cids))
        prices = tape_points((t for rows in tapes for t in rows), pairs)
        # The venue serves a market's newest trades only: a fill before its token's tape begins is priced at
        # the target's price ± slippage. Say how many.
        uncovered = sum(1 for t in trades if not prices.get(t.token_id) or prices[t.token_id][0].ts_ms > t.ts_ms)
        if uncovered:
            notes.append(
                f"{uncovered} of {len(trades)} fills come before their market's tape (the newest "
                f"{tape_per_market} trades per market): those copies are priced at the target's price ± slippage"
            )
    return History(
        target=target,
        wallet=wallet,
        start_ms=start_ms,
        end_ms=now_ms,
        trades=tuple(sorted(trades, key=lambda t: t.ts_ms)),
        resolutions=tuple(resolutions),
        prices=prices,
        fees=fees,
        marks=marks,
        source="live",
        notes=tuple(notes),
    )


# ----------------------------------------------------------------------------------------- the file


def _dec(v: Decimal | None) -> str | None:
    return None if v is None else fmt(v)


def history_lines(h: History) -> Iterable[dict[str, Any]]:
    yield {
        "kind": "header",
        "format": FORMAT,
        "version": VERSION,
        "target": h.target,
        "wallet": h.wallet,
        "start_ms": h.start_ms,
        "end_ms": h.end_ms,
    }
    for t in h.trades:
        yield {
            "kind": "trade",
            "token_id": t.token_id,
            "condition_id": t.condition_id,
            "side": t.side.value,
            "price": fmt(t.price),
            "size": fmt(t.size),
            "ts_ms": t.ts_ms,
            "maker": t.maker,
            "outcome": t.outcome,
            "tx_hash": t.tx_hash,
        }
    for r in h.resolutions:
        yield {
            "kind": "resolution",
            "condition_id": r.condition_id,
            "winning_token_id": r.winning_token_id,
            "ts_ms": r.ts_ms,
        }
    for cid, f in sorted(h.fees.items()):
        yield {
            "kind": "fee",
            "condition_id": cid,
            "rate": fmt(f.rate),
            "exponent": f.exponent,
            "taker_only": f.taker_only,
        }
    for token, price in sorted(h.marks.items()):
        yield {"kind": "mark", "token_id": token, "price": fmt(price)}
    for token, points in sorted(h.prices.items()):
        for p in points:
            yield {"kind": "price", "token_id": token, "ts_ms": p.ts_ms, "bid": _dec(p.bid), "ask": _dec(p.ask)}


def write_history(h: History, path: str | Path) -> int:
    """Write `h` as JSON Lines (complete or not at all: a temporary file renamed into place). Returns the
    number of lines."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for line in history_lines(h):
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
                n += 1
        os.replace(tmp, target)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise InputError(f"cannot write {target}: {e.strerror or e}") from None
    return n


class _Line:
    """Typed field access on one parsed line; every problem names the file and the line."""

    def __init__(self, where: str, obj: dict[str, Any]) -> None:
        self.where, self.obj = where, obj

    def fail(self, what: str) -> PmbotError:
        return InputError(f"{self.where}: {what}")

    def text(self, key: str, *, optional: bool = False) -> str:
        v = self.obj.get(key)
        if v is None and optional:
            return ""
        if not isinstance(v, str) or (not v and not optional):
            raise self.fail(f"{key!r} must be a non-empty string")
        return v

    def wallet(self, key: str) -> str:
        v = self.text(key)
        if not _ADDRESS.match(v):
            raise self.fail(f"{key!r} must be a 0x address of 40 hex digits")
        return v.lower()

    def opt_integer(self, key: str) -> int | None:
        return None if self.obj.get(key) is None else self.integer(key)

    def integer(self, key: str) -> int:
        v = self.obj.get(key)
        if isinstance(v, Decimal) and v.is_finite() and v == v.to_integral_value():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise self.fail(f"{key!r} must be an integer")
        if not 0 <= v < MAX_MS:  # the store's 64-bit columns; a real time in ms is far below
            raise self.fail(f"{key!r} is out of range (epoch milliseconds, got {str(v)[:24]})")
        return v

    def opt_decimal(self, key: str, lo: Decimal, hi: Decimal | None = None) -> Decimal | None:
        return None if self.obj.get(key) is None else self.decimal(key, lo, hi)

    def decimal(self, key: str, lo: Decimal, hi: Decimal | None = None) -> Decimal:
        v = self.obj.get(key)
        d: Decimal | None = None
        if isinstance(v, Decimal):
            d = v
        elif isinstance(v, str | int) and not isinstance(v, bool):
            try:
                d = Decimal(v)
            except InvalidOperation:
                d = None
        if d is None or not d.is_finite():
            raise self.fail(f'{key!r} must be a decimal (a string like "0.52")')
        if d < lo or (hi is not None and d > hi):
            raise self.fail(f"{key!r} = {fmt(d)} is out of range")
        return d

    def flag(self, key: str, default: bool | None) -> bool | None:
        v = self.obj.get(key, default)
        if v is not None and not isinstance(v, bool):
            raise self.fail(f"{key!r} must be true, false or null")
        return v


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def read_history(path: str | Path) -> History:
    """Read a recorded history (the format in the module docstring). InputError naming the file and the
    line on anything unreadable."""
    p = Path(path)
    if p.exists() and not p.is_file() and not p.is_dir():  # a FIFO or a device could block or never end
        raise InputError(f"cannot read {p}: not a regular file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise InputError(f"cannot read {p}: {reason}") from None
    header: dict[str, Any] | None = None
    trades: list[HistoryTrade] = []
    resolutions: list[Resolution] = []
    points: dict[str, list[PricePoint]] = {}
    fees: dict[str, FeeSchedule] = {}
    marks: dict[str, Decimal] = {}
    zero = Decimal(0)
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{p} line {n}"
        try:
            obj = json.loads(raw, parse_float=Decimal, parse_int=int, parse_constant=_reject_constant)
        except ValueError as e:
            raise InputError(f"{where}: not JSON ({e})") from None
        if not isinstance(obj, dict):
            raise InputError(f"{where}: expected a JSON object")
        line = _Line(where, obj)
        kind = obj.get("kind")
        if header is None and kind != "header":
            raise line.fail(f'the first line must be the header ({{"kind": "header", "format": "{FORMAT}", …}})')
        if kind == "header":
            if header is not None:
                raise line.fail("a second header")
            if obj.get("format") != FORMAT or obj.get("version") != VERSION:
                raise line.fail(f"not a {FORMAT} version {VERSION} file")
            header = {
                "target": line.text("target"),
                "wallet": line.wallet("wallet"),
                "start_ms": line.opt_integer("start_ms"),
                "end_ms": line.opt_integer("end_ms"),
            }
        elif kind == "trade":
            side = obj.get("side")
            if side not in ("BUY", "SELL"):
                raise line.fail('\'side\' must be "BUY" or "SELL"')
            price, size, ts = line.decimal("price", zero, _ONE), line.decimal("size", zero), line.integer("ts_ms")
            if not zero < price < _ONE or size <= 0:
                raise line.fail("a trade needs 0 < price < 1 and size > 0")
            trades.append(
                HistoryTrade(
                    token_id=line.text("token_id"),
                    condition_id=line.text("condition_id"),
                    side=Side(side),
                    price=price,
                    size=size,
                    ts_ms=ts,
                    maker=line.flag("maker", None),
                    outcome=line.text("outcome", optional=True),
                    tx_hash=line.text("tx_hash", optional=True),
                )
            )
        elif kind == "resolution":
            resolutions.append(
                Resolution(
                    condition_id=line.text("condition_id"),
                    winning_token_id=line.text("winning_token_id"),
                    ts_ms=line.opt_integer("ts_ms"),
                )
            )
        elif kind == "price":
            bid, ask = line.opt_decimal("bid", zero, _ONE), line.opt_decimal("ask", zero, _ONE)
            points.setdefault(line.text("token_id"), []).append(PricePoint(line.integer("ts_ms"), bid, ask))
        elif kind == "fee":
            rate = line.decimal("rate", zero, _ONE)
            exponent = line.opt_integer("exponent")
            if exponent is not None and not 1 <= exponent <= 10:
                raise line.fail("'exponent' must be 1 to 10")
            taker_only = line.flag("taker_only", True)
            fees[line.text("condition_id")] = FeeSchedule(
                rate=rate, exponent=exponent or 1, taker_only=True if taker_only is None else taker_only
            )
        elif kind == "mark":
            marks[line.text("token_id")] = line.decimal("price", zero, _ONE)
        else:
            raise line.fail(f"unknown kind {str(kind)[:40]!r} (header, trade, resolution, price, fee, mark)")
    if header is None:
        raise InputError(f"{p}: empty: no header line")
    return History(
        target=header["target"],
        wallet=header["wallet"],
        start_ms=header["start_ms"],
        end_ms=header["end_ms"],
        trades=tuple(sorted(trades, key=lambda t: t.ts_ms)),
        resolutions=tuple(resolutions),
        prices={t: tuple(sorted(ps, key=lambda x: x.ts_ms)) for t, ps in points.items()},
        fees=fees,
        marks=marks,
        source="file",
    )


# ----------------------------------------------------------------------------------------- analysis


def run_analysis(
    h: History,
    *,
    delay_ms: int,
    slippage: Decimal,
    rules: CopyRules | None = None,
    verdict_rule: VerdictRule | None = None,
) -> CopyAnalysis:
    return analyze(
        h.trades,
        h.resolutions,
        rules=rules,
        delay_ms=delay_ms,
        slippage=slippage,
        price_paths=h.prices or None,
        marks=h.marks,
        fees=h.fees,
        verdict_rule=verdict_rule,
    )


def result_document(h: History, a: CopyAnalysis) -> dict[str, Any]:
    """What `--json` prints and the store keeps: the analysis plus which history it ran on."""
    notes = list(h.notes)
    if not a.trades:
        notes.append("no fills in the window: the verdict says nothing about this wallet")
    return {
        "target": h.target,
        "wallet": h.wallet,
        "source": h.source,
        "start_ms": h.start_ms,
        "end_ms": h.end_ms,
        "markets": len({t.condition_id for t in h.trades}),
        "resolved_markets": len(h.resolutions),
        "price_model": "market tape" if h.prices else "target's prices ± slippage (no tape)",
        "notes": notes,
        **a.to_dict(),
    }


def record_analysis(store: Store, h: History, a: CopyAnalysis, *, now_ms: int) -> int:
    doc = result_document(h, a)
    return store.save_copy_analysis(
        CopyAnalysisRow(
            created_at=now_ms,
            wallet=h.wallet,
            name=h.name,
            source=h.source,
            start_ms=h.start_ms,
            end_ms=h.end_ms,
            delay_ms=a.delay_ms,
            slippage=fmt(a.slippage),
            trades=a.trades,
            copied=a.copied,
            target_pnl=fmt(a.target_pnl),
            copy_pnl=fmt(a.copy_pnl),
            share_kept=_dec(a.share_kept),
            maker_share=_dec(a.maker_share),
            verdict=a.verdict,
            result=doc,
        )
    )


def last_analysis(store: Store, target: str) -> CopyAnalysisRow | None:
    """The newest stored analysis of `target` (a 0x wallet or a username: either matches what the analysis
    was asked for, case-insensitive), or None when it was never analysed."""
    t = target.strip().lower().lstrip("@")
    if not t:
        return None
    found = store.list_copy_analyses(wallet=t, name=t, limit=1)
    return found[0] if found else None


def last_verdict(store: Store, target: str) -> str | None:
    """`copyable`, `marginal` or `toxic` from the newest stored analysis of `target`; None if never analysed."""
    row = last_analysis(store, target)
    return row.verdict if row else None


def toxic_warning(store: Store, target: str) -> str | None:
    """The line `pmbot copy` prints at start when the last analysis of `target` says toxic, else None."""
    from pmbot.timeutil import ms_to_iso

    row = last_analysis(store, target)
    if row is None or row.verdict != "toxic":
        return None
    return (
        f"the last `pmbot copy analyze` of {target} ({ms_to_iso(row.created_at)}) says toxic: a copy "
        f"{row.delay_ms} ms late would have made {row.copy_pnl} USDC over {row.trades} of its fills"
    )
