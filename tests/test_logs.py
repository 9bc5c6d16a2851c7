"""Run logs (pmbot.logs): one rotating file per strategy and the orchestrator's, 0600/0700, secrets redacted."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.config import load_settings
from pmbot.errors import ConfigError, InputError
from pmbot.logs import setup_run_logs, strategy_context, strategy_logger

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
BARE = KEY[2:]
FORMS = (KEY, BARE, BARE.upper(), str(int(BARE, 16)))


@pytest.fixture
def key_loaded() -> None:
    # The real path: config loading registers the key as a secret.
    settings = load_settings(env_file=None, environ={"PMBOT_PRIVATE_KEY": KEY}).settings
    assert settings.private_key is not None


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)  # the widest umask: modes must still be 0600 / 0700
    yield
    os.umask(old)


def _emit_everything() -> None:
    orch = logging.getLogger("pmbot.runner")
    orch.info("starting with key %s", KEY)
    with strategy_context("snipe"):
        logging.getLogger("pmbot.executor").info("snipe order signed by %s", BARE.upper())
    strategy_logger("copy").warning("copy target echo %s", int(BARE, 16))
    try:
        raise ValueError(f"bad key {BARE}")
    except ValueError:
        with strategy_context("snipe-btc"):
            logging.getLogger("pmbot.executor").exception("crashed")

    async def task() -> None:
        logging.getLogger("pmbot.executor").info("from a task of snipe: %s", KEY)

    async def main() -> None:
        with strategy_context("snipe"):
            await asyncio.create_task(task())  # a task started inside inherits the strategy

    asyncio.run(main())
    for i in range(300):  # enough to rotate the small files
        orch.info("filler %d %s", i, KEY)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_log_file_is_private_routed_and_redacted(
    tmp_path: Path, key_loaded: None, umask0: None, fmt: str
) -> None:
    logs = setup_run_logs(tmp_path / "data", ["snipe", "copy", "snipe-btc"], fmt=fmt, max_bytes=4096, backups=20)
    try:
        _emit_everything()
    finally:
        logs.close()
    d = tmp_path / "data" / "logs"
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    names = sorted(p.name for p in d.iterdir())
    assert {"orchestrator.log", "sniper.log", "copy_trader.log", "snipe-btc.log", "orchestrator.log.1"} <= set(names)
    for p in d.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        text = p.read_text()
        for form in FORMS:
            assert form not in text and form.lower() not in text, (p.name, form)
    sniper = (d / "sniper.log").read_text()
    assert "snipe order signed by ***" in sniper and "from a task of snipe: ***" in sniper
    assert "copy target" not in sniper and "filler" not in sniper
    copy = (d / "copy_trader.log").read_text()
    assert "copy target echo ***" in copy
    btc = (d / "snipe-btc.log").read_text()
    assert "crashed" in btc and "ValueError: bad key ***" in btc  # the traceback too, redacted
    orch = "".join(p.read_text() for p in d.glob("orchestrator.log*"))
    assert "copy target echo" in orch  # strategies' warnings reach the orchestrator's file
    assert "snipe order signed" not in orch  # their info lines do not
    if fmt == "json":
        lines = [json.loads(line) for line in sniper.splitlines()]
        assert {x["strategy"] for x in lines} == {"snipe"} and {x["level"] for x in lines} == {"info"}
        (crash,) = [json.loads(line) for line in btc.splitlines()]
        assert crash["level"] == "error" and "***" in crash["exc"]


def test_close_puts_the_logger_back(tmp_path: Path) -> None:
    root = logging.getLogger("pmbot")
    before = (root.level, list(root.handlers))
    logs = setup_run_logs(tmp_path, ["snipe"], console=True, fmt="json")
    assert root.level == logging.INFO
    logs.close()
    assert (root.level, list(root.handlers)) == before


def test_bad_format_and_planted_symlink_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        setup_run_logs(tmp_path, ["snipe"], fmt="xml")
    assert not (tmp_path / "logs").exists()  # refused before anything is made
    d = tmp_path / "logs"
    d.mkdir()
    target = tmp_path / "elsewhere"
    (d / "sniper.log").symlink_to(target)
    with pytest.raises(ConfigError, match="cannot open log file"):
        setup_run_logs(tmp_path, ["snipe"])
    assert not target.exists()
    assert not [h for h in logging.getLogger("pmbot").handlers if "RotatingFile" in type(h).__name__]


def test_two_instances_never_share_a_file(tmp_path: Path) -> None:
    logs = setup_run_logs(tmp_path, ["snipe", "sniper", "a b", "a_b"])
    try:
        paths = list(logs.files.values())
        assert len(set(paths)) == len(paths) == 5  # orchestrator + 4
        with pytest.raises(InputError):
            logs.add_strategy("orchestrator")
    finally:
        logs.close()


def test_console_lines_are_redacted_too(tmp_path: Path, key_loaded: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs = setup_run_logs(tmp_path, ["snipe"], console=True, fmt="json")  # run-all --no-dashboard --log-format json
    try:
        _emit_everything()
    finally:
        logs.close()
    err = capsys.readouterr().err
    lines = [json.loads(line) for line in err.splitlines()]
    assert len(lines) > 300 and all({"ts", "level", "logger", "strategy", "message"} <= set(x) for x in lines)
    assert {x["strategy"] for x in lines} == {None, "snipe", "copy", "snipe-btc"}  # one stream, every line
    for form in FORMS:
        assert form not in err and form.lower() not in err


def test_the_terminal_stays_quiet_unless_debug(tmp_path: Path) -> None:
    root = logging.getLogger("pmbot")
    console = logging.StreamHandler()  # stands in for the CLI's Rich handler
    saved = root.level
    root.addHandler(console)
    try:
        root.setLevel(logging.WARNING)
        logs = setup_run_logs(tmp_path, ["snipe"])
        assert console.level == logging.WARNING  # INFO goes to the files only
        logs.close()
        assert console.level == logging.NOTSET
        root.setLevel(logging.DEBUG)  # --debug
        logs = setup_run_logs(tmp_path, ["snipe"])
        assert console.level == logging.NOTSET and root.level == logging.DEBUG
        logs.close()
    finally:
        root.removeHandler(console)
        root.setLevel(saved)
