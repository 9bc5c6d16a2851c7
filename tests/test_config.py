from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from pmbot.config import describe, load_settings
from pmbot.errors import ConfigError

KEY = "0x" + "4f" * 32


def test_defaults_point_at_polymarket(tmp_path: Path) -> None:
    s = load_settings(environ={}).settings
    assert s.clob_url == "https://clob.polymarket.com"
    assert s.database_url.endswith("pmbot/pmbot.db") and s.redis_url is None
    assert s.executor.orders_per_minute == 50 and s.private_key is None


def test_priority_cli_over_env_over_dotenv_over_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "pmbot.toml"
    cfg.write_text(
        'clob_url = "http://toml"\ngamma_url = "http://toml"\ndata_url = "http://toml"\n[risk]\nmax_open_orders = 3\n'
    )
    env = tmp_path / ".env"
    env.write_text("PMBOT_GAMMA_URL=http://dotenv\nPMBOT_DATA_URL=http://dotenv\nUNRELATED=1\n")
    loaded = load_settings(
        cfg, env_file=env, environ={"PMBOT_DATA_URL": "http://env"}, overrides={"redis_url": "redis://127.0.0.1:1"}
    )
    s = loaded.settings
    assert (s.clob_url, s.gamma_url, s.data_url) == ("http://toml", "http://dotenv", "http://env")
    assert s.risk.max_open_orders == 3
    assert loaded.origins["clob_url"] == "config file"
    assert loaded.origins["gamma_url"] == ".env"
    assert loaded.origins["data_url"] == "environment"
    assert loaded.origins["redis_url"] == "command line"
    assert loaded.origins["risk.max_open_orders"] == "config file"


def test_nested_env_and_decimal_money() -> None:
    s = load_settings(environ={"PMBOT_RISK__MAX_ORDER_NOTIONAL": "12.35"}).settings
    assert s.risk.max_order_notional == D("12.35")


@pytest.mark.parametrize(
    ("environ", "needle"),
    [
        ({"PMBOT_BOGUS": "1"}, "PMBOT_BOGUS"),
        ({"PMBOT_RISK__BOGUS": "1"}, "PMBOT_RISK__BOGUS"),
        ({"PMBOT_CLOB_URL": "ftp://x"}, "clob_url"),
        ({"PMBOT_SIGNATURE_TYPE": "7"}, "signature_type"),
        ({"PMBOT_RISK__MAX_ORDER_NOTIONAL": "-5"}, "risk.max_order_notional"),
    ],
)
def test_bad_settings_name_the_key(environ: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(environ=environ)
    assert needle in e.value.one_line()


def test_each_error_is_its_own_line() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"PMBOT_CLOB_URL": "x", "PMBOT_RISK__MAX_OPEN_ORDERS": "0"})
    lines = e.value.lines()
    assert len(lines) == 2 and lines[0].startswith("clob_url") and lines[1].startswith("risk.max_open_orders")


def test_unknown_toml_key_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_open_order = 3\n")
    with pytest.raises(ConfigError, match=r"risk\.max_open_order .*unknown key"):
        load_settings(cfg, environ={})


def test_missing_and_broken_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(ConfigError):
        load_settings(bad, environ={})


def test_private_key_never_appears(tmp_path: Path) -> None:
    loaded = load_settings(environ={"PMBOT_PRIVATE_KEY": KEY})
    assert loaded.settings.private_key is not None
    assert loaded.settings.private_key.get_secret_value() == KEY
    shown = str(describe(loaded)) + repr(loaded.settings) + str(loaded.settings.model_dump())
    assert KEY not in shown and KEY[2:] not in shown
    bad = "0x" + "4f" * 31 + "zz"
    with pytest.raises(ConfigError) as e:
        load_settings(environ={"PMBOT_PRIVATE_KEY": bad})
    assert bad not in e.value.one_line() and "private_key" in e.value.one_line()


def test_private_key_refused_in_config_file(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'private_key = "{KEY}"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, environ={})
    assert KEY not in e.value.one_line() and "private_key" in e.value.one_line()


def test_database_password_masked() -> None:
    loaded = load_settings(environ={"PMBOT_REDIS_URL": "redis://user:hunter2@127.0.0.1:6379/0"})
    row = next(r for r in describe(loaded) if r["key"] == "redis_url")
    assert "hunter2" not in row["value"] and "***" in row["value"]
