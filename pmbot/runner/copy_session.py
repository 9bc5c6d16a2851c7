"""One copy run (`pmbot copy --target …`): targets resolved first (bad input fails before anything is written),
then the executor, one CopyStrategy + Runner per target (sharing the executor), the CopyFeed, until `stop`
or the duration.

    session = await run_copy_session(app, cfg, ["distinct-baguette"], dry_run=True, duration_s=None, stop=ev)

Decisions about target fills go to `copy_decisions` (`CopyDecisionLog`), each naming the fill (tx hash, log
index), its time, every source's arrival and our order's time and key; the strategy's other decisions
(warnings, errors) go to the generic `decisions` table. At start, per target: the stored watermarks and the
decisions made since (less the strategy's retention) are restored into the strategy, our own positions are
read back from the store (a target's sell after a restart is mirrored against what we hold), and the Data API
catch-up starts at the newest watermark less `match_window_ms`.

Pieces for a process that runs copying next to other strategies (`pmbot run-all`: pmbot.runner.units.CopyUnit),
on a shared executor:

    targets = await resolve_targets(venue, [TargetRequest("distinct-baguette")], settings.copy)
    balance = await copy_balance(venue, executor, app, dry_run)
    built = await build_copy_runners(venue, store, executor, targets, mode=…, run_id=…, clock=…, balance=balance,
                                     make_runner=…)  # e.g. run-all's supervised runner
    feed = CopyFeed(venue, built.runners, executor, targets, clock=…, store=store, mode=…,
                    catch_up_from_ms=built.catch_up_from_ms, follow_tokens=built.follow_tokens,
                    open_chain=…, open_rtds=…)  # run-all: consumers of the process's one chain / RTDS connection
    await feed.run(duration_s=…, stop=…)

The executor of `pmbot copy` is built as `pmbot snipe`'s is (pmbot.runner.session.open_executor).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pmbot.errors import InputError, NotFoundError, PmbotError
from pmbot.runner.copy_feed import ALL_SOURCES, CopyFeed, CopyTarget, MarketCache
from pmbot.runner.core import DecisionLog, Runner
from pmbot.store.copy_rows import COPIED, SKIPPED, CopyDecisionRow
from pmbot.store.models import Query, mode_name
from pmbot.strategies.base import Decision, DecisionKind, Output
from pmbot.strategies.copy import CopyConfig, CopyMemoryView, CopyStrategy, is_address
from pmbot.strategies.events import TargetSource

if TYPE_CHECKING:
    from pmbot.app import App
    from pmbot.config import CopySettings, CopyTargetSettings
    from pmbot.polymarket.factory import Venue
    from pmbot.store.base import Store

__all__ = [
    "CopyDecisionLog",
    "CopyRunners",
    "CopySession",
    "CopyView",
    "RunnerFactory",
    "TargetRequest",
    "build_copy_runners",
    "copy_balance",
    "last_verdict_call",
    "resolve_targets",
    "restore_state",
    "run_copy_session",
    "target_positions_of",
]

log = logging.getLogger("pmbot.runner.copy")
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class TargetRequest:
    """A target as the operator named it (a username or a 0x address) and its `[[copy.targets]]` entry."""

    name: str
    settings: CopyTargetSettings | None = None


@dataclass
class CopySession:
    """What a running (then finished) copy session exposes to the command's view and summary."""

    run_id: str
    mode: str
    targets: list[CopyTarget] = field(default_factory=list)
    runners: dict[str, Runner] = field(default_factory=dict)
    feed: CopyFeed | None = None
    logs: dict[str, CopyDecisionLog] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    restored: dict[str, int] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------- view


