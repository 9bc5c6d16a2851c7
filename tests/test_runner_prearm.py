"""Pre-armed orders in the runner (`Runner(prearm=True)`, `Strategy.anticipate`): the sniper's entries are
signed and recorded `armed` before the window, fired on the tick, retired at the market's end.

The real dry-run executor (paper exchange, SQLite file) and the real SnipeStrategy; a hand-built market
and a book source whose book the test sets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.config import Settings
from pmbot.errors import VenueError
from pmbot.executor.budget import LocalBudget
from pmbot.executor.engine import Executor
from pmbot.executor.paper import PaperExchange
from pmbot.executor.risk import RiskGate
from pmbot.polymarket.models import BookLevel, MarketParams, OrderBook
from pmbot.polymarket.params import MarketParamsCache
from pmbot.runner.backtest import markets_of
from pmbot.runner.core import DecisionLog, Runner
from pmbot.sim.scenario_file import read_scenario
from pmbot.store.models import OrderStatus
from pmbot.store.sqlite import SQLiteStore
from pmbot.strategies.base import MarketInfo, Output
from pmbot.strategies.events import BookChanged
from pmbot.strategies.memview import MemoryView
from pmbot.strategies.snipe import ARM_LEAD_S, SnipeStrategy
from tests.test_runner_snipe import _scenario_lines

D = Decimal


class Books:
    def __init__(self) -> None:
        self.books: dict[str, OrderBook] = {}
        self.down = False

    async def book(self, token_id: str) -> OrderBook:
        if self.down:
            raise VenueError("book unavailable", detail="venue unreachable")
        return self.books[token_id]


@dataclass
class Rig:
    store: SQLiteStore
    ex: Executor
    books: Books
    view: MemoryView
    runner: Runner
    info: MarketInfo
    clock: list[int]

    def at(self, seconds_left: float) -> int:
        assert self.info.end_ms is not None
        self.clock[0] = self.info.end_ms - int(seconds_left * 1000)
        return self.clock[0]

    def statuses(self) -> dict[str, str]:
        return {o.token_id: o.status.value for o in self.store.list_orders()}

    async def book(self, token: str, ask: str) -> None:
        bid = str(D(ask) - D("0.01"))
        b = OrderBook(token, self.info.condition_id, (BookLevel(D(bid), D(100)),), (BookLevel(D(ask), D(1000)),), 0)
        self.books.books[token] = b
        await self.runner.deliver(
            BookChanged(
                token_id=token, condition_id=self.info.condition_id, bids=b.bids, asks=b.asks, ts_ms=self.clock[0]
            )
        )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(_scenario_lines()) + "\n")
    (_, info), _ = markets_of(read_scenario(path))
    store = SQLiteStore(tmp_path / "x.db")
    params = MarketParamsCache(None)  # type: ignore[arg-type]
    for token in info.token_ids:
        params.put(MarketParams(token_id=token, tick_size=D("0.01"), neg_risk=False, fees=info.fees))
    clock = [0]
    books = Books()
    ex = Executor(
        store=store, risk=RiskGate(Settings().risk), budget=LocalBudget(50, clock=lambda: 0.0), params=params,
        dry_run=True, paper=PaperExchange(D(1000)), books=books, clock=lambda: clock[0] / 1000,
    )  # fmt: skip
    await ex.start()
    view = MemoryView([info], clock=lambda: clock[0])
    strategy = SnipeStrategy(view, {"confirm_reference": False})
    runner = Runner(strategy, view, ex, DecisionLog(store, mode="dry-run", run_id="r"), store=store, prearm=True)
    r = Rig(store, ex, books, view, runner, info, clock)
    r.at(600)
    await runner.start()
    yield r
    await runner.stop()
    await ex.close()
    store.close()


async def test_armed_before_the_window_fired_on_the_tick_the_other_side_retired_at_the_end(rig: Rig) -> None:
    up, down = rig.info.token_ids
    rig.at(60 + ARM_LEAD_S + 1)
    assert await rig.runner.arm_ahead() == 0 and rig.store.list_orders() == []  # not yet
    rig.at(60 + ARM_LEAD_S - 1)
    assert await rig.runner.arm_ahead() == 2
    assert rig.statuses() == {up: "armed", down: "armed"}  # recorded before anything is sent
    assert await rig.runner.arm_ahead() == 0  # armed once
    for o in rig.store.list_orders():
        assert o.metadata is not None and o.metadata["retire_at_ms"] == rig.info.end_ms

    rig.at(30)
    await rig.book(down, "0.06")
    await rig.book(up, "0.95")  # into the band: the entry fires the armed Up order
    (sent,) = rig.runner.sent.values()
    assert sent.result is not None and sent.result.status is OrderStatus.FILLED and sent.intent.token_id == up
    assert rig.statuses() == {up: "filled", down: "armed"}
    assert list(rig.runner.armed) != [] and len(rig.ex.armed()) == 1
    assert rig.runner.strategy.metrics.fills == 1

    rig.at(-1)  # the market ended: what was never fired is retired, not sent
    await rig.runner.arm_ahead()
    assert rig.statuses() == {up: "filled", down: "not_sent"} and rig.ex.armed() == [] and rig.runner.armed == {}
    filled = next(o for o in rig.store.list_orders() if o.token_id == up)
    assert len(rig.store.fills_of_order(filled.key)) == 1


async def test_a_different_order_under_an_armed_key_retires_it_and_is_submitted_as_usual(rig: Rig) -> None:
    up, _ = rig.info.token_ids
    rig.at(60)
    assert await rig.runner.arm_ahead() == 2
    entry = next(e for e in rig.runner.armed.values() if e.intent.token_id == up)
    rig.books.books[up] = OrderBook(up, rig.info.condition_id, (), (BookLevel(D("0.95"), D(1000)),), 0)
    # the strategy asks for another size under the armed key: what it did not ask for is never fired
    other = replace(entry.intent, size=entry.intent.size - 1)
    await rig.runner.process(Output(intents=(other,)))
    (rec,) = [o for o in rig.store.list_orders() if o.token_id == up]
    assert rec.status is OrderStatus.FILLED and rec.size == other.size  # the new order, under the same key


async def test_a_fire_that_could_not_execute_ends_not_sent_for_the_strategy(rig: Rig) -> None:
    up, down = rig.info.token_ids
    rig.at(45)
    assert await rig.runner.arm_ahead() == 2
    await rig.book(down, "0.06")
    rig.books.down = True  # the executor's paper book source fails at fire time
    await rig.book(up, "0.95")
    (sent,) = rig.runner.sent.values()
    assert sent.result is not None and sent.result.status is OrderStatus.NOT_SENT
    assert rig.statuses()[up] == "not_sent" and up not in {e.intent.token_id for e in rig.runner.armed.values()}
    assert not rig.ex.risk.open_keys()
    stored = json.dumps([o.error for o in rig.store.list_orders() if o.token_id == up])
    assert "not sent" in stored


async def test_a_paused_strategy_anticipates_nothing(rig: Rig) -> None:
    rig.runner.strategy.pause("operator")
    rig.at(60)
    assert await rig.runner.arm_ahead() == 0 and rig.store.list_orders() == []
    await asyncio.sleep(0)


async def test_an_armed_order_whose_terms_changed_is_rearmed_with_the_new_ones(rig: Rig) -> None:
    from dataclasses import replace as dc_replace

    from pmbot.polymarket.models import FeeSchedule

    up, _ = rig.info.token_ids
    rig.at(60)
    assert await rig.runner.arm_ahead() == 2
    old = next(e for e in rig.runner.armed.values() if e.intent.token_id == up)
    assert old.intent.price == D("0.99")
    # the market's fee schedule changed (a refresh from the venue): the sniper's limit is lower now
    steep = dc_replace(rig.info, fees=FeeSchedule(rate=D(1)))
    rig.view.set_market(steep)
    rig.info = steep
    assert await rig.runner.arm_ahead() == 2
    new = next(e for e in rig.runner.armed.values() if e.intent.token_id == up)
    assert new.intent.price < old.intent.price and new.stored_key == old.stored_key
    rec = rig.store.get_order(new.stored_key)
    assert rec is not None and rec.status is OrderStatus.ARMED and rec.price == new.intent.price
    await rig.book(up, str(new.intent.price))  # in band, at the new limit: fires the re-armed order
    (sent,) = rig.runner.sent.values()
    assert sent.result is not None and sent.result.status is OrderStatus.FILLED
    assert sent.intent.price == new.intent.price


async def test_a_failing_anticipate_costs_the_pre_arming_never_the_entry(rig: Rig) -> None:
    up, down = rig.info.token_ids

    def broken(now_ms: int) -> list[object]:
        raise ValueError("bug in a prediction")

    rig.runner.strategy.anticipate = broken  # type: ignore[method-assign,assignment]
    rig.at(45)
    assert await rig.runner.arm_ahead() == 0
    await rig.book(down, "0.06")
    await rig.book(up, "0.95")
    (sent,) = rig.runner.sent.values()
    assert sent.result is not None and sent.result.status is OrderStatus.FILLED  # submitted as usual


async def test_an_entrys_decisions_are_logged_in_order_and_written_as_rows_after_the_post(rig: Rig) -> None:
    """The hot path: the output's decisions join the log in order before the armed order fires (also when
    the send then dies, cancelled mid-POST), but their store rows are built when the log is written."""
    up, down = rig.info.token_ids
    rig.at(45)
    assert await rig.runner.arm_ahead() == 2
    rig.runner.defer_decisions = True  # as the live feed runs it: written between events
    await rig.book(down, "0.06")
    rig.runner.flush_decisions()
    log = rig.runner.decisions
    built: list[str] = []
    row = log._decision_row

    def counting_row(d: object) -> object:
        built.append(d.kind.value)  # type: ignore[attr-defined]
        return row(d)  # type: ignore[arg-type]

    log._decision_row = counting_row  # type: ignore[method-assign,assignment]
    seen: list[list[str]] = []

    async def dying_fire(key: str, **kw: object) -> object:
        seen.append([d.kind.value for d in log._pending])
        raise asyncio.CancelledError

    rig.ex.fire = dying_fire  # type: ignore[method-assign,assignment]
    with pytest.raises(asyncio.CancelledError):
        await rig.book(up, "0.95")
    assert seen == [["signal"]] and built == []  # in the log before the POST; no row built on its path
    rig.runner.flush_decisions()
    assert built == ["signal"]
    (signal,) = [d for d in rig.store.list_decisions(mode="dry-run") if d.kind == "signal"]
    assert signal.intent_key is not None and signal.token_id == up
