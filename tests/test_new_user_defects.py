"""Issue 8 section 5: the rough edges a new user hit, each kept fixed by a test (real sim, real files)."""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from pmbot.cli import main
from pmbot.commands.market_cmds import print_markets
from pmbot.sim.testing import SimServer
from tests.sim_start import mid_window


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=11, start=mid_window(), manual=True) as sim:
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


# ------------------------------------------------------------------------------------------- config


def test_config_show_units_booleans_and_env_file_only_when_present(tmp_path: Path) -> None:
    code, out, err = invoke("config", "show")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "risk.max_order_notional" in ln)
    assert "50 USDC" in line
    assert "50 USDC" not in next(ln for ln in out.splitlines() if "risk.max_open_orders" in ln)
    fees = next(ln for ln in out.splitlines() if "executor.dry_run_fees" in ln)
    assert " true " in fees and "True" not in out and "False" not in out
    assert ".env" not in out.splitlines()[-1]  # no .env here: not listed
    code, out, _ = invoke("config", "show", "--json")
    view = json.loads(out)
    assert view["env_file"] is None
    row = next(r for r in view["settings"] if r["key"] == "executor.dry_run_balance")
    assert row["value"] == "1000" and row["unit"] == "USDC"  # JSON: exact value, unit beside it
    (tmp_path / ".env").write_text("PMBOT_EXECUTOR__DRY_RUN_FEES=false\n")
    code, out, _ = invoke("config", "show")
    assert ".env: .env" in out.splitlines()[-1]
    assert " false " in next(ln for ln in out.splitlines() if "executor.dry_run_fees" in ln)


def test_unknown_key_in_dotenv_is_an_error_as_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("OTHER_TOOL=1\nPMBOT_NOSUCH=1\n")
    code, out, err = invoke("config", "show")
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [err.strip()]
    assert "unknown setting in .env: PMBOT_NOSUCH" in err and "remove it from .env" in err
    (tmp_path / ".env").write_text("PMBOT_RISK__NOPE=1\n")
    code, _, err = invoke("trades")
    assert code == 2 and "PMBOT_RISK__NOPE" in err
    (tmp_path / ".env").unlink()
    monkeypatch.setenv("PMBOT_NOSUCH", "1")
    code, _, err = invoke("config", "show")
    assert code == 2 and "unknown setting in the environment: PMBOT_NOSUCH" in err


def test_malformed_toml_names_file_and_line_and_hint_avoids_failing_command(tmp_path: Path) -> None:
    cfg = tmp_path / "pmbot.toml"
    cfg.write_text("[risk]\nmax_order_notional = 5\nthis is not toml\n")
    code, out, err = invoke("--config", str(cfg), "config", "show")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert f"{cfg} line 3, column" in err
    assert "config show" not in err  # it would fail on the same file


def test_invalid_value_hint_does_not_send_to_config_show_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_RISK__MAX_ORDER_NOTIONAL", "-1")
    code, _, err = invoke("config", "show")
    assert code == 2 and "PMBOT_RISK__MAX_ORDER_NOTIONAL" in err and "once every key is valid" in err


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://u:hunt@er2@host/0?password=hunter2", "redis://***@host/0?password=***"),
        ("redis://:pw@h:6379/1", "redis://***@h:6379/1"),
        ("unix:///tmp/r.sock?password=x&db=0", "unix:///tmp/r.sock?password=***&db=***"),
        ("rediss://h:6380/0", "rediss://h:6380/0"),
    ],
)
def test_config_show_masks_url_userinfo_and_query(monkeypatch: pytest.MonkeyPatch, url: str, shown: str) -> None:
    monkeypatch.setenv("PMBOT_REDIS_URL", url)
    code, out, err = invoke("config", "show", "--json")
    assert code == 0, err
    row = next(r for r in json.loads(out)["settings"] if r["key"] == "redis_url")
    assert row["value"] == shown
    code, out, _ = invoke("config", "show")
    for secret in ("hunter2", "hunt", "er2@", "pw@"):
        assert secret not in out


