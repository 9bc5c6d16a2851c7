"""Resolutions: find the open positions whose market has resolved and record their payouts.

One pass checks every open position's market once:

1. Gamma, one request per 20 tokens (`clob_token_ids=…&closed=true`): which of our markets closed.
   Asking for closed markets only works whether or not Gamma lists closed markets by default.
2. The CLOB, `GET /markets/{condition_id}` for each closed market: `tokens[].winner`.

A market is settled when the CLOB names exactly one winner and Gamma's `outcomePrices` (when they
are final, exactly one "1" and the rest "0") name the same token. The CLOB is the deciding source:
redemption on chain follows the condition's resolution, which is what `winner` reports; Gamma's
prices can lag. A market the CLOB has never heard of (404: pre-CLOB markets) settles on Gamma's
final prices alone. Anything else (no winner yet, a dispute, the sources disagree, the CLOB
unreachable for that market) stays open and is reported as pending: a late payout costs nothing,
a wrong one is money.

Each payout is the store's `redeem` trade (1 per winning share, 0 per losing share), with a
deterministic trade id, so two runs (or this and the executor) record one payout. Dry-run payouts
are paper cash at once; live ones are recorded as `redeemable` on the position until the shares are
redeemed on chain (`Store.mark_redeemed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING

from pmbot.errors import NotFoundError, VenueError
from pmbot.store.models import Position, PositionState, Query, mode_name
from pmbot.timeutil import Clock, now_ms

if TYPE_CHECKING:
    from pmbot.config import RiskSettings
    from pmbot.polymarket.factory import Venue
    from pmbot.polymarket.models import Market, MarketResolved
    from pmbot.store.base import Store

log = logging.getLogger("pmbot.settle")

GAMMA_CHUNK = 20  # token ids are ~77 characters: 20 keep the query string near 2 kB
_ONE, _ZERO = Decimal(1), Decimal(0)


@dataclass(frozen=True, slots=True)
class Resolution:
    """A resolved market: `winner` pays 1 per share, every other token of the market pays 0."""

    condition_id: str
    winner: str
    token_ids: tuple[str, ...]
    source: str  # "gamma+clob" | "clob" | "gamma"
    question: str = ""

    def payout(self, token_id: str) -> Decimal:
        return _ONE if token_id == self.winner else _ZERO


@dataclass(frozen=True, slots=True)
class Settlement:
    """One position's payout, as recorded. What the executor's risk gate applies too."""

    token_id: str
    strategy: str
    dry_run: bool
    shares: Decimal
    payout: Decimal  # per share: 1 won, 0 lost
    realized_pnl: Decimal  # of this payout: shares x payout - cost basis
    redeemable: Decimal  # USDC owed by the on-chain redemption (live winners); 0 otherwise
    condition_id: str = ""
    market: str = ""
    outcome: str = ""
    trade_id: str = ""
    ts: int = 0
    source: str = ""


@dataclass
class SettleResult:
    settlements: list[Settlement] = field(default_factory=list)
    checked_tokens: int = 0  # open tokens looked up
    closed_markets: int = 0  # of which markets Gamma reports closed
    pending: list[str] = field(default_factory=list)  # condition ids closed but not (yet) settled
    warnings: list[str] = field(default_factory=list)


def open_tokens(positions: Iterable[Position]) -> list[str]:
    return sorted({p.token_id for p in positions if p.state is PositionState.OPEN and p.size > 0})


def _gamma_winner(m: Market) -> str | None:
    """The token Gamma's final prices pay: exactly one "1", every other "0"; else None."""
    prices = [o.price for o in m.outcomes]
    if not m.closed or any(p is None for p in prices):
        return None
    ones = [o.token_id for o in m.outcomes if o.price == _ONE]
    if len(ones) != 1 or any(o.price not in (_ONE, _ZERO) for o in m.outcomes):
        return None
    return ones[0]


def _clob_winner(m: Market) -> str | None:
    winners = [o.token_id for o in m.outcomes if o.winner]
    return winners[0] if len(winners) == 1 else None


async def closed_markets(venue: Venue, tokens: list[str]) -> list[Market]:
    """Gamma's closed markets among those of `tokens`. Raises VenueError when Gamma cannot answer."""
    chunks = [tokens[i : i + GAMMA_CHUNK] for i in range(0, len(tokens), GAMMA_CHUNK)]
    pages = await asyncio.gather(
        *(venue.gamma.markets(token_ids=c, closed=True, active=None, order=None, limit=len(c) + 10) for c in chunks)
    )
    seen: dict[str, Market] = {}
    for page in pages:
        for m in page:
            if m.closed and set(m.token_ids) & set(tokens):
                seen.setdefault(m.condition_id, m)
    return list(seen.values())


async def _decide(venue: Venue, gm: Market, result: SettleResult) -> Resolution | None:
    cid = gm.condition_id
    name = gm.question or gm.slug or cid
    g_win = _gamma_winner(gm)
    try:
        cm = await venue.clob.market(cid)
    except NotFoundError:
        if g_win is None:
            return None
        return Resolution(cid, g_win, gm.token_ids, "gamma", name)
    except VenueError as e:
        result.warnings.append(f"cannot confirm the resolution of {name!r} with the CLOB ({e.message}); not settled")
        return None
    c_win = _clob_winner(cm)
    if c_win is None:
        return None  # closed, but the CLOB reports no winner yet (resolution pending or disputed)
    if g_win is not None and g_win != c_win:
        result.warnings.append(f"Gamma and the CLOB name different winners for {name!r}; not settled")
        return None
    tokens = tuple(dict.fromkeys((*cm.token_ids, *gm.token_ids)))
    return Resolution(cid, c_win, tokens, "gamma+clob" if g_win is not None else "clob", name)


