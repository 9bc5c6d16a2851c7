"""Issue 12 item 2: plaintext endpoints for anything live, even from a working-directory `.env`.

Live trading sends L1 auth headers, then the API key, passphrase and HMACs: over plaintext to another
machine they can be read and replayed. Every non-loopback venue URL must be https/wss for `--live`
(one line, exit 2, before anything is sent); `config check` flags it; and a `.env` in the working
directory that moves the venue is announced on stderr (a planted `.env` pointing at a local listener
is loopback, so only the announcement can tell).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.cli import main
from pmbot.config import insecure_endpoints, is_loopback_host, load_settings
from pmbot.errors import ConfigError
from pmbot.polymarket.factory import build_venue
from pmbot.sim.testing import SimServer
from tests.hostile import HostileVenue
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("0.0.0.0", False),  # noqa: S104
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("evil.localhost", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


def _settings(**env: str):  # type: ignore[no-untyped-def]
    return load_settings(env_file=None, environ={f"PMBOT_{k.upper()}": v for k, v in env.items()}).settings


def test_insecure_endpoints_names_each_plaintext_remote_url() -> None:
    assert insecure_endpoints(_settings()) == []  # production defaults are https / wss
    sim_like = _settings(clob_url="http://127.0.0.1:9", clob_ws_url="ws://[::1]:9/ws", gamma_url="http://localhost:9")
    assert insecure_endpoints(sim_like) == []
    bad = _settings(clob_url="http://clob.example", rtds_url="ws://10.0.0.2/rtds", rpc_ws_url="ws://rpc.example")
    assert insecure_endpoints(bad) == ["PMBOT_CLOB_URL", "PMBOT_RTDS_URL", "PMBOT_RPC_WS_URL"]
    # what httpx would connect to decides, not what the text starts with
    for tricky in ("http://127.0.0.1@evil.example", "http://evil.example#@127.0.0.1", "http://localhost.evil.example"):
        assert insecure_endpoints(_settings(clob_url=tricky)) == ["PMBOT_CLOB_URL"], tricky


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("PMBOT_CLOB_URL", "http://192.0.2.1:9"),
        ("PMBOT_CLOB_WS_URL", "ws://192.0.2.1:9/ws"),
        ("PMBOT_DATA_URL", "http://data.example"),
    ],
)
def test_live_is_refused_over_plaintext_to_another_host(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, key: str, url: str
) -> None:
    monkeypatch.setenv(key, url)
    token = live_sim.current_market()["token_ids"][0]
    code, out, err = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0] and "https" in lines[0], err
    assert live_sim.received_orders() == []


async def test_trading_client_refuses_too(live_sim: SimServer) -> None:
    # every live path (cancel, strategies) builds its signed client here: it refuses before any header
    env = {**live_sim.env(), "PMBOT_PRIVATE_KEY": KEY, "PMBOT_CLOB_WS_URL": "ws://192.0.2.1/ws"}
    venue = build_venue(load_settings(env_file=None, environ=env).settings)
    try:
        with pytest.raises(ConfigError, match="PMBOT_CLOB_WS_URL"):
            await venue.trading()
    finally:
        await venue.aclose()


def test_config_check_flags_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PMBOT_GAMMA_URL", "http://gamma.example")
    code, out, _ = invoke("config", "check", "--json")
    checks = {c["name"]: c for c in json.loads(out)}
    assert code == 2
    assert not checks["endpoints"]["ok"] and "PMBOT_GAMMA_URL" in checks["endpoints"]["detail"]
    monkeypatch.delenv("PMBOT_GAMMA_URL")
    code, out, _err = invoke("config", "check", "--json")
    assert {c["name"]: c for c in json.loads(out)}["endpoints"]["ok"]


def test_a_working_directory_env_that_moves_the_venue_is_announced(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # the reproduction: a .env holding only PMBOT_CLOB_URL=http://127.0.0.1:EVIL
    monkeypatch.delenv("PMBOT_CLOB_URL")
    with HostileVenue(upstream=live_sim.url) as evil:
        (tmp_path / ".env").write_text(f"PMBOT_CLOB_URL={evil.url}\n")
        token = live_sim.current_market()["token_ids"][0]
        code, out, err = invoke("order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes")
    assert code == 0, out + err
    assert ".env" in err and "PMBOT_CLOB_URL" in err and evil.url in err, err
    # `config show` and the rest say it as well, once per command
    with HostileVenue() as evil2:
        (tmp_path / ".env").write_text(f"PMBOT_CLOB_URL={evil2.url}\n")
        code, out, err = invoke("config", "show", "--json")
    assert code == 0 and err.count("PMBOT_CLOB_URL") == 1, err


def test_a_env_that_changes_nothing_about_the_venue_is_quiet(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PMBOT_CLOB_URL=https://clob.polymarket.com\nPMBOT_RISK__MAX_OPEN_ORDERS=3\n")
    code, _out, err = invoke("config", "show", "--json")
    assert code == 0 and err == "", err
