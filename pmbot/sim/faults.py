"""Injected failures, switchable at run time (POST /_sim/faults, `pmbot sim serve` flags, SimServer)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class Faults:
    rate_limit: int = 0  # answer the next N HTTP requests with 429
    retry_after: int = 1  # Retry-After seconds on those 429s
    rate_limit_path: str | None = None  # only requests to this path count (None = any)
    server_error: int = 0  # answer the next N HTTP requests with 500
    server_error_path: str | None = None
    latency_ms: int = 0  # added to every HTTP response
    # The weekly matching-engine restart: ~90 s of HTTP 425 on every request, then ~2 min of post-only mode.
    restarting: int = 0  # answer the next N HTTP requests with 425 (the SDK's TradingRestriction "restarting")
    restarting_path: str | None = None
    # non-zero: the venue is in post-only mode: cancels and post-only orders pass, every other POST /order is
    # refused with 503 {"error": …, "code": "post_only_mode"} (the SDK's TradingRestriction "post_only")
    post_only_mode: int = 0
    drop_order_responses: int = 0  # next N POST /order: place the order, then drop the connection
    # next N FOK/FAK orders are answered `status: "live"` with empty amounts and matched (or killed) a
    # second later, as the venue sometimes does (Polymarket/clob-client issue 317)
    fak_live: int = 0
    # next N API-key calls fail as the venue's do: 400 "Could not create api key" (POST /auth/api-key)
    # or "Could not derive api key!" (GET /auth/derive-api-key)
    api_key_create_fail: int = 0
    # next N trades fail on-chain instead of being mined: status FAILED (REST TRADE_STATUS_FAILED), no
    # OrderFilled logs, balances restored; the venue's matches can revert (SDK TradeStatus "FAILED")
    trade_fail: int = 0
    api_key_derive_fail: int = 0
    rpc_down: int = 0  # non-zero: /rpc refuses new connections with 503 (the Polygon RPC is down)
    ws_drop_every: float = 0.0  # close every WebSocket after this many (real) seconds
    ws_malformed_every: int = 0  # every Nth WS frame is preceded by a non-JSON frame

    def update(self, changes: dict[str, Any]) -> None:
        """Apply a JSON object of changes; unknown keys or wrong types are a ValueError."""
        known = {f.name: f for f in fields(self)}
        for key, value in changes.items():
            if key not in known:
                raise ValueError(f"unknown fault {key!r}; known: {', '.join(known)}")
            if key.endswith("_path"):
                if value is not None and not isinstance(value, str):
                    raise ValueError(f"{key} must be a path string or null")
                setattr(self, key, value)
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{key} must be a non-negative number")
            setattr(self, key, float(value) if key == "ws_drop_every" else int(value))

    def clear(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def _matches(path: str, only: str | None) -> bool:
        return only is None or path == only

    def take_http_fault(self, path: str) -> tuple[int, int] | None:
        """(status, retry_after) if this request must fail, consuming one count."""
        if self.rate_limit > 0 and self._matches(path, self.rate_limit_path):
            self.rate_limit -= 1
            return 429, self.retry_after
        if self.restarting > 0 and self._matches(path, self.restarting_path):
            self.restarting -= 1
            return 425, 0
        if self.server_error > 0 and self._matches(path, self.server_error_path):
            self.server_error -= 1
            return 500, 0
        return None

    def take(self, name: str) -> bool:
        """Consume one count of the integer fault `name`; True if it fired."""
        left = getattr(self, name)
        if left > 0:
            setattr(self, name, left - 1)
            return True
        return False

    def take_order_drop(self) -> bool:
        if self.drop_order_responses > 0:
            self.drop_order_responses -= 1
            return True
        return False
