"""Backtest feed: a recorded (or generated) scenario replayed through the same Runner, strategy and
executor on a simulated clock, in one process, as fast as the CPU allows.

- The clock is the scenario's: each event's `ts` moves it; a TimerTick is delivered every `tick_ms`.
- The executor is the real one in dry-run (risk gate, write-ahead, paper exchange walking the scenario's
  books, FOK/FAK, minimum sizes, tick, fees from each market's schedule) on a throw-away store, so a
  backtest never writes an order or a trade into the operator's ledger. Only its decisions (mode
  "backtest", run id) and its result document are stored, by the caller.
- Resolution: the scenario's `market_resolved`, else the market's own reference rule (Chainlink spot or
  TWAP at the end vs the opening; ties go to Up) from the scenario's reference prices.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

from pmbot.config import Settings
from pmbot.errors import InputError, VenueError
from pmbot.executor.budget import LocalBudget
from pmbot.executor.engine import Executor
from pmbot.executor.paper import PaperExchange
from pmbot.executor.risk import RiskGate
from pmbot.money import fmt
from pmbot.polymarket.models import Market, MarketParams, MarketResolved, OrderBook
from pmbot.polymarket.params import MarketParamsCache
from pmbot.polymarket.schemas import rest, ws
from pmbot.runner.core import DecisionLog, Runner
from pmbot.runner.feed import Translator
from pmbot.settle import resolution_from_event
from pmbot.sim.scenario_file import RecordedScenario
from pmbot.store.models import Query, TradeKind
from pmbot.store.sqlite import SQLiteStore
from pmbot.strategies.base import MarketInfo, Strategy
from pmbot.strategies.events import BookChanged, ReferencePrice
from pmbot.strategies.memview import MemoryView
from pmbot.strategies.reference import ReferenceTracker, parse_resolution_rule

__all__ = ["BacktestResult", "markets_of", "prepare", "run_backtest"]

_ZERO = Decimal(0)
_DISARM_AFTER_MS = 120_000

StrategyFactory = Callable[[MemoryView], Strategy[Any]]


@dataclass
class BacktestResult:
    run_id: str
    params: dict[str, Any]
    markets: list[dict[str, Any]]
    signals: int
    skips: dict[str, int]
    trades: list[dict[str, Any]]
    summary: dict[str, Any]
    events: int = 0  # market + reference events replayed
    decisions: DecisionLog | None = field(default=None, repr=False)

    def as_json(self) -> dict[str, Any]:
        """Exactly the document `pmbot backtest snipe --json` prints (money as decimal strings)."""
        return {
            "run_id": self.run_id,
            "params": self.params,
            "markets": self.markets,
            "signals": self.signals,
            "skips": self.skips,
            "trades": self.trades,
            "summary": self.summary,
        }


def markets_of(scenario: RecordedScenario) -> list[tuple[Market, MarketInfo]]:
    """The scenario's markets, parsed as Gamma objects. A market without tick size or fee schedule is
    unusable for a backtest: InputError naming it."""
    out = []
    for n, raw in enumerate(scenario.markets, start=1):
        try:
            m = rest.gamma_market(raw)
            info = MarketInfo.from_market(
                m, description=m.description, resolution_source=m.resolution_source, reference_open=m.price_to_beat
            )
        except (VenueError, InputError) as e:
            raise InputError(f"scenario header market #{n}: {e.message}") from None
        out.append((m, info))
    return out


class _ArmSchedule:
    """Which markets the strategy's view holds: each from `arm_ahead_ms` before its end (as `--auto` arms
    them live) until a while after it resolved, so per-tick work stays proportional to the markets that
    are trading, not to the length of the scenario."""

    def __init__(self, infos: list[MarketInfo], view: MemoryView, arm_ahead_ms: int, translator: Translator) -> None:
        self._view = view
        self._translator = translator
        translator.emit = set()
        self._pending = sorted(infos, key=lambda i: (i.end_ms or 0) - arm_ahead_ms)
        self._ahead = arm_ahead_ms
        self._armed: dict[str, MarketInfo] = {}

    def update(self, now_ms: int, resolved: Mapping[str, str]) -> None:
        while self._pending and (self._pending[0].end_ms or 0) - self._ahead <= now_ms:
            info = self._pending.pop(0)
            self._armed[info.condition_id] = info
            self._view.set_market(info)
            for token in info.token_ids:
                assert self._translator.emit is not None
                self._translator.emit.add(token)
                current = self._translator.current(token, now_ms)
                if current is not None:
                    self._view.apply(current)  # the view starts from the book as it is now
        for cid, info in list(self._armed.items()):
            if cid in resolved and info.end_ms is not None and now_ms > info.end_ms + _DISARM_AFTER_MS:
                del self._armed[cid]
                self._view.remove_market(cid)
                assert self._translator.emit is not None
                self._translator.emit.difference_update(info.token_ids)


class _Books:
    """The executor's BookSource in a backtest: the scenario's local books."""

    def __init__(self, translator: Translator) -> None:
        self._t = translator

    async def book(self, token_id: str) -> OrderBook:
        b = self._t.order_book(token_id)
        if b is None:
            raise VenueError(f"no book for {token_id[:16]} yet in the scenario")
        return b


async def run_backtest(
    scenario: RecordedScenario,
    make_strategy: StrategyFactory,
    settings: Settings,
    *,
    run_id: str,
    params: Mapping[str, Any],
    decisions: DecisionLog,
    tick_ms: int = 1000,
    arm_ahead_ms: int = 20 * 60_000,
    workdir: Path | None = None,
    prepared: list[tuple[int, Any]] | None = None,
) -> BacktestResult:
    pairs = markets_of(scenario)
    prepared = prepare(scenario) if prepared is None else prepared
    infos = [info for _, info in pairs]
    by_cid = {info.condition_id: info for info in infos}
    slug_of = {info.condition_id: info.slug or info.condition_id for info in infos}
    now = [scenario.events[0].ts if scenario.events else scenario.created_ms]

    def clock_s() -> float:
        return now[0] / 1000

    view = MemoryView((), clock=lambda: now[0])
    translator = Translator({t: info.condition_id for info in infos for t in info.token_ids})
    schedule = _ArmSchedule(infos, view, arm_ahead_ms, translator)
    strategy = make_strategy(view)
    with tempfile.TemporaryDirectory(prefix="pmbot-backtest-", dir=workdir) as tmp:
        store = SQLiteStore(Path(tmp) / "backtest.db", clock=clock_s, synchronous="OFF")
        try:
            params_cache = MarketParamsCache(cast(Any, None))  # every market's parameters are known up front
            for info in infos:
                for t in info.token_ids:
                    params_cache.put(
                        MarketParams(
                            token_id=t,
                            tick_size=info.tick_size,
                            neg_risk=info.neg_risk,
                            fees=info.fees,
                            min_order_size=info.min_order_size,
                        )
                    )
            executor = Executor(
                store=store,
                risk=RiskGate(settings.risk, clock_s),
                budget=LocalBudget(settings.executor.orders_per_minute, clock=clock_s),
                params=params_cache,
                dry_run=True,
                paper=PaperExchange(
                    settings.executor.dry_run_balance, fees=settings.executor.dry_run_fees, clock=clock_s
                ),
                books=_Books(translator),
                clock=clock_s,
                wallet=f"paper:backtest-{run_id}",
            )
            executor.risk_sync_s = float("inf")  # nobody else shares this throw-away state
            await executor.start()
            runner = Runner(strategy, view, executor, decisions, store=store)
            refs = ReferenceTracker(max_age_ms=max(5_000, tick_ms * 5), horizon_ms=10**13)
            resolved: dict[str, str] = {}
            events = await _replay(prepared, runner, executor, translator, refs, resolved, now, tick_ms, schedule)
            # Markets the scenario did not resolve: the market's own reference rule decides.
            for info in infos:
                if info.condition_id in resolved or info.end_ms is None or info.end_ms > now[0]:
                    continue
                winner = _reference_winner(info, refs)
                if winner is None:
                    continue
                item = MarketResolved(
                    market=info.condition_id,
                    winning_token_id=winner,
                    winning_outcome=info.outcome_of(winner),
                    timestamp_ms=info.end_ms,
                    token_ids=info.token_ids,
                )
                await _resolve(item, runner, executor, translator, resolved, info.end_ms)
            await runner.stop()
            await executor.close()
            trades = _trades(store, by_cid, slug_of, resolved)
        finally:
            store.close()
    metrics = strategy.metrics
    return BacktestResult(
        run_id=run_id,
        params=dict(params),
        markets=_per_market(infos, trades, resolved, decisions),
        signals=metrics.signals,
        skips=dict(sorted(metrics.skips.items())),
        trades=trades,
        summary=_summary(trades, metrics.wins, metrics.losses),
        events=events,
        decisions=decisions,
    )


def prepare(scenario: RecordedScenario) -> list[tuple[int, Any]]:
    """Parse the recorded wire messages once, through the adapter's own parsers (what the live streams
    use): (ts, adapter event) in time order. Malformed recorded messages are skipped, as the streams do."""
    out: list[tuple[int, Any]] = []
    for rec in scenario.events:
        if rec.source == "market":
            for raw in ws.messages(rec.data):
                try:
                    item = ws.market_event(raw)
                except VenueError:
                    continue
                if item is not None:
                    out.append((rec.ts, item))
        elif rec.source == "rtds":
            try:
                out.extend((rec.ts, price) for price in ws.rtds_events(rec.data))
            except VenueError:
                continue
    return out


async def _replay(
    prepared: list[tuple[int, Any]],
    runner: Runner,
    executor: Executor,
    translator: Translator,
    refs: ReferenceTracker,
    resolved: dict[str, str],
    now: list[int],
    tick_ms: int,
    schedule: _ArmSchedule,
) -> int:
    from pmbot.strategies.events import TimerTick

    schedule.update(now[0], resolved)
    await runner.start()
    count = 0
    next_tick = (now[0] // tick_ms + 1) * tick_ms
    deliver = runner.deliver_nowait
    translate = translator.translate
    paper = executor.paper
    for ts, item in prepared:
        while ts >= next_tick:
            now[0] = next_tick
            schedule.update(next_tick, resolved)
            out = deliver(TimerTick(ts_ms=next_tick))
            if out is not None:
                await runner.process(out)
            next_tick += tick_ms
        now[0] = ts
        count += 1
        if isinstance(item, MarketResolved):
            await _resolve(item, runner, executor, translator, resolved, ts)
            continue
        for e in translate(item, ts):
            if isinstance(e, ReferencePrice):
                refs.add(e)
            elif paper is not None and isinstance(e, BookChanged) and paper.open_orders(e.token_id):
                book = translator.order_book(e.token_id)  # a resting paper order may fill on this book
                if book is not None and await executor.on_book(book):
                    await runner.sync_orders()
            out = deliver(e)
            if out is not None:
                await runner.process(out)
    runner.decisions.flush()
    return count


async def _resolve(
    item: MarketResolved,
    runner: Runner,
    executor: Executor,
    translator: Translator,
    resolved: dict[str, str],
    ts: int,
) -> None:
    if item.market in resolved:
        return
    resolved[item.market] = item.winning_token_id
    resolution = resolution_from_event(item)
    if resolution is not None:
        executor.apply_resolution(resolution)
    for e in translator.translate(item, ts):
        await runner.deliver(e)


def _reference_winner(info: MarketInfo, refs: ReferenceTracker) -> str | None:
    """Up if the rule's value at the end is >= the opening (ties go to Up), else Down; None if unknown."""
    names = [o.outcome.lower() for o in info.outcomes]
    if sorted(names) != ["down", "up"] or info.end_ms is None or info.start_ms is None:
        return None
    rule = parse_resolution_rule(info.description, info.resolution_source)
    if rule is None:
        return None
    opening = info.reference_open or refs.value_at(rule, info.start_ms, opening=True)
    closing = refs.value_at(rule, info.end_ms)
    if opening is None or closing is None:
        return None
    up = info.outcomes[names.index("up")].token_id
    down = info.outcomes[names.index("down")].token_id
    return up if closing >= opening else down


