"""`[copy]` and `[[copy.targets]]`: the defaults are the copy strategy's, a target's entry overrides them, bad
values are one line naming the key, and `config show` lists the targets readably."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.config import CopyRuleSettings, Settings, describe, load_settings
from pmbot.errors import ConfigError
from pmbot.strategies.copy import CopyConfig

WALLET = "0x" + "ab" * 20


def test_copy_defaults_are_the_strategy_defaults() -> None:
    """A default changed on one side only would make `config show` lie about what runs."""
    from_settings = CopyConfig.model_validate({"target": WALLET, **Settings().copy.rules_for(None)})
    assert from_settings == CopyConfig(target=WALLET)
    assert set(CopyRuleSettings.model_fields) == set(CopyConfig.model_fields) - {"target", "address"}


def test_a_target_entry_overrides_the_section(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[copy]\nratio = 0.2\nbuys_only = true\npoll_s = 1.5\n\n[[copy.targets]]\ntarget = "distinct-baguette"\n'
        'ratio = 0.5\nmarkets = ["btc-updown-15m-1"]\n\n[[copy.targets]]\ntarget = "' + WALLET + '"\n'
    )
    s = load_settings(cfg, environ={}).settings.copy
    a, b = s.targets
    assert s.rules_for(a)["ratio"] == Decimal("0.5") and s.rules_for(a)["buys_only"] is True
    assert s.rules_for(a)["markets"] == ["btc-updown-15m-1"]
    assert s.rules_for(b)["ratio"] == Decimal("0.2")
    assert s.poll_s == Decimal("1.5")
    rows = {r["key"]: r["value"] for r in describe(load_settings(cfg, environ={}))}
    assert (
        rows["copy.targets"]
        == "{target=distinct-baguette ratio=0.5 markets=['btc-updown-15m-1']},{target=" + WALLET + "}"
    )
    # `copy analyze` sizes a target as `pmbot copy` would: [copy] with that target's entry on top
    from pmbot.app import App
    from pmbot.commands.copy_analyze_cmd import rules_from

    app = App(config_file=cfg)
    assert rules_from(app, "Distinct-Baguette").ratio == Decimal("0.5")
    assert rules_from(app, WALLET).ratio == Decimal("0.2")
    assert rules_from(app, "someone-else").ratio == Decimal("0.2")


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[copy]\nratio = 0\n", "copy.ratio"),
        ('[copy]\nmode = "double"\n', "copy.mode"),
        ('[copy]\nsources = ["telepathy"]\n', "copy.sources"),
        ("[copy]\npoll_s = 0\n", "copy.poll_s"),
        ("[[copy.targets]]\nratio = 0.5\n", "copy.targets.0.target"),
        ('[[copy.targets]]\ntarget = "x"\nsizing = 1\n', "copy.targets.0.sizing"),
    ],
)
def test_bad_copy_values_are_one_line_naming_the_key(toml: str, key: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as e:
        load_settings(cfg, environ={})
    lines = e.value.message.splitlines()
    assert len(lines) == 1 and lines[0].startswith(key), lines
