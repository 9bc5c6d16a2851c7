"""Reports that tell the truth about money (issue 8 §4): venue marks, settlement of resolved markets,
empty-filter messages and one number format. Real SQLite files and `pmbot sim` over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import re
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from pmbot.app import App
from pmbot.cli import main
from pmbot.errors import InputError
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import Fill, PositionState, Query, Side, TradeKind

T0 = 1_795_000_000_000


@pytest.fixture
def env(sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> SimServer:
    for k, v in sim.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    return sim


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def buy(
    token: str,
    price: str,
    size: str,
    *,
    n: int = 1,
    fee: str = "0",
    strategy: str = "snipe",
    dry_run: bool = True,
    condition_id: str = "",
    outcome: str = "Up",
) -> Fill:
    return Fill(
        trade_id=f"t{n}-{strategy}-{int(dry_run)}",
        strategy=strategy,
        token_id=token,
        side=Side.BUY,
        price=D(price),
        size=D(size),
        fee=D(fee),
        dry_run=dry_run,
        ts=T0 + n * 1000,
        condition_id=condition_id,
        market="BTC Up or Down",
        outcome=outcome,
    )


def record(db_url: str, *fills: Fill) -> None:
    s = open_store(db_url)
    s.record_fills(list(fills))
    s.close()


def set_up_book(sim: SimServer, condition_id: str, bids: list[str], asks: list[str]) -> None:
    """Replace the market maker's quotes on the Up token's book (the manual clock never requotes)."""
    from pmbot.sim.book import BUY, SELL

    def apply(v: object) -> None:
        m = v.market_by_cid(condition_id)  # type: ignore[attr-defined]
        book = v.engine.book(m)  # type: ignore[attr-defined]
        book.clear()
        for p in bids:
            book.set_mm(BUY, D(p), D(100))
        for p in asks:
            book.set_mm(SELL, D(p), D(100))
        v.on_book_change(m)  # type: ignore[attr-defined]

    sim.call(apply)


def closed_market(sim: SimServer) -> dict[str, object]:
    m = next(m for m in sim.markets() if m["closed"])
    return m


def winner_and_loser(sim: SimServer, m: dict[str, object]) -> tuple[str, str]:
    tokens = list(m["token_ids"])  # type: ignore[call-overload]
    win = 0 if m["winner"] == "Up" else 1
    return tokens[win], tokens[1 - win]


# ------------------------------------------------------------------------------------ marks


def test_mark_at_the_book_midpoint_after_the_book_fell(env: SimServer, db_url: str) -> None:
    """The issue's case: bought 10 at 0.75 (fee 0.13125), the book fell to 0.60/0.62."""
    m = env.current_market()
    token = m["token_ids"][0]
    record(db_url, buy(token, "0.75", "10", fee="0.13125", condition_id=m["condition_id"]))
    set_up_book(env, m["condition_id"], bids=["0.59", "0.60"], asks=["0.63", "0.62"])

    code, out, err = invoke("positions", "--json")
    assert code == 0, err
    assert err == ""  # the venue answered: no warnings
    (p,) = json.loads(out)
    assert p["mark_source"] == "book" and D(p["mark_price"]) == D("0.61")
    assert D(p["unrealized_pnl"]) == D("-1.53125")  # 10 x 0.61 - (7.5 + 0.13125)

    code, out, err = invoke("positions")
    assert code == 0, err
    row = next(line for line in out.splitlines() if "snipe" in line)
    assert "-1.53" in row and "book" in row and "0.610" in row and "0.763" in row  # mark, avg cost (fee in): tick + 1

    code, out, _ = invoke("stats", "--json")
    (s,) = json.loads(out)
    assert D(s["unrealized_pnl"]) == D("-1.53125") and s["marks"] == {"book": 1}

    # Offline: no venue, the last fill marks it, and the table says so.
    code, out, err = invoke("positions", "--offline", "--json")
    (p,) = json.loads(out)
    assert p["mark_source"] == "fill" and D(p["mark_price"]) == D("0.75") and D(p["unrealized_pnl"]) == D("-0.13125")
    assert err == ""