class CopyView(CopyMemoryView):
    """The runner's CopyView for a live run: the run's clock, our own positions (seeded from the store at
    start, then moved by our fills), a balance for mode `percent`, and the target's holdings at start."""

    def __init__(
        self,
        *,
        clock: Callable[[], int],
        balance: Decimal,
        target_positions: Mapping[str, Decimal] | None = None,
        tags: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        super().__init__(balance=balance, target_positions=target_positions)
        self._clock = clock
        self._tags = {k: tuple(v) for k, v in (tags or {}).items()}

    def held_tokens(self) -> list[str]:
        return [t for t, n in self._positions.items() if n > 0]

    def seed_position(self, token_id: str, condition_id: str, size: Decimal, cost: Decimal) -> None:
        """What an earlier run of this strategy left us holding (from the store's positions)."""
        self._positions[token_id] = size
        self._cost[token_id] = cost
        self._cid[token_id] = condition_id


# ------------------------------------------------------------------------------------------ decisions


class CopyDecisionLog(DecisionLog):
    """Copy decisions (a signal or skip naming a target fill) → `copy_decisions`; anything else → `decisions`.

    `sent` is the Runner's map of sent intents (set once the Runner exists): a copied decision is written
    after its intent was handed over (the Runner flushes after the sends), so it carries the order's stored
    key (with the `dry-run:` prefix in dry-run) and status."""

    def __init__(self, store: Store | None, *, mode: str, run_id: str, target: CopyTarget, keep: bool = False) -> None:
        super().__init__(store, mode=mode, run_id=run_id, keep=keep)
        self.target = target
        self.sent: Mapping[str, Any] = {}
        self.copy_rows: list[CopyDecisionRow] = []  # kept for views and summaries (the last 500)
        self._copy_pending: list[CopyDecisionRow] = []
        self.copied = 0
        self.skipped: dict[str, int] = {}

    def add(self, decisions: Iterable[Decision]) -> None:
        other: list[Decision] = []
        for d in decisions:
            if d.kind in (DecisionKind.SIGNAL, DecisionKind.SKIP) and "fill_id" in d.detail:
                self._copy_pending.append(self._row(d))
                self.count += 1
            else:
                other.append(d)
        if other:
            super().add(other)

    def _row(self, d: Decision) -> CopyDecisionRow:
        det = dict(d.detail)

        def num(key: str) -> int | None:
            raw = det.get(key, "")
            return int(raw) if raw.lstrip("-").isdigit() else None

        def dec(key: str) -> Decimal | None:
            raw = det.get(key, "")
            try:
                return Decimal(raw) if raw else None
            except ArithmeticError:
                return None

        copied = d.kind is DecisionKind.SIGNAL
        return CopyDecisionRow(
            ts=d.ts_ms,
            mode=self.mode,
            run_id=self.run_id,
            strategy=d.strategy,
            target=det.get("target", self.target.wallet),
            target_label=self.target.label,
            decision=COPIED if copied else SKIPPED,
            reason=d.reason,
            fill_id=det.get("fill_id", ""),
            tx_hash=det.get("tx_hash", ""),
            log_index=num("log_index"),
            condition_id=d.condition_id,
            token_id=d.token_id,
            outcome=det.get("outcome", ""),
            side=det.get("side", ""),
            target_price=dec("target_price"),
            target_size=dec("target_size"),
            target_ts=num("target_ts_ms"),
            seen_chain_ms=num(f"seen_{TargetSource.CHAIN}_ms"),
            seen_rtds_ms=num(f"seen_{TargetSource.RTDS}_ms"),
            seen_data_api_ms=num(f"seen_{TargetSource.DATA_API}_ms"),
            intent_key=d.intent_key,
            order_ts=d.ts_ms if copied else None,
            order_price=dec("limit") if copied else None,
            order_size=dec("size") if copied else None,
            detail=det,
        )

    def flush(self) -> None:
        super().flush()
        if not self._copy_pending:
            return
        pending, self._copy_pending = self._copy_pending, []
        rows = [self._with_order(r) for r in pending]
        for r in rows:
            if r.copied:
                self.copied += 1
            else:
                self.skipped[r.reason] = self.skipped.get(r.reason, 0) + 1
        self.copy_rows += rows
        del self.copy_rows[:-500]
        if self.store is not None:
            self.store.record_copy_decisions(rows)

    def _with_order(self, r: CopyDecisionRow) -> CopyDecisionRow:
        if not r.copied or r.intent_key is None:
            return r
        from dataclasses import replace

        from pmbot.executor.engine import DRY_RUN_PREFIX

        # The executor stores dry-run orders under `dry-run:<key>`; the strategy knows the bare key.
        stored = r.intent_key if self.mode == "live" else DRY_RUN_PREFIX + r.intent_key
        entry = self.sent.get(r.intent_key)
        result = getattr(entry, "result", None)
        if result is None:
            error = getattr(entry, "error", "")
            return replace(r, order_key=stored, order_status="error" if error else "sending")
        return replace(r, order_key=result.key, order_status=result.status.value)


def restore_decisions(rows: Iterable[CopyDecisionRow]) -> list[Decision]:
    """Stored copy decisions → the Decision objects `CopyStrategy.restore()` reads (oldest first)."""
    out = []
    for r in sorted(rows, key=lambda x: (x.ts, x.id or 0)):
        out.append(
            Decision(
                kind=DecisionKind.SIGNAL if r.copied else DecisionKind.SKIP,
                strategy=r.strategy,
                reason=r.reason,
                ts_ms=r.ts,
                condition_id=r.condition_id,
                token_id=r.token_id,
                intent_key=r.intent_key,
                detail=r.detail,
            )
        )
    return out


# -------------------------------------------------------------------------------------------- targets


async def resolve_targets(venue: Venue, requests: Sequence[TargetRequest], settings: CopySettings) -> list[CopyTarget]:
    """Each target's wallet (a username through Gamma's profile search) and its validated rules.
    InputError (exit 2, nothing written) for an unknown username, a malformed address or a bad rule."""
    out: list[CopyTarget] = []
    seen: set[str] = set()
    for req in requests:
        name = req.name.strip()
        if name.lower().startswith("0x") and not is_address(name):
            raise InputError(f"{name[:60]!r} is not a wallet address (0x followed by 40 hex digits)")
        try:
            profile = await venue.gamma.resolve_wallet(name)
        except NotFoundError as e:
            raise InputError(e.message, hint=e.hint or "pass the wallet's 0x address instead") from None
        wallet = profile.proxy_wallet.lower()
        if wallet in seen:
            raise InputError(f"target {name} is given twice (wallet {wallet})")
        seen.add(wallet)
        raw = settings.rules_for(req.settings)
        raw["target"] = wallet
        cfg = CopyStrategy.validate_config(raw)
        assert isinstance(cfg, CopyConfig)
        label = name if not is_address(name) else (profile.name or name)
        out.append(CopyTarget(wallet=wallet, label=label, config=cfg))
    return out


# ------------------------------------------------------------------------------------------- restore


def restore_state(
    store: Store,
    mode: str,
    target: CopyTarget,
    strategy: CopyStrategy,
    view: CopyView,
    now_ms: int,
    *,
    wallet: str | None = None,
) -> tuple[int, int | None]:
    """After `strategy.start()`: decided fills back into its de-duplication, our positions into the view.
    `wallet`: in dry-run, the executor's paper wallet ("paper:<name>"): only its shares are ours to sell
    (another paper wallet's are another process's).
    Returns (fills restored, the Data API catch-up start in target time ms, or None on a first run)."""
    cfg = target.config
    marks = store.copy_watermarks(mode, target.wallet)
    newest = max(marks.values(), default=None)
    retention = max(cfg.max_age_ms, cfg.match_window_ms) * 4 + 60_000
    since = (newest if newest is not None else now_ms) - retention
    rows = [r for r in store.list_copy_decisions(mode=mode, target=target.wallet, since=since)]
    restored = strategy.restore(restore_decisions(rows)) if rows else 0
    dry_run = mode != "live"
    for p in store.list_positions(
        Query(strategy=target.strategy_name, dry_run=dry_run, wallet=wallet if dry_run else None)
    ):
        if p.size > 0:
            view.seed_position(p.token_id, p.condition_id, p.size, p.cost)
    catch_up = None if newest is None else newest - cfg.match_window_ms
    return restored, catch_up


# ------------------------------------------------------------------------------------- toxic warning


def last_verdict_call(store: Store, target: CopyTarget) -> str | None:
    """THE CALL SITE for `copy analyze`'s stored verdict (pmbot.copy_history: `last_verdict(store, target)`,
    `toxic_warning(store, target)`): the line to warn with at start when the newest analysis of the target (by
    its wallet, or the name it was analysed under) says `toxic`, else None."""
    from pmbot import copy_history

    try:
        for name in dict.fromkeys((target.wallet, target.label)):
            if copy_history.last_verdict(store, name) is not None:  # the newest analysis under this name decides
                return copy_history.toxic_warning(store, name)
    except PmbotError as e:
        log.warning("copy: could not read the last analysis of %s: %s", target.label, e.one_line())
    return None


# --------------------------------------------------------------------------------------------- runners


RunnerFactory = Callable[[CopyStrategy, "CopyView", "CopyDecisionLog"], Runner]


@dataclass
class CopyRunners:
    """One started CopyStrategy + Runner per target (wallet → …), restored from the store, ready for a CopyFeed:
    `CopyFeed(venue, r.runners, executor, targets, catch_up_from_ms=r.catch_up_from_ms, follow_tokens=…)`."""

    runners: dict[str, Runner] = field(default_factory=dict)
    logs: dict[str, CopyDecisionLog] = field(default_factory=dict)
    catch_up_from_ms: dict[str, int] = field(default_factory=dict)
    follow_tokens: list[str] = field(default_factory=list)
    restored: dict[str, int] = field(default_factory=dict)


async def build_copy_runners(
    venue: Venue,
    store: Store,
    executor: Any,
    targets: Sequence[CopyTarget],
    *,
    mode: str,
    run_id: str,
    clock: Callable[[], float],
    balance: Decimal,
    markets: MarketCache | None = None,
    on_output: Callable[[Output], None] | None = None,
    make_runner: RunnerFactory | None = None,
) -> CopyRunners:
    """The copy strategies of `targets` on one shared executor (what `run_copy_session` and `run-all` use):
    each started, its decided fills and our positions restored, its target's holdings read from the Data API.
    `make_runner(strategy, view, decisions)` builds each Runner (run-all's supervised one); by default a
    plain `Runner` on `executor` with `on_output`."""
    out = CopyRunners()
    now_ms = int(clock() * 1000)

    def plain(strategy: CopyStrategy, view: CopyView, dlog: CopyDecisionLog) -> Runner:
        return Runner(strategy, view, executor, dlog, on_output=on_output, store=store)

    build = make_runner or plain
    for t in targets:
        target_positions = await target_positions_of(venue, t.wallet)
        view = CopyView(clock=lambda: int(clock() * 1000), balance=balance, target_positions=target_positions)
        strategy = CopyStrategy(view, t.config, name=t.strategy_name)
        dlog = CopyDecisionLog(store, mode=mode, run_id=run_id, target=t)
        runner = build(strategy, view, dlog)
        dlog.sent = runner.sent
        for info in markets.markets() if markets is not None else ():
            view.set_market(info)
        await runner.start()
        restored, start_ms = restore_state(
            store, mode, t, strategy, view, now_ms, wallet=getattr(executor, "wallet", None)
        )
        out.restored[t.wallet] = restored
        if start_ms is not None:
            out.catch_up_from_ms[t.wallet] = start_ms
        out.runners[t.wallet] = runner
        out.logs[t.wallet] = dlog
        out.follow_tokens += [tok for tok in view.held_tokens() if tok not in out.follow_tokens]
    return out


# --------------------------------------------------------------------------------------------- session


async def run_copy_session(
    app: App,
    cfg: CopySettings,
    targets: Sequence[TargetRequest | str],
    *,
    dry_run: bool,
    duration_s: float | None,
    stop: asyncio.Event,
    on_output: Callable[[Output], None] | None = None,
    on_ready: Callable[[CopySession], None] | None = None,
    clock: Callable[[], float] | None = None,
    sources: Iterable[TargetSource | str] | None = None,
    tick_s: float = 0.25,
) -> CopySession:
    from pmbot.executor.lock import CopyTargetLock, user_lock_dir
    from pmbot.runner.feed import Translator
    from pmbot.runner.session import open_executor

    clock = clock or app.clock
    mode = mode_name(dry_run)
    session = CopySession(run_id=secrets.token_hex(6), mode=mode)
    requests = [t if isinstance(t, TargetRequest) else TargetRequest(t) for t in targets]
    if not requests:
        raise InputError("give at least one --target NAME|0x… (or [[copy.targets]] in the config file)")
    chosen = tuple(TargetSource(str(s).replace("onchain", "chain")) for s in (sources or cfg.sources))
    async with app.venue() as venue:
        resolved = await resolve_targets(venue, requests, cfg)  # before anything is written
        session.targets = resolved
        store = app.store
        for t in resolved:
            warning = last_verdict_call(store, t)
            if warning is not None:
                session.warnings.append(warning)
        markets = MarketCache(venue, clock=clock)
        try:
            await markets.preload()
        except PmbotError as e:  # a slow Gamma: markets are then looked up on first sight
            log.warning("copy: market preload failed: %s", e.one_line())
        translator = Translator()  # the market channel's books: guards, and the paper exchange's first source
        target_lock = CopyTargetLock(
            user_lock_dir(), mode, [t.wallet for t in resolved], database_url=app.settings.database_url
        )
        target_lock.acquire()  # one copier per target and mode on this database, before anything is written
        try:
            handle = await open_executor(app, venue, dry_run=dry_run, clock=clock, translator=translator)
        except BaseException:
            target_lock.release()
            raise
        try:
            executor = handle.executor
            balance = await copy_balance(venue, executor, app, dry_run)
            built = await build_copy_runners(
                venue, store, executor, resolved, mode=mode, run_id=session.run_id, clock=clock, balance=balance,
                markets=markets, on_output=on_output,
            )  # fmt: skip
            session.runners, session.logs, session.restored = built.runners, built.logs, built.restored
            feed = CopyFeed(
                venue,
                built.runners,
                executor,
                resolved,
                clock=clock,
                sources=chosen or ALL_SOURCES,
                poll_s=float(cfg.poll_s),
                rtds_silence_s=float(cfg.rtds_silence_s),
                tick_s=tick_s,
                live=not dry_run,
                store=store,
                mode=mode,
                catch_up_from_ms=built.catch_up_from_ms,
                markets=markets,
                translator=translator,
                follow_tokens=built.follow_tokens,
            )
            session.feed = feed
            if on_ready is not None:
                on_ready(session)
            await feed.run(duration_s=duration_s, stop=stop)
        finally:
            await handle.close()
            target_lock.release()
    return session


async def copy_balance(venue: Venue, executor: Any, app: App, dry_run: bool) -> Decimal:
    """The balance percent sizes are taken of: the paper exchange's, dry-run's configured one, or live pUSD."""
    paper = getattr(executor, "paper", None)
    if paper is not None:
        return Decimal(paper.balance)
    if dry_run:
        return app.settings.executor.dry_run_balance
    try:
        from pmbot.polymarket.balances import COLLATERAL, balance_allowance

        return (await balance_allowance(await venue.trading(), COLLATERAL)).balance
    except PmbotError as e:  # mode percent sizes from 0 until it is known: nothing is bought blind
        log.warning("copy: could not read the pUSD balance: %s", e.one_line())
        return _ZERO


async def target_positions_of(venue: Venue, wallet: str) -> dict[str, Decimal]:
    """The target's holdings before its first fill we see (sells are mirrored in proportion to them)."""
    try:
        rows = await venue.data.positions(wallet, limit=500)
    except PmbotError as e:
        log.warning("copy: no positions snapshot of %s: %s", wallet, e.one_line())
        return {}
    return {p.token_id: p.size for p in rows if p.size > 0}
