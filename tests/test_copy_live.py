"""`pmbot copy` end to end on `pmbot sim` over real sockets: the whale (`distinct-baguette`) trades, the copy
feed sees it on the chain, RTDS and the Data API, and the copy strategy mirrors it through the real dry-run
executor. The sim's clock is manual: it moves one second per step, so every run is deterministic."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.app import App
from pmbot.polymarket import identity
from pmbot.runner.copy_feed import chain_fill, latency_quantiles
from pmbot.runner.copy_session import CopySession, run_copy_session
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.copy_rows import CopyDecisionRow
from pmbot.store.models import Query, Side
from pmbot.strategies.events import TargetSource

WHALE = "distinct-baguette"
REPO = Path(__file__).resolve().parent.parent


def _session(
    sim: SimServer,
    app: App,
    steps: int,
    *,
    targets: list[str] | None = None,
    sources: tuple[str, ...] | None = None,
    during: Callable[[int, CopySession], Any] | None = None,
    settle_s: float = 0.4,
) -> CopySession:
    """One dry-run copy session while the sim moves `steps` seconds (one per ~0.15 s of wall time)."""
    ready: list[CopySession] = []

    async def drive() -> CopySession:
        stop = asyncio.Event()
        task = asyncio.create_task(
            run_copy_session(
                app,
                app.settings.copy,
                targets or [WHALE],
                dry_run=True,
                duration_s=None,
                stop=stop,
                on_ready=ready.append,
                sources=sources,
                tick_s=0.05,
            )
        )
        for _ in range(100):  # the session is up (targets resolved, sockets opening)
            if ready or task.done():
                break
            await asyncio.sleep(0.05)
        for _ in range(100):  # the streams connected and subscribed
            feed = ready[0].feed if ready else None
            if feed is not None and all(
                h.state in ("connected", "polling") for s, h in feed.health.items() if s is not TargetSource.DATA_API
            ):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        for i in range(steps):
            if during is not None and ready:
                res = during(i, ready[0])
                if asyncio.iscoroutine(res):
                    await res
            await asyncio.to_thread(sim.advance, 1)
            await asyncio.sleep(0.15)
        await asyncio.sleep(settle_s)
        stop.set()
        return await task

    return asyncio.run(drive())


def _rows(db_url: str) -> list[CopyDecisionRow]:
    store = open_store(db_url)
    try:
        return list(reversed(store.list_copy_decisions(mode="dry-run")))
    finally:
        store.close()


def _whale_fills(sim: SimServer) -> dict[str, dict[str, Any]]:
    """The whale's own fills by tx hash (its taker order's OrderFilled log: whole size, its token and side)."""
    whale = sim.whale_address.lower()
    out = {}
    for log in sim.chain_logs():
        s = chain_fill(log, [whale], 0)
        if s is not None:
            out[s.trade.tx_hash] = {"token": s.trade.token_id, "side": s.trade.side, "size": s.trade.size}
    return out


def _orders_per_tx(db_url: str) -> Counter[str]:
    """Our stored orders, counted per whale transaction they copy (from the copied decisions' order keys)."""
    store = open_store(db_url)
    try:
        keys = {o.key for o in store.list_orders(query=Query(dry_run=True))}
        per_tx: Counter[str] = Counter()
        for r in store.list_copy_decisions(mode="dry-run"):
            if r.copied:
                assert r.order_key in keys, f"copied decision without a stored order: {r}"
                per_tx[r.tx_hash] += 1
        assert len(keys) == sum(per_tx.values())  # no order that no decision explains
        return per_tx
    finally:
        store.close()


@pytest.fixture
def copy_env(sim_env: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    return sim_env


def test_whale_trades_are_mirrored_with_the_right_outcome_and_size_once_across_three_sources(
    copy_env: SimServer, db_url: str
) -> None:
    sim = copy_env
    app = App(clock=sim.now)
    session = _session(sim, app, 30)
    app.close()
    rows = _rows(db_url)
    copied = [r for r in rows if r.copied]
    assert len(copied) >= 3, rows
    assert sim.received_orders() == []  # dry-run: nothing reached the venue
    whale = _whale_fills(sim)
    markets = {t: m for m in sim.markets() for t in m["token_ids"]}
    for r in copied:
        m = markets[r.token_id]
        assert r.condition_id == m["condition_id"]
        # the outcome comes from our market cache: the token's position in the market's outcomes
        assert r.outcome == ("Up" if m["token_ids"].index(r.token_id) == 0 else "Down")
        assert r.tx_hash in whale and whale[r.tx_hash]["token"] == r.token_id
        assert r.side == whale[r.tx_hash]["side"].value
        assert r.order_key is not None and r.order_key.startswith("dry-run:")
        assert r.order_key.removeprefix("dry-run:") == r.intent_key
        assert r.order_ts is not None and r.target_ts is not None and r.order_ts >= r.target_ts
        if r.side == "BUY" and "capped_by" not in r.detail:  # mode ratio 0.1, shares rounded down to 0.01
            assert r.target_size is not None and r.order_size is not None
            assert r.order_size == (r.target_size * Decimal("0.1")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
    # each whale transaction: one order, however many sources (and pieces) reported it
    per_tx = _orders_per_tx(db_url)
    assert per_tx and max(per_tx.values()) == 1
    # the same fill came from all three sources: one copy decision, the others recorded `duplicate`
    by_fill: dict[str, list[CopyDecisionRow]] = {}
    for r in rows:
        by_fill.setdefault(r.fill_id, []).append(r)
    three = [rs for rs in by_fill.values() if set().union(*(r.seen_ms() for r in rs)) >= {"chain", "rtds", "data_api"}]
    assert three, "no fill seen by all three sources"
    for rs in three:
        assert sum(r.copied for r in rs) <= 1
        assert all(r.reason == "duplicate" for r in rs if not r.copied and r is not rs[0])
    health = session.feed.health if session.feed else {}
    assert {str(s): h.events > 0 for s, h in health.items()} == {"chain": True, "rtds": True, "data_api": True}


def _drop_rpc(v: Any) -> None:
    for c in list(v.hub.rpc):
        c.close()


def test_chain_source_killed_mid_run_rtds_and_data_api_carry_on_nothing_copied_twice(
    copy_env: SimServer, db_url: str
) -> None:
    sim = copy_env
    app = App(clock=sim.now)
    outage = range(8, 22)
    back_at: list[int] = []

    async def during(i: int, s: CopySession) -> None:
        assert s.feed is not None
        chain = s.feed.health[TargetSource.CHAIN]
        if i == outage.start:  # the RPC goes away: open sockets closed, reconnects refused
            sim.set_faults(rpc_down=1)
            sim.call(_drop_rpc)
        if i == outage.stop:
            sim.set_faults(rpc_down=0)
            for _ in range(200):  # the sim's clock waits while the chain source reconnects (backing off)
                if chain.state == "connected":
                    break
                await asyncio.sleep(0.05)
            back_at.append(int(sim.now() * 1000))

    session = _session(sim, app, 36, during=during, settle_s=1.0)
    app.close()
    rows = _rows(db_url)
    start = 1_795_000_000_000
    # fills whose logs were emitted while the RPC was down (a log comes 2 s after the match)
    lo, hi = start + (outage.start + 1) * 1000, start + (outage.stop - 2) * 1000
    in_outage = [r for r in rows if r.copied and r.target_ts is not None and lo < r.target_ts < hi]
    assert in_outage, "nothing copied while the chain was down"
    assert all("chain" not in r.seen_ms() for r in in_outage)  # the chain never saw those fills
    per_tx = _orders_per_tx(db_url)
    assert max(per_tx.values()) == 1
    assert session.feed is not None
    chain = session.feed.health[TargetSource.CHAIN]
    assert chain.errors >= 1 and chain.state == "connected"  # it went down and came back
    end = int(sim.now() * 1000)
    after: dict[str, set[str]] = {}
    for r in rows:  # every fill matched once the chain was back (and mined before the end) was seen on it
        if r.target_ts and back_at and back_at[0] < r.target_ts < end - 3_000:
            after.setdefault(r.fill_id, set()).update(r.seen_ms())
    assert after and all("chain" in seen for seen in after.values()), after


def test_restart_mid_stream_no_double_copy_no_silent_gap(copy_env: SimServer, db_url: str) -> None:
    """Run, stop, let the whale trade while we are down (12 s: copied on the catch-up, as younger than
    max_age 30 s), run again; then down for 45 s: those fills are recorded `stale`, never silently lost."""
    sim = copy_env
    app = App(clock=sim.now)
    _session(sim, app, 14)
    down1_from = int(sim.now() * 1000)
    sim.advance(12)
    down1_to = int(sim.now() * 1000)
    _session(sim, app, 6, sources=("data_api",), settle_s=2.5)  # the catch-up comes from the Data API
    down2_from = int(sim.now() * 1000)
    sim.advance(45)
    down2_to = int(sim.now() * 1000)
    _session(sim, app, 4, settle_s=2.5)
    app.close()
    rows = _rows(db_url)
    whale = _whale_fills(sim)
    decided = {r.tx_hash for r in rows}

    def txs_between(lo: int, hi: int) -> set[str]:
        return {r.tx_hash for r in rows if r.target_ts is not None and lo < r.target_ts < hi}

    gap1 = {tx for tx in whale if tx in txs_between(down1_from, down1_to)}
    gap2 = {tx for tx in whale if tx in txs_between(down2_from, down2_to - 31_000)}
    assert gap1 and gap2
    first: dict[str, CopyDecisionRow] = {}
    for r in rows:
        first.setdefault(r.fill_id, r)
    assert all(first_r.reason == "copied" for first_r in first.values() if first_r.tx_hash in gap1)
    assert all(first_r.reason == "stale" for first_r in first.values() if first_r.tx_hash in gap2)
    # no silent gap: every whale fill that happened before the last run's end was decided, one way or the other
    last_end = int(sim.now() * 1000)
    matched = {st["tx_hash"]: int(st["match_time"]) * 1000 for st in sim.call(lambda v: list(v.emit_stamps))}
    assert set(whale) <= set(matched)
    due = {tx for tx, ms in matched.items() if ms <= last_end - 2_000}
    assert len(due) >= 8
    assert due <= decided, f"fills never decided: {due - decided}"
    assert max(_orders_per_tx(db_url).values()) == 1  # nothing copied twice across the restarts


def test_sells_are_capped_at_our_holdings_and_unheld_sells_skipped(copy_env: SimServer, db_url: str) -> None:
    sim = copy_env
    sim.advance(40)  # the whale builds positions we never copied: its sells of them are `no_position`
    app = App(clock=sim.now)
    _session(sim, app, 60)
    app.close()
    rows = _rows(db_url)
    store = open_store(db_url)
    try:
        orders = store.list_orders(query=Query(dry_run=True))
        positions = store.list_positions(Query(dry_run=True))
    finally:
        store.close()
    sells = [r for r in rows if r.side == "SELL" and r.reason != "duplicate"]
    assert sells, "the whale did not sell in this run"
    bought: dict[str, Decimal] = {}
    for o in sorted(orders, key=lambda o: o.created_at):
        if o.side is Side.BUY:
            bought[o.token_id] = bought.get(o.token_id, Decimal(0)) + o.filled_size
        else:
            assert o.size <= bought.get(o.token_id, Decimal(0)), "a sell larger than what we hold"
            bought[o.token_id] -= o.filled_size
    assert all(p.size >= 0 for p in positions)
    reasons = {r.reason for r in sells}
    assert reasons <= {"copied", "no_position", "min_size"}, reasons
    assert {"no_position", "copied"} <= reasons  # sells of what it held before us skipped, of what we copied mirrored


def test_v2_market_fills_are_decoded_from_the_position_id_and_combos_skipped(sim: SimServer) -> None:
    whale = sim.whale_address.lower()
    sim.advance(20)
    logs = sim.chain_logs()
    mine = [s for log in logs if (s := chain_fill(log, [whale], 1)) is not None]
    assert mine
    markets = {m["condition_id"]: m for m in sim.markets()}
    for s in mine:
        info = identity.decode_position_id(s.trade.token_id)
        assert info is not None and info.module is identity.Module.BINARY  # the series trades V2 positions
        m = markets[s.trade.condition_id or ""]
        assert m["token_ids"][info.outcome_index] == s.trade.token_id
        assert s.maker is False  # the whale takes: its own log names the exchange as counterparty
        assert s.log_index > 0
    # a combos leg is not a market we trade: skipped
    log = dict(logs[0])
    combos = (3 << 248) | (1 << 8)  # module byte 3
    data = bytes.fromhex(log["data"][2:])
    log["data"] = "0x" + (data[:32] + combos.to_bytes(32, "big") + data[64:]).hex()
    topics = list(log["topics"])
    topics[2] = "0x" + "0" * 24 + whale[2:]
    log["topics"] = topics
    assert chain_fill(log, [whale], 1) is None


def test_latency_quantiles_nearest_rank() -> None:
    assert latency_quantiles([]) == (None, None)
    assert latency_quantiles([5]) == (5, 5)
    assert latency_quantiles(list(range(1, 101))) == (50, 99)


def test_report_json_names_each_decision_and_latency_per_source(copy_env: SimServer, db_url: str) -> None:
    import contextlib
    import io
    import json

    from pmbot.cli import main

    sim = copy_env
    app = App(clock=sim.now)
    _session(sim, app, 20)
    app.close()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["copy", "report", "--since", "3000d", "--json"])
    assert code == 0
    doc = json.loads(out.getvalue())
    (t,) = doc["targets"]
    assert t["target"] == WHALE and t["copied"] >= 1
    assert set(t["latency_ms"]) == {"chain", "rtds", "data_api"}
    assert t["latency_ms"]["rtds"]["fills_seen"] >= 1
    d = next(x for x in doc["decisions"] if x["decision"] == "copied")
    assert d["tx_hash"].startswith("0x") and d["target_ts_ms"] and d["order_ts_ms"] and d["seen_ms"]
    assert d["order_key"].startswith("dry-run:")
    # the orders' statuses as they are now (review: rows said `sending` for orders long filled)
    from pmbot.store import open_store

    store = open_store(db_url)
    try:
        now = {k: o.status.value for k, o in store.get_orders([x["order_key"] for x in doc["decisions"]]).items()}
    finally:
        store.close()
    copied = [x for x in doc["decisions"] if x["decision"] == "copied"]
    assert all(x["order_status"] == now[x["order_key"]] for x in copied)
    assert sum(t["orders"].values()) == t["copied"] and not {"sending", "pending"} & set(t["orders"])


# ------------------------------------------------------------------------------------- the real executable


def _pmbot(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "pmbot"
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=60, cwd=REPO)


@pytest.mark.parametrize(
    "args",
    [
        ("copy", "--duration", "1s"),  # no target, none configured
        ("copy", "--target", "0x1234", "--duration", "1s"),  # malformed address
        ("copy", "--target", "0x" + "g" * 40, "--duration", "1s"),
        ("copy", "--target", "has space", "--duration", "1s"),
        ("copy", "--target", WHALE, "--duration", "0s"),  # bad duration
        ("copy", "--target", WHALE, "--duration", "soon"),
        ("copy", "--target", WHALE, "--source", "telepathy", "--duration", "1s"),
        ("copy", "--target", "nobody-at-all", "--duration", "1s", "--no-live"),  # unknown username
        ("copy", "report", "--since", "yesterday-ish"),
        ("copy", "report", "--target", "0xabc"),
    ],
)
def test_cli_bad_input_one_line_exit_2_nothing_written(args: tuple[str, ...], sim: SimServer, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env(), PMBOT_DATABASE_URL=f"sqlite:///{db}")
    r = _pmbot(*args, env=env)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.lower().startswith("error")]
    assert len(errors) == 1, r.stderr
    assert not db.exists()


def test_two_targets_each_get_their_own_strategy_and_maker_fills_are_flagged(copy_env: SimServer, db_url: str) -> None:
    sim = copy_env
    mm = sim.call(lambda v: v.mm_address).lower()
    app = App(clock=sim.now)
    session = _session(sim, app, 12, targets=[WHALE, mm])
    app.close()
    rows = _rows(db_url)
    whale = sim.whale_address.lower()
    assert {r.target for r in rows} == {whale, mm}
    assert {t.wallet: t.strategy_name for t in session.targets} == {
        whale: f"copy-{whale[2:10]}",
        mm: f"copy-{mm[2:10]}",
    }
    assert {r.strategy for r in rows if r.target == mm} == {f"copy-{mm[2:10]}"}
    # the market maker's fills are maker fills (its logs name the whale, not the exchange, as counterparty)
    # (RTDS and the Data API do not say; the chain's sighting tells the fill group)
    mm_chain = [r for r in rows if r.target == mm and "chain" in r.seen_ms()]
    assert mm_chain and all(r.detail["maker"] == "true" for r in mm_chain)
    whale_chain = [r for r in rows if r.target == whale and "chain" in r.seen_ms()]
    assert whale_chain and all(r.detail["maker"] == "false" for r in whale_chain)


def test_a_first_run_mirrors_from_its_start_not_the_history(copy_env: SimServer, db_url: str) -> None:
    sim = copy_env
    sim.advance(25)  # the whale trades before we start: not ours to copy (nothing was missed)
    started = int(sim.now()) * 1000
    app = App(clock=sim.now)
    session = _session(sim, app, 24, sources=("data_api",), settle_s=0.5)
    app.close()
    rows = _rows(db_url)
    assert rows and all(r.target_ts is not None and r.target_ts >= started for r in rows)
    assert session.feed is not None and session.feed.before_start > 0


def test_cli_json_summary_and_log_lines_against_the_sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pmbot copy` in process: the sim starts at the wall clock's time (the CLI's clock), a thread moves it."""
    import contextlib
    import io
    import json
    import threading
    import time

    from pmbot.cli import main

    with SimServer(seed=7, manual=True, start=time.time()) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'c.db'}")
        config = tmp_path / "pmbot.toml"  # the targets from the file: no --target on the first run
        config.write_text(f'[copy]\nratio = 0.2\n\n[[copy.targets]]\ntarget = "{WHALE}"\nratio = 0.5\n')
        monkeypatch.setenv("PMBOT_CONFIG", str(config))
        done = threading.Event()

        def move() -> None:
            time.sleep(1.0)
            while not done.is_set():
                sim.advance(1)
                time.sleep(0.25)

        mover = threading.Thread(target=move, daemon=True)
        mover.start()
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main(["copy", "--duration", "6s", "--json"])
            out2, err2 = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out2), contextlib.redirect_stderr(err2):
                code2 = main(["copy", "-t", WHALE, "--duration", "4s", "--no-live", "--source", "rtds"])
        finally:
            done.set()
            mover.join()
    assert code == 0, err.getvalue()
    doc = json.loads(out.getvalue())
    assert doc["mode"] == "dry-run" and set(doc) >= {"run_id", "targets", "sources", "orders"}
    (t,) = doc["targets"]
    assert t["target"] == WHALE and t["copied"] >= 1
    assert set(doc["sources"]) == {"chain", "rtds", "data_api"}
    assert all(o["key"].startswith("dry-run:") for o in doc["orders"])
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    # BUYs: a copied SELL needs shares a copied BUY bought first. Which of them a cap cut depends on where
    # in its window the sim starts (the wall clock's minute: near the end prices are extreme).
    copied = [r for r in store.list_copy_decisions() if r.copied and r.side == "BUY"]
    store.close()
    assert copied
    for r in copied:  # the target's own ratio (0.5) over [copy]'s (0.2); a cap only ever cuts it
        assert r.target_size is not None
        want = (r.target_size * Decimal("0.5")).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        assert r.order_size is not None
        assert r.order_size <= want if "capped_by" in r.detail else r.order_size == want, (r.order_size, want)
    assert code2 == 0, err2.getvalue()
    assert "signal" in err2.getvalue() or "skip" in err2.getvalue()  # one log line per decision on stderr
    assert "copy dry-run run" in out2.getvalue()


def test_live_view_renders_targets_mirrors_and_sources(copy_env: SimServer) -> None:
    from rich.console import Console

    from pmbot.commands import copy_run_cmd

    sim = copy_env
    app = App(clock=sim.now)
    session = _session(sim, app, 10)
    state = copy_run_cmd._ViewState()
    state.session = session
    console = Console(record=True, width=200)
    console.print(copy_run_cmd._view(state, app))
    app.close()
    text = console.export_text()
    assert WHALE in text and "our mirrors" in text
    for src in ("chain", "rtds", "data_api"):
        assert src in text
    assert "copied" in text


def test_a_toxic_last_analysis_warns_at_start(copy_env: SimServer, db_url: str) -> None:
    """`copy analyze`'s stored verdict (pmbot.copy_history.last_verdict / toxic_warning) is read at start."""
    from pmbot.store.models import CopyAnalysisRow

    sim = copy_env
    store = open_store(db_url)
    base: dict[str, Any] = dict(
        wallet=sim.whale_address.lower(), name=WHALE, source="live", start_ms=None, end_ms=None, delay_ms=2000,
        slippage="0.01", trades=40, copied=30, target_pnl="120", share_kept=None, maker_share=None, result={},
    )  # fmt: skip
    store.save_copy_analysis(CopyAnalysisRow(created_at=1, copy_pnl="5", verdict="copyable", **base))
    store.save_copy_analysis(CopyAnalysisRow(created_at=2, copy_pnl="-42", verdict="toxic", **base))
    store.close()
    app = App(clock=sim.now)
    session = _session(sim, app, 1)
    app.close()
    assert len(session.warnings) == 1 and "toxic" in session.warnings[0] and "-42" in session.warnings[0]


def test_a_fill_on_a_token_no_market_has_is_recorded_unknown_market_not_dropped(
    copy_env: SimServer, db_url: str
) -> None:
    from pmbot.polymarket.models import TradeSource, WalletTrade

    sim = copy_env
    whale = sim.whale_address.lower()
    app = App(clock=sim.now)

    async def during(i: int, s: CopySession) -> None:
        if i == 1 and s.feed is not None:
            now = int(sim.now() * 1000)
            trade = WalletTrade(
                source=TradeSource.RTDS, wallet=whale, token_id="123456789", side=Side.BUY, size=Decimal(50),
                price=Decimal("0.4"), timestamp_ms=now, tx_hash="0x" + "ee" * 32,
            )  # fmt: skip
            await s.feed._sighting(TargetSource.RTDS, trade, now=now)

    session = _session(sim, app, 4, during=during)
    app.close()
    rows = [r for r in _rows(db_url) if r.token_id == "123456789"]
    assert [r.reason for r in rows] == ["unknown_market"] and not rows[0].copied
    assert session.feed is not None and session.feed.unknown_tokens == 1


def test_report_without_a_database_is_empty_and_creates_nothing(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import io
    import json

    from pmbot.cli import main

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["copy", "report", "--json"])
    assert code == 0
    doc = json.loads(out.getvalue())
    assert doc["targets"] == [] and doc["decisions"] == [] and doc["mode"] == "dry-run"
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_rtds_open_but_silent_is_noticed_stale_then_reconnected(
    copy_env: SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data-level watchdog: the socket stays open (pings answered) but no activity comes."""
    monkeypatch.setenv("PMBOT_COPY__RTDS_SILENCE_S", "0.4")
    sim = copy_env
    app = App(clock=sim.now)
    states: list[str] = []

    async def during(i: int, s: CopySession) -> None:
        if i == 0 and s.feed is not None:
            for _ in range(40):  # the sim's clock stands still: no trade, no activity frame
                states.append(s.feed.health[TargetSource.RTDS].state)
                await asyncio.sleep(0.05)

    session = _session(sim, app, 3, sources=("rtds",), during=during)
    app.close()
    assert session.feed is not None and session.feed.rtds_stream is not None
    counters = session.feed.rtds_stream.counters
    assert "stale" in states
    assert counters.stale >= 1 and counters.reconnects >= 1


def test_a_second_copier_of_the_same_target_on_one_database_refuses(sim: SimServer, tmp_path: Path) -> None:
    """Review: two dry-run `pmbot copy` processes on one database both copied every fill (115 fills with two
    `copied` rows), and each one's caps ignored the other's orders. The second now refuses to start."""
    import time

    db = tmp_path / "two.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(sim.env(), PMBOT_DATABASE_URL=f"sqlite:///{db}", HOME=str(tmp_path / "home"))
    exe = Path(sys.executable).parent / "pmbot"
    first = subprocess.Popen(
        [str(exe), "copy", "--target", WHALE, "--duration", "30s", "--no-live"],
        env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not list(tmp_path.glob("two.db.copy-dry-run-*.lock")) and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read() if first.stderr else ""
            time.sleep(0.1)
        assert list(tmp_path.glob("two.db.copy-dry-run-*.lock")), "the first copier never took its lock"
        second = _pmbot("copy", "--target", WHALE, "--duration", "2s", "--no-live", env=env)
        assert second.returncode == 2, (second.stdout, second.stderr)
        errors = [line for line in second.stderr.splitlines() if line.lower().startswith("error")]
        assert len(errors) == 1 and "already mirroring this target" in errors[0], second.stderr
        # another target is another copier's to mirror (on a paper wallet of its own: one dry-run process
        # per paper wallet, tests/test_review_round2.py)
        env_other = {**env, "PMBOT_EXECUTOR__PAPER_WALLET": "copy-mm"}
        other = _pmbot(
            "copy", "--target", sim.call(lambda v: v.mm_address), "--duration", "1s", "--no-live", env=env_other
        )
        assert other.returncode == 0, other.stderr
    finally:
        first.terminate()
        first.wait(timeout=20)
