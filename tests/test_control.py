"""Pause / resume / status of a running process from another terminal (pmbot.control)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmbot.control import (
    ALL,
    PROCESSES_STATE,
    STALE_AFTER_S,
    Command,
    ControlChannel,
    StrategyStatus,
    pause_state,
    processes,
    request_pause,
    request_resume,
)
from pmbot.store import open_store
from pmbot.store.base import Store
from tests.conftest import FakeClock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sqlite_store(db_url: str) -> Iterator[Store]:
    s = open_store(db_url)
    yield s
    s.close()


def test_pause_and_resume_by_name_and_all(sqlite_store: Store) -> None:
    ch = ControlChannel(sqlite_store, ["snipe", "copy"], process_id="p1")
    assert ch.poll() == []  # nothing paused: nothing to do
    request_pause(sqlite_store, "snipe")
    assert ch.poll() == [Command("pause", "snipe")]
    assert ch.poll() == []  # a level, not a queue: told once
    request_pause(sqlite_store, ALL)
    assert ch.poll() == [Command("pause", "copy")]  # snipe is paused already
    request_resume(sqlite_store, "copy")  # while all are paused
    assert ch.poll() == [Command("resume", "copy")]
    assert ch.is_paused("snipe") and not ch.is_paused("copy")
    request_pause(sqlite_store, "copy")
    request_resume(sqlite_store, ALL)
    assert ch.poll() == [Command("resume", "snipe")]  # copy paused and resumed in between: nothing to tell
    assert pause_state(sqlite_store).seq == 5


def test_a_pause_outlives_its_process(sqlite_store: Store) -> None:
    request_pause(sqlite_store, "copy")
    later = ControlChannel(sqlite_store, ["snipe", "copy"], process_id="p2")
    assert later.poll() == [Command("pause", "copy")]  # starts paused: only `pmbot resume` says go
    later.set_strategies(["snipe", "copy", "copy-2"])
    request_pause(sqlite_store, ALL)
    assert later.poll() == [Command("pause", "snipe"), Command("pause", "copy-2")]


def test_status_rows_go_stale_and_old_ones_are_forgotten(sqlite_store: Store) -> None:
    clock = FakeClock()
    a = ControlChannel(sqlite_store, ["snipe"], process_id="a", clock=clock)
    b = ControlChannel(sqlite_store, ["copy"], process_id="b", clock=clock)
    a.publish_status({"snipe": StrategyStatus("running", heartbeat_ms=int(clock() * 1000))}, streams={"market": None})
    clock.advance(2)
    b.publish_status({"copy": StrategyStatus("paused")}, open_orders=2)
    now = int(clock() * 1000)
    procs = {p["process"]: p for p in processes(sqlite_store, now_ms=now)}
    assert procs["a"]["alive"] and procs["b"]["alive"]  # both entries kept: each merges its own
    assert procs["a"]["strategies"]["snipe"]["heartbeat_age_s"] == 2.0 and procs["a"]["uptime_s"] == 2.0
    assert procs["b"]["open_orders"] == 2
    clock.advance(STALE_AFTER_S + 1)
    b.close()
    procs = {p["process"]: p for p in processes(sqlite_store, now_ms=int(clock() * 1000))}
    assert procs["a"]["state"] == "stale" and not procs["a"]["alive"]
    assert procs["b"]["state"] == "stopped" and not procs["b"]["alive"]
    clock.advance(25 * 3600)
    b.publish_status({})
    doc = sqlite_store.get_state(PROCESSES_STATE)
    assert doc is not None and set(doc["processes"]) == {"b"}  # a day-old stale entry is dropped


# ------------------------------------------------------------------- across processes, the real CLI


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pmbot", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


@pytest.fixture
def worker(db_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(PMBOT_DATABASE_URL=db_url, PYTHONPATH=str(ROOT), COLUMNS="200")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.control_worker", "--db", db_url, "--strategies", "snipe,copy"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert json.loads(proc.stdout.readline()) == {"ready": True}
    store = open_store(db_url)
    try:
        deadline = time.monotonic() + 20
        while not any(p["alive"] for p in processes(store, now_ms=int(time.time() * 1000))):
            assert time.monotonic() < deadline, "the worker never published its status"
            time.sleep(0.05)
    finally:
        store.close()
    yield proc, env
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=20)


def _next_event(proc: subprocess.Popen[str]) -> dict[str, object]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, "the worker exited"
    event = json.loads(line)
    assert isinstance(event, dict)
    return event


def test_pause_resume_reach_a_running_process(worker: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    proc, env = worker
    res = _cli("pause", "snipe", env=env)
    done = time.time()
    assert res.returncode == 0, res.stderr
    assert "snipe: paused" in res.stdout and "within 1 s" in res.stdout
    event = _next_event(proc)
    assert (event["action"], event["strategy"]) == ("pause", "snipe")
    # Reported, not asserted (no timing assertions in tests): the poll interval is 0.25 s.
    print(f"pause applied {float(event['at']) - done:+.3f} s after `pmbot pause` returned")  # type: ignore[arg-type]

    status = _cli("status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    view = json.loads(status.stdout)
    (p,) = view["processes"]
    assert p["alive"] and p["state"] == "running" and p["open_orders"] == 3
    assert set(p["strategies"]) == {"snipe", "copy"} and p["strategies"]["copy"]["state"] == "running"
    assert p["streams"]["market"]["age_s"] >= 1.5 and p["streams"]["user"]["age_s"] is None
    assert view["paused"]["names"] == ["snipe"]
    text = _cli("status", env=env)
    assert text.returncode == 0 and "Running processes" in text.stdout and "Strategies" in text.stdout
    assert "paused by the operator: snipe" in text.stdout and "none yet" in text.stdout

    assert _cli("resume", "snipe", env=env).returncode == 0
    assert (_next_event(proc)["action"], "snipe") == ("resume", "snipe")
    assert _cli("pause", env=env).returncode == 0  # no name: all
    got = {(e["action"], e["strategy"]) for e in (_next_event(proc), _next_event(proc))}
    assert got == {("pause", "snipe"), ("pause", "copy")}
    res = _cli("resume", env=env)  # bare: every strategy; kill switches only reported
    assert res.returncode == 0 and "all strategies: resumed" in res.stdout and "dry-run: not tripped" in res.stdout
    got = {(e["action"], e["strategy"]) for e in (_next_event(proc), _next_event(proc))}
    assert got == {("resume", "snipe"), ("resume", "copy")}

    proc.terminate()
    assert proc.wait(timeout=20) == 0
    after = json.loads(_cli("status", "--json", env=env).stdout)
    assert after["processes"][0]["state"] == "stopped"
    assert "No run-all running" not in _cli("status", env=env).stdout  # a stopped entry still shows


def test_bad_control_input_is_refused_and_writes_nothing(
    worker: tuple[subprocess.Popen[str], dict[str, str]], db_url: str
) -> None:
    _, env = worker
    for args in (["pause", "nope"], ["resume", "nope"], ["pause", "bad name!"], ["resume", "snipe", "--mode", "live"]):
        res = _cli(*args, env=env)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith("error:")
    store = open_store(db_url)
    try:
        assert store.get_state("control:strategies") is None
    finally:
        store.close()


def test_pause_with_nothing_running_says_when_it_applies(db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env["PMBOT_DATABASE_URL"] = db_url
    res = _cli("pause", "snipe", env=env)
    assert res.returncode == 0 and "no run-all is running: it will start paused" in res.stdout
    res = _cli("status", env=env)
    assert "No run-all running" in res.stdout and "paused by the operator: snipe" in res.stdout


def test_resume_on_a_fresh_machine_creates_nothing(db_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env["PMBOT_DATABASE_URL"] = db_url
    for args in (["resume"], ["resume", "snipe"]):
        res = _cli(*args, env=env)
        assert res.returncode == 0 and "resumed (no run-all is running)" in res.stdout, res.stderr
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def test_pause_of_a_name_not_in_the_config_is_refused_when_nothing_runs(db_url: str, tmp_path: Path) -> None:
    """A typo must not be stored as paused while the real strategy starts and trades; a configured
    instance (also a disabled one) is accepted."""
    cfg = tmp_path / "pmbot.toml"
    cfg.write_text(
        '[[strategies]]\nkind = "snipe"\nname = "btc-sniper"\n\n'
        '[[strategies]]\nkind = "copy"\nname = "whale"\nenabled = false\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(PMBOT_DATABASE_URL=db_url, PMBOT_CONFIG=str(cfg))
    res = _cli("pause", "btc-snipr", env=env)
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "no strategy named 'btc-snipr' in the config (configured: btc-sniper)" in res.stderr
    assert not Path(db_url.removeprefix("sqlite:///")).exists()  # bad input writes nothing
    for name in ("btc-sniper", "whale"):
        res = _cli("pause", name, env=env)
        assert res.returncode == 0 and f"{name}: paused" in res.stdout, res.stderr
    assert _cli("resume", "anything-old", env=env).returncode == 0  # resume only clears