def test_mark_falls_back_to_the_last_trade_price(env: SimServer, db_url: str) -> None:
    m = env.current_market()
    token = m["token_ids"][0]
    record(db_url, buy(token, "0.75", "10", condition_id=m["condition_id"]))
    set_up_book(env, m["condition_id"], bids=["0.40"], asks=[])  # one-sided: no midpoint
    (p,) = json.loads(invoke("positions", "--json")[1])
    last = D(env.book(token)["last_trade_price"])  # type: ignore[index]
    assert p["mark_source"] == "last" and D(p["mark_price"]) == last
    # A spread wider than 0.10 is no price either (0.01/0.99 would mark anything at 0.50).
    set_up_book(env, m["condition_id"], bids=["0.20"], asks=["0.90"])
    (p,) = json.loads(invoke("positions", "--json")[1])
    assert p["mark_source"] == "last" and D(p["mark_price"]) == last


def test_unreachable_venue_is_a_warning_not_a_silent_fallback(
    db_url: str, monkeypatch: pytest.MonkeyPatch, unused_port: int
) -> None:
    dead = f"http://127.0.0.1:{unused_port}"
    for key in ("PMBOT_CLOB_URL", "PMBOT_GAMMA_URL", "PMBOT_DATA_URL"):
        monkeypatch.setenv(key, dead)
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    record(db_url, buy("tok", "0.75", "10"))
    for cmd in ("positions", "stats"):
        code, out, err = invoke(cmd, "--json")
        assert code == 0
        data = json.loads(out)  # stdout stays clean JSON
        (line,) = err.strip().splitlines()  # one line: the cause, and what the report is missing
        assert line.startswith("warning: venue unavailable (") and "ConnectError" in line, err
        assert "resolved markets were not checked" in line and "marked at their last fill" in line
        assert "Traceback" not in err
        if cmd == "positions":
            assert data[0]["mark_source"] == "fill"
    code, out, err = invoke("positions", "--offline")
    assert code == 0 and err == ""  # --offline: no venue, nothing to warn about
    # `pmbot settle` itself cannot do its job: an error, one line, exit 2.
    code, out, err = invoke("settle")
    assert code == 2 and len(err.strip().splitlines()) == 1 and err.startswith("error: ")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------------------ settlement


