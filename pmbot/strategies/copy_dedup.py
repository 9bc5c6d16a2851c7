"""One stream of a target's fills from several sources: which sightings are the same fill, and which fills
are one copy decision. Pure bookkeeping (no clock, socket or store): the caller passes `now_ms`.

Rules, in the order they are tried for a sighting from source S:

1. (tx hash, log index) already known                → the same fill (redelivery, or another source with logs)
2. tx hash already known for this target, token, side → the same decision group: every fill of the target in
   one transaction on one token and side is one copy decision (RTDS and the Data API split a taker's match
   into one trade per maker; the chain has one aggregate log per order)
3. no tx match: a group of the same target, token and side within `match_window_ms` of the fill's target time,
   seen by another source, with the same size and price (exact), or whose size S has not yet accounted for
   (S's pieces so far + this one ≤ the other source's size, price within `PRICE_TOLERANCE`) → the same fill;
   the group adopts the tx hash when the sighting has one
4. an undecided group of the same target, token and side still inside its `aggregate_ms` window (by arrival)
   whose target time is within `AGGREGATE_TS_MS` → joins it (several logs of one target order within a few ms
   are one decision; sizes add up)
5. otherwise a new group, decided once its window closes (at once when `aggregate_ms` is 0).

Within one source a sighting is a redelivery when its part key repeats: (tx, log index), else (tx, price,
size), else (price, size, target time). Two genuinely distinct tx-less fills of identical price, size and time
from one source are indistinguishable from a redelivery; that is the price of never double-copying.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from pmbot.money import fmt
from pmbot.store.models import Side
from pmbot.strategies.events import TargetFill, TargetSource

__all__ = ["AGGREGATE_TS_MS", "PRICE_TOLERANCE", "FillDeduper", "FillGroup", "Sighting", "fill_identity"]

_ZERO = Decimal(0)
PRICE_TOLERANCE = Decimal("0.05")  # split pieces of one taker order fill at nearby levels
AGGREGATE_TS_MS = 1000  # pieces of one order carry target times this close (block and API times are in seconds)

_PartKey = tuple[str, ...]


def _norm_tx(tx: str) -> str:
    return tx.strip().lower()


def fill_identity(fill: TargetFill) -> str:
    """The stable identity of the decision group a first sighting opens: from the tx hash when the source has
    it (the same whichever source saw it first), else from what the fill looks like."""
    tx = _norm_tx(fill.tx_hash)
    who = fill.target.lower()
    if tx:
        return f"tx:{who}:{tx}:{fill.token_id}:{fill.side}"
    return f"fz:{who}:{fill.token_id}:{fill.side}:{fmt(fill.price)}:{fmt(fill.size)}:{fill.target_ts_ms}"


@dataclass(slots=True, eq=False)
class FillGroup:
    """One copy decision: one or more fills of the target, each seen by one or more sources."""

    fill_id: str
    target: str  # lowercase address
    token_id: str
    condition_id: str
    outcome: str
    side: Side
    target_ts_ms: int  # the earliest target time any source gave
    first_source: TargetSource
    deadline_ms: int  # when the aggregation window closes
    maker: bool | None = None
    tx_hashes: list[str] = field(default_factory=list)
    log_indexes: list[tuple[str, int]] = field(default_factory=list)
    seen_ms: dict[TargetSource, int] = field(default_factory=dict)  # first arrival per source
    source_ts_ms: dict[TargetSource, int] = field(default_factory=dict)  # target time per source (latest)
    sizes: dict[TargetSource, Decimal] = field(default_factory=dict)  # shares per source (its pieces summed)
    notionals: dict[TargetSource, Decimal] = field(default_factory=dict)
    parts: dict[TargetSource, set[_PartKey]] = field(default_factory=dict)
    decided: bool = False
    restored: bool = False  # rebuilt from a stored decision: pieces and per-source sizes are not known
    reason: str = ""  # what the decision was (`copied` or a skip reason)
    intent_key: str | None = None

    @property
    def size(self) -> Decimal:
        """The target's size by the first source (the one the decision is made on)."""
        return self.sizes.get(self.first_source, _ZERO)

    @property
    def price(self) -> Decimal:
        """Size-weighted average price of the target's fills by the first source."""
        size = self.size
        return self.notionals[self.first_source] / size if size else _ZERO

    @property
    def parts_count(self) -> int:
        return len(self.parts.get(self.first_source, ()))

    def other_size(self, source: TargetSource) -> Decimal | None:
        others = [s for src, s in self.sizes.items() if src is not source]
        return max(others) if others else None

    def detail(self) -> dict[str, str]:
        """What a stored decision needs to name this fill, and to rebuild the group after a restart."""
        out = {
            "target": self.target,
            "fill_id": self.fill_id,
            "tx_hash": self.tx_hashes[0] if self.tx_hashes else "",
            "tx_hashes": ",".join(self.tx_hashes),
            "log_index": str(self.log_indexes[0][1]) if self.log_indexes else "",
            "log_indexes": ",".join(f"{tx}:{i}" for tx, i in self.log_indexes),
            "target_ts_ms": str(self.target_ts_ms),
            "side": str(self.side),
            "outcome": self.outcome,
            "target_price": fmt(self.price),
            "target_size": fmt(self.size),
            "parts": str(self.parts_count),
            "maker": "" if self.maker is None else str(self.maker).lower(),
            "first_source": str(self.first_source),
            "sources": ",".join(str(s) for s in self.seen_ms),
        }
        for src, ms in self.seen_ms.items():
            out[f"seen_{src}_ms"] = str(ms)
        return out


