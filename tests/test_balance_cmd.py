"""`pmbot balance` and `pmbot config check --live` against `pmbot sim` over real sockets (read-only GETs)."""

from __future__ import annotations

import contextlib
import io
import json
import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest

from pmbot.cli import main
from pmbot.errors import VenueError
from pmbot.polymarket.balances import (
    COLLATERAL,
    CONDITIONAL,
    CONDITIONAL_V2,
    SPENDERS,
    asset_type_of,
    parse_balance_allowance,
)
from pmbot.polymarket.identity import is_v2_position_id
from pmbot.sim.testing import HARDHAT_KEYS, SimServer, SimTrader
from tests.sim_start import mid_window

KEY = HARDHAT_KEYS[0]
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # HARDHAT_KEYS[0]
SAFE = "0x" + "5a" * 20


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def _dead_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def _buy(sim: SimServer, t: SimTrader, token: str) -> Decimal:
    r = t.post_order(token, "BUY", Decimal("0.99"), amount=Decimal("5"), order_type="FOK").json()
    assert r["status"] == "matched", r
    return Decimal(r["takingAmount"])


def test_balance_shows_pusd_and_positions_with_their_asset_types(live_sim: SimServer) -> None:
    v2_token = live_sim.current_market()["token_ids"][0]
    v1_token = next(m for m in live_sim.markets() if not m["closed"] and not is_v2_position_id(m["token_ids"][0]))[
        "token_ids"
    ][0]
    t = SimTrader(live_sim, KEY)
    try:
        held = {v2_token: _buy(live_sim, t, v2_token), v1_token: _buy(live_sim, t, v1_token)}
    finally:
        t.close()
    live_sim.fund(ADDRESS, pusd="123.456789")
    orders_before = len(live_sim.received_orders())

    code, out, err = invoke("balance", "--json")
    assert code == 0, err
    view = json.loads(out)
    assert view["wallet"] == ADDRESS and view["signature_type"] == 0
    assert view["collateral"]["asset_type"] == COLLATERAL and view["collateral"]["balance"] == "123.456789"
    rows = {r["token_id"]: r for r in view["positions"]}
    assert rows.keys() == held.keys()
    assert rows[v2_token]["asset_type"] == CONDITIONAL_V2 and rows[v1_token]["asset_type"] == CONDITIONAL
    for token, shares in held.items():
        assert Decimal(rows[token]["clob_balance"]) == shares
        assert Decimal(rows[token]["size"]) == shares

    code, out, err = invoke("balance")
    assert code == 0, err
    assert "123.46 pUSD" in out and ADDRESS in out  # to the cent in the table
    assert CONDITIONAL_V2 in out and f"{CONDITIONAL} " in out
    assert len(live_sim.received_orders()) == orders_before  # read-only


def test_balance_without_positions(live_sim: SimServer) -> None:
    code, out, err = invoke("balance")
    assert code == 0, err
    assert "no open positions" in out and "100000.00 pUSD" in out


def test_balance_without_a_key_is_one_line_exit_2(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PMBOT_PRIVATE_KEY")
    code, out, err = invoke("balance", "--json")
    assert code == 2 and out == ""
    assert "balance needs a wallet key" in err and "PMBOT_PRIVATE_KEY" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # the line and its hint


def test_balance_venue_unreachable_is_one_line_exit_2(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_CLOB_URL", _dead_url())
    code, out, err = invoke("balance")
    assert code == 2 and out == "" and "Traceback" not in err
    assert "cannot connect" in err and "no CLOB API key" not in err  # not mistaken for a missing key
    assert len(err.strip().splitlines()) == 1


def test_balance_never_creates_an_api_key(live_sim: SimServer) -> None:
    # derive fails (no key for this wallet yet): a read-only command must not POST /auth/api-key
    live_sim.set_faults(api_key_derive_fail=1, api_key_create_fail=1)
    code, _, err = invoke("balance")
    assert code == 2 and "no CLOB API key" in err and "Traceback" not in err
    assert live_sim.set_faults()["api_key_create_fail"] == 1  # the create route was never called


def test_config_check_live_names_wallet_and_each_missing_allowance(live_sim: SimServer) -> None:
    approved = live_sim.call(lambda v: v.balance_allowance(ADDRESS, COLLATERAL, None))["allowances"]
    approved = {a.lower() for a, n in approved.items() if int(n) > 0}
    code, out, err = invoke("config", "check", "--live", "--json")
    assert code == 0, out + err
    checks = {c["name"]: c for c in json.loads(out)}
    assert checks["trading wallet"]["ok"] and f"signature type 0 (EOA): {ADDRESS}" in checks["trading wallet"]["detail"]
    for name, address in SPENDERS.items():
        c = checks[f"allowance {name}"]
        if address.lower() in approved:
            assert c["ok"], c
        else:
            assert not c["ok"] and c["warning"] and address in c["detail"], c
    assert len(approved) < len(SPENDERS)  # the sim approves only the V1 exchanges: some warnings are shown
    assert live_sim.received_orders() == []


def test_config_check_live_with_a_safe_says_who_signs(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_SIGNATURE_TYPE", "2")
    monkeypatch.setenv("PMBOT_FUNDER", SAFE)
    code, out, err = invoke("config", "check", "--live", "--json")
    assert code == 0, out + err
    wallet = next(c for c in json.loads(out) if c["name"] == "trading wallet")
    assert wallet["detail"] == f"signature type 2 (POLY_GNOSIS_SAFE): {SAFE}, signed by {ADDRESS}"


def test_config_check_live_venue_down_or_no_key(live_sim: SimServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_CLOB_URL", _dead_url())
    code, out, _ = invoke("config", "check", "--live", "--json")
    assert code == 2
    venue = next(c for c in json.loads(out) if c["name"] == "venue")
    assert not venue["ok"] and not venue["warning"] and "cannot connect" in venue["detail"]
    monkeypatch.delenv("PMBOT_PRIVATE_KEY")
    code, out, _ = invoke("config", "check", "--live", "--json")
    live = next(c for c in json.loads(out) if c["name"] == "live")
    assert code == 0 and live["warning"] and "PMBOT_PRIVATE_KEY" in live["detail"]


def test_asset_type_and_parsing() -> None:
    v2 = str((1 << 248) | (0xAB << 8) | 1)  # module 1, outcome 1, reserved bits zero
    assert asset_type_of(v2) == CONDITIONAL_V2
    assert asset_type_of(str((1 << 255) | (1 << 100))) == CONDITIONAL
    b = parse_balance_allowance({"balance": "1000001", "allowances": {SPENDERS["ExchangeV3"]: "0"}}, COLLATERAL, None)
    assert b.balance == Decimal("1.000001") and "ExchangeV3" in b.missing() and len(b.missing()) == len(SPENDERS)
    bad_answers: list[object] = [[], {"balance": "1.5"}, {"balance": "1", "allowances": {"x": "no"}}]
    bad_answers.append({"balance": "1", "allowances": 3})
    for bad in bad_answers:
        with pytest.raises(VenueError):
            parse_balance_allowance(bad, COLLATERAL, None)
