"""A Redis read-through cache for hot positions, in front of any Store.

Positions are what the risk gate reads on every intent. They are cached for 60 s in one Redis
hash per token (`pmbot:pos:<token_id>`, field `<strategy>|<0/1>`), so any write that touches a
token invalidates with one DEL, before the write call returns.

Redis is an accelerator, never a dependency: if it is down, or goes down, every call falls back
to the underlying store and pmbot warns once. While it is down invalidations are missed, so on
recovery the cached namespace is flushed before it is trusted again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pmbot.store import rows
from pmbot.store.models import Fill, Position, TradeRow

if TYPE_CHECKING:
    import redis

    from pmbot.store.base import Store

log = logging.getLogger("pmbot.store.cache")

POSITION_TTL_S = 60
RETRY_AFTER_S = 5.0
_PREFIX = "pmbot:pos2:"  # 2: positions per paper wallet (0011_paper_wallets); older entries are never read
_VERSION = "pmbot:posv:"
# Fill the cache only if no invalidation happened since the reader looked at the version:
# otherwise a read that raced a write could park a stale position for a whole TTL.
_FILL_IF_CURRENT = """
if (redis.call('GET', KEYS[2]) or '0') == ARGV[1] then
  redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 1
end
return 0
"""


class CachedStore:
    """Wraps a Store; every method not overridden here goes straight to it."""

    def __init__(self, inner: Store, client: redis.Redis, *, clock: Any = time.monotonic) -> None:
        self.inner = inner
        self.url = inner.url
        self._redis = client
        self._clock = clock
        self._down_until = 0.0
        self._warned = False
        self._missed_invalidation = False
        self.hits = 0
        self.misses = 0
        self._fill_if_current = client.register_script(_FILL_IF_CURRENT)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()
        with contextlib.suppress(Exception):  # closing a dead connection has nothing to report
            self._redis.close()

    # ------------------------------------------------------------ redis guard

    def _available(self) -> bool:
        if self._down_until == 0.0:
            return True
        if self._clock() < self._down_until:
            return False
        # Try again: flush what may be stale (we missed invalidations) before trusting it.
        try:
            if self._missed_invalidation:
                self._flush_namespace()
                self._missed_invalidation = False
            self._redis.ping()
        except Exception:
            self._down_until = self._clock() + RETRY_AFTER_S
            return False
        log.warning("Redis is reachable again; position cache back on")
        self._down_until = 0.0
        self._warned = False
        return True

    def _failed(self, exc: Exception) -> None:
        self._down_until = self._clock() + RETRY_AFTER_S
        if not self._warned:
            self._warned = True
            log.warning("Redis unavailable (%s); working from the database without the cache", type(exc).__name__)

    def _flush_namespace(self) -> None:
        for pattern in (_PREFIX + "*", _VERSION + "*"):
            for key in self._redis.scan_iter(match=pattern, count=500):
                self._redis.delete(key)

    def _invalidate(self, token_ids: Iterable[str]) -> None:
        tokens = set(token_ids)
        if not tokens:
            return
        if not self._available():
            self._missed_invalidation = True
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for t in tokens:
                pipe.incr(_VERSION + t)
                pipe.expire(_VERSION + t, 86400)
            pipe.delete(*(_PREFIX + t for t in tokens))
            pipe.execute()
        except Exception as e:
            self._missed_invalidation = True
            self._failed(e)

    # ------------------------------------------------------------- positions

    def get_position(self, strategy: str, token_id: str, dry_run: bool, wallet: str | None = None) -> Position | None:
        field = f"{strategy}|{int(dry_run)}|{rows.position_wallet(dry_run, wallet)}"
        version: bytes | None = None
        if self._available():
            try:
                pipe = self._redis.pipeline(transaction=False)
                pipe.hget(_PREFIX + token_id, field)
                pipe.get(_VERSION + token_id)
                raw, version = pipe.execute()
            except Exception as e:
                self._failed(e)
            else:
                if raw is not None:
                    self.hits += 1
                    data = json.loads(raw)
                    return None if data is None else rows.row_to_position(data)
        self.misses += 1
        pos = self.inner.get_position(strategy, token_id, dry_run, wallet)
        if self._down_until == 0.0:
            try:
                value = json.dumps(None if pos is None else rows.position_to_dict(pos))
                self._fill_if_current(
                    keys=[_PREFIX + token_id, _VERSION + token_id],
                    args=[(version or b"0").decode(), field, value, POSITION_TTL_S],
                )
            except Exception as e:
                self._failed(e)
        return pos

    def record_fill(self, fill: Fill) -> bool:
        try:
            return self.inner.record_fill(fill)
        finally:
            self._invalidate([fill.token_id])

    def record_fills(self, fills: Iterable[Fill]) -> int:
        batch = list(fills)
        try:
            return self.inner.record_fills(batch)
        finally:
            self._invalidate(f.token_id for f in batch)

    def reverse_fill(self, trade_id: str, *, ts: int, reason: str = "") -> TradeRow | None:
        row = self.inner.reverse_fill(trade_id, ts=ts, reason=reason)
        if row is not None:
            self._invalidate([row.fill.token_id])
        return row

    def set_marks(self, prices: Mapping[str, Decimal]) -> int:
        try:
            return self.inner.set_marks(prices)
        finally:
            self._invalidate(prices.keys())

    def resolve_token(self, token_id: str, payout: Decimal, *, ts: int | None = None) -> int:
        try:
            return self.inner.resolve_token(token_id, payout, ts=ts)
        finally:
            self._invalidate([token_id])

    def settle_token(
        self, token_id: str, payout: Decimal, *, ts: int | None = None, metadata: Mapping[str, Any] | None = None
    ) -> list[TradeRow]:
        try:
            return self.inner.settle_token(token_id, payout, ts=ts, metadata=metadata)
        finally:
            self._invalidate([token_id])

    def mark_redeemed(self, token_id: str, *, ts: int | None = None) -> int:
        try:
            return self.inner.mark_redeemed(token_id, ts=ts)
        finally:
            self._invalidate([token_id])
