"""An in-memory `StrategyView`: books, positions and markets kept from the events themselves.

It owns nothing but that state. A backtest runner (one process, simulated clock) can use it as is: feed each
event to `apply()` first, then to `Strategy.handle()`. Unit tests use it to drive a strategy with a list of
events. Live, the runner's view reads the market stream's local books instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from pmbot.store.models import Side
from pmbot.strategies.base import BookView, MarketInfo
from pmbot.strategies.events import BookChanged, Event, OrderFilled

__all__ = ["MemoryView"]

_ZERO = Decimal(0)


class MemoryView:
    """A StrategyView from events. The clock is `clock()` (epoch ms) when given, else the time of the last
    event applied (a backtest's simulated clock)."""

    def __init__(self, markets: Sequence[MarketInfo] = (), *, clock: Callable[[], int] | None = None) -> None:
        self._markets: dict[str, MarketInfo] = {m.condition_id: m for m in markets}
        self._books: dict[str, BookChanged] = {}
        self._positions: dict[str, Decimal] = {}
        self._fills: set[str] = set()
        self._clock = clock
        self._now = 0

    # ------------------------------------------------------------------ StrategyView

    def now_ms(self) -> int:
        return self._clock() if self._clock is not None else self._now

    def markets(self) -> Sequence[MarketInfo]:
        return tuple(self._markets.values())

    def market(self, condition_id: str) -> MarketInfo | None:
        return self._markets.get(condition_id)

    def book(self, token_id: str) -> BookView | None:
        return self._books.get(token_id)

    def position(self, token_id: str) -> Decimal:
        return self._positions.get(token_id, _ZERO)

    # ------------------------------------------------------------------ updates (runner-facing)

    def apply(self, event: Event) -> None:
        """Bring the state up to `event` (call before `Strategy.handle(event)`)."""
        self._now = max(self._now, event.ts_ms)
        if isinstance(event, BookChanged):
            self._books[event.token_id] = event
        elif isinstance(event, OrderFilled) and event.fill_id not in self._fills:
            self._fills.add(event.fill_id)
            signed = event.size if event.side is Side.BUY else -event.size
            self._positions[event.token_id] = self.position(event.token_id) + signed

    def set_market(self, market: MarketInfo) -> None:
        """Add a market, or replace it (e.g. `accepting_orders` turned false)."""
        self._markets[market.condition_id] = market

    def remove_market(self, condition_id: str) -> None:
        self._markets.pop(condition_id, None)

    def set_time(self, now_ms: int) -> None:
        """Move the simulated clock (only without an injected clock)."""
        self._now = now_ms
