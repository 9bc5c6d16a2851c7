"""Turning Decimal and epoch seconds into the exact text the venue sends."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# Decimal → shortest plain string: 0.60 → "0.6", 100.00 → "100", never exponent form.
from pmbot.money import fmt as dstr

__all__ = ["date_only", "dstr", "dumps", "iso", "iso_micro", "iso_space", "parse_iso", "price3", "wire_number"]


def dumps(msg: Any) -> str:
    """Compact JSON, non-ASCII kept as is: how the venue's frames and bodies look."""
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False)


def price3(value: Decimal) -> str:
    """Book `last_trade_price` is printed with three decimals ("0.420") in recordings."""
    return format(value.quantize(Decimal("0.001")), "f")


def iso(ts: float) -> str:
    """2026-03-12T09:25:00Z (Gamma dates)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(ts: float) -> str:
    """2026-03-11T09:29:01.328428Z (Gamma createdAt/updatedAt)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_space(ts: float) -> str:
    """2026-05-09 02:07:01+00 (Gamma closedTime uses this non-ISO form)."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S+00")


def date_only(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


def parse_iso(text: str) -> float:
    """Gamma query dates: ISO with or without Z / time part → epoch seconds."""
    raw = text.strip().replace(" ", "T")
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    dt = datetime.fromisoformat(raw)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def wire_number(value: Decimal) -> float | int:
    """JSON numbers for APIs that send numbers (Data API sizes, Gamma bestBid, RTDS values).

    The venue itself emits these as JSON numbers, so the sim converts Decimal → float here, at the
    wire edge only; integral values stay ints so that `5` is not printed as `5.0`.
    """
    if value == value.to_integral_value():
        return int(value)
    return float(value)
