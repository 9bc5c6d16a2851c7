"""The runner end to end: `pmbot sim` over real sockets (dry-run sniping), the backtest of a small
hand-made scenario (trades and PnL computed by hand), duplicates, and bad input (exit 2, nothing written)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.app import App
from pmbot.cli import main
from pmbot.config import Settings
from pmbot.executor.intents import OrderIntent
from pmbot.runner.backtest import run_backtest
from pmbot.runner.core import DecisionLog, Runner
from pmbot.runner.session import TargetSpec, run_session
from pmbot.sim.scenario_file import read_scenario
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import OrderType, Query, Side
from pmbot.strategies.base import Output
from pmbot.strategies.snipe import SnipeStrategy

D = Decimal
CID_A, CID_B = "0x" + "aa" * 32, "0x" + "bb" * 32
T0 = 1_800_000_000_000  # epoch ms: market A ends at T0 + 900 s, market B at T0 + 1800 s


def invoke(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


# ------------------------------------------------------------------------------ the sim, real sockets


def test_dry_run_snipe_against_the_sim_buys_once_and_books_the_win(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    sim = sim_env
    cur = sim.current_market()
    app = App(clock=sim.now)

    async def drive() -> Any:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_session(
                app,
                lambda v: SnipeStrategy(v, {}),
                TargetSpec(token_id=cur["token_ids"][0]),
                dry_run=True,
                duration_s=None,
                stop=stop,
                tick_s=0.02,
                rediscover_s=0.5,
            )
        )
        await asyncio.sleep(0.5)
        while sim.now() < cur["end"] + 5:
            await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        stop.set()
        return await task

    session = asyncio.run(drive())
    app.close()
    m = session.runner.strategy.metrics
    assert m.signals == 1 and m.intents == 1 and m.fills == 1
    assert m.wins + m.losses == 1  # the market resolved on the market channel: booked at once
    assert sim.received_orders() == []  # dry-run: nothing reached the venue
    store = open_store(db_url)
    orders = store.list_orders(query=Query(dry_run=True))
    # both sides were pre-armed before the window; the entry fired one, the other was retired unsent
    assert [o.strategy for o in orders] == ["snipe", "snipe"] and all(o.key.startswith("dry-run:") for o in orders)
    by_status = {o.status.value: o for o in orders}
    assert set(by_status) == {"filled", "not_sent"}, by_status
    assert by_status["not_sent"].error is not None and "armed order never sent" in by_status["not_sent"].error
    (fired,) = session.runner.sent.values()
    assert fired.result is not None and fired.result.key == by_status["filled"].key
    decisions = store.list_decisions(mode="dry-run")
    entry = [d for d in decisions if d.kind == "signal"]
    assert len(entry) == 1 and entry[0].reason == "entry" and entry[0].detail["rule"] == "chainlink btc/usd spot"
    assert {d.run_id for d in decisions} == {session.run_id}
    assert store.list_decisions(mode="backtest") == [] and store.list_decisions(mode="live") == []
    store.close()
    # the fill traced back to the decision that caused it: `pmbot trades --why`
    code, out = invoke("trades", "--why", "--json")
    assert code == 0, out
    rows = json.loads(out)
    (fill,) = [r for r in rows if r["kind"] == "fill"]
    assert fill["order_key"] == by_status["filled"].key
    cause = fill["decision"]
    assert cause["reason"] == "entry" and cause["kind"] == "signal" and cause["run_id"] == session.run_id
    assert cause["intent_key"] == fill["order_key"].removeprefix("dry-run:") and cause["detail"] == entry[0].detail
    assert all(r["decision"] is None for r in rows if r["kind"] != "fill")  # a payout has no decision of its own
    code, out = invoke("trades", "--why")
    assert code == 0 and "entry" in out and "why" in out, out


def test_unknown_token_or_slug_is_one_line_exit_2_and_nothing_written(sim_env: SimServer, db_url: str) -> None:
    import os

    os.environ["PMBOT_DATABASE_URL"] = db_url
    path = Path(db_url.removeprefix("sqlite:///"))
    closed = next(m["slug"] for m in sim_env.markets() if m["closed"])
    for args in (
        ("snipe", "--token-id", "123456789", "--duration", "1s", "--no-live"),
        ("snipe", "--market", "no-such-market", "--duration", "1s", "--no-live"),
        ("snipe", "--auto", "--series", "doge-updown-1m", "--duration", "1s", "--no-live"),
        ("snipe", "--market", closed, "--duration", "1s", "--no-live"),  # a closed market
    ):
        code, out = invoke(*args)
        assert code == 2, out
        assert "Traceback" not in out and out.strip().splitlines()[0].startswith("error"), out
    assert not path.exists() or open_store(db_url).list_decisions() == []


@pytest.mark.parametrize(
    "args",
    [
        ("snipe",),  # no target
        ("snipe", "--token-id", "1", "--market", "x"),  # two targets
        ("snipe", "--auto", "--min-price", "1.2"),  # band outside (0, 1)
        ("snipe", "--auto", "--min-price", "0.99", "--max-price", "0.95"),  # min > max
        ("snipe", "--auto", "--window", "0"),  # window <= 0
        ("snipe", "--auto", "--shares", "5", "--usdc", "5"),
        ("snipe", "--auto", "--type", "GTC"),
        ("backtest", "snipe", "--param", "nope=1"),
        ("backtest", "snipe", "--param", "window_s=0"),
        ("backtest", "snipe", "--scenario", "no-such-file.jsonl"),
        ("backtest", "snipe", "--hours", "0"),
        ("backtest", "show", "bt-missing"),
    ],
)
def test_bad_input_exits_2_without_writing(args: tuple[str, ...], db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    code, out = invoke(*args)
    assert code == 2, out
    assert "Traceback" not in out
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_malformed_scenario_names_its_line(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    bad = tmp_path / "bad.jsonl"
    lines = _scenario_lines()
    lines.insert(3, "{not json")
    bad.write_text("\n".join(lines) + "\n")
    code, out = invoke("backtest", "snipe", "--scenario", str(bad))
    assert code == 2 and f"{bad}:4" in out, out
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


# ------------------------------------------------------------------------------ hand-made backtest


def _gamma(cid: str, up: str, down: str, end_ms: int, slug: str) -> dict[str, Any]:
    def iso(ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "conditionId": cid,
        "slug": slug,
        "question": slug,
        "clobTokenIds": json.dumps([up, down]),
        "outcomes": json.dumps(["Up", "Down"]),
        "endDate": iso(end_ms),
        "eventStartTime": iso(end_ms - 900_000),
        "orderPriceMinTickSize": 0.01,
        "orderMinSize": 5,
        "feeSchedule": {"rate": 0.072, "exponent": 1, "takerOnly": True},
        "acceptingOrders": True,
        "closed": False,
        "description": "This market will resolve to Up per Chainlink BTC/USD data stream.",
        "resolutionSource": "https://data.chain.link/streams/btc-usd",
    }


def _book(cid: str, token: str, ts: int, ask: str, bid: str) -> dict[str, Any]:
    return {
        "ts": ts,
        "source": "market",
        "data": {
            "event_type": "book",
            "market": cid,
            "asset_id": token,
            "timestamp": str(ts),
            "hash": "h",
            "bids": [{"price": bid, "size": "100"}],
            "asks": [{"price": ask, "size": "100"}],
        },
    }


def _resolved(cid: str, tokens: list[str], winner: str, ts: int) -> dict[str, Any]:
    return {
        "ts": ts,
        "source": "market",
        "data": {
            "event_type": "market_resolved",
            "market": cid,
            "assets_ids": tokens,
            "winning_asset_id": winner,
            "winning_outcome": "Up" if winner == tokens[0] else "Down",
            "timestamp": str(ts),
        },
    }


def _scenario_lines() -> list[str]:
    end_a, end_b = T0 + 900_000, T0 + 1_800_000
    header = {
        "format": "pmbot-scenario",
        "version": 1,
        "created_ms": T0,
        "markets": [_gamma(CID_A, "1001", "1002", end_a, "mkt-a"), _gamma(CID_B, "2001", "2002", end_b, "mkt-b")],
    }
    events = [
        # A: too early at first (ask in band 10 min before the end), then in band 30 s before the end
        _book(CID_A, "1001", T0 + 300_000, "0.95", "0.94"),
        _book(CID_A, "1002", T0 + 300_000, "0.06", "0.05"),
        _book(CID_A, "1001", end_a - 30_000, "0.95", "0.94"),
        _resolved(CID_A, ["1001", "1002"], "1001", end_a + 1_000),  # Up wins
        # B: Up leads at 0.95 40 s before the end, then flips late: Down wins
        _book(CID_B, "2001", end_b - 40_000, "0.95", "0.94"),
        _book(CID_B, "2002", end_b - 40_000, "0.06", "0.05"),
        _book(CID_B, "2001", end_b - 3_000, "0.30", "0.20"),
        _resolved(CID_B, ["2001", "2002"], "2002", end_b + 1_000),
    ]
    return [json.dumps(header)] + [json.dumps(e) for e in events]


def test_hand_made_backtest_gives_the_trades_and_pnl_computed_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(_scenario_lines()) + "\n")
    scenario = read_scenario(path)
    cfg = {"shares": "10", "max_price": "0.95", "confirm_reference": False}
    log = DecisionLog(None, mode="backtest", run_id="bt-test")
    res = asyncio.run(
        run_backtest(scenario, lambda v: SnipeStrategy(v, cfg), Settings(), run_id="bt-test", params=cfg, decisions=log)
    )
    doc = res.as_json()
    assert set(doc) == {"run_id", "params", "markets", "signals", "skips", "trades", "summary"}
    # 10 shares at 0.95: cost 9.50, fee 10 x 0.072 x 0.95 x 0.05 = 0.0342
    a, b = doc["trades"]
    assert (a["market"], a["outcome"], a["side"], a["price"], a["size"], a["fee"]) == (
        "mkt-a", "Up", "BUY", "0.95", "10", "0.0342"
    )  # fmt: skip
    assert (a["payout"], a["pnl"]) == ("10", "0.4658")  # 10 - 9.50 - 0.0342
    assert (b["market"], b["outcome"], b["payout"], b["pnl"]) == ("mkt-b", "Up", "0", "-9.5342")  # the late flip
    # the book stayed in band from 10 min before the end: the timer tick opening the 60 s window enters
    assert a["ts_ms"] == T0 + 900_000 - 60_000
    assert set(a) == {"market", "token_id", "outcome", "side", "price", "size", "fee", "ts_ms", "payout", "pnl"}
    assert doc["summary"] == {
        "trades": 2,
        "wins": 1,
        "losses": 1,
        "win_rate": "0.5",
        "pnl": "-9.0684",
        "fees": "0.0684",
        "max_drawdown": "9.5342",
    }
    assert doc["signals"] == 2 and doc["skips"]["too_early"] >= 1
    assert all(r.mode == "backtest" and r.run_id == "bt-test" for r in log.rows)


def test_backtest_cli_stores_under_its_run_id_apart_from_dry_run(tmp_path: Path, db_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(_scenario_lines()) + "\n")
    args = ("backtest", "snipe", "--scenario", str(path), "--param", "shares=10", "--param", "max_price=0.95")
    code, out = invoke(*args, "--param", "confirm_reference=false", "--json")
    assert code == 0, out
    doc = json.loads(out)
    assert doc["summary"]["pnl"] == "-9.0684"
    code, out = invoke("backtest", "show", doc["run_id"], "--json")
    assert code == 0 and json.loads(out) == doc
    code, out = invoke("backtest", "list", "--json")
    assert code == 0 and [r["run_id"] for r in json.loads(out)] == [doc["run_id"]]
    store = open_store(db_url)
    assert store.list_orders() == [] and store.list_trades() == []  # never in the ledger
    assert store.list_decisions() == []  # the default (live + dry-run) view does not see it
    assert store.list_decisions(mode="dry-run") == []
    assert len(store.list_decisions(run_id=doc["run_id"])) > 0
    store.close()
    code, out = invoke("trades", "--backtest", doc["run_id"], "--json")
    assert code == 0 and json.loads(out) == doc["trades"]
    code, out = invoke("trades", "--dry-run", "--json")
    assert code == 0 and json.loads(out) == []  # the dry-run filter never sees a backtest
    code, out = invoke("snipe", "--report", "--backtest", doc["run_id"], "--json")
    assert code == 0 and {r["mode"] for r in json.loads(out)} == {"backtest"}
    code, out = invoke(*args, "--sweep", "min_edge=0.005,0.2", "--param", "confirm_reference=false", "--json")
    assert code == 0, out
    rows = json.loads(out)
    assert [r["params"]["min_edge"] for r in rows] == ["0.005", "0.2"]
    assert rows[0]["summary"]["trades"] == 2 and rows[1]["summary"]["trades"] == 0  # edge 0.0466 < 0.2
    assert rows[1]["skips"].get("edge_below_min", 0) >= 1


def test_sim_scenario_writes_a_file_the_backtest_reads(tmp_path: Path, db_url: str, monkeypatch: Any) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    out_file = tmp_path / "btc.jsonl"
    code, out = invoke("sim", "scenario", "--hours", "0.5", "--out", str(out_file))
    assert code == 0, out
    scenario = read_scenario(out_file)
    assert scenario.markets and scenario.events
    code, out = invoke("backtest", "snipe", "--scenario", str(out_file), "--json")
    assert code == 0, out
    assert json.loads(out)["summary"]["trades"] >= 0


# ------------------------------------------------------------------------------ duplicates


def test_a_thousand_duplicate_signals_make_one_order(tmp_path: Path) -> None:
    """The same intent 1 000 times through the runner and the real dry-run executor: one stored order."""
    from pmbot.runner.backtest import markets_of
    from pmbot.strategies.memview import MemoryView

    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(_scenario_lines()) + "\n")
    scenario = read_scenario(path)
    (_, info), _ = markets_of(scenario)

    async def go() -> tuple[int, int]:
        from pmbot.executor.budget import LocalBudget
        from pmbot.executor.engine import Executor
        from pmbot.executor.paper import PaperExchange
        from pmbot.executor.risk import RiskGate
        from pmbot.polymarket.models import BookLevel, MarketParams, OrderBook
        from pmbot.polymarket.params import MarketParamsCache
        from pmbot.store.sqlite import SQLiteStore

        class Books:
            async def book(self, token_id: str) -> OrderBook:
                return OrderBook(
                    token_id, info.condition_id, (BookLevel(D("0.94"), D(100)),), (BookLevel(D("0.95"), D(1000)),), 0
                )

        store = SQLiteStore(tmp_path / "x.db")
        params = MarketParamsCache(None)  # type: ignore[arg-type]
        params.put(MarketParams(token_id="1001", tick_size=D("0.01"), neg_risk=False, fees=info.fees))
        s = Settings()
        ex = Executor(
            store=store, risk=RiskGate(s.risk), budget=LocalBudget(50, clock=lambda: 0.0), params=params,
            dry_run=True, paper=PaperExchange(D(1000)), books=Books(),
        )  # fmt: skip
        await ex.start()
        view = MemoryView([info])
        strategy = SnipeStrategy(view, {})
        runner = Runner(strategy, view, ex, DecisionLog(None, mode="dry-run", run_id="r"))
        await runner.start()
        intent = OrderIntent(
            key="snipe-dup", strategy="snipe", token_id="1001", condition_id=info.condition_id, side=Side.BUY,
            price=D("0.95"), size=D(5), order_type=OrderType.FOK, signal_ms=1,
        )  # fmt: skip
        await runner.process(Output(intents=tuple([intent] * 1000)))
        await ex.close()
        n = len(store.list_orders())
        fills = len(store.list_trades())
        store.close()
        return n, fills

    orders, fills = asyncio.run(go())
    assert (orders, fills) == (1, 1)


# ------------------------------------------------------------------------------ live, restart


KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat test key #0


def test_live_snipe_on_the_sim_posts_once_even_across_a_restart(
    sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Live through the sim: one POST /order for the entry; a second run in the same window (a restart)
    derives the same key, the executor answers from its record, and nothing is sent twice."""
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    sim = sim_env
    cur = sim.current_market()
    sim.advance(cur["end"] - sim.now() - 40)  # 40 s left: inside the window

    def one_run(seconds: int) -> Any:
        app = App(clock=sim.now)

        async def drive() -> Any:
            stop = asyncio.Event()
            task = asyncio.create_task(
                run_session(
                    app,
                    lambda v: SnipeStrategy(v, {}),
                    TargetSpec(token_id=cur["token_ids"][0]),
                    dry_run=False,
                    duration_s=None,
                    stop=stop,
                    tick_s=0.02,
                )
            )
            for _ in range(seconds):
                await asyncio.sleep(0.3)
                await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.3)
            stop.set()
            return await task

        try:
            return asyncio.run(drive())
        finally:
            app.close()

    first = one_run(3)
    assert first.runner.strategy.metrics.intents == 1
    assert len(sim.received_orders()) == 1
    second = one_run(3)
    (sent,) = second.runner.sent.values()
    assert sent.result is not None and sent.result.duplicate and not sent.result.dry_run
    assert len(sim.received_orders()) == 1  # nothing sent twice
    store = open_store(db_url)
    orders = store.list_orders(query=Query(dry_run=False))
    # the entry, and the other side: pre-armed (signed, recorded) and retired unsent
    assert sorted(o.status.value for o in orders) == ["filled", "not_sent"], orders
    assert {d.mode for d in store.list_decisions()} == {"live"}
    store.close()


