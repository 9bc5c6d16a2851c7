"""Copy trading's stored records (migration 0009_copy): one row per copy decision, and the watermarks.

`copy_decisions` holds every decision `pmbot copy` made about a target's fill: copied (with our order's key)
or skipped with its reason, naming the target fill (transaction hash, log index), the target fill's time, the
time each source saw it, and our order's time. `copy_watermarks` holds, per mode, target and source, the
target time up to which that source has been fully decided: a restart re-reads from there.

Shared by the SQLite and PostgreSQL stores (same columns, same mapping); money is micro-units, times epoch ms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pmbot.money import from_micro, to_micro

__all__ = ["COPY_DECISION_COLUMNS", "CopyDecisionRow", "copy_decision_from_row", "copy_decision_values"]

COPIED, SKIPPED = "copied", "skipped"


@dataclass(frozen=True, slots=True)
class CopyDecisionRow:
    """One copy decision. `decision` is `copied` or `skipped`; `reason` is `copied` or the skip reason.

    `intent_key` is the strategy's own key; `order_key` the executor's stored key (in dry-run it carries the
    `dry-run:` prefix), so a report finds the order and its fills by it."""

    ts: int  # when the decision was made (epoch ms)
    mode: str  # live | dry-run
    run_id: str
    strategy: str
    target: str  # the target's wallet, lowercase
    decision: str
    reason: str
    fill_id: str  # the fill group's identity (pmbot.strategies.copy_dedup.fill_identity)
    tx_hash: str = ""
    log_index: int | None = None
    condition_id: str = ""
    token_id: str = ""
    outcome: str = ""
    side: str = ""
    target_price: Decimal | None = None
    target_size: Decimal | None = None
    target_ts: int | None = None  # the target's fill time, by the source's clock
    seen_chain_ms: int | None = None
    seen_rtds_ms: int | None = None
    seen_data_api_ms: int | None = None
    intent_key: str | None = None
    order_key: str | None = None
    order_ts: int | None = None  # when our order went to the executor
    order_price: Decimal | None = None
    order_size: Decimal | None = None
    order_status: str = ""
    target_label: str = ""  # the username the operator gave, when one
    detail: dict[str, str] = field(default_factory=dict)
    id: int | None = None

    @property
    def copied(self) -> bool:
        return self.decision == COPIED

    def seen_ms(self) -> dict[str, int]:
        out = {}
        for src, v in (("chain", self.seen_chain_ms), ("rtds", self.seen_rtds_ms), ("data_api", self.seen_data_api_ms)):
            if v is not None:
                out[src] = v
        return out


COPY_DECISION_COLUMNS = (
    "ts", "mode", "dry_run", "run_id", "strategy", "target", "target_label", "decision", "reason", "fill_id",
    "tx_hash", "log_index", "condition_id", "token_id", "outcome", "side", "target_price_micro",
    "target_size_micro", "target_ts", "seen_chain_ms", "seen_rtds_ms", "seen_data_api_ms", "intent_key",
    "order_key", "order_ts", "order_price_micro", "order_size_micro", "order_status", "detail",
)  # fmt: skip


def _micro(value: Decimal | None) -> int | None:
    # An average price may be finer than 6 places: rounded for the column, exact text stays in `detail`.
    return None if value is None else to_micro(value, exact=False)


def _dec(value: int | None) -> Decimal | None:
    return None if value is None else from_micro(int(value))


def copy_decision_values(d: CopyDecisionRow) -> tuple[Any, ...]:
    """The row's values in COPY_DECISION_COLUMNS order."""
    return (
        d.ts, d.mode, d.mode != "live", d.run_id, d.strategy, d.target.lower(), d.target_label, d.decision,
        d.reason, d.fill_id, d.tx_hash, d.log_index, d.condition_id, d.token_id, d.outcome, d.side,
        _micro(d.target_price), _micro(d.target_size), d.target_ts, d.seen_chain_ms, d.seen_rtds_ms,
        d.seen_data_api_ms, d.intent_key, d.order_key, d.order_ts, _micro(d.order_price), _micro(d.order_size),
        d.order_status, json.dumps(dict(d.detail), sort_keys=True),
    )  # fmt: skip


def copy_decision_from_row(r: dict[str, Any]) -> CopyDecisionRow:
    detail = r.get("detail_text", r.get("detail"))
    return CopyDecisionRow(
        id=r["id"],
        ts=r["ts"],
        mode=r["mode"],
        run_id=r["run_id"],
        strategy=r["strategy"],
        target=r["target"],
        target_label=r["target_label"] or "",
        decision=r["decision"],
        reason=r["reason"],
        fill_id=r["fill_id"],
        tx_hash=r["tx_hash"] or "",
        log_index=r["log_index"],
        condition_id=r["condition_id"] or "",
        token_id=r["token_id"] or "",
        outcome=r["outcome"] or "",
        side=r["side"] or "",
        target_price=_dec(r["target_price_micro"]),
        target_size=_dec(r["target_size_micro"]),
        target_ts=r["target_ts"],
        seen_chain_ms=r["seen_chain_ms"],
        seen_rtds_ms=r["seen_rtds_ms"],
        seen_data_api_ms=r["seen_data_api_ms"],
        intent_key=r["intent_key"],
        order_key=r["order_key"],
        order_ts=r["order_ts"],
        order_price=_dec(r["order_price_micro"]),
        order_size=_dec(r["order_size_micro"]),
        order_status=r["order_status"] or "",
        detail=json.loads(detail) if isinstance(detail, str) else dict(detail or {}),
    )
