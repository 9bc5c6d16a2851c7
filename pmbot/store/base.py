"""The one store interface. SQLite, SQLite+Redis and (later) PostgreSQL all pass one contract suite.

Synchronous on purpose: a durable SQLite write is ~0.2 ms, cheaper than a thread hop, and the
executor awaits nothing while it holds an order's write-ahead record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from pmbot.store.copy_rows import CopyDecisionRow
from pmbot.store.models import (
    BacktestRun,
    CopyAnalysisRow,
    DecisionRow,
    ExecutionLog,
    Fill,
    Learning,
    OrderEvent,
    OrderRecord,
    OrderStatus,
    Position,
    Query,
    Reflection,
    StrategyStats,
    TradeRow,
)


@runtime_checkable
class Store(Protocol):
    url: str

    def close(self) -> None: ...

    def transaction(self) -> AbstractContextManager[None]:
        """One durable commit for every write inside (they join it); all or nothing."""
        ...

    def get_state(self, name: str) -> dict[str, Any] | None:
        """A small named JSON document (kill switch, paper wallet …); None if never set."""
        ...

    def set_state(self, name: str, value: Mapping[str, Any]) -> None: ...

    def update_state(self, name: str, merge: Callable[[dict[str, Any] | None], Mapping[str, Any]]) -> dict[str, Any]:
        """Read-modify-write one state document atomically across processes: `merge(current)` (None if
        never set) returns the new value, which is stored and returned. State shared by several
        processes (the kill switch) must go through this, never through a blind `set_state`."""
        ...

    # Orders: write-ahead. insert before sending; update on every state change.
    def insert_order(self, order: OrderRecord) -> bool:
        """Store a new intent (pending). False, and nothing written, if its key already exists, unless
        the existing record (same mode) is `not_sent`: then the new one replaces it (a retry)."""
        ...

    def get_order(self, key: str) -> OrderRecord | None: ...

    def get_orders(self, keys: Iterable[str]) -> dict[str, OrderRecord]:
        """The orders that exist among `keys`, by key (one query: the executor's batch lookup)."""
        ...

    def set_order_status(
        self,
        key: str,
        status: OrderStatus,
        *,
        venue_order_id: str | None = None,
        error: str | None = None,
        filled_size: Decimal | None = None,
        detail: str = "",
    ) -> None:
        """`update_order` without reading the order back (the executor's hot path)."""
        ...

    def update_order(
        self,
        key: str,
        status: OrderStatus,
        *,
        venue_order_id: str | None = None,
        error: str | None = None,
        filled_size: Decimal | None = None,
        detail: str = "",
    ) -> OrderRecord:
        """Move an order to `status` and append an order event. Raises StoreError for an unknown key."""
        ...

    def list_orders(
        self, *, statuses: Iterable[OrderStatus] | None = None, query: Query | None = None
    ) -> list[OrderRecord]: ...

    def order_events(self, key: str) -> list[OrderEvent]: ...

    # Fills and positions
    def record_fill(self, fill: Fill) -> bool:
        """Store a fill and update its position in one durable transaction. False if already stored."""
        ...

    def record_fills(self, fills: Iterable[Fill]) -> int:
        """Batch version of record_fill: one transaction. Returns how many were new."""
        ...

    def reverse_fill(self, trade_id: str, *, ts: int, reason: str = "") -> TradeRow | None:
        """Take a recorded fill back: its trade FAILED at the venue. Records the `reversal` trade
        ("revert:<trade_id>", stamped with the fill's ts; `ts`, the time of the reversal, in its metadata
        as `reverted_at`) and rebuilds the position from its other trades (ledger.take_back), in one
        transaction; None, and nothing written, when there is no such fill or it was reversed before.
        The reversal's realized PnL is the position's change, so trades still sum to the position."""
        ...

    def list_trades(self, query: Query | None = None) -> list[TradeRow]: ...

    def fills_of_order(self, order_key: str) -> list[Fill]:
        """The fills (not payouts) recorded for one order, oldest first; not those taken back (reverse_fill)."""
        ...

    def get_position(self, strategy: str, token_id: str, dry_run: bool, wallet: str | None = None) -> Position | None:
        """One position. A dry-run one belongs to a paper wallet ("paper:<name>"; None: the default one,
        "paper:default"), a live one to "" (None)."""
        ...

    def list_positions(self, query: Query | None = None) -> list[Position]: ...

    def set_marks(self, prices: Mapping[str, Decimal]) -> int:
        """Update the mark price of open positions per token id. Returns rows touched."""
        ...

    def resolve_token(self, token_id: str, payout: Decimal, *, ts: int | None = None) -> int:
        """Market resolved: redeem every open position in `token_id` at `payout` (1 or 0)."""
        ...

    def settle_token(
        self, token_id: str, payout: Decimal, *, ts: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> list[TradeRow]:
        """`resolve_token`, returning the redeem trades it recorded ([] when already settled). A LIVE
        winner's payout is also recorded as `redeemable` on its position until `mark_redeemed`."""
        ...

    def mark_redeemed(self, token_id: str, *, ts: int | None = None) -> int:
        """The winning shares of `token_id` were redeemed on chain: the payout is cash now. Rows touched."""
        ...

    def count_trades(self, query: Query | None = None) -> int:
        """How many trades match the filters (state and limit ignored)."""
        ...

    def count_positions(self, query: Query | None = None) -> int:
        """How many positions match the filters (limit ignored)."""
        ...

    def stats(self, query: Query | None = None) -> list[StrategyStats]: ...

    # Journal
    # Journal: the seed's learnings / reflections / execution_logs tables (migration 0007_seed_journal).
    # Lists are newest first; `query` gives since (on `timestamp`) and limit (and strategy, for logs).
    def add_learning(self, learning: Learning) -> int:
        """Store a learning; returns its id. InputError (nothing written) without a title."""
        ...

    def list_learnings(
        self, query: Query | None = None, *, phase: str | None = None, category: str | None = None
    ) -> list[Learning]: ...

    def add_reflection(self, reflection: Reflection) -> int:
        """Store a reflection; returns its id. InputError (nothing written) if all three texts are empty."""
        ...

    def list_reflections(self, query: Query | None = None, *, phase: str | None = None) -> list[Reflection]: ...

    def log_execution(self, entry: ExecutionLog) -> int: ...

    def list_execution_logs(self, query: Query | None = None, *, event: str | None = None) -> list[ExecutionLog]:
        """Execution log entries, newest first; `event` keeps one kind (e.g. "metrics" snapshots)."""
        ...

    # Strategy decisions and backtests (migration 0008_decisions_backtests)
    def record_decisions(self, decisions: Iterable[DecisionRow]) -> int:
        """Append decisions in one transaction. Returns how many were stored."""
        ...

    def list_decisions(
        self,
        *,
        mode: str | None = None,
        run_id: str | None = None,
        strategy: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[DecisionRow]:
        """Newest first. `mode` None means live and dry-run (never backtest: ask for it by mode or run id)."""
        ...

    def save_backtest(self, run: BacktestRun) -> None: ...

    def get_backtest(self, run_id: str) -> BacktestRun | None: ...

    def list_backtests(self, limit: int | None = None) -> list[BacktestRun]:
        """Newest first."""
        ...

    # Copy trading (migration 0009_copy): decisions about a target's fills, and per-source watermarks.
    def record_copy_decisions(self, decisions: Iterable[CopyDecisionRow]) -> int:
        """Append copy decisions in one transaction. Returns how many were stored."""
        ...

    def list_copy_decisions(
        self,
        *,
        mode: str | None = None,
        target: str | None = None,
        since: int | None = None,
        limit: int | None = None,
    ) -> list[CopyDecisionRow]:
        """Newest first; `target` is a wallet (any case); `since` on the decision time."""
        ...

    def set_copy_watermarks(self, mode: str, marks: Mapping[tuple[str, str], int]) -> None:
        """Store (target, source) → target time watermarks; a stored watermark never moves back."""
        ...

    def copy_watermarks(self, mode: str, target: str | None = None) -> dict[tuple[str, str], int]:
        """(target, source) → watermark (epoch ms) for `mode`, for one target or all."""
        ...

    # Copy analyses (migration 0010_copy_analyses)
    def save_copy_analysis(self, row: CopyAnalysisRow) -> int:
        """Store one analysis; returns its id."""
        ...

    def list_copy_analyses(
        self, *, wallet: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[CopyAnalysisRow]:
        """Newest first. `wallet` / `name` (either matches, case-insensitive) keep one target's rows."""
        ...