def test_a_dropped_market_channel_blinds_the_books_until_the_next_snapshot() -> None:
    from pmbot.polymarket.models import BookLevel, BookSnapshot, LevelChange, OrderBook, PriceChange
    from pmbot.runner.feed import Translator

    t = Translator({"1001": CID_A})
    snap = BookSnapshot(OrderBook("1001", CID_A, (BookLevel(D("0.94"), D(10)),), (BookLevel(D("0.95"), D(10)),), 1))
    (changed,) = t.translate(snap, 1)
    assert changed.best_ask == D("0.95")
    (blind,) = t.blind(2)
    assert blind.asks == () and blind.bids == () and t.order_book("1001") is None
    change = PriceChange(CID_A, (LevelChange("1001", Side.SELL, D("0.93"), D(5)),), 3)
    assert t.translate(change, 3) == []  # a change on a blind book is not a book
    (again,) = t.translate(snap, 4)
    assert again.best_ask == D("0.95") and t.order_book("1001") is not None


def test_the_feeds_books_are_checked_against_the_venues_best_prices(caplog: pytest.LogCaptureFixture) -> None:
    """A feed's own market stream keeps no books (the Translator's are the feed's), so the Translator makes
    the stream's check: a change whose reported best ask is not the book's (a missed update) is counted,
    said once, and blinds the book (an empty event; later changes ignored until a snapshot: see
    tests/test_review_feed_mismatch.py)."""
    from pmbot.polymarket.models import BookLevel, BookSnapshot, LevelChange, OrderBook, PriceChange
    from pmbot.runner.feed import Translator

    t = Translator({"1001": CID_A})
    t.translate(
        BookSnapshot(OrderBook("1001", CID_A, (BookLevel(D("0.94"), D(10)),), (BookLevel(D("0.95"), D(10)),), 1)), 1
    )
    ok = PriceChange(CID_A, (LevelChange("1001", Side.SELL, D("0.93"), D(5), D("0.94"), D("0.93")),), 2)
    assert len(t.translate(ok, 2)) == 1 and t.books["1001"].mismatches == 0
    with caplog.at_level("WARNING", logger="pmbot.runner.feed"):
        off = PriceChange(CID_A, (LevelChange("1001", Side.BUY, D("0.90"), D(5), D("0.94"), D("0.92")),), 3)
        (changed,) = t.translate(off, 3)
        assert changed.best_ask is None and changed.asks == ()  # not the wrong 0.93
        assert t.translate(off, 4) == []  # blind: ignored until a snapshot
    assert t.books["1001"].mismatches == 1 and t.resync == {"1001"}
    assert [r.getMessage() for r in caplog.records].count(
        "feed: local book of 1001 disagrees with the venue's best bid/ask (0.94/0.93 vs 0.94/0.92)"
    ) == 1