async def find_resolutions(venue: Venue, tokens: list[str], result: SettleResult) -> list[Resolution]:
    """Resolved markets among `tokens`' markets. Gamma unreachable raises VenueError; a CLOB problem
    with one market is a warning in `result` and leaves that market pending."""
    result.checked_tokens = len(tokens)
    if not tokens:
        return []
    closed = await closed_markets(venue, tokens)
    result.closed_markets = len(closed)
    decided = await asyncio.gather(*(_decide(venue, m, result) for m in closed))
    found = [r for r in decided if r is not None]
    settled = {r.condition_id for r in found}
    result.pending = [m.condition_id for m in closed if m.condition_id not in settled]
    return found


def resolution_from_event(ev: MarketResolved) -> Resolution | None:
    """The market channel's `market_resolved` (the CLOB announcing its own winner) as a Resolution,
    for a process that already listens to the channel (the executor): `record_settlements(store,
    [r], ts)` applies it at once, with the same trade ids as a later `pmbot settle`. None when the
    message names no tokens to pay out."""
    tokens = tuple(dict.fromkeys((*ev.token_ids, ev.winning_token_id)))
    if not ev.winning_token_id or len(tokens) < 2:
        return None
    return Resolution(ev.market, ev.winning_token_id, tokens, "ws")


def record_settlements(store: Store, resolutions: Iterable[Resolution], ts_ms: int) -> list[Settlement]:
    """Record the payout of every open position in the resolved markets. Idempotent."""
    out: list[Settlement] = []
    for r in resolutions:
        for token in r.token_ids:
            payout = r.payout(token)
            trades = store.settle_token(token, payout, ts=ts_ms, metadata={"source": r.source})
            for t in trades:
                f = t.fill
                live_winner = not f.dry_run and payout > 0
                out.append(
                    Settlement(
                        token_id=f.token_id,
                        strategy=f.strategy,
                        dry_run=f.dry_run,
                        shares=f.size,
                        payout=f.price,
                        realized_pnl=t.realized_pnl,
                        redeemable=t.notional if live_winner else _ZERO,
                        condition_id=f.condition_id or r.condition_id,
                        market=f.market or r.question,
                        outcome=f.outcome,
                        trade_id=f.trade_id,
                        ts=f.ts,
                        source=r.source,
                    )
                )
    return out


def count_in_risk_state(
    store: Store,
    settlements: Iterable[Settlement],
    limits: RiskSettings,
    clock: Clock,
    *,
    modes: Iterable[bool] = (True, False),
) -> None:
    """Add the realized PnL of payouts just recorded to each mode's shared risk state (`risk:dry-run`,
    `risk:live`), merged atomically as the executors merge theirs: a losing resolution counts towards
    the daily loss limit and may trip the kill switch, even when no engine is running. Only the
    process that recorded a payout calls this (record_settlements returns nothing for one already
    recorded), so every payout is counted once. `modes`: which modes (dry_run flags) to merge here."""
    from pmbot.executor.risk import RiskGate

    wanted = set(modes)
    by_mode: dict[bool, list[Settlement]] = {}
    for st in settlements:
        if st.dry_run in wanted and st.realized_pnl:
            by_mode.setdefault(st.dry_run, []).append(st)
    for dry_run, items in by_mode.items():
        gate = RiskGate(limits, clock)
        for st in items:
            gate.add_realized(st.realized_pnl, st.ts or None)
        store.update_state(f"risk:{mode_name(dry_run)}", gate.merge_state)


async def check_and_settle(
    store: Store, venue: Venue, clock: Clock, *, risk_limits: RiskSettings | None = None
) -> SettleResult:
    """Check every open position's market once and record the payouts of resolved ones. With
    `risk_limits`, the realized PnL of what was recorded also counts in the modes' risk state.

    Raises VenueError when Gamma cannot be reached (nothing is recorded then)."""
    result = SettleResult()
    tokens = open_tokens(store.list_positions(Query(state=PositionState.OPEN)))
    resolutions = await find_resolutions(venue, tokens, result)
    # One commit for the payouts and their count in the risk state: recorded in one and counted in
    # another, a failure in between would leave a payout that never counts (a rerun records nothing new).
    with store.transaction():
        result.settlements = record_settlements(store, resolutions, now_ms(clock))
        if risk_limits is not None and result.settlements:
            count_in_risk_state(store, result.settlements, risk_limits, clock)
    return result


async def settle_open_positions(
    store: Store, venue: Venue, clock: Clock, *, risk_limits: RiskSettings | None = None
) -> list[Settlement]:
    """The library entry point: what was settled. Warnings (a market the CLOB could not confirm) go to
    the log; the CLI uses `check_and_settle` and prints them. A running executor uses
    `Executor.settle_resolved`, which also updates its own gate and paper wallet."""
    result = await check_and_settle(store, venue, clock, risk_limits=risk_limits)
    for w in result.warnings:
        log.warning("%s", w)
    return result.settlements
