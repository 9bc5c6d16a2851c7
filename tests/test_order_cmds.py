"""`pmbot order / cancel / resume / status` against `pmbot sim`, through `main` (exit codes as a shell sees them)."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from decimal import Decimal

import pytest

from pmbot.cli import main
from pmbot.sim.testing import SimServer
from pmbot.store import open_store
from pmbot.store.models import OrderStatus, Query
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        yield sim


def invoke(*args: str, stdin: str = "") -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        import sys

        old = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            code = main(list(args))
        finally:
            sys.stdin = old
    return code, out.getvalue() + err.getvalue()


def test_dry_run_order_by_default_and_its_key_is_idempotent(live_sim: SimServer, db_url: str) -> None:
    token = live_sim.current_market()["token_ids"][0]
    ask = live_sim.book(token)["asks"][-1]["price"]  # type: ignore[index]
    args = ("order", "buy", token, "--price", ask, "--size", "5", "--type", "FOK", "--key", "k1", "--json")
    code, out = invoke(*args)
    assert code == 0, out
    view = json.loads(out)
    assert view["mode"] == "dry-run" and view["status"] == "filled" and Decimal(view["filled"]) == 5
    code, out = invoke(*args)
    assert code == 0 and json.loads(out)["duplicate"] is True
    store = open_store(db_url)
    assert len(store.list_trades(Query(dry_run=True))) == 1 and live_sim.received_orders() == []
    store.close()


def test_live_order_needs_key_and_confirmation(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    token = live_sim.current_market()["token_ids"][0]
    code, out = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live")
    assert code == 2 and "PMBOT_PRIVATE_KEY" in out
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    code, out = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live", stdin="n\n")
    assert code != 0 and live_sim.received_orders() == []
    assert KEY[2:] not in out  # the prompt names the wallet, never the key
    code, out = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes", "--json")
    assert code == 0, out
    view = json.loads(out)
    assert view["mode"] == "live" and view["status"] == "live" and len(live_sim.received_orders()) == 1
    code, out = invoke("status", "--json")
    live = next(m for m in json.loads(out)["modes"] if m["mode"] == "live")
    assert [o["key"] for o in live["open_orders"]] == [view["key"]]
    assert live["last_run"]["sent"] == 1
    code, out = invoke("cancel", view["key"], "--yes")
    assert code == 0 and "cancelled" in out and live_sim.open_orders() == []


def test_bad_order_input_writes_nothing(live_sim: SimServer, db_url: str) -> None:
    token = live_sim.current_market()["token_ids"][0]
    for args, msg in [
        (("order", "hold", token, "-p", "0.5", "-s", "5"), "'hold' is not one of 'buy', 'sell'"),
        (("order", "buy", token, "-p", "1.5", "-s", "5"), "price must be"),
        (("order", "buy", token, "-p", "0.5", "-s", "-1"), "size must be"),
        (("order", "buy", "xyz", "-p", "0.5", "-s", "5"), "not a token id"),
        (("order", "buy", "123", "-p", "0.5", "-s", "5"), "No orderbook exists"),
    ]:
        code, out = invoke(*args)
        assert code == 2 and msg in out, (args, out)
    store = open_store(db_url)
    assert store.list_orders() == []
    store.close()


def test_risk_rejection_is_shown_and_resume_resets_the_kill_switch(
    live_sim: SimServer, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = live_sim.current_market()["token_ids"][0]
    code, out = invoke("order", "buy", token, "-p", "0.50", "-s", "200")
    assert code == 3 and "rejected" in out and "max_order_notional" in out
    from pmbot.config import load_settings
    from pmbot.executor.risk import RiskGate

    store = open_store(db_url)
    gate = RiskGate(load_settings().settings.risk)
    gate.trip("test stop")
    store.set_state("risk:dry-run", gate.export_state())
    store.close()
    code, out = invoke("order", "buy", token, "-p", "0.02", "-s", "5")
    assert code == 3 and "kill_switch" in out
    code, out = invoke("status")
    assert "TRIPPED" in out
    code, out = invoke("resume")  # bare resume un-pauses strategies: a risk stop stays until --mode resets it
    assert code == 0 and "dry-run: kill switch still TRIPPED (test stop)" in out and "live: not tripped" in out
    code, out = invoke("order", "buy", token, "-p", "0.02", "-s", "5")
    assert code == 3 and "kill_switch" in out
    code, out = invoke("resume", "--mode", "dry-run")
    assert code == 0 and "reset" in out
    code, out = invoke("order", "buy", token, "-p", "0.02", "-s", "5", "--json")
    assert json.loads(out)["status"] == "cancelled" and "paper orders end" in json.loads(out)["reason"]
    store = open_store(db_url)
    statuses = sorted(o.status.value for o in store.list_orders())
    store.close()
    # the resting paper order ended with the command that placed it
    assert statuses == sorted([OrderStatus.REJECTED.value] * 3 + [OrderStatus.CANCELLED.value])