def test_resolved_winner_is_settled_once_and_reports_show_it(env: SimServer, db_url: str) -> None:
    m = closed_market(env)
    win, lose = winner_and_loser(env, m)
    cid = str(m["condition_id"])
    record(
        db_url,
        buy(win, "0.004", "25", n=1, condition_id=cid),  # paper, the winner: 25 - 0.1 = +24.9
        buy(lose, "0.30", "10", n=2, strategy="copy", condition_id=cid, outcome="Down"),  # paper, the loser
        buy(win, "0.40", "10", n=3, dry_run=False, condition_id=cid),  # live winner: owed until redeemed
    )
    code, out, err = invoke("settle", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["checked_tokens"] == 2 and body["closed_markets"] == 1 and body["pending"] == []
    got = {(s["strategy"], s["mode"]): s for s in body["settled"]}
    assert len(got) == 3
    assert got[("snipe", "dry-run")]["payout"] == "1" and D(got[("snipe", "dry-run")]["realized_pnl"]) == D("24.9")
    assert got[("snipe", "dry-run")]["cash"] == "paper" and got[("snipe", "dry-run")]["redeemable"] == "0"
    assert got[("copy", "dry-run")]["payout"] == "0" and D(got[("copy", "dry-run")]["realized_pnl"]) == D("-3")
    live = got[("snipe", "live")]
    assert D(live["realized_pnl"]) == D("6") and D(live["redeemable"]) == D("10") and live["cash"] == "redeemable"
    assert live["source"] == "gamma+clob"

    # Idempotent: a second run (and the reports, which settle first) record nothing more.
    body = json.loads(invoke("settle", "--json")[1])
    assert body["settled"] == [] and body["checked_tokens"] == 0
    assert [r["strategy"] for r in body["redeemable"]] == ["snipe"]
    code, out, err = invoke("positions", "--json")
    assert code == 0 and "settled" not in err
    by = {(p["strategy"], p["mode"]): p for p in json.loads(out)}
    assert all(p["state"] == "resolved" for p in by.values())
    assert D(by[("snipe", "live")]["redeemable"]) == D("10") and by[("snipe", "dry-run")]["redeemable"] == "0"
    s = open_store(db_url)
    redeems = [t for t in s.list_trades() if t.fill.kind is TradeKind.REDEEM]
    assert len(redeems) == 3
    assert {t.fill.trade_id for t in redeems} == {
        f"redeem:snipe:{win}:1",
        f"redeem:copy:{lose}:1",
        f"redeem:snipe:{win}:0",
    }
    live_redeem = next(t for t in redeems if not t.fill.dry_run)
    assert live_redeem.fill.metadata == {"redeemable": True, "source": "gamma+clob"}
    # The on-chain redemption happened: the payout is cash now, the PnL does not change.
    assert s.mark_redeemed(win) == 1 and s.mark_redeemed(win) == 0
    pos = s.get_position("snipe", win, False)
    assert pos is not None and pos.redeemable == 0 and pos.redeemed_at is not None and pos.realized_pnl == D("6")
    s.close()
    stats = {(r["strategy"], r["mode"]): r for r in json.loads(invoke("stats", "--json")[1])}
    assert D(stats[("snipe", "dry-run")]["realized_pnl"]) == D("24.9") and stats[("snipe", "live")]["redeemable"] == "0"

    table = invoke("trades")[1]
    assert table.count("REDEEM") == 3


def test_positions_settle_first_a_market_that_resolves_while_held(env: SimServer, db_url: str) -> None:
    m = env.current_market()
    up, down = m["token_ids"]
    record(
        db_url,
        buy(up, "0.50", "10", n=1, condition_id=m["condition_id"]),
        buy(down, "0.50", "10", n=2, condition_id=m["condition_id"], outcome="Down", strategy="copy"),
    )
    code, out, err = invoke("positions", "--json")
    assert code == 0 and all(p["state"] == "open" for p in json.loads(out)) and err == ""
    env.advance(m["end"] - env.now() + 2)  # the window ends and the sim resolves it
    resolved = next(x for x in env.markets() if x["condition_id"] == m["condition_id"])
    assert resolved["closed"]
    win = up if resolved["winner"] == "Up" else down

    # --offline does not look: the positions stay open.
    assert all(p["state"] == "open" for p in json.loads(invoke("positions", "--offline", "--json")[1]))
    code, out, err = invoke("positions", "--json")
    assert code == 0
    assert err.count("settled: ") == 2  # one stderr line per payout; stdout stays JSON
    by = {p["token_id"]: p for p in json.loads(out)}
    assert by[win]["state"] == "resolved" and D(by[win]["realized_pnl"]) == D("5")
    loser = down if win == up else up
    assert by[loser]["state"] == "resolved" and D(by[loser]["realized_pnl"]) == D("-5")
    assert by[win]["mark_source"] is None and by[win]["unrealized_pnl"] is None
    # Again: nothing new.
    code, out, err = invoke("stats", "--json")
    assert code == 0 and "settled" not in err


def test_settle_library_returns_what_it_settled(env: SimServer, db_url: str) -> None:
    from pmbot.settle import settle_open_positions

    m = closed_market(env)
    win, lose = winner_and_loser(env, m)
    record(db_url, buy(win, "0.004", "25", n=1), buy(lose, "0.5", "4", n=2, dry_run=False))  # no condition id
    app = App()

    async def run() -> list[object]:
        async with app.venue() as venue:
            first = await settle_open_positions(app.store, venue, app.clock)
            second = await settle_open_positions(app.store, venue, app.clock)
            assert second == []
            return list(first)

    got = asyncio.run(run())
    app.close()
    by = {s.token_id: s for s in got}  # type: ignore[attr-defined]
    assert by[win].strategy == "snipe" and by[win].dry_run and by[win].shares == D(25) and by[win].payout == 1
    assert by[win].realized_pnl == D("24.9") and by[win].redeemable == 0
    assert by[lose].payout == 0 and by[lose].realized_pnl == D(-2) and by[lose].redeemable == 0  # lost: nothing owed
    assert by[win].condition_id == m["condition_id"]  # learned from the venue when the fill had none


def test_closed_market_without_a_winner_is_pending_not_settled(env: SimServer, db_url: str) -> None:
    """Gamma says closed, the CLOB names no winner yet (resolution pending): nothing is recorded."""
    m = closed_market(env)
    win, _ = winner_and_loser(env, m)
    record(db_url, buy(win, "0.5", "10"))
    cid = str(m["condition_id"])

    def unresolve(v: object) -> None:
        sm = v.market_by_cid(cid)  # type: ignore[attr-defined]
        sm.winner = None

    env.call(unresolve)
    body = json.loads(invoke("settle", "--json")[1])
    assert body["settled"] == [] and body["pending"] == [cid] and body["closed_markets"] == 1
    s = open_store(db_url)
    assert s.list_positions(Query(state=PositionState.OPEN))
    s.close()


# ---------------------------------------------------------------------- empty results, format


@pytest.fixture
def populated(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    record(
        db_url,
        buy("tok-a", "0.75", "10", n=1, fee="0.13125"),
        buy("tok-b", "0.40", "5", n=2, strategy="copy", dry_run=False),
    )
    return db_url


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trades", "--strategy", "nope"], "no trades match these filters; 2 trades in all"),
        (["trades", "--since", "2030-01-01"], "no trades match these filters; 2 trades in all"),
        (["positions", "--offline", "--closed"], "no positions match these filters; 2 positions in all"),
        (["positions", "--offline", "--strategy", "copy", "--dry-run"], "no positions match these filters; 2"),
        (["stats", "--offline", "--strategy", "nope"], "no trades match these filters; 2 trades in all"),
    ],
)
def test_empty_filter_says_so_with_the_total(populated: str, args: list[str], message: str) -> None:
    code, out, err = invoke(*args)
    assert code == 0, err
    assert message in out and "nothing recorded yet" not in out
    code, out, _ = invoke(*args, "--json")
    assert json.loads(out) == []


