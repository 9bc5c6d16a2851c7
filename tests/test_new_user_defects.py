"""Issue 8 section 5: the rough edges a new user hit, each kept fixed by a test (real sim, real files)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from pmbot.cli import main
from pmbot.commands.market_cmds import print_markets
from pmbot.sim.testing import SimServer


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=11, start=time.time(), manual=True) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        yield sim


# ------------------------------------------------------------------------------------------ markets


def test_markets_labels_book_prices(live_sim: SimServer) -> None:
    code, out, err = invoke("markets", "--limit", "2", "--json")
    assert code == 0, err
    assert err == ""
    assert {t["price_source"] for r in json.loads(out) for t in r["tokens"]} == {"book"}


def test_markets_with_unreachable_clob_warns_and_labels_gamma_prices(live_sim: SimServer) -> None:
    live_sim.set_faults(server_error=1000, server_error_path="/books")
    code, out, err = invoke("markets", "--limit", "2", "--json")
    assert code == 0
    assert "warning: CLOB unreachable" in err and "gamma" in err
    rows = json.loads(out)
    up, down = rows[0]["tokens"]
    assert up["price_source"] == "gamma" and up["best_bid"] is not None
    assert down["price_source"] is None and down["best_bid"] is None  # Gamma only knows the first outcome's
    code, out, err = invoke("markets", "--limit", "2")
    assert code == 0 and "warning: CLOB unreachable" in err
    assert "gamma" in out and "book" not in out.split("Token ids")[0].replace("pmbot book", "")


def _rows(n: int = 3) -> list[dict[str, Any]]:
    rows = []
    for i in range(n):
        rows.append(
            {
                "condition_id": f"0x{i}",
                "question": f"Will the price of Bitcoin be above $100,000 on December {i + 1}, 2026 at 12:00 ET?",
                "slug": f"bitcoin-above-100k-on-december-{i + 1}-2026",
                "end_ms": 1_796_000_000_000 + i * 900_000,
                "seconds_left": 125 + i * 900,
                "accepting_orders": True,
                "tokens": [
                    {
                        "token_id": str(7 * 10**76 + i),
                        "outcome": "Yes",
                        "best_bid": Decimal("0.955"),
                        "best_ask": Decimal("0.96"),
                        "price_source": "book",
                    },
                    {
                        "token_id": str(3 * 10**77 + i),
                        "outcome": "No",
                        "best_bid": None,
                        "best_ask": None,
                        "price_source": None,
                    },
                ],
            }
        )
    return rows


@pytest.mark.parametrize("width", [80, 100, 120])
def test_markets_table_reads_well_at_common_widths(width: int) -> None:
    rows = _rows()
    c = Console(width=width, record=True, file=io.StringIO())
    print_markets(c, rows)
    text = c.export_text()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    flat = " ".join(" ".join(lines).split())
    for r in rows:
        for word in r["question"].split():  # the whole question is there, wrapped, never cut
            assert word in flat
        for t in r["tokens"]:  # every token id in full on one line: it can be copied in one piece
            assert any(t["token_id"] in line for line in lines)
    assert "…" not in text  # no price or id squeezed into "0.…"
    assert "0.955" in text and "0.96" in text and "book" in text
