"""`pmbot --help` stays fast: the CLI's import path must not pull in heavy libraries or load settings."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "web3",
    "eth_account",
    "py_clob_client_v2",
    "py_order_utils",
    "polymarket",  # polymarket-client, the unified SDK (dev only)
    "websockets",
    "redis",
    "sqlite_utils",
    "aiohttp",
    "uvloop",  # the trading commands load it when they start their loop (pmbot.event_loop)
    "httpx",
    # Settings load lazily (pmbot.app): pydantic-settings is ~90 ms of start-up, pydantic itself ~15 ms.
    "pydantic_settings",
    "pydantic",
    "pmbot.config",
]

CHECK = f"""
import json, sys
import pmbot.cli
from typer.testing import CliRunner
CliRunner().invoke(pmbot.cli.app, ["--help"])
print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))
"""


def test_cli_import_and_help_do_not_import_heavy_modules() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