def test_empty_store_still_says_nothing_recorded(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    open_store(db_url).close()
    out = invoke("trades", "--strategy", "nope")[1]
    assert "nothing recorded yet" in out


def test_one_fee_reads_the_same_everywhere(populated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    trades_table = invoke("trades")[1]
    stats_table = invoke("stats", "--offline")[1]
    row = next(line for line in trades_table.splitlines() if "snipe" in line)
    assert " 0.13 " in row + " " and "0.1312" not in trades_table and "0.13125" not in trades_table
    assert "7.50" in row and "10.00" in row and "0.75" in row
    assert re.search(r"\b2026-11-18 \d\d:\d\d:\d\dZ\b", row)  # one time format: date, time, Z
    stats_row = next(line for line in stats_table.splitlines() if "snipe" in line)
    assert " 0.13 " in stats_row + " "
    # JSON keeps the exact figure and ISO times.
    (t,) = [t for t in json.loads(invoke("trades", "--json")[1]) if t["strategy"] == "snipe"]
    assert t["fee"] == "0.13125" and t["time"].endswith("Z") and "T" in t["time"]
    (s,) = [s for s in json.loads(invoke("stats", "--offline", "--json")[1]) if s["strategy"] == "snipe"]
    assert s["fees"] == "0.13125"


def test_render_rules() -> None:
    from pmbot import render

    assert render.usdc(D("0.13125")) == "0.13" and render.usdc(D("24.905")) == "24.90"  # half-even
    assert render.usdc(D("24.915")) == "24.92" and render.usdc(D("-0.001")) == "0.00"  # no negative zero
    assert render.pnl(D("-0.004")).plain == "0.00" and render.pnl(D("1.005")).plain == "+1.00"
    assert render.price(D("0.6")) == "0.60" and render.price(D("0.955")) == "0.955"
    assert render.price(D("0.6"), D("0.001")) == "0.600" and render.price(D("0.61"), D("0.01")) == "0.61"
    assert render.mean_price(D("0.605"), D("0.01")) == "0.605" and render.mean_price(D("0.7533333")) == "0.753"
    assert render.shares(D("12.345678")) == "12.35" and render.shares(D("5")) == "5.00"
    assert render.percent(D("0.6667")) == "66.7%"
    assert render.when(T0) == "2026-11-18 11:06:40Z"


# ------------------------------------------------------------------------- store additions


def test_store_settle_token_returns_trades_and_counts(store: object) -> None:
    """Every backend (SQLite, SQLite + Redis cache: a settled position is not served stale)."""
    s: Any = store
    assert s.get_position("snipe", "w", True) is None
    s.record_fills([buy("w", "0.2", "10", n=1), buy("w", "0.3", "10", n=2, dry_run=False)])
    assert s.get_position("snipe", "w", True).state is PositionState.OPEN  # cached now (Redis backend)
    assert s.count_trades() == 2 and s.count_positions(Query(state=PositionState.OPEN)) == 2
    got = s.settle_token("w", D(1), ts=T0 + 99)
    assert sorted(t.realized_pnl for t in got) == [D(7), D(8)]
    assert s.settle_token("w", D(1)) == [] and s.resolve_token("w", D(1)) == 0
    assert s.count_positions(Query(state=PositionState.CLOSED)) == 2 and s.count_trades() == 4
    assert s.get_position("snipe", "w", True).state is PositionState.RESOLVED
    live = s.get_position("snipe", "w", False)
    assert live is not None and live.redeemable == D(10) and live.state is PositionState.RESOLVED
    with pytest.raises(InputError, match="payout"):
        s.settle_token("w", D(2))


# ----------------------------------------------------------------- resolution rules, adversarial


def test_recorded_resolved_market_names_one_winner_in_both_sources() -> None:
    """Real payloads: Gamma's closed market (outcomePrices ["1","0"]) and the CLOB's (tokens[].winner)."""
    from pmbot.polymarket.schemas import rest
    from pmbot.settle import _clob_winner, _gamma_winner
    from tests.samples import load

    gamma = rest.gamma_market(load("gamma_market_closed_resolved.json"))
    clob = rest.clob_market(load("clob_market_closed_2026.json"))
    yes = "22978793223071892222859460592277435458011604214087068523744633723809814935807"
    assert gamma.closed and _gamma_winner(gamma) == yes
    assert [o.winner for o in clob.outcomes] == [True, False] and _clob_winner(clob) == yes
    # An open market (prices not final) and a closed one with non-final prices name nobody.
    assert _gamma_winner(rest.gamma_market(load("gamma_market.json"))) is None
    raw = load("gamma_market_closed_resolved.json") | {"outcomePrices": '["0.9995", "0.0005"]'}
    assert _gamma_winner(rest.gamma_market(raw)) is None
    open_clob = rest.clob_market(load("clob_market_2024.json"))  # open: every winner false
    assert [o.winner for o in open_clob.outcomes] == [False, False] and _clob_winner(open_clob) is None


def test_sources_that_disagree_settle_nothing_and_warn(env: SimServer, db_url: str) -> None:
    m = closed_market(env)
    win, _ = winner_and_loser(env, m)
    cid = str(m["condition_id"])
    record(db_url, buy(win, "0.5", "10"))
    served = httpx.get(f"{env.url}/gamma/markets/slug/{m['slug']}").json()
    prices = json.loads(served["outcomePrices"])
    served["outcomePrices"] = json.dumps(list(reversed(prices)))  # Gamma names the other token

    def replace(v: object) -> None:
        v.market_by_cid(cid).raw = served  # type: ignore[attr-defined]

    env.call(replace)
    code, out, err = invoke("settle", "--json")
    assert code == 0
    assert json.loads(out)["settled"] == [] and json.loads(out)["pending"] == [cid]
    assert err.startswith("warning: ") and "different winners" in err and len(err.strip().splitlines()) == 1


def test_clob_failing_for_one_market_leaves_it_pending_then_settles(env: SimServer, db_url: str) -> None:
    m = closed_market(env)
    win, _ = winner_and_loser(env, m)
    cid = str(m["condition_id"])
    record(db_url, buy(win, "0.5", "10"))
    env.set_faults(server_error=10, server_error_path=f"/markets/{cid}")
    code, out, err = invoke("positions", "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "open"
    assert "cannot confirm the resolution" in err and err.count("\n") == 1
    env.clear_faults()
    code, out, err = invoke("positions", "--json")
    assert json.loads(out)[0]["state"] == "resolved" and D(json.loads(out)[0]["realized_pnl"]) == D(5)


def test_local_times_carry_their_offset(populated: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        out = invoke("trades", "--local")[1]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert "2026-11-18 16:36:41+0530" in out  # 11:06:41Z


def test_books_failing_alone_is_one_warning_and_settlement_still_runs(env: SimServer, db_url: str) -> None:
    m = env.current_market()
    closed = closed_market(env)
    win, _ = winner_and_loser(env, closed)
    record(db_url, buy(m["token_ids"][0], "0.75", "10", n=1), buy(win, "0.004", "25", n=2, strategy="copy"))
    env.set_faults(server_error=10, server_error_path="/books")
    code, out, err = invoke("positions", "--json")
    assert code == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "500" in warnings[0] and "marked at their last fill" in warnings[0]
    assert "resolved markets were not checked" not in warnings[0]
    by = {p["strategy"]: p for p in json.loads(out)}
    assert by["copy"]["state"] == "resolved" and by["snipe"]["mark_source"] == "fill"


def test_market_resolved_event_settles_with_the_same_trade_ids(db_url: str) -> None:
    """The market channel's `market_resolved` (docs example): the executor can apply it at once, and a
    later `pmbot settle` records nothing twice."""
    from pmbot.polymarket.schemas import ws
    from pmbot.settle import record_settlements, resolution_from_event
    from tests.samples import load

    ev = ws.market_event(load("docs_examples/ws_market_market_resolved.json"))
    r = resolution_from_event(ev)  # type: ignore[arg-type]
    assert r is not None and r.source == "ws"
    yes, no = r.token_ids
    record(db_url, buy(yes, "0.2", "10", n=1), buy(no, "0.7", "10", n=2, strategy="copy", dry_run=False))
    s = open_store(db_url)
    got = {x.token_id: x for x in record_settlements(s, [r], T0 + 9000)}
    assert got[yes].payout == 1 and got[yes].realized_pnl == D(8) and got[no].payout == 0
    assert got[no].redeemable == 0 and got[no].realized_pnl == D(-7)
    assert record_settlements(s, [r], T0 + 9999) == []
    assert all(p.state is PositionState.RESOLVED for p in s.list_positions())
    s.close()


def test_marks_with_float_digits_or_out_of_range_do_not_break_reports() -> None:
    """The venue sometimes sends a float's digits (0.5699998232997013); a mark is kept to the store's
    6 decimals, and a price outside [0, 1] is no mark at all."""
    from pmbot.polymarket.models import BookLevel, OrderBook
    from pmbot.reporting import MarkSource, mark_from_book, marked, position_view
    from pmbot.store.models import Position

    def book(bids: list[str], asks: list[str], last: str | None) -> OrderBook:
        lv = lambda ps: tuple(BookLevel(D(p), D(10)) for p in ps)  # noqa: E731
        return OrderBook("t", "m", lv(bids), lv(asks), 0, last_trade_price=None if last is None else D(last))

    m = mark_from_book(book([], [], "0.5699998232997013"))
    assert m is not None and m.source is MarkSource.LAST and m.price == D("0.570000")
    assert mark_from_book(book([], [], "1.5")) is None and mark_from_book(book([], [], None)) is None
    m = mark_from_book(book(["0.601"], ["0.6101"], None))
    assert m is not None and m.source is MarkSource.BOOK and m.price == D("0.60555")
    p = Position("s", "t", True, D(10), D("7.5"), D(0), PositionState.OPEN, mark_price=D("0.75"))
    q, used = marked(p, {"t": m})
    assert used is m and position_view(q, used)["unrealized_pnl"] == "-1.4445"


@pytest.mark.parametrize("width", [80, 100, 120])
@pytest.mark.parametrize(
    ("report", "columns"),
    [
        ("positions", ["strategy", "mode", "market", "outcome", "state", "size", "avg", "mark", "src",
                       "unrealized", "realized", "updated"]),
        ("trades", ["time", "strategy", "mode", "market", "outcome", "side", "price", "size", "notional", "fee",
                    "realized"]),
        ("stats", ["strategy", "mode", "trades", "volume", "fees", "realized", "unrealized", "marks", "open",
                   "closed", "win rate"]),
    ],
)  # fmt: skip
def test_reports_read_at_narrow_widths(
    populated: str, monkeypatch: pytest.MonkeyPatch, report: str, columns: list[str], width: int
) -> None:
    """At 80-120 columns Rich used to squeeze strategy, market and outcome to nothing (an empty column, or
    "s…") and fold numbers. Now a column is either shown whole or hidden, and the hidden ones are named."""
    monkeypatch.setenv("COLUMNS", str(width))
    code, out, err = invoke(report, *(["--offline"] if report != "trades" else []))
    assert code == 0, err
    lines = out.splitlines()
    assert all(len(ln) <= width for ln in lines), out
    assert "…" not in out  # nothing cut short
    header = next(ln for ln in lines if " mode " in f" {ln} ")
    shown = [c for c in columns if f" {c} " in f" {header} "]
    notes = [ln for ln in err.splitlines() if ln.startswith("(narrow terminal:")]
    hidden = notes[0].removeprefix("(narrow terminal: ").split(" not shown")[0].split(", ") if notes else []
    assert sorted(shown + hidden) == sorted(columns), (shown, hidden)
    assert "mode" in shown and "realized" in shown
    if report != "stats":
        assert "market" in shown
    if width >= 120:
        assert "strategy" in shown
