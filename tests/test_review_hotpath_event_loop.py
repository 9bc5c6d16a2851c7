"""Review of the hot path (issue 13): PMBOT_EVENT_LOOP=uvloop where uvloop cannot be imported.

The trading command built its coroutine before `run_trading` / `run(settings=...)` looked up the loop, so
the ConfigError's one line was followed by Python's "RuntimeWarning: coroutine '…' was never awaited"
(and its tracemalloc hint) on stderr. Real processes, a uvloop shadowed by one that fails to import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pmbot.commands import base
from pmbot.config import load_settings
from pmbot.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    shadow = tmp / "shadow" / "uvloop"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text('raise ImportError("uvloop is not installed here")\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(
        PYTHONPATH=str(tmp / "shadow"), HOME=str(tmp / "home"), XDG_DATA_HOME=str(tmp / "xdg"),
        PMBOT_DATABASE_URL=f"sqlite:///{tmp / 'db' / 'pmbot.db'}", PMBOT_EVENT_LOOP="uvloop",
        PMBOT_CLOB_URL="http://127.0.0.1:9", PMBOT_GAMMA_URL="http://127.0.0.1:9/gamma",
        PMBOT_DATA_URL="http://127.0.0.1:9/data-api", COLUMNS="120",
    )  # fmt: skip
    env.update(extra)
    (tmp / "db").mkdir(exist_ok=True)
    return env


@pytest.mark.parametrize(
    "args",
    [
        ["order", "buy", "123", "--price", "0.01", "--size", "5"],
        ["snipe", "--auto", "--series", "btc-updown-15m", "--no-live", "--duration", "3s"],
    ],
    ids=["order", "snipe"],
)
def test_uvloop_asked_for_but_missing_is_one_line_exit_2_and_nothing_written(tmp_path: Path, args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pmbot", *args], cwd=tmp_path, env=_env(tmp_path), capture_output=True,
        text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        "error: event_loop is uvloop but uvloop is not installed (hint: install it, or set PMBOT_EVENT_LOOP=auto)"
    ]
    assert out.stdout == ""
    assert list((tmp_path / "db").iterdir()) == []  # no store opened, nothing written


async def _never() -> None:  # pragma: no cover - must not run
    raise AssertionError("ran")


def test_the_refused_coroutine_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    settings = load_settings(env_file=None, environ={"PMBOT_EVENT_LOOP": "uvloop"}).settings
    for call in (lambda c: base.run_trading(c, settings), lambda c: base.run(c, settings=settings)):
        coro = _never()
        with pytest.raises(ConfigError, match="uvloop is not installed"):
            call(coro)
        assert coro.cr_frame is None  # closed: no "never awaited" warning when it is collected


@pytest.mark.parametrize(
    "args",
    [
        ["order", "buy", "123", "--price", "0.01", "--size", "5", "--live"],
        ["snipe", "--auto", "--series", "btc-updown-15m", "--no-live", "--duration", "3s", "--live"],
        ["copy", "--target", "0x" + "ab" * 20, "--no-live", "--duration", "3s", "--live"],
        ["run-all", "--strategies", "snipe", "--live", "--no-dashboard", "--duration", "3s"],
    ],
    ids=["order", "snipe", "copy", "run-all"],
)
def test_live_with_uvloop_missing_is_refused_before_the_confirmation_prompt(tmp_path: Path, args: list[str]) -> None:
    """It used to ask "LIVE … ?" first and refuse only after the user had said yes."""
    env = _env(tmp_path, PMBOT_PRIVATE_KEY="0x" + "11" * 32)
    out = subprocess.run(
        [sys.executable, "-m", "pmbot", *args], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60, input="y\n", check=False,
    )  # fmt: skip
    assert out.returncode == 2, out.stderr
    assert out.stderr.splitlines() == [
        "error: event_loop is uvloop but uvloop is not installed (hint: install it, or set PMBOT_EVENT_LOOP=auto)"
    ]
    assert out.stdout == ""
    assert list((tmp_path / "db").iterdir()) == []
