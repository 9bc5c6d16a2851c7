"""Executor metrics: counts by status and reject reason, intent → ack latency percentiles, success rate.

Kept in memory (cheap enough for the hot path: a Counter increment and a deque append), shown by
`pmbot status`, and stored (`state` row and an execution log entry) when the executor stops.
"""

from __future__ import annotations

from collections import Counter, deque
from typing import Any

from pmbot.store.models import OrderStatus

_WINDOW = 10_000  # latencies kept for percentiles: the last N acks


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return None
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class ExecutorMetrics:
    def __init__(self) -> None:
        self.intents = 0
        self.duplicates = 0
        self.statuses: Counter[str] = Counter()
        self.rejects: Counter[str] = Counter()
        self.sent = 0  # reached the venue (or the paper exchange)
        self.accepted = 0  # the venue took it (live, matched, delayed) or the paper exchange filled/rested it
        self._latency_ms: deque[float] = deque(maxlen=_WINDOW)
        self.heartbeats = 0  # order heartbeats the venue accepted
        self.heartbeats_lost = 0  # beats that failed (error or timeout): health events
        self.resolution_errors = 0  # market_resolved events that could not be applied (settled later)
        self.fills_reverted = 0  # fills taken back: their trade FAILED at the venue

    def intent(self) -> None:
        self.intents += 1

    def duplicate(self) -> None:
        self.duplicates += 1

    def final(self, status: OrderStatus, code: str | None = None) -> None:
        self.statuses[status.value] += 1
        if status is OrderStatus.REJECTED:
            self.rejects[code or "rejected"] += 1

    def ack(self, latency_ms: float, accepted: bool) -> None:
        self.sent += 1
        self.accepted += accepted
        self._latency_ms.append(latency_ms)

    def acks_since(self, seen: int) -> list[float]:
        """Latencies (ms) of the acks after the first `seen` (oldest first), as far as the window still
        holds them: the Prometheus exporter observes each ack once into its histogram."""
        new = self.sent - seen
        if new <= 0:
            return []
        window = list(self._latency_ms)
        return window[-new:] if new < len(window) else window

    def snapshot(self) -> dict[str, Any]:
        lat = sorted(self._latency_ms)
        return {
            "intents": self.intents,
            "duplicates": self.duplicates,
            "statuses": dict(self.statuses),
            "rejects": dict(self.rejects),
            "sent": self.sent,
            "accepted": self.accepted,
            "heartbeats": self.heartbeats,
            "heartbeats_lost": self.heartbeats_lost,
            "resolution_errors": self.resolution_errors,
            "fills_reverted": self.fills_reverted,
            "success_rate": round(self.accepted / self.sent, 4) if self.sent else None,
            "ack_ms": {
                "p50": _round(percentile(lat, 50)),
                "p95": _round(percentile(lat, 95)),
                "p99": _round(percentile(lat, 99)),
                "n": len(lat),
            },
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)