def test_rpc_key_in_path_is_masked() -> None:
    from pmbot.config import mask_url

    assert mask_url("wss://polygon.g.alchemy.com/v2/abcDEF1234567890abcdef12") == "wss://polygon.g.alchemy.com/v2/***"
    assert mask_url("sqlite:////srv/pmbot/pmbot.db") == "sqlite:////srv/pmbot/pmbot.db"


def test_config_check_refuses_a_directory_and_a_missing_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "adir").mkdir()
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'adir'}")
    code, out, _ = invoke("config", "check")
    assert code == 2 and "FAIL  database:" in out and "is a directory" in out
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'nope' / 'x.db'}")
    code, out, _ = invoke("config", "check")
    assert code == 2 and "does not exist" in out and "mkdir -p" in out
    # and the store is not opened there either: nothing created, one line, exit 2
    from pmbot.app import App
    from pmbot.errors import ConfigError

    with pytest.raises(ConfigError, match="does not exist"):
        _ = App().store
    assert not (tmp_path / "nope").exists()


def test_default_data_directory_is_still_created(tmp_path: Path) -> None:
    code, out, _ = invoke("config", "check")
    assert code == 0 and "will be created on first write" in out
    from pmbot.app import App

    app = App()
    app.store.set_state("x", {"a": 1})
    app.close()
    assert (tmp_path / "xdg" / "pmbot" / "pmbot.db").is_file()


# ------------------------------------------------------------------------------------ order --key


def _dear(sim: SimServer) -> str:
    """The current market's dearer outcome (bid near or above 0.5): a bid at 0.01-0.02 rests there,
    and its own bid is a real price, whatever the sim's clock did to the market."""

    def bid(token: str) -> Decimal:
        book = sim.book(token)
        return Decimal(book["bids"][-1]["price"]) if book and book["bids"] else Decimal(0)

    return max(sim.current_market()["token_ids"], key=bid)


WALLET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def _orders(db_url: str) -> list[Any]:
    from pmbot.store import open_store

    store = open_store(db_url)
    try:
        return store.list_orders()
    finally:
        store.close()


def test_key_conflicting_reuse_is_refused_and_never_sent(live_sim: SimServer, db_url: str) -> None:
    token = live_sim.current_market()["token_ids"][0]
    ask = live_sim.book(token)["asks"][-1]["price"]  # type: ignore[index]
    base = ("order", "buy", token, "--size", "5", "--type", "FOK", "--key", "K1", "--json")
    code, out, err = invoke(*base, "--price", ask)
    assert code == 0, err
    first = json.loads(out)
    assert first["status"] == "filled"
    for other in (
        ("--price", "0.99"),  # another price
        ("--price", ask, "--size", "6"),  # another size (the later --size wins)
        ("--price", ask, "--type", "FAK"),
    ):
        code, out, err = invoke(*base, *other)
        assert code == 2 and out == "", err
        assert len(err.strip().splitlines()) == 1 and "already used for a different dry-run order" in err
    sell = ("order", "sell", token, "--size", "5", "--type", "FOK", "--key", "K1", "--price", ask)
    code, _, err = invoke(*sell)
    assert code == 2 and "already used" in err
    assert len(_orders(db_url)) == 1  # nothing stored for the refused ones
    # the same key and the same order: a duplicate, answered with the original's price and fees
    code, out, err = invoke(*base, "--price", ask)
    assert code == 0, err
    dup = json.loads(out)
    assert dup["duplicate"] is True and dup["key"] == first["key"]
    assert dup["avg_price"] == first["avg_price"] and dup["fees"] == first["fees"]
    assert Decimal(dup["avg_price"]) == Decimal(ask) and dup["filled"] == first["filled"]
    code, out, _ = invoke(*base[:-1], "--price", ask)  # the table too: not "@ –, fees 0"
    assert "already known" in out and f"@ {Decimal(ask):.2f}" in out and "@ –" not in out
    assert f"fees {Decimal(first['fees']).quantize(Decimal('0.01'), ROUND_HALF_EVEN)} USDC" in out