def _trades(
    store: SQLiteStore, by_cid: dict[str, MarketInfo], slug_of: dict[str, str], resolved: dict[str, str]
) -> list[dict[str, Any]]:
    """Every fill of the run with its payout and PnL (payout − price × size − fee)."""
    out = []
    rows = [t for t in store.list_trades(Query(dry_run=True)) if t.fill.kind is TradeKind.FILL]
    rows.sort(key=lambda t: (t.fill.ts, t.fill.trade_id))
    for t in rows:
        f = t.fill
        info = by_cid.get(f.condition_id)
        winner = resolved.get(f.condition_id)
        payout: Decimal | None = None
        if winner is not None:
            payout = (f.size if f.token_id == winner else _ZERO) if f.side.value == "BUY" else _ZERO
        cost = f.price * f.size
        pnl = None if payout is None else (payout - cost - f.fee if f.side.value == "BUY" else cost - f.fee)
        out.append(
            {
                "market": slug_of.get(f.condition_id, f.condition_id),
                "token_id": f.token_id,
                "outcome": (info.outcome_of(f.token_id) if info else None) or "",
                "side": f.side.value,
                "price": fmt(f.price),
                "size": fmt(f.size),
                "fee": fmt(f.fee),
                "ts_ms": f.ts,
                "payout": None if payout is None else fmt(payout),
                "pnl": None if pnl is None else fmt(pnl),
            }
        )
    return out


