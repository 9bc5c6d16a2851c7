"""The CLI through Typer's runner (fast) and through a real `python -m pmbot` subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pmbot.cli import app, main
from pmbot.store import open_store
from pmbot.store.models import Side
from tests.test_store_contract import T0, fill

KEY = "0x" + "4f" * 32


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_") or k == "PMBOT_REQUIRE_SERVICES"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pmbot", *args], capture_output=True, text=True, env=full_env, timeout=60, check=False
    )


@pytest.fixture
def populated(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    s = open_store(db_url)
    s.record_fills(
        [
            fill(1, Side.BUY, "0.96", "10", strategy="snipe", token="up1"),
            fill(2, Side.BUY, "0.50", "20", strategy="copy", token="t2", dry_run=False),
            fill(3, Side.SELL, "0.60", "20", strategy="copy", token="t2", dry_run=False),
            fill(4, Side.BUY, "0.30", "10", strategy="copy", token="t3"),
        ]
    )
    s.resolve_token("up1", D(1), ts=T0 + 5000)
    s.close()
    return db_url


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("positions", "trades", "stats", "config"):
        assert cmd in result.output


@pytest.mark.parametrize("cmd", ["positions", "trades", "stats"])
def test_empty_database_is_friendly_and_writes_nothing(cmd: str, db_url: str, monkeypatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, [cmd])
    assert result.exit_code == 0 and "No " in result.output and "nothing recorded yet" in result.output
    result = CliRunner().invoke(app, [cmd, "--json"])
    assert result.exit_code == 0 and json.loads(result.output) == []
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_empty_but_existing_database(db_url: str, monkeypatch) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    open_store(db_url).close()
    result = CliRunner().invoke(app, ["stats"])
    assert result.exit_code == 0 and "No statistics" in result.output


def test_positions_table_and_json(populated: str) -> None:
    result = CliRunner().invoke(app, ["positions", "--offline"])
    assert result.exit_code == 0, result.output
    assert "snipe" in result.output and "copy" in result.output and "resolved" in result.output
    data = json.loads(CliRunner().invoke(app, ["positions", "--offline", "--json"]).output)
    by_token = {p["token_id"]: p for p in data}
    assert by_token["up1"]["state"] == "resolved" and by_token["up1"]["realized_pnl"] == "0.4"
    assert by_token["t2"]["mode"] == "live" and by_token["t2"]["realized_pnl"] == "2"
    assert by_token["t3"]["avg_price"] == "0.3" and by_token["t3"]["size"] == "10"
    open_only = json.loads(CliRunner().invoke(app, ["positions", "--offline", "--open", "--json"]).output)
    assert [p["token_id"] for p in open_only] == ["t3"]
    live = json.loads(CliRunner().invoke(app, ["positions", "--offline", "--live", "--closed", "--json"]).output)
    assert [p["token_id"] for p in live] == ["t2"]


def test_trades_filters(populated: str) -> None:
    data = json.loads(CliRunner().invoke(app, ["trades", "--json"]).output)
    assert len(data) == 5 and data[0]["kind"] == "redeem"  # newest first
    assert all(isinstance(t["price"], str) for t in data)
    copy = json.loads(CliRunner().invoke(app, ["trades", "--strategy", "copy", "--dry-run", "--json"]).output)
    assert [t["trade_id"] for t in copy] == ["t4"]
    assert len(json.loads(CliRunner().invoke(app, ["trades", "-n", "2", "--json"]).output)) == 2
    recent = json.loads(CliRunner().invoke(app, ["trades", "--since", "2026-11-19T00:00:00Z", "--json"]).output)
    assert recent == []  # all fixtures are from T0 (2026-11-18)
    table = CliRunner().invoke(app, ["trades"])
    assert table.exit_code == 0 and "REDEEM" in table.output and "LIVE" in table.output


def test_stats_json_keeps_modes_apart(populated: str) -> None:
    data = json.loads(CliRunner().invoke(app, ["stats", "--offline", "--json"]).output)
    modes = {(s["strategy"], s["mode"]): s for s in data}
    assert modes[("copy", "live")]["realized_pnl"] == "2" and modes[("copy", "live")]["win_rate"] == "1"
    assert modes[("copy", "dry-run")]["trades"] == 1 and modes[("snipe", "dry-run")]["realized_pnl"] == "0.4"
    assert CliRunner().invoke(app, ["stats", "--offline"]).exit_code == 0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["trades", "--since", "yesterdayish"], "not a time"),
        (["positions", "--strategy", " "], "--strategy"),
    ],
)
def test_bad_input_is_a_usage_error_exit_2(args: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    # A bad option value is found while parsing: Click's usage error (usage line, "Try …", one Error line).
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"Usage: pmbot {args[0]}") and err[1] == f"Try 'pmbot {args[0]} --help' for help."
    assert err[-1].startswith("Error:") and needle in err[-1] and len(err) == 4


def test_config_show_masks_key_and_shows_sources(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    monkeypatch.setenv("PMBOT_RISK__MAX_ORDER_NOTIONAL", "7.5")
    result = CliRunner().invoke(app, ["config", "show", "--json"])
    assert result.exit_code == 0 and KEY not in result.output and KEY[2:] not in result.output
    rows = {r["key"]: r for r in json.loads(result.output)["settings"]}
    assert rows["private_key"]["value"] == "(set, hidden)"
    assert rows["risk.max_order_notional"] == {
        "key": "risk.max_order_notional",
        "env": "PMBOT_RISK__MAX_ORDER_NOTIONAL",
        "value": "7.5",
        "unit": "USDC",
        "source": "environment",
    }
    table = CliRunner().invoke(app, ["config", "show"])
    assert table.exit_code == 0 and KEY[2:10] not in table.output


def test_config_check(monkeypatch, db_url: str) -> None:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    result = CliRunner().invoke(app, ["config", "check", "--json"])
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.output)}
    assert checks["database"]["ok"] and "will be created" in checks["database"]["detail"]
    assert checks["wallet"]["warning"]
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    monkeypatch.setenv("PMBOT_SIGNATURE_TYPE", "2")
    result = CliRunner().invoke(app, ["config", "check"])
    assert result.exit_code == 2 and "PMBOT_FUNDER" in result.output and KEY[2:] not in result.output
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


# ------------------------------------------------------------- subprocess


def test_subprocess_help_version_and_reports(populated: str) -> None:
    env = {"PMBOT_DATABASE_URL": populated}
    assert run("--version").stdout.startswith("pmbot ")
    assert run("--help").returncode == 0
    for cmd in (("positions", "--offline"), ("trades",), ("stats", "--offline")):
        out = run(*cmd, "--json", env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)
        assert run(*cmd, env=env).returncode == 0


def test_subprocess_config_error_is_one_line_exit_2() -> None:
    bad_key = "0x" + "4f" * 31 + "zz"
    out = run("stats", env={"PMBOT_PRIVATE_KEY": bad_key, "PMBOT_BOGUS": "1"})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "PMBOT_BOGUS" in lines[0] and "hint:" in lines[0]
    assert "Traceback" not in out.stderr
    out = run("stats", env={"PMBOT_PRIVATE_KEY": bad_key})
    assert out.returncode == 2 and bad_key not in out.stderr and bad_key[2:] not in out.stderr


def test_subprocess_unsupported_database_url() -> None:
    out = run("positions", env={"PMBOT_DATABASE_URL": "mysql://x"})
    assert out.returncode == 2 and "unsupported database URL" in out.stderr and "Traceback" not in out.stderr


def test_corrupt_database_is_an_expected_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    out = run("positions", env={"PMBOT_DATABASE_URL": f"sqlite:///{bad}"})
    assert out.returncode == 2 and "cannot open database" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_unexpected_error_exit_1_traceback_only_with_debug(monkeypatch, capsys) -> None:
    from pmbot.app import App

    def boom(self: App) -> bool:
        raise RuntimeError("boom")

    monkeypatch.setattr(App, "database_exists", boom)
    assert main(["positions"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "RuntimeError: boom" in err and "--debug" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["--debug", "positions"]) == 1
    assert "Traceback" in capsys.readouterr().err
