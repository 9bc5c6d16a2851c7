"""`signals_of_orders`: an order (a fill's order key) traced back to the strategy decision that caused it,
in its own mode (dry-run keys are stored prefixed), the first signal when a restart signalled it again."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from pmbot.runner.core import signals_of_orders
from pmbot.store.models import DecisionRow, OrderRecord, OrderType, Side
from pmbot.store.sqlite import SQLiteStore

T = 1_800_000_000_000


def _order(key: str, *, dry_run: bool, created: int) -> OrderRecord:
    return OrderRecord(
        key=key, strategy="snipe", token_id="1001", side=Side.BUY, price=Decimal("0.95"), size=Decimal(5),
        order_type=OrderType.FOK, dry_run=dry_run, created_at=created, updated_at=created,
    )  # fmt: skip


def _decision(ts: int, reason: str, mode: str, run: str, key: str | None, kind: str = "signal") -> DecisionRow:
    return DecisionRow(
        ts=ts, strategy="snipe", kind=kind, reason=reason, mode=mode, run_id=run, intent_key=key,
        detail={"ask": "0.95"} if kind == "signal" else {},
    )  # fmt: skip


def test_each_order_finds_its_own_modes_first_signal(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "x.db")
    try:
        with store.transaction():
            store.insert_order(_order("dry-run:snipe-a", dry_run=True, created=T))  # pre-armed before the signal
            store.insert_order(_order("snipe-a", dry_run=False, created=T + 5))  # the same signal live
            store.insert_order(_order("snipe-b", dry_run=False, created=T + 9))  # no decision stored for it
        store.record_decisions(
            [
                _decision(T + 1, "entry", "dry-run", "run1", "snipe-a"),
                _decision(T + 2, "already_entered", "dry-run", "run1", None, kind="skip"),
                _decision(T + 7, "entry", "live", "run2", "snipe-a"),
                _decision(T + 8, "entry", "live", "run3", "snipe-a"),  # a restart signalled it again
            ]
        )
        links = signals_of_orders(
            store, [("dry-run:snipe-a", True), ("snipe-a", False), ("snipe-b", False), ("nope", False)]
        )
        assert set(links) == {"dry-run:snipe-a", "snipe-a"}
        assert (links["dry-run:snipe-a"].mode, links["dry-run:snipe-a"].run_id) == ("dry-run", "run1")
        assert (links["snipe-a"].mode, links["snipe-a"].run_id) == ("live", "run2")  # the first signal caused it
        assert links["snipe-a"].detail == {"ask": "0.95"}
        assert signals_of_orders(store, []) == {}
    finally:
        store.close()