def _summary(trades: list[dict[str, Any]], wins: int, losses: int) -> dict[str, Any]:
    pnl = fees = peak = drawdown = cum = _ZERO
    for t in trades:
        fees += Decimal(t["fee"])
        if t["pnl"] is None:
            continue
        p = Decimal(t["pnl"])
        pnl += p
        cum += p
        peak = max(peak, cum)
        drawdown = max(drawdown, peak - cum)
    decided = wins + losses
    return {
        "trades": len(trades),
        "wins": wins,
        "losses": losses,
        "win_rate": None if not decided else fmt((Decimal(wins) / Decimal(decided)).quantize(Decimal("0.0001"))),
        "pnl": fmt(pnl),
        "fees": fmt(fees),
        "max_drawdown": fmt(drawdown),
    }


def _per_market(
    infos: list[MarketInfo], trades: list[dict[str, Any]], resolved: dict[str, str], decisions: DecisionLog
) -> list[dict[str, Any]]:
    signals: dict[str, int] = {}
    for d in decisions.rows:
        if d.kind == "signal":
            signals[d.condition_id] = signals.get(d.condition_id, 0) + 1
    out = []
    for info in infos:
        slug = info.slug or info.condition_id
        mine = [t for t in trades if t["market"] == slug]
        pnl = sum((Decimal(t["pnl"]) for t in mine if t["pnl"] is not None), _ZERO)
        winner = resolved.get(info.condition_id)
        out.append(
            {
                "market": slug,
                "condition_id": info.condition_id,
                "winner": (info.outcome_of(winner) or "") if winner else None,
                "signals": signals.get(info.condition_id, 0),
                "trades": len(mine),
                "pnl": fmt(pnl),
            }
        )
    return out
