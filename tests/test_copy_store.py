"""Copy decisions and watermarks (migration 0009_copy) on every store backend: SQLite, PostgreSQL, each with
and without Redis in front."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from pmbot.store.copy_rows import CopyDecisionRow

WALLET = "0x" + "ab" * 20
OTHER = "0x" + "cd" * 20


def _row(ts: int, **kw: Any) -> CopyDecisionRow:
    base = CopyDecisionRow(
        ts=ts,
        mode="dry-run",
        run_id="r1",
        strategy="copy-abababab",
        target=WALLET,
        target_label="distinct-baguette",
        decision="copied",
        reason="copied",
        fill_id=f"tx:{WALLET}:0x{ts:064x}:123:BUY",
        tx_hash=f"0x{ts:064x}",
        log_index=7,
        condition_id="0x" + "11" * 32,
        token_id="123",
        outcome="Down",
        side="BUY",
        target_price=Decimal("0.5211902564"),  # an average price: finer than 6 places
        target_size=Decimal("195"),
        target_ts=ts - 40,
        seen_chain_ms=ts - 5,
        seen_rtds_ms=ts - 20,
        seen_data_api_ms=None,
        intent_key="copy-abababab-0123",
        order_key="dry-run:copy-abababab-0123",
        order_ts=ts,
        order_price=Decimal("0.53"),
        order_size=Decimal("19.5"),
        order_status="filled",
        detail={"why": "", "first_source": "rtds", "target_ts_ms": str(ts - 40)},
    )
    return replace(base, **kw)


def test_copy_decisions_round_trip_and_filters(store: Any) -> None:
    a = _row(1_000)
    b = _row(2_000, decision="skipped", reason="stale", order_key=None, intent_key=None, order_ts=None, log_index=None)
    c = _row(3_000, target=OTHER.upper().replace("0X", "0x"), target_label="")
    d = _row(4_000, mode="live")
    assert store.record_copy_decisions([a, b, c, d]) == 4
    assert store.record_copy_decisions([]) == 0
    got = store.list_copy_decisions(mode="dry-run")
    assert [r.ts for r in got] == [3_000, 2_000, 1_000]  # newest first
    first = got[-1]
    assert first.id is not None
    assert replace(first, id=None, target_price=a.target_price) == a
    assert first.target_price == Decimal("0.521190")  # the column is micro-units; the exact text is the detail's
    assert got[1].log_index is None and got[1].order_key is None and got[1].reason == "stale"
    assert got[0].target == OTHER  # stored lowercase
    assert [r.ts for r in store.list_copy_decisions(mode="dry-run", target=WALLET.upper().replace("0X", "0x"))] == [
        2_000,
        1_000,
    ]
    assert [r.ts for r in store.list_copy_decisions(since=2_000)] == [4_000, 3_000, 2_000]
    assert [r.ts for r in store.list_copy_decisions(limit=1)] == [4_000]
    assert [r.mode for r in store.list_copy_decisions(mode="live")] == ["live"]
    assert first.seen_ms() == {"chain": 995, "rtds": 980}


def test_copy_watermarks_never_move_back_and_are_per_mode(store: Any) -> None:
    store.set_copy_watermarks("dry-run", {(WALLET, "chain"): 5_000, (WALLET, "rtds"): 4_000})
    store.set_copy_watermarks("dry-run", {(WALLET.upper().replace("0X", "0x"), "chain"): 3_000})  # older: kept 5000
    store.set_copy_watermarks("dry-run", {(WALLET, "rtds"): 6_000, (OTHER, "data_api"): 1})
    store.set_copy_watermarks("live", {(WALLET, "chain"): 9})
    store.set_copy_watermarks("live", {})
    assert store.copy_watermarks("dry-run", WALLET) == {(WALLET, "chain"): 5_000, (WALLET, "rtds"): 6_000}
    assert store.copy_watermarks("dry-run")[(OTHER, "data_api")] == 1
    assert store.copy_watermarks("live") == {(WALLET, "chain"): 9}
    assert store.copy_watermarks("live", OTHER) == {}