def test_cancel_accepts_the_operators_key(live_sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", WALLET_KEY)
    token = _dear(live_sim)
    args = ("order", "buy", token, "--size", "5", "--key", "my-bid", "--live", "--yes")
    code, out, err = invoke(*args, "--price", "0.02", "--json")
    assert code == 0, err
    placed = json.loads(out)
    assert placed["status"] == "live" and len(live_sim.open_orders()) == 1
    code, out, err = invoke(*args, "--price", "0.03")  # same key, other price
    assert code == 2 and "already used for a different live order" in err
    no_yes = [a for a in args if a != "--yes"]
    code, out, err = invoke(*no_yes, "--price", "0.03")  # refused before asking for a confirmation
    assert code == 2 and "already used" in err and "LIVE" not in out + err
    assert len(live_sim.received_orders()) == 1  # never sent as a new order
    code, out, err = invoke("cancel", "my-bid", "--yes")
    assert code == 0, err
    assert f"{placed['key']}: cancelled" in out and live_sim.open_orders() == []
    code, _, err = invoke("cancel", "no-such-key")
    assert code == 2 and "no order with key 'no-such-key'" in err


def test_status_prints_tables_not_dicts(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    token = _dear(live_sim)
    ask = live_sim.book(token)["asks"][-1]["price"]  # type: ignore[index]
    assert invoke("order", "buy", token, "--price", ask, "--size", "5", "--type", "FOK")[0] == 0
    code, out, err = invoke("status")
    assert code == 0, err
    assert "{" not in out and "}" not in out and "[" not in out
    assert "Executors" in out and "dry-run" in out and "filled 1" in out
    assert "No open orders." in out
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", WALLET_KEY)
    code, out, err = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes", "--json")
    assert code == 0, err
    key = json.loads(out)["key"]
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = invoke("status")
    assert code == 0, err
    assert "{" not in out and "'" not in out
    assert "Open orders, LIVE" in out and key in out  # the key in full, to copy into `pmbot cancel`
    assert all(len(line) <= 80 for line in out.splitlines())


# ---------------------------------------------------------------------------------- order --wait


def _offer_at(sim: SimServer, token: str, price: str, size: str = "50") -> None:
    """The sim's market maker moves its quotes: an ask at `price` (its bid there withdrawn), published
    on the market channel as a real book change."""
    from pmbot.sim.book import BUY, SELL

    def move(v: Any) -> None:
        m = v.market_by_token(token)
        book = v.engine.book(m)  # kept in the first outcome's terms: the second's ask at p is a bid at 1 - p
        if m.index_of(token) == 0:
            book.set_mm(BUY, Decimal(price), Decimal(0))
            book.set_mm(SELL, Decimal(price), Decimal(size))
        else:
            book.set_mm(SELL, 1 - Decimal(price), Decimal(0))
            book.set_mm(BUY, 1 - Decimal(price), Decimal(size))
        v.on_book_change(m)

    sim.call(move)


def _when_resting(db_url: str, then: Any) -> Any:
    """A thread that waits for the paper order to rest, then acts (the command runs in this thread)."""
    import threading

    def run() -> None:
        from pmbot.store.models import OrderStatus

        for _ in range(400):
            if any(o.status is OrderStatus.LIVE for o in _orders(db_url)):
                time.sleep(0.3)  # the market stream subscribes after the order rests
                then()
                return
            time.sleep(0.025)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def test_wait_rests_a_paper_order_until_the_live_book_fills_it(live_sim: SimServer, db_url: str) -> None:
    token = _dear(live_sim)
    bid = live_sim.book(token)["bids"][-1]["price"]  # type: ignore[index]
    helper = _when_resting(db_url, lambda: _offer_at(live_sim, token, bid))
    code, out, err = invoke("order", "buy", token, "--price", bid, "--size", "5", "--wait", "20s", "--json")
    helper.join(5)
    assert code == 0, err
    view = json.loads(out)
    assert view["status"] == "filled" and Decimal(view["filled"]) == 5 and Decimal(view["avg_price"]) == Decimal(bid)
    assert "resting as paper live" in err and "against the live book" in view["reason"]
    assert live_sim.received_orders() == []  # paper: nothing reached the venue


def test_wait_time_up_cancels_and_without_wait_the_paper_order_ends_with_the_command(
    live_sim: SimServer, db_url: str
) -> None:
    token = _dear(live_sim)
    code, out, err = invoke("order", "buy", token, "--price", "0.01", "--size", "5", "--wait", "1s", "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["status"] == "cancelled" and "not filled within 1s" in view["reason"]
    code, out, _ = invoke("order", "buy", token, "--price", "0.01", "--size", "5", "--json")
    view = json.loads(out)
    assert view["status"] == "cancelled" and "--wait" in view["reason"]
    assert all(o.status.is_final for o in _orders(db_url))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--wait", "0s"), "longer than 0s"),
        (("--wait", "soon"), "not a duration"),
        (("--wait", "5s", "--type", "FOK"), "only for GTC"),
        (("--wait", "5s", "--live", "--yes"), "only for dry-run"),
    ],
)
def test_wait_usage_errors(live_sim: SimServer, db_url: str, extra: tuple[str, ...], needle: str) -> None:
    token = live_sim.current_market()["token_ids"][0]
    code, out, err = invoke("order", "buy", token, "--price", "0.01", "--size", "5", *extra)
    assert code == 2 and out == "" and needle in err and "Traceback" not in err
    assert _orders(db_url) == []


def test_wait_ctrl_c_cancels_the_paper_order(live_sim: SimServer, db_url: str, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    token = _dear(live_sim)
    env = {**os.environ, "PMBOT_DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "pmbot", "order", "buy", token, "--price", "0.01", "--size", "5", "--wait", "60s"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # until "resting as paper live; waiting up to 60s …"
        seen.append(line)
        if "resting as paper live" in line:
            break
    assert seen and "resting as paper live" in seen[-1], seen
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "cancelled" in out and "Ctrl-C" in out and "Traceback" not in err
    assert all(o.status.is_final for o in _orders(db_url))


# ---------------------------------------------------------------------------------------- sim serve


def _time_wait_on(port: int) -> bool:
    """True when some socket on 127.0.0.1:`port` is in TIME-WAIT (Linux /proc/net/tcp, state 06)."""
    hexport = f"{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1].endswith(":" + hexport) and line.split()[3] == "06" for line in f.readlines()[1:])


def test_sim_port_is_free_again_right_after_a_stop() -> None:
    import httpx

    from pmbot.sim.server.app import bind

    first = SimServer(manual=True).start()
    port = first.port
    with httpx.Client() as client:  # a keep-alive connection the server closes when it stops
        assert client.get(f"{first.url}/_sim/state").status_code == 200
        first.stop()
    if Path("/proc/net/tcp").exists():
        assert _time_wait_on(port)  # the situation that made a restart fail for about a minute
    again = bind("127.0.0.1", port)  # SO_REUSEADDR: no "address already in use"
    again.close()
    second = SimServer(manual=True, port=port).start()
    second.stop()


def test_sim_still_refuses_a_port_with_a_listener_and_its_hint_is_true() -> None:
    import socket

    with SimServer(manual=True) as sim:  # a real sim on the port
        code, _, err = invoke("sim", "serve", "--port", str(sim.port))
        assert code == 2 and "a pmbot sim is already running there" in err
    with socket.socket() as other:  # some other program, silent, listening
        other.bind(("127.0.0.1", 0))
        other.listen()
        code, _, err = invoke("sim", "serve", "--port", str(other.getsockname()[1]))
        assert code == 2 and "another program is listening" in err and "sim is already running" not in err
    with socket.socket() as held:  # bound, not listening: nothing runs there
        held.bind(("127.0.0.1", 0))
        code, _, err = invoke("sim", "serve", "--port", str(held.getsockname()[1]))
        assert code == 2 and "not listening" in err and "sim" not in err.split("hint:")[1]


# ------------------------------------------------------------------------------------------- record


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_record_that_never_reaches_the_market_channel_fails_in_one_line(
    live_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_CLOB_WS_URL", f"ws://127.0.0.1:{_free_port()}/ws")  # Gamma answers, WS does not
    out = tmp_path / "rec.jsonl"
    token = live_sim.current_market()["token_ids"][0]
    code, stdout, err = invoke("record", "--token-id", token, "--out", str(out), "-d", "2s", "--no-rtds")
    assert code == 2 and stdout == ""
    lines = err.strip().splitlines()
    assert len(lines) == 2, err  # "recording … → FILE for 2s", then the error
    line = lines[1]
    assert line.startswith("error: never reached the market channel") and "nothing recorded" in line
    assert not out.exists()


def test_record_gives_up_when_the_channel_never_connects(
    live_sim: SimServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pmbot.recorder

    monkeypatch.setattr(pmbot.recorder, "CONNECT_GRACE_S", 1.0)
    monkeypatch.setenv("PMBOT_CLOB_WS_URL", f"ws://127.0.0.1:{_free_port()}/ws")
    out = tmp_path / "rec.jsonl"
    token = live_sim.current_market()["token_ids"][0]
    code, _, err = invoke("record", "--token-id", token, "--out", str(out), "--no-rtds")  # no --duration
    assert code == 2 and "within 1s" in err and not out.exists()


def test_record_that_loses_the_venue_until_the_end_fails_but_keeps_what_it_got(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    import pmbot.recorder

    monkeypatch.setattr(pmbot.recorder, "LOST_AFTER_S", 1.0)
    sim = SimServer(seed=11, start=mid_window(), manual=True).start()
    for key, value in sim.env().items():
        monkeypatch.setenv(key, value)
    token = sim.current_market()["token_ids"][0]
    out = tmp_path / "rec.jsonl"

    def stop_once_subscribed() -> None:  # the venue goes away for the rest of the run, after the first snapshot
        for _ in range(400):
            if sim.call(lambda v: bool(v.hub.market_listeners([token]))):
                time.sleep(0.3)
                break
            time.sleep(0.02)
        sim.stop()

    stopper = threading.Thread(target=stop_once_subscribed, daemon=True)
    stopper.start()
    try:
        code, stdout, err = invoke("record", "--token-id", token, "--out", str(out), "-d", "5s", "--no-rtds")
    finally:
        stopper.join()
        sim.stop()
    assert code == 2, err
    assert "wrote" in stdout
    assert err.strip().splitlines()[-1].startswith("error: lost the market channel")
    assert out.exists()


def test_record_with_unreachable_gamma_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    port = _free_port()
    monkeypatch.setenv("PMBOT_GAMMA_URL", f"http://127.0.0.1:{port}")
    code, _, err = invoke("record", "--series", "btc-up-or-down-15m", "--out", str(tmp_path / "r.jsonl"), "-d", "1s")
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "r.jsonl").exists()


@pytest.mark.parametrize("duration", ["0s", "0m"])
def test_record_duration_zero_is_refused(tmp_path: Path, duration: str) -> None:
    out = tmp_path / "r.jsonl"
    code, _, err = invoke("record", "--series", "x", "--out", str(out), "--duration", duration)
    assert code == 2 and "--duration" in err and not out.exists()


def test_find_order_by_operator_key_whatever_key_it_was_stored_under(db_url: str) -> None:
    from pmbot.errors import InputError
    from pmbot.ops import find_order, operator_key
    from pmbot.store import open_store
    from pmbot.store.models import OrderRecord, OrderStatus, OrderType, Side

    def rec(key: str, dry_run: bool, status: OrderStatus, meta: dict[str, Any]) -> OrderRecord:
        return OrderRecord(
            key=key,
            strategy="manual",
            token_id="1" * 70,
            side=Side.BUY,
            price=Decimal("0.5"),
            size=Decimal("5"),
            order_type=OrderType.GTC,
            dry_run=dry_run,
            status=status,
            created_at=1,
            updated_at=1,
            metadata=meta,
        )

    store = open_store(db_url)
    try:
        store.insert_order(rec("manual-stored-elsewhere", True, OrderStatus.CANCELLED, {"operator_key": "K"}))
        assert find_order(store, "K").key == "manual-stored-elsewhere"
        assert find_order(store, "manual-stored-elsewhere").key == "manual-stored-elsewhere"
        store.insert_order(rec(operator_key("K", dry_run=False), False, OrderStatus.LIVE, {"operator_key": "K"}))
        assert find_order(store, "K").key == operator_key("K", dry_run=False)  # the open one
        assert operator_key("K", dry_run=True) != operator_key("K", dry_run=False)  # separate key spaces
        store.update_order(operator_key("K", dry_run=False), OrderStatus.CANCELLED)
        with pytest.raises(InputError, match="names several orders"):
            find_order(store, "K")
        with pytest.raises(InputError, match="no order with key"):
            find_order(store, "nope")
    finally:
        store.close()
