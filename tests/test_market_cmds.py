"""`pmbot markets`, `pmbot book`, `pmbot whois` against a live `pmbot sim` (real sockets)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from pmbot.cli import main
from pmbot.sim.testing import SimServer
from tests.sim_start import now_with_time_left
from tests.test_cli import run


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    """A sim whose clock starts at the real now, so the CLI's "time left" matches the sim's markets."""
    with SimServer(seed=11, start=now_with_time_left(), manual=True) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        yield sim


def invoke(*args: str) -> tuple[int, str]:
    """In-process through `main`, which maps errors to one stderr line and exit 2 as the shell sees it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_markets_closing_within_json(live_sim: SimServer) -> None:
    code, out = invoke("markets", "--closing-within", "15m", "--json")
    assert code == 0, out
    rows = json.loads(out)
    current = live_sim.current_market()
    assert [r["slug"] for r in rows] == [current["slug"]]
    row = rows[0]
    assert 0 < row["seconds_left"] <= 900 and [t["token_id"] for t in row["tokens"]] == current["token_ids"]
    up, down = row["tokens"]
    assert up["outcome"] == "Up" and Decimal(up["best_bid"]) < Decimal(up["best_ask"])
    assert Decimal(up["best_bid"]) + Decimal(down["best_ask"]) == 1


def test_markets_table_search_and_limit(live_sim: SimServer) -> None:
    code, out = invoke("markets", "--search", "bitcoin up or down", "--limit", "3")
    assert code == 0, out
    assert "Bitcoin Up or Down" in out and live_sim.current_market()["token_ids"][0] in out
    code, out = invoke("markets", "--search", "no such thing anywhere", "--json")
    assert code == 0 and json.loads(out) == []
    code, out = invoke("markets", "--closing-within", "soon")
    assert code == 2 and "not a duration" in out


def test_book_json_is_best_first(live_sim: SimServer) -> None:
    token = live_sim.current_market()["token_ids"][0]
    code, out = invoke("book", token, "--depth", "3", "--json")
    assert code == 0, out
    view = json.loads(out)
    raw = live_sim.book(token)
    assert raw is not None
    assert view["best_bid"] == raw["bids"][-1]["price"] and view["best_ask"] == raw["asks"][-1]["price"]
    assert [lv["price"] for lv in view["bids"]] == [lv["price"] for lv in reversed(raw["bids"])][:3]
    assert len(view["asks"]) == 3 and Decimal(view["spread"]) == Decimal(view["best_ask"]) - Decimal(view["best_bid"])
    code, out = invoke("book", token)
    assert code == 0 and "spread" in out and view["best_bid"] in out


def test_book_bad_and_unknown_token(live_sim: SimServer) -> None:
    code, out = invoke("book", "not-a-token")
    assert code == 2 and "not a token id" in out
    code, out = invoke("book", "123456789")
    assert code == 2 and "no order book" in out and "Traceback" not in out


def test_whois_by_name_and_address(live_sim: SimServer) -> None:
    live_sim.advance(30)
    code, out = invoke("whois", "distinct-baguette", "--json")
    assert code == 0, out
    view = json.loads(out)
    assert view["name"] == "distinct-baguette" and view["proxy_wallet"] == live_sim.whale_address.lower()
    assert view["activity"] and all(a["type"] for a in view["activity"])
    code, out = invoke("whois", live_sim.whale_address)
    assert code == 0 and live_sim.whale_address.lower() in out and "TRADE" in out
    code, out = invoke("whois", "surely-nobody-has-this-name")
    assert code == 2 and "no profile" in out


def test_unreachable_venue_is_one_line_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.services import free_port

    port = free_port()
    result = run("book", "123", env={"PMBOT_CLOB_URL": f"http://127.0.0.1:{port}"})
    assert result.returncode == 2 and "cannot connect" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