def test_live_sniping_needs_a_key_and_a_yes(sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    token = sim_env.current_market()["token_ids"][0]
    code, out = invoke("snipe", "--token-id", token, "--live", "--duration", "1s", "--no-live")
    assert code == 2 and "wallet key" in out, out
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    monkeypatch.setattr("sys.stdin", io.StringIO("n\n"))
    code, out = invoke("snipe", "--token-id", token, "--live", "--duration", "1s", "--no-live")
    assert code != 0 and "LIVE sniping" in out, out
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # refused before anything was written
    assert sim_env.received_orders() == []


def test_a_resting_order_filled_by_a_later_book_reaches_the_strategy(tmp_path: Path) -> None:
    """Strategy-agnostic runner: a GTC that rests, then fills on a later book (paper), is told to its
    strategy as an OrderFilled with the store's trade id, once; the resolution books the win."""
    from pmbot.strategies.base import Strategy, StrategyConfig
    from pmbot.strategies.events import BookChanged, Event, OrderFilled

    seen: list[OrderFilled] = []

    class Rester(Strategy[StrategyConfig]):
        name = "rester"

        def on_event(self, event: Event) -> None:
            if isinstance(event, OrderFilled):
                seen.append(event)
            if isinstance(event, BookChanged) and event.token_id == "1001" and not self.was_sent("rest-1"):
                self.submit(
                    OrderIntent(
                        key="rest-1", strategy=self.name, token_id="1001", condition_id=CID_A, side=Side.BUY,
                        price=D("0.90"), size=D(10), order_type=OrderType.GTC, signal_ms=event.ts_ms,
                    )
                )  # fmt: skip

    end_a = T0 + 900_000
    header = json.loads(_scenario_lines()[0])
    header["markets"] = header["markets"][:1]
    events = [
        _book(CID_A, "1001", T0 + 300_000, "0.95", "0.94"),  # the GTC at 0.90 rests
        _book(CID_A, "1001", T0 + 400_000, "0.96", "0.94"),  # still not crossed
        _book(CID_A, "1001", T0 + 500_000, "0.90", "0.85"),  # an ask at 0.90: the resting BUY fills
        _book(CID_A, "1001", T0 + 600_000, "0.90", "0.85"),
        _resolved(CID_A, ["1001", "1002"], "1001", end_a + 1_000),
    ]
    path = tmp_path / "rest.jsonl"
    path.write_text("\n".join([json.dumps(header)] + [json.dumps(e) for e in events]) + "\n")
    holder: dict[str, Any] = {}

    def make(view: Any) -> Rester:
        holder["s"] = Rester(view, {})
        return holder["s"]

    log = DecisionLog(None, mode="backtest", run_id="bt-rest")
    res = asyncio.run(run_backtest(read_scenario(path), make, Settings(), run_id="bt-rest", params={}, decisions=log))
    assert len(seen) == 1 and seen[0].fill_id.startswith("paper:") and seen[0].price == D("0.90")
    assert seen[0].ts_ms == T0 + 500_000
    m = holder["s"].metrics
    assert (m.fills, m.wins, m.losses) == (1, 1, 0)
    assert m.realized_pnl == D(10) - D("9.00")  # maker fill: no taker fee
    assert res.summary["pnl"] == "1"
