"""Venue text (market questions, profile names, outcomes) is shown as plain text: never Rich markup,
never a terminal escape (issue 12, item 6). Rendered with a real Console and through `pmbot` on the sim."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from rich.console import Console

from pmbot import render
from pmbot.cli import main
from pmbot.commands.market_cmds import print_markets, print_whois
from pmbot.sim.testing import SimServer
from tests.sim_start import mid_window

HOSTILE = "Will [/dim] close [bold]x[/] [link=https://evil.example]here[/link] \x1b[2J\x1b]0;title\x07\x9b31m\u202eend"


def _console(width: int = 100) -> Console:
    return Console(width=width, record=True, file=io.StringIO(), force_terminal=True, color_system="truecolor")


def test_plain_strips_controls_and_keeps_brackets_verbatim() -> None:
    text = render.plain(HOSTILE)
    assert "\x1b" not in text.plain and "\x07" not in text.plain and "\x9b" not in text.plain
    assert "\u202e" not in text.plain
    assert "[/dim]" in text.plain and "[link=https://evil.example]" in text.plain  # shown, not interpreted
    assert render.clean("a\nb\tc\r\nd") == "a b c d"  # one string stays one cell
    assert render.clean(None) == ""


def _row(question: str, outcome: str = "Up") -> dict[str, Any]:
    return {
        "condition_id": "0x" + "1" * 64,
        "question": question,
        "slug": "slug[/]",
        "end_ms": 1_796_000_000_000,
        "seconds_left": 300,
        "accepting_orders": True,
        "tokens": [
            {
                "token_id": "1" * 77,
                "outcome": outcome,
                "best_bid": Decimal("0.5"),
                "best_ask": Decimal("0.52"),
                "price_source": "book",
            }
        ],
    }


def test_markets_table_renders_markup_as_text_and_no_escape_reaches_the_terminal() -> None:
    c = _console()
    print_markets(c, [_row(HOSTILE, outcome="Up[/red]\x1b[31m")])
    raw = c.file.getvalue()  # type: ignore[attr-defined]
    text = c.export_text()
    assert "[/dim]" in text and "[link=https://evil.example]here[/link]" in text and "Up[/red]" in text
    assert "\x1b[2J" not in raw and "\x1b]0;" not in raw and "\x1b[31m" not in raw
    assert "\x1b]8;" not in raw  # no hyperlink escape: the [link] was not interpreted


def test_whois_profile_name_with_markup_renders() -> None:
    c = _console()
    view = {
        "name": "whale[/bold]\x1b[2J",
        "pseudonym": "",
        "proxy_wallet": "0x" + "a" * 40,
        "activity": [
            {
                "timestamp_ms": 1_796_000_000_000,
                "type": "TRADE",
                "side": "BUY",
                "outcome": "[red]Up",
                "size": Decimal("5"),
                "price": Decimal("0.5"),
                "usdc_size": Decimal("2.5"),
                "title": "Title [/] x",
                "slug": "s",
                "token_id": "1",
                "tx_hash": "0x",
            }
        ],
    }
    print_whois(c, view)
    text = c.export_text()
    assert "whale[/bold]" in text and "[red]Up" in text and "Title [/] x" in text
    assert "\x1b[2J" not in c.file.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
def hostile_sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    with SimServer(seed=11, start=mid_window(), manual=True) as sim:
        for key, value in sim.env().items():
            monkeypatch.setenv(key, value)

        def poison(v: Any) -> None:
            for m in v.open_markets(v.clock.now()):
                m.question = HOSTILE
            for profile in v.profiles.values():
                profile["name"] = "whale[/bold]"

        sim.call(poison)
        yield sim


def _invoke(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def test_markets_and_whois_survive_hostile_venue_text(hostile_sim: SimServer) -> None:
    code, out = _invoke("markets", "--limit", "3")
    assert code == 0, out
    assert "[/dim]" in out and "\x1b" not in out
    code, out = _invoke("whois", "whale[/bold]")
    assert code == 0, out
    assert "whale[/bold]" in out and "\x1b" not in out


def test_trades_render_stored_venue_labels_as_text(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pmbot.store import open_store
    from pmbot.store.models import Fill, Side

    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    store = open_store(db_url)
    store.record_fill(
        Fill(
            trade_id="t1",
            strategy="snipe",
            token_id="1" * 70,
            side=Side.BUY,
            price=Decimal("0.5"),
            size=Decimal("10"),
            dry_run=True,
            ts=1_796_000_000_000,
            market=HOSTILE,
            outcome="Up[/bold]\x1b[2J",
        )
    )
    store.close()
    code, out = _invoke("trades")  # (positions renders the same labels the same way; it may ask the venue)
    assert code == 0, out
    assert "[/dim]" in out and "Up[/bold]" in out and "\x1b" not in out
