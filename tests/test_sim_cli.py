"""`pmbot sim serve` as a real subprocess, and `pmbot sim env`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from pmbot.cli import main
from pmbot.sim.testing import SimServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pmbot(*args: str) -> list[str]:
    return [sys.executable, "-m", "pmbot", *args]


def test_serve_answers_book_requests_and_stops_cleanly_on_ctrl_c() -> None:
    port = free_port()
    proc = subprocess.Popen(
        pmbot("sim", "serve", "--port", str(port), "--seed", "3", "--speed", "5"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        exports = {}
        for line in proc.stdout:
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").strip().partition("=")
                exports[key] = value
            if line.startswith("# pmbot sim:"):
                break
        assert exports["PMBOT_CLOB_URL"] == f"http://127.0.0.1:{port}"
        assert exports["PMBOT_RPC_WS_URL"] == f"ws://127.0.0.1:{port}/rpc"
        markets = httpx.get(f"{exports['PMBOT_GAMMA_URL']}/markets", params={"limit": 1}, timeout=10).json()
        token = json.loads(markets[0]["clobTokenIds"])[0]
        book = httpx.get(f"{exports['PMBOT_CLOB_URL']}/book", params={"token_id": token}, timeout=10).json()
        assert book["asset_id"] == token and book["bids"] and book["asks"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "Traceback" not in err


def test_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(pmbot("sim", "serve", "--port", str(port)), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    [line] = out.stderr.strip().splitlines()
    assert line.startswith(f"error: cannot listen on 127.0.0.1:{port}")


def test_unknown_scenario_and_malformed_file_are_input_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "serve", "--scenario", "no-such-scenario", "--port", "0"]) == 2
    assert "unknown scenario 'no-such-scenario'" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format":"pmbot-scenario","version":1,"markets":[]}\n{"ts": 1}\n')
    assert main(["sim", "serve", "--scenario", str(bad), "--port", "0"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert f"{bad}:2:" in line


def test_env_prints_eval_able_exports(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", "env", "--port", "9123"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == [
        "export PMBOT_CLOB_URL=http://127.0.0.1:9123",
        "export PMBOT_GAMMA_URL=http://127.0.0.1:9123/gamma",
        "export PMBOT_DATA_URL=http://127.0.0.1:9123/data-api",
        "export PMBOT_CLOB_WS_URL=ws://127.0.0.1:9123/ws",
        "export PMBOT_RTDS_URL=ws://127.0.0.1:9123/rtds",
        "export PMBOT_RPC_WS_URL=ws://127.0.0.1:9123/rpc",
    ]
    shell = subprocess.run(
        ["bash", "-c", 'eval "$(' + " ".join(pmbot("sim", "env", "--port", "9124")) + ')"; echo $PMBOT_DATA_URL'],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.stdout.strip() == "http://127.0.0.1:9124/data-api"


def test_sim_env_fixture_points_settings_at_the_sim(sim_env: SimServer) -> None:
    from pmbot.config import load_settings

    settings = load_settings().settings
    assert settings.clob_url == sim_env.url
    assert settings.gamma_url == f"{sim_env.url}/gamma"
    assert settings.rpc_ws_url == sim_env.env()["PMBOT_RPC_WS_URL"]
