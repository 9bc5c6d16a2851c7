"""pmbot.event_loop: the trading commands run on uvloop unless told otherwise, and say so when it is missing."""

from __future__ import annotations

import asyncio
import sys

import pytest
import uvloop

from pmbot.commands import base
from pmbot.config import Settings, load_settings
from pmbot.errors import ConfigError
from pmbot.event_loop import loop_factory, loop_name


def settings(**env: str) -> Settings:
    return load_settings(env_file=None, environ=env).settings


async def running_loop() -> str:
    return type(asyncio.get_running_loop()).__module__.split(".")[0]


def test_auto_and_uvloop_pick_uvloop_and_asyncio_picks_the_standard_loop() -> None:
    assert loop_factory("auto") is uvloop.new_event_loop
    assert loop_factory("uvloop") is uvloop.new_event_loop
    assert loop_factory("asyncio") is None
    assert loop_name(loop_factory("auto")) == "uvloop" and loop_name(None) == "asyncio"


def test_a_missing_uvloop_is_an_error_only_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # import uvloop now raises ImportError
    assert loop_factory("auto") is None
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loop_factory("uvloop")


def test_the_trading_commands_run_on_the_settings_loop() -> None:
    assert settings().event_loop == "auto"
    assert base.run_trading(running_loop(), settings()) == "uvloop"
    assert base.run_trading(running_loop(), settings(PMBOT_EVENT_LOOP="asyncio")) == "asyncio"
    assert base.run(running_loop(), settings=settings()) == "uvloop"
    assert base.run(running_loop()) == "asyncio"  # read-only commands keep the standard loop


def test_a_bad_value_is_refused_by_the_settings() -> None:
    with pytest.raises(ConfigError, match="event_loop"):
        settings(PMBOT_EVENT_LOOP="uvlop")
