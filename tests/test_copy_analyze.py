"""`pmbot copy analyze`: the real `pmbot` executable against `pmbot sim` over real sockets, on hand-made
history files (every figure computed by hand in the comments), its bad input, and what it stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.copy_history import (
    History,
    last_verdict,
    mark_makers,
    read_history,
    record_analysis,
    run_analysis,
    tape_points,
    toxic_warning,
    write_history,
)
from pmbot.polymarket.models import Side as WireSide
from pmbot.polymarket.models import TradeSource, WalletTrade
from pmbot.sim.testing import SimServer
from pmbot.store.models import CopyAnalysisRow
from pmbot.strategies.copy_analysis import PricePoint

PMBOT = Path(sys.executable).with_name("pmbot")
D = Decimal
WALLET = "0x" + "ab" * 20
A, B = "111", "222"  # the two outcomes of market 0xm1; A wins
HEADER = {
    "kind": "header",
    "format": "pmbot-copy-history",
    "version": 1,
    "target": "hand-made",
    "wallet": WALLET,
    "start_ms": 0,
    "end_ms": 20_000,
}


def trade(token: str, side: str, price: str, size: str, ts: int, maker: bool | None = False) -> dict[str, Any]:
    return {
        "kind": "trade",
        "token_id": token,
        "condition_id": "0xm1",
        "side": side,
        "price": price,
        "size": size,
        "ts_ms": ts,
        "maker": maker,
    }


HAND = [
    HEADER,
    trade(A, "BUY", "0.40", "100", 1_000),  # taker: −40
    trade(B, "BUY", "0.50", "50", 2_000, maker=True),  # maker: −25
    trade(A, "SELL", "0.60", "50", 3_000),  # half of A: +30
    {"kind": "resolution", "condition_id": "0xm1", "winning_token_id": A, "ts_ms": 10_000},
]


def write_lines(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    d = tmp_path / "home"
    d.mkdir()
    return d


def env_for(home: Path, sim: SimServer | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(XDG_DATA_HOME=str(home / "xdg"), PMBOT_DATABASE_URL=f"sqlite:///{home / 'pmbot.db'}", COLUMNS="120")
    if sim is not None:
        env.update(sim.env())
    else:  # offline: every venue URL points at a closed port
        for key in ("CLOB_URL", "GAMMA_URL", "DATA_URL"):
            env[f"PMBOT_{key}"] = "http://127.0.0.1:9"
    return env


def pmbot(home: Path, *args: str, sim: SimServer | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PMBOT), *args],
        cwd=home,
        env=env_for(home, sim),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def stored(home: Path) -> list[CopyAnalysisRow]:
    from pmbot.store import open_store

    s = open_store(f"sqlite:///{home / 'pmbot.db'}")
    try:
        return s.list_copy_analyses()
    finally:
        s.close()


# ------------------------------------------------------------------------------ hand-made history files


def test_hand_made_history_gives_the_pnl_computed_by_hand(home: Path) -> None:
    f = write_lines(home / "h.jsonl", HAND)
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    # Target: −40 − 25 + 30 = −35 cash, then the 50 A it kept pay 1: +15. Volume 40 + 25 + 30 = 95.
    assert doc["target_pnl"] == "15"
    assert doc["target_volume"] == "95"
    assert D(doc["maker_share"]) == D(25) / D(95)  # the B buy was a maker fill
    # Copy at ratio 0.1, 2 s late, our limit ± 0.01 (no tape: at the limit): 10 A @ 0.41 (−4.10), 5 B @ 0.51
    # (−2.55), half our A: 5 @ 0.59 (+2.95); the 5 A left pay 5. −4.10 − 2.55 + 2.95 + 5 = 1.30.
    assert doc["copy_pnl"] == "1.3"
    assert doc["copy_volume"] == "9.6"  # 4.10 + 2.55 + 2.95
    # Ideal (no delay, no slippage): −4 − 2.5 + 3 + 5 = 1.5; kept 1.3 / 1.5.
    assert doc["ideal_pnl"] == "1.5"
    assert D(doc["share_kept"]) == D("1.3") / D("1.5")
    assert doc["copied"] == 3 and doc["skipped"] == {}
    # Copy PnL > 0, keeps 86.7 % >= 50 %, maker share 26.3 % < 50 %.
    assert doc["verdict"] == "copyable"
    assert "toxic when the copy's PnL <= 0" in doc["rule"]
    assert doc["source"] == "file" and doc["wallet"] == WALLET and doc["delay_ms"] == 2000
    assert doc["slippage"] == "0.01"
    assert doc["price_model"].startswith("target's prices")
    # Stored, with exact text money, and the last verdict reads back by name and by wallet.
    (row,) = stored(home)
    assert (row.wallet, row.name, row.source, row.verdict) == (WALLET, "hand-made", "file", "copyable")
    assert (row.target_pnl, row.copy_pnl, row.slippage, row.trades, row.copied) == ("15", "1.3", "0.01", 3, 3)
    assert row.result == doc


def test_slippage_and_a_tape_turn_it_toxic_and_the_newest_verdict_wins(home: Path) -> None:
    f = write_lines(home / "h.jsonl", HAND)
    first = pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--json")
    assert json.loads(first.stdout)["verdict"] == "copyable"
    # Ten cents of slippage: 10 A @ 0.50 (−5), 5 B @ 0.60 (−3), 5 A @ 0.50 (+2.5), 5 A pay 5: −0.5.
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--slippage", "0.1", "--json")
    doc = json.loads(out.stdout)
    assert doc["copy_pnl"] == "-0.5"
    assert doc["verdict"] == "toxic"
    # A tape: 2 s after the A buy the ask is 0.45, past our 0.41 limit (skipped: slippage); so our A sell has
    # nothing to sell (no_position). Only B is copied: 5 @ 0.51 = −2.55, and B loses.
    taped = write_lines(
        home / "t.jsonl",
        [*HAND, {"kind": "price", "token_id": A, "ts_ms": 2_500, "bid": "0.43", "ask": "0.45"}],
    )
    untaped = pmbot(home, "copy", "analyze", "hand-made", "--from", str(taped), "--json", "--no-tape")
    assert json.loads(untaped.stdout)["copy_pnl"] == "1.3"  # --no-tape offline: as if the file had no tape
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(taped), "--json", "--delay", "1500ms")
    doc = json.loads(out.stdout)
    assert doc["skipped"] == {"no_position": 1, "slippage": 1}
    assert doc["copy_pnl"] == "-2.55"
    assert doc["verdict"] == "toxic"
    assert doc["price_model"] == "market tape"
    from pmbot.store import open_store

    s = open_store(f"sqlite:///{home / 'pmbot.db'}")
    try:
        assert last_verdict(s, "hand-made") == "toxic"
        assert last_verdict(s, "HAND-MADE") == "toxic"
        assert last_verdict(s, WALLET.upper().replace("0X", "0x")) == "toxic"
        assert last_verdict(s, "someone-else") is None
        warning = toxic_warning(s, "hand-made")
        assert warning is not None and "says toxic" in warning and "-2.55 USDC over 3 of its fills" in warning
        assert toxic_warning(s, "someone-else") is None
        assert [r.verdict for r in s.list_copy_analyses(name="hand-made")] == ["toxic", "copyable", "toxic", "copyable"]
    finally:
        s.close()


def test_no_fills_is_marginal_and_says_so(home: Path) -> None:
    f = write_lines(home / "h.jsonl", [HEADER])
    doc = json.loads(pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--json").stdout)
    assert (doc["trades"], doc["verdict"], doc["maker_share"], doc["share_kept"]) == (0, "marginal", None, None)
    assert doc["notes"] == ["no fills in the window: the verdict says nothing about this wallet"]
    table = pmbot(home, "copy", "analyze", "hand-made", "--from", str(f))
    assert table.returncode == 0 and "verdict: marginal" in table.stdout
    assert "no fills in the window" in table.stderr


def test_days_keeps_the_end_of_a_file(home: Path) -> None:
    lines = [HEADER | {"end_ms": 3 * 86_400_000}, trade(A, "BUY", "0.40", "100", 1_000)]
    lines.append(trade(A, "BUY", "0.40", "100", 2 * 86_400_000 + 5))
    f = write_lines(home / "h.jsonl", lines)
    whole = json.loads(pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--json").stdout)
    last = json.loads(pmbot(home, "copy", "analyze", "hand-made", "--from", str(f), "--json", "--days", "1").stdout)
    assert (whole["trades"], last["trades"]) == (2, 1)


def test_a_history_written_reads_back_the_same(tmp_path: Path) -> None:
    h = read_history(
        write_lines(
            tmp_path / "a.jsonl",
            [
                *HAND,
                {"kind": "price", "token_id": A, "ts_ms": 2_500, "bid": None, "ask": "0.45"},
                {"kind": "fee", "condition_id": "0xm1", "rate": "0.072", "exponent": 1, "taker_only": True},
                {"kind": "mark", "token_id": B, "price": "0.5"},
                "",  # a blank line is skipped
                trade(A, "BUY", 0.3, 7, 4_000, maker=None),  # JSON numbers are read exactly too
            ],
        )
    )
    assert h.trades[-1].price == D("0.3") and h.trades[-1].size == D(7) and h.trades[-1].maker is None
    write_history(h, tmp_path / "b.jsonl")
    again = read_history(tmp_path / "b.jsonl")
    assert again == h
    a1 = run_analysis(h, delay_ms=2000, slippage=D("0.01"))
    a2 = run_analysis(again, delay_ms=2000, slippage=D("0.01"))
    assert a1 == a2
    assert h.fees["0xm1"].rate == D("0.072")


# ---------------------------------------------------------------------------------------- bad input

BAD_FILES = [
    (["not json"], "line 1: not JSON"),
    ([HEADER, "{broken"], "line 2: not JSON"),
    ([trade(A, "BUY", "0.4", "1", 1)], "line 1: the first line must be the header"),
    ([HEADER | {"format": "other"}], "line 1: not a pmbot-copy-history version 1 file"),
    ([HEADER, HEADER], "line 2: a second header"),
    ([HEADER, trade(A, "HOLD", "0.4", "1", 1)], 'line 2: \'side\' must be "BUY" or "SELL"'),
    ([HEADER, trade(A, "BUY", "1.5", "1", 1)], "line 2: 'price' = 1.5 is out of range"),
    ([HEADER, trade(A, "BUY", "1", "1", 1)], "line 2: a trade needs 0 < price < 1"),
    ([HEADER, trade(A, "BUY", "NaN", "1", 1)], "line 2: 'price' must be a decimal"),
    ([HEADER, '{"kind": "trade", "price": NaN}'], "line 2: not JSON"),
    ([HEADER, trade(A, "BUY", "0.4", "-1", 1)], "line 2: 'size' = -1 is out of range"),
    ([HEADER, trade(A, "BUY", "0.4", "1", "soon")], "line 2: 'ts_ms' must be an integer"),
    ([HEADER, trade(A, "BUY", "0.4", "1", 1.5)], "line 2: 'ts_ms' must be an integer"),
    # used to reach the store: a 64-bit column cannot hold it (OverflowError, a traceback)
    ([HEADER | {"end_ms": 10**30}, trade(A, "BUY", "0.4", "1", 1)], "line 1: 'end_ms' is out of range"),
    ([HEADER, trade(A, "BUY", "0.4", "1", -5)], "line 2: 'ts_ms' is out of range (epoch milliseconds, got -5)"),
    ([HEADER, json.dumps(trade(A, "BUY", "0.4", "1", 0)).replace('"ts_ms": 0', '"ts_ms": 1e400')], "'ts_ms' is out of"),
    ([HEADER | {"wallet": "me"}], "line 1: 'wallet' must be a 0x address"),
    ([HEADER, trade(A, "BUY", "0.4", "1", 1, maker="yes")], "line 2: 'maker' must be true, false or null"),  # type: ignore[arg-type]
    ([HEADER, trade("", "BUY", "0.4", "1", 1)], "line 2: 'token_id' must be a non-empty string"),
    ([HEADER, {"kind": "fee", "condition_id": "0xm1", "rate": "2"}], "line 2: 'rate' = 2 is out of range"),
    ([HEADER, {"kind": "gossip"}], "line 2: unknown kind 'gossip'"),
    ([HEADER, "[1, 2]"], "line 2: expected a JSON object"),
    ([], "empty: no header line"),
]


@pytest.mark.parametrize(("lines", "needle"), BAD_FILES, ids=[n for _, n in BAD_FILES])
def test_a_malformed_file_is_one_line_naming_the_line_and_writes_nothing(
    home: Path, tmp_path: Path, lines: list[Any], needle: str
) -> None:
    f = write_lines(tmp_path / "bad.jsonl", lines)
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(f))
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith(f"error: {f}") and needle in out.stderr, out.stderr
    assert written(home) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--days", "0"], "Invalid value for '--days'"),
        (["--days", "seven"], "Invalid value for '--days'"),
        (["--delay", "abc"], "not a delay: 'abc'"),
        (["--delay", "-1s"], "not a delay: '-1s'"),
        (["--delay", "0.5ms"], "not a whole number of milliseconds"),
        (["--delay", "2h"], "not a delay"),
        (["--slippage", "-1"], "slippage must be at least 0 and below 1"),
        (["--slippage", "1"], "slippage must be at least 0 and below 1"),
        (["--slippage", "NaN"], "slippage must be a decimal number"),
        (["--slippage", "lots"], "slippage must be a decimal number"),
        (["--from", "x.jsonl", "--save", "y.jsonl"], "--save writes a fetched history"),
        (["--save", "no/such/dir/h.jsonl"], "no such directory"),
        (["--save", "."], "is a directory: name a file"),
        (["--from", ""], "must not be empty"),
    ],
)
def test_bad_values_are_usage_errors_and_write_nothing(home: Path, args: list[str], needle: str) -> None:
    out = pmbot(home, "copy", "analyze", "hand-made", *args)
    assert out.returncode == 2, out
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert lines[0].startswith("Usage: pmbot copy analyze [OPTIONS] TARGET"), out.stderr
    assert len(lines) == 4 and lines[3].startswith("Error: ") and needle in lines[3], out.stderr
    assert written(home) == []


def test_unreadable_files_are_one_line(home: Path, tmp_path: Path) -> None:
    for path, needle in (
        (tmp_path / "missing.jsonl", "No such file or directory"),
        (tmp_path, "Is a directory"),
    ):
        out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(path))
        assert out.returncode == 2, out
        assert out.stderr == f"error: cannot read {path}: {needle}\n"
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", "/dev/zero")  # would never end
    assert out.returncode == 2 and out.stderr == "error: cannot read /dev/zero: not a regular file\n", out
    binary = tmp_path / "b.jsonl"
    binary.write_bytes(b"\xff\xfe\x00")
    out = pmbot(home, "copy", "analyze", "hand-made", "--from", str(binary))
    assert out.returncode == 2 and out.stderr.startswith(f"error: cannot read {binary}:"), out
    assert written(home) == []


def test_a_file_of_another_target_is_refused(home: Path) -> None:
    odd = write_lines(home / "odd.jsonl", [HEADER | {"target": "evil\x1b[2J\x07"}])
    out = pmbot(home, "copy", "analyze", "someone", "--from", str(odd))
    assert out.returncode == 2 and "\x1b" not in out.stderr and "\x07" not in out.stderr, out.stderr
    odd.unlink()
    f = write_lines(home / "h.jsonl", HAND)
    out = pmbot(home, "copy", "analyze", "distinct-baguette", "--from", str(f))
    assert out.returncode == 2
    assert "holds the history of hand-made" in out.stderr and out.stderr.count("\n") == 1
    assert written(home) == ["h.jsonl"]
    ok = pmbot(home, "copy", "analyze", WALLET, "--from", str(f), "--json")  # its wallet names it too
    assert ok.returncode == 0, ok.stderr


# ---------------------------------------------------------------------------------- against the sim


def test_analyze_the_sim_whale_live_then_offline_from_the_saved_file(home: Path) -> None:
    with SimServer(seed=7, manual=True) as sim:
        sim.advance(1500)  # ~250 whale trades over two windows; the first one resolves
        whale = sim.whale_address.lower()
        fills = sim.call(
            lambda v: [(f.trade.size, f.is_taker) for f in v.fills if f.order.maker_address.lower() == whale]
        )
        closed = [m for m in sim.markets() if m["closed"]]
        out = pmbot(home, "copy", "analyze", "distinct-baguette", "--json", "--save", "whale.jsonl", sim=sim)
        assert out.returncode == 0, out.stderr
        live = json.loads(out.stdout)
        table = pmbot(home, "copy", "analyze", sim.whale_address, "--no-tape", sim=sim)
        assert table.returncode == 0, table.stderr
        unknown = pmbot(home, "copy", "analyze", "no-such-trader", sim=sim)
        malformed = pmbot(home, "copy", "analyze", "0x12", sim=sim)
    assert live["wallet"] == whale and live["source"] == "live"
    assert live["trades"] == len(fills) > 100
    assert all(is_taker for _, is_taker in fills)
    assert live["maker_share"] == "0"  # the whale only takes: every fill is on the taker-only list too
    assert live["resolved_markets"] >= 1
    assert live["verdict"] in ("copyable", "marginal", "toxic")
    assert live["price_model"] == "market tape"
    assert live["copied"] > 0
    assert "verdict:" in table.stdout and "target PnL" in table.stdout and "maker share" in table.stdout
    assert "prices: target's prices" in table.stdout  # --no-tape
    for bad, needle in ((unknown, "no profile named 'no-such-trader'"), (malformed, "neither a profile name")):
        assert bad.returncode == 2 and bad.stdout == ""
        assert bad.stderr.count("\n") == 1 and needle in bad.stderr, bad.stderr
    # The sim is gone: the saved history alone gives the same analysis.
    saved = read_history(home / "whale.jsonl")
    assert len(saved.trades) == len(fills) and saved.prices and saved.fees
    out = pmbot(home, "copy", "analyze", "distinct-baguette", "--from", "whale.jsonl", "--json")
    assert out.returncode == 0, out.stderr
    offline = json.loads(out.stdout)
    assert {**offline, "source": "live", "notes": []} == live
    rows = stored(home)  # newest first: offline, --no-tape, live (the unknown and malformed targets: nothing)
    assert [r.source for r in rows] == ["file", "live", "live"]
    assert (rows[0].verdict, rows[2].verdict) == (offline["verdict"], live["verdict"])
    assert closed  # the sim resolved at least one window while the whale traded


def test_the_sim_market_maker_is_all_maker_fills_and_not_copyable(home: Path) -> None:
    with SimServer(seed=7, manual=True) as sim:
        sim.advance(300)
        mm = sim.call(lambda v: v.mm_address)
        out = pmbot(home, "copy", "analyze", mm, "--json", sim=sim)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["trades"] > 0
    assert doc["maker_share"] == "1"  # none of its fills is on the taker-only list
    assert doc["verdict"] != "copyable"


# ---------------------------------------------------------------------------------------- the parts


def wt(side: str, price: str, size: str, tx: str, ts: int = 1000, token: str = A) -> WalletTrade:
    return WalletTrade(
        source=TradeSource.DATA_API,
        wallet=WALLET,
        token_id=token,
        side=WireSide(side),
        size=D(size),
        price=D(price),
        timestamp_ms=ts,
        tx_hash=tx,
        condition_id="0x" + "cd" * 32,
    )


def test_maker_fills_are_the_ones_missing_from_the_taker_only_list() -> None:
    every = [wt("BUY", "0.4", "10", "0x1"), wt("BUY", "0.4", "10", "0x1"), wt("SELL", "0.6", "5", "0x2")]
    taker = [wt("BUY", "0.4", "10", "0x1"), wt("BUY", "0.5", "3", "0x3")]  # 0x3 came between the two requests
    out = mark_makers(every, taker)
    # Two identical fills in one transaction, one of them taker: one taker, one maker (counted, not a set).
    assert [(t.tx_hash, t.maker) for t in out] == [("0x1", False), ("0x1", True), ("0x2", True), ("0x3", False)]


def test_the_tape_sets_the_bid_and_ask_of_both_outcomes() -> None:
    tape = [wt("BUY", "0.6", "1", "0x1", ts=1000), wt("SELL", "0.55", "1", "0x2", ts=2000)]
    points = tape_points(tape, {A: B, B: A})
    # A taker BUY of A at 0.6: A's ask 0.6, B's bid 0.4; a SELL of A at 0.55: A's bid 0.55, B's ask 0.45.
    assert [(p.ts_ms, p.bid, p.ask) for p in points[A]] == [(1000, None, D("0.6")), (2000, D("0.55"), D("0.6"))]
    assert [(p.ts_ms, p.bid, p.ask) for p in points[B]] == [(1000, D("0.4"), None), (2000, D("0.4"), D("0.45"))]
    # A sweep: three BUY fills of one second, in any order, leave the ask at the highest (and B's bid at 0.38).
    sweep = [wt("BUY", p, "1", "0x9", ts=5000) for p in ("0.60", "0.62", "0.61")]
    swept = tape_points([*tape, *sweep], {A: B, B: A})
    assert swept[A][-1] == PricePoint(5000, D("0.55"), D("0.62"))
    assert swept[B][-1] == PricePoint(5000, D("0.38"), D("0.45"))
    assert tape_points(list(reversed(sweep)), {}) == tape_points(sweep, {})


def test_store_keeps_analyses_in_every_backend(store: Any) -> None:
    h = History(target="Someone", wallet=WALLET, start_ms=0, end_ms=1, trades=())
    r = run_analysis(
        read_history_of(HAND),
        delay_ms=2000,
        slippage=D("0.01"),
    )
    assert last_verdict(store, "someone") is None
    first = record_analysis(store, h, r, now_ms=1_000)
    second = record_analysis(store, h, r, now_ms=2_000)
    assert second != first
    rows = store.list_copy_analyses(wallet=WALLET)
    assert [x.created_at for x in rows] == [2_000, 1_000]
    assert rows[0].name == "someone" and rows[0].copy_pnl == "1.3" and rows[0].share_kept == r.to_dict()["share_kept"]
    assert rows[0].result["copy_pnl"] == "1.3" and rows[0].result["target"] == "Someone"
    assert last_verdict(store, "SOMEONE") == "copyable"
    assert last_verdict(store, "@someone") == "copyable"
    assert toxic_warning(store, "someone") is None  # copyable: nothing to warn about
    assert last_verdict(store, WALLET) == "copyable"
    assert last_verdict(store, "") is None
    assert store.list_copy_analyses(name="nobody", limit=5) == []
    assert len(store.list_copy_analyses(limit=1)) == 1


def read_history_of(lines: list[Any]) -> History:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        return read_history(write_lines(Path(d) / "h.jsonl", lines))


def fetch_from(sim: SimServer, target: str = "distinct-baguette", shift_ms: int = 0, **kw: Any) -> History:
    import asyncio

    from pmbot.app import App
    from pmbot.copy_history import fetch_history

    async def main() -> History:
        async with App().venue() as v:
            profile = await v.gamma.resolve_wallet(target)
            now = await v.clob.server_time()
            now_ms = now * 1000 + shift_ms
            return await fetch_history(v.data, v.gamma, target, profile.proxy_wallet, now_ms=now_ms, **kw)

    return asyncio.run(main())


def test_fetch_in_process_resolutions_fees_and_what_it_could_not_see(sim_env: SimServer) -> None:
    sim = sim_env
    sim.advance(1200)
    whale = sim.whale_address.lower()
    fills = sim.call(lambda v: [f for f in v.fills if f.order.maker_address.lower() == whale])
    full = fetch_from(sim, days=7)
    assert len(full.trades) == len(fills) and full.notes == ()
    assert all(t.maker is False for t in full.trades)
    assert [t.ts_ms for t in full.trades] == sorted(t.ts_ms for t in full.trades)
    # Each resolution names the sim's winner, after the market's last whale trade; fees from Gamma.
    index = {"Up": 0, "Down": 1}
    winners = {m["condition_id"]: m["token_ids"][index[m["winner"]]] for m in sim.markets() if m["closed"]}
    assert full.resolutions
    for r in full.resolutions:
        assert winners[r.condition_id] == r.winning_token_id
        assert r.ts_ms is not None
        assert r.ts_ms > max(t.ts_ms for t in full.trades if t.condition_id == r.condition_id)
    assert set(full.fees) == {t.condition_id for t in full.trades}
    assert full.marks  # the open market's outcome prices
    # A short tape and a capped fetch are said, not hidden.
    short = fetch_from(sim, days=7, tape_per_market=5, max_trades=20)
    assert len(short.trades) == 20
    assert any("only the newest 20 fills" in n for n in short.notes)
    assert any("come before their market's tape" in n for n in short.notes)
    none = fetch_from(sim, days=7, tape=False)
    assert none.prices == {} and len(none.trades) == len(fills)


def test_fetch_falls_back_to_data_api_v1_and_keeps_the_window(sim_env: SimServer) -> None:
    sim = sim_env
    sim.advance(900)
    v2 = fetch_from(sim, days=7)
    start_ms = int(sim.now() * 1000) - 300_000
    recent_v2 = fetch_from(sim, days=1, shift_ms=86_400_000 - 300_000)  # v2 `start` bounds it at the venue
    assert recent_v2.trades == tuple(t for t in v2.trades if t.ts_ms >= start_ms)
    sim.call(lambda v: setattr(v, "data_api_versions", ("v1",)))
    v1 = fetch_from(sim, days=7)
    assert v1.trades == v2.trades and v1.resolutions == v2.resolutions
    # A window that starts 300 s before the sim's now (a day ending a day minus 300 s later): v1 has no window
    # parameter, so the fetch itself keeps the window.
    recent = fetch_from(sim, days=1, shift_ms=86_400_000 - 300_000)
    assert recent.trades == tuple(t for t in v2.trades if t.ts_ms >= start_ms)
    assert 0 < len(recent.trades) < len(v2.trades)


def test_pmbot_migrate_carries_the_analyses_to_postgresql(tmp_path: Path, pg_empty_url: str) -> None:
    from pmbot.migrate import run_migration
    from pmbot.store.postgres import PostgresStore
    from pmbot.store.sqlite import SQLiteStore

    src = SQLiteStore(str(tmp_path / "src.db"))
    h = read_history_of(HAND)
    for k, slip in enumerate(("0.01", "0.1")):
        record_analysis(src, h, run_analysis(h, delay_ms=2000, slippage=D(slip)), now_ms=1_000 + k)
    want = src.list_copy_analyses()
    src.close()
    report = run_migration(f"sqlite:///{tmp_path / 'src.db'}", pg_empty_url)
    assert report.verified and report.conflict_count == 0
    pg = PostgresStore(pg_empty_url)
    try:
        assert pg.list_copy_analyses() == want
        assert last_verdict(pg, "hand-made") == "toxic"
        pg.save_copy_analysis(want[0])  # the identity moved past the copied ids
        assert len(pg.list_copy_analyses()) == 3
    finally:
        pg.close()


def test_an_unreadable_gamma_market_is_left_out_and_said(sim_env: SimServer) -> None:
    sim = sim_env
    sim.advance(120)
    cid = sim.current_market()["condition_id"]

    def spoil(v: Any) -> None:
        v.market_by_cid(cid).fee_rate = D(5)  # a fee rate of 500 %: the parser refuses the market

    sim.call(spoil)
    h = fetch_from(sim, days=7)
    assert h.trades and {t.condition_id for t in h.trades} == {cid}
    assert cid not in h.fees
    assert h.notes == ("1 market(s) missing or unreadable on Gamma: valued at their last trade price, fees unknown",)
    assert run_analysis(h, delay_ms=2000, slippage=D("0.01")).unresolved_markets == 1