@dataclass(frozen=True, slots=True)
class Sighting:
    group: FillGroup
    new_group: bool  # the sighting opened a group
    redelivery: bool  # this source already delivered exactly this piece


class FillDeduper:
    """Groups sightings (`add`) and hands back groups whose aggregation window closed (`due`). The caller
    decides a group and calls `mark_decided`; groups are forgotten `retention_ms` after their target time."""

    def __init__(self, *, aggregate_ms: int, match_window_ms: int, retention_ms: int) -> None:
        self.aggregate_ms = aggregate_ms
        self.match_window_ms = match_window_ms
        self.retention_ms = retention_ms
        self._by_log: dict[tuple[str, int], FillGroup] = {}
        self._by_tx: dict[tuple[str, str, str, Side], FillGroup] = {}
        self._recent: dict[tuple[str, str, Side], list[FillGroup]] = {}
        self._pending: list[FillGroup] = []
        self._watermarks: dict[tuple[str, TargetSource], int] = {}
        self._last_prune = 0

    # ------------------------------------------------------------------ sightings

    def add(self, fill: TargetFill, now_ms: int) -> Sighting:
        target = fill.target.lower()
        tx = _norm_tx(fill.tx_hash)
        key = (target, fill.token_id, fill.side)
        part = _part_key(fill, tx)
        group = self._match(fill, target, tx, key, now_ms)
        if group is None:
            group = FillGroup(
                fill_id=fill_identity(fill),
                target=target,
                token_id=fill.token_id,
                condition_id=fill.condition_id,
                outcome=fill.outcome,
                side=fill.side,
                target_ts_ms=fill.target_ts_ms,
                first_source=fill.source,
                deadline_ms=now_ms + self.aggregate_ms,
                maker=fill.maker,
            )
            self._recent.setdefault(key, []).append(group)
            self._pending.append(group)
            self._absorb(group, fill, tx, part)
            return Sighting(group, new_group=True, redelivery=False)
        if part in group.parts.get(fill.source, ()):
            group.seen_ms.setdefault(fill.source, fill.seen_ts_ms)
            return Sighting(group, new_group=False, redelivery=True)
        self._absorb(group, fill, tx, part)
        if group.decided:
            self._advance(group.target, fill.source, fill.target_ts_ms)
        return Sighting(group, new_group=False, redelivery=False)

    def _match(
        self, fill: TargetFill, target: str, tx: str, key: tuple[str, str, Side], now_ms: int
    ) -> FillGroup | None:
        if tx and fill.log_index is not None:
            g = self._by_log.get((tx, fill.log_index))
            if g is not None:
                return g
        if tx:
            g = self._by_tx.get((target, tx, fill.token_id, fill.side))
            if g is not None:
                return g
        candidates = self._recent.get(key, ())
        exact: FillGroup | None = None
        fit: FillGroup | None = None
        for g in candidates:
            if abs(g.target_ts_ms - fill.target_ts_ms) > self.match_window_ms:
                continue
            if tx and g.tx_hashes and tx not in g.tx_hashes:
                continue  # both sides know their transaction, and it differs: two fills
            if g.restored:
                if fill.size <= g.size and abs(fill.price - g.price) <= PRICE_TOLERANCE:
                    return g  # decided before the restart: anything that fits it is it
                continue
            other = g.other_size(fill.source)
            if other is None:
                continue  # only this source saw it: a second piece is a new fill, or aggregation (below)
            mine = g.sizes.get(fill.source, _ZERO)
            if mine == 0 and fill.size == other and fill.price == g.price and exact is None:
                exact = g
            elif mine + fill.size <= other and abs(fill.price - g.price) <= PRICE_TOLERANCE and fit is None:
                fit = g
        if exact is not None or fit is not None:
            return exact or fit
        for g in self._pending:  # aggregation: pieces of one order arriving within the window
            if (
                not g.decided
                and now_ms < g.deadline_ms
                and (g.target, g.token_id, g.side) == key
                and abs(g.target_ts_ms - fill.target_ts_ms) <= AGGREGATE_TS_MS
            ):
                return g
        return None

    def _absorb(self, g: FillGroup, fill: TargetFill, tx: str, part: _PartKey) -> None:
        src = fill.source
        g.parts.setdefault(src, set()).add(part)
        g.sizes[src] = g.sizes.get(src, _ZERO) + fill.size
        g.notionals[src] = g.notionals.get(src, _ZERO) + fill.size * fill.price
        g.seen_ms.setdefault(src, fill.seen_ts_ms)
        g.source_ts_ms[src] = max(g.source_ts_ms.get(src, fill.target_ts_ms), fill.target_ts_ms)
        g.target_ts_ms = min(g.target_ts_ms, fill.target_ts_ms)
        if g.maker is None:
            g.maker = fill.maker
        if tx:
            if tx not in g.tx_hashes:
                g.tx_hashes.append(tx)
            self._by_tx.setdefault((g.target, tx, g.token_id, g.side), g)
            if fill.log_index is not None and (tx, fill.log_index) not in self._by_log:
                g.log_indexes.append((tx, fill.log_index))
                self._by_log[(tx, fill.log_index)] = g

    # ------------------------------------------------------------------ decisions

    def due(self, now_ms: int) -> list[FillGroup]:
        """Undecided groups whose aggregation window has closed, oldest first."""
        ready = [g for g in self._pending if g.deadline_ms <= now_ms]
        if ready:
            self._pending = [g for g in self._pending if g.deadline_ms > now_ms]
        return ready

    def drain(self) -> list[FillGroup]:
        """Every undecided group (the caller is stopping); they stay unwatermarked."""
        out, self._pending = self._pending, []
        return out

    def pending(self) -> tuple[FillGroup, ...]:
        return tuple(self._pending)

    def next_deadline_ms(self) -> int | None:
        return min((g.deadline_ms for g in self._pending), default=None)

    def mark_decided(self, g: FillGroup, reason: str, intent_key: str | None) -> None:
        g.decided = True
        g.reason = reason
        g.intent_key = intent_key
        if g in self._pending:
            self._pending.remove(g)
        for src, ts in g.source_ts_ms.items():
            self._advance(g.target, src, ts)

    def _advance(self, target: str, source: TargetSource, ts: int) -> None:
        k = (target, source)
        if ts > self._watermarks.get(k, -1):
            self._watermarks[k] = ts

    def watermark(self, target: str, source: TargetSource) -> int | None:
        """The latest target time this source delivered among decided fills, kept below any fill still
        waiting in its window: re-reading a source from here (less an overlap) misses nothing."""
        target = target.lower()
        wm = self._watermarks.get((target, source))
        waiting = [g.source_ts_ms[source] for g in self._pending if g.target == target and source in g.source_ts_ms]
        if waiting:
            cap = min(waiting) - 1
            wm = cap if wm is None else min(wm, cap)
        return wm

    def watermarks(self) -> Mapping[tuple[str, TargetSource], int]:
        out = {}
        for target, source in self._watermarks:
            wm = self.watermark(target, source)
            if wm is not None:
                out[(target, source)] = wm
        return out

    # ------------------------------------------------------------------ restart and memory

    def restore(self, g: FillGroup) -> None:
        """Index a group decided before a restart (rebuilt from its stored decision)."""
        g.decided = True
        g.restored = True
        self._recent.setdefault((g.target, g.token_id, g.side), []).append(g)
        for tx in g.tx_hashes:
            self._by_tx.setdefault((g.target, tx, g.token_id, g.side), g)
        for tx, idx in g.log_indexes:
            self._by_log.setdefault((tx, idx), g)
        for src, ts in g.source_ts_ms.items():
            self._advance(g.target, src, ts)

    def prune(self, now_ms: int) -> None:
        """Forget decided groups older than the retention (cheap to call often: it runs once per quarter of it)."""
        if now_ms - self._last_prune < self.retention_ms // 4:
            return
        self._last_prune = now_ms
        cutoff = now_ms - self.retention_ms
        for key, groups in list(self._recent.items()):
            keep = [g for g in groups if not g.decided or g.target_ts_ms >= cutoff]
            if keep:
                self._recent[key] = keep
            else:
                del self._recent[key]
        self._by_tx = {k: g for k, g in self._by_tx.items() if not g.decided or g.target_ts_ms >= cutoff}
        self._by_log = {k: g for k, g in self._by_log.items() if not g.decided or g.target_ts_ms >= cutoff}

    def __iter__(self) -> Iterator[FillGroup]:
        seen: set[int] = set()
        for groups in self._recent.values():
            for g in groups:
                if id(g) not in seen:
                    seen.add(id(g))
                    yield g


def _part_key(fill: TargetFill, tx: str) -> _PartKey:
    if tx and fill.log_index is not None:
        return ("log", tx, str(fill.log_index))
    if tx:
        return ("tx", tx, fmt(fill.price), fmt(fill.size))
    return ("raw", fmt(fill.price), fmt(fill.size), str(fill.target_ts_ms))
