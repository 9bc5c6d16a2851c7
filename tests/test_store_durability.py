"""`[store] durability`: "full" (the default, synchronous=FULL) or "normal" (WAL + synchronous=NORMAL).

With "normal" a commit is in the WAL file (the OS's page cache) when it returns, so it survives the
process dying at any point after it: a child that commits an order row and is SIGKILLed right after
leaves the row there for the next open, on a real file. (What "normal" gives up, a power loss or OS
crash, cannot be staged here: that is what the setting's note says.)"""

from __future__ import annotations

import contextlib
import io
import json
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pmbot.app import App
from pmbot.cli import main
from pmbot.config import DURABILITY_NOTES, load_settings
from pmbot.errors import ConfigError
from pmbot.store import open_store
from pmbot.store.sqlite import SQLiteStore

CHILD = """
import os, signal, sys
from decimal import Decimal
from pmbot.store import open_store, sqlite_path
from pmbot.store.checkpoint import CheckpointPolicy
from pmbot.store.models import OrderRecord, OrderType, Side
from pmbot.store.sqlite import SQLiteStore

if sys.argv[4:] == ["eager"]:  # the background checkpointer copying the WAL all the time, beside the commits
    policy = CheckpointPolicy(idle_s=0.0, min_interval_s=0.0, max_commits=3, poll_s=0.001)
    sync = {"normal": "NORMAL", "full": "FULL"}[sys.argv[2]]
    store = SQLiteStore(sqlite_path(sys.argv[1]), synchronous=sync, checkpoint=policy)
else:
    store = open_store(sys.argv[1], durability=sys.argv[2])
n = int(sys.argv[3])  # rows; then SIGKILL itself right after the last commit, or wait for the parent's
for i in range(n if n > 0 else 10**9):
    order = OrderRecord(key=f"k{i}", strategy="snipe", token_id="tok", side=Side.BUY, price=Decimal("0.97"),
                        size=Decimal("10"), order_type=OrderType.FOK, dry_run=False, condition_id="0xc")
    assert store.insert_order(order)
    print(f"k{i}", flush=True)  # only once insert_order has returned: the commit is done
    if i == n - 1:
        os.kill(os.getpid(), signal.SIGKILL)
"""


def invoke(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def pragma(store: SQLiteStore, name: str) -> object:
    return store.db.conn.execute(f"PRAGMA {name}").fetchone()[0]


def test_default_is_full_and_normal_is_wal_with_synchronous_normal(tmp_path: Path) -> None:
    assert load_settings(environ={}).settings.store.durability == "full"
    full = open_store(f"sqlite:///{tmp_path / 'full.db'}")
    normal = open_store(f"sqlite:///{tmp_path / 'normal.db'}", durability="normal")
    try:
        assert isinstance(full, SQLiteStore) and isinstance(normal, SQLiteStore)
        assert (pragma(full, "journal_mode"), pragma(full, "synchronous")) == ("wal", 2)  # FULL
        assert (pragma(normal, "journal_mode"), pragma(normal, "synchronous")) == ("wal", 1)  # NORMAL
    finally:
        full.close()
        normal.close()


def test_the_setting_reaches_the_store_from_toml_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "pmbot.toml"
    cfg.write_text('[store]\ndurability = "normal"\n')
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'a.db'}")
    app = App(config_file=cfg)
    try:
        assert isinstance(app.store, SQLiteStore) and app.store.synchronous == "NORMAL"
    finally:
        app.close()
    monkeypatch.setenv("PMBOT_STORE__DURABILITY", "full")  # the environment beats the file
    app = App(config_file=cfg)
    try:
        assert isinstance(app.store, SQLiteStore) and app.store.synchronous == "FULL"
    finally:
        app.close()


@pytest.mark.parametrize("value", ["fast", "FULL", "off", "", "extra"])
def test_a_bad_value_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    db = tmp_path / "never.db"
    monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{db}")
    monkeypatch.setenv("PMBOT_STORE__DURABILITY", value)
    code, out, err = invoke("trades")
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len([ln for ln in lines if ln.strip()]) <= 2  # the error line and its hint, no traceback
    assert "store.durability (PMBOT_STORE__DURABILITY, from environment)" in lines[0], err
    assert "Traceback" not in err and not db.exists()
    with pytest.raises(ConfigError):
        load_settings(environ={"PMBOT_STORE__DURABILITY": value})
    with pytest.raises(ConfigError):
        open_store(f"sqlite:///{db}", durability=value)
    assert not db.exists()


def test_config_show_states_the_trade_off(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = invoke("config", "show")
    assert code == 0 and DURABILITY_NOTES["full"].split(":")[0] in out
    row = next(ln for ln in out.splitlines() if ln.startswith("store.durability") or " store.durability " in ln)
    assert "full" in row
    monkeypatch.setenv("PMBOT_STORE__DURABILITY", "normal")
    code, out, _ = invoke("config", "show", "--json")
    view = json.loads(out)
    assert view["notes"]["store.durability"] == DURABILITY_NOTES["normal"]
    assert "power loss" in view["notes"]["store.durability"]
    assert next(r for r in view["settings"] if r["key"] == "store.durability")["source"] == "environment"
    monkeypatch.setenv("PMBOT_DATABASE_URL", "postgresql://u@127.0.0.1:1/x")
    code, out, _ = invoke("config", "show", "--json")
    assert "PostgreSQL" in json.loads(out)["notes"]["store.durability"]


def _child(db: Path, durability: str, n: int, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, f"sqlite:///{db}", durability, str(n), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_a_commit_survives_sigkill_right_after_it(tmp_path: Path, durability: str) -> None:
    db = tmp_path / "kill.db"
    child = _child(db, durability, 3)
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    assert out.split() == ["k0", "k1", "k2"]
    store = open_store(f"sqlite:///{db}", durability=durability)  # the restart
    try:
        assert [k for k in ("k0", "k1", "k2") if store.get_order(k) is not None] == ["k0", "k1", "k2"]
        got = store.get_order("k2")
        assert got is not None and got.dry_run is False and got.price == Decimal("0.97")
    finally:
        store.close()


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_commits_survive_sigkill_while_the_background_checkpointer_copies(tmp_path: Path, durability: str) -> None:
    """400 commits with the checkpointer running after every few (the WAL copied, restarted and reused
    many times), then SIGKILL right after the last one: every row is there, the file is sound."""
    db = tmp_path / "ckpt-kill.db"
    child = _child(db, durability, 400, "eager")
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    seen = out.split()
    assert len(seen) == 400
    store = open_store(f"sqlite:///{db}", durability=durability)
    try:
        assert [k for k in seen if store.get_order(k) is None] == []
        assert store.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()


@pytest.mark.parametrize(("durability", "extra"), [("normal", ()), ("full", ()), ("normal", ("eager",))])
def test_every_acknowledged_commit_survives_a_sigkill_from_outside(
    tmp_path: Path, durability: str, extra: tuple[str, ...]
) -> None:
    """The parent kills a child that commits in a loop, at an arbitrary point (maybe mid-commit, maybe
    mid-checkpoint): every row the child reported committed is there after the restart, and the file
    opens clean."""
    db = tmp_path / "loop.db"
    child = _child(db, durability, 0, *extra)
    assert child.stdout is not None
    seen = [child.stdout.readline().strip() for _ in range(200)]
    child.send_signal(signal.SIGKILL)
    rest, _ = child.communicate(timeout=60)
    seen += rest.split()
    assert child.returncode == -signal.SIGKILL and len(seen) >= 200
    store = open_store(f"sqlite:///{db}", durability=durability)
    try:
        missing = [k for k in seen if store.get_order(k) is None]
        assert missing == []
        assert store.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        store.close()


DECISIONS_CHILD = """
import os, signal, sys
from pmbot.store import open_store
from pmbot.store.models import DecisionRow

store = open_store(sys.argv[1])
rows = [DecisionRow(ts=i, strategy="snipe", kind="skip", reason="too_early", mode="dry-run", run_id="r")
        for i in range(50)]
assert store.record_decisions(rows) == 50
print("stored", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_decision_log_commit_skips_the_fsync_but_survives_sigkill(tmp_path: Path) -> None:
    """record_decisions commits with synchronous=NORMAL (no fsync: the loop is not held while an entry
    may fire); the rows are in the WAL when it returns, so a SIGKILL right after loses none."""
    db = tmp_path / "d.db"
    child = subprocess.Popen(
        [sys.executable, "-c", DECISIONS_CHILD, f"sqlite:///{db}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    out, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL and out.split() == ["stored"], err
    store = open_store(f"sqlite:///{db}")
    try:
        assert len(store.list_decisions(mode="dry-run")) == 50
    finally:
        store.close()


def test_the_relaxed_commit_is_for_decisions_only(tmp_path: Path) -> None:
    """After a decision batch the connection is back at FULL (the next order's commit is fsynced), and a
    batch inside a transaction() joins it without changing how that commit is made."""
    from pmbot.store.models import DecisionRow

    store = SQLiteStore(tmp_path / "r.db")
    seen: list[object] = []
    try:
        conn = store.db.conn
        store.db.conn.set_trace_callback(lambda sql: seen.append(sql) if "synchronous" in sql else None)
        row = DecisionRow(ts=1, strategy="s", kind="skip", reason="x", mode="dry-run", run_id="r")
        assert store.record_decisions([row]) == 1
        assert seen == ["PRAGMA synchronous=NORMAL", "PRAGMA synchronous=FULL"]
        assert pragma(store, "synchronous") == 2  # FULL
        seen.clear()
        with store.transaction():
            assert store.record_decisions([row]) == 1
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert [s for s in seen if s != "PRAGMA synchronous"] == []
    finally:
        store.close()
    normal = SQLiteStore(tmp_path / "n.db", synchronous="NORMAL")
    try:
        assert normal.record_decisions([row]) == 1 and pragma(normal, "synchronous") == 1
    finally:
        normal.close()


class _FailingCommit:
    """The store's connection, whose next COMMIT fails the way a full disk would (the transaction stays open)."""

    def __init__(self, real: Any) -> None:
        self.real, self.fail = real, True

    def execute(self, sql: str, *args: Any) -> Any:
        if sql == "COMMIT" and self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.real.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("relaxed", [True, False])
def test_a_failed_commit_leaves_no_open_transaction_and_full_sync(tmp_path: Path, relaxed: bool) -> None:
    """A COMMIT that fails must not leave the transaction open (every later write would fail) nor, after
    a decision batch, the connection at synchronous=NORMAL (later order commits would skip the fsync)."""
    from pmbot.errors import PmbotError
    from pmbot.store.models import DecisionRow, OrderRecord, OrderType, Side

    store = SQLiteStore(tmp_path / "c.db")
    real = store.db.conn
    try:
        store.db.conn = _FailingCommit(real)  # type: ignore[assignment]
        row = DecisionRow(ts=1, strategy="s", kind="skip", reason="x", mode="dry-run", run_id="r")
        order = OrderRecord(
            key="k", strategy="s", token_id="t", side=Side.BUY, price=Decimal("0.5"), size=Decimal("10"),
            order_type=OrderType.GTC, dry_run=False, condition_id="0xc",
        )  # fmt: skip
        with pytest.raises((sqlite3.Error, PmbotError)):
            store.record_decisions([row]) if relaxed else store.insert_order(order)
        assert not real.in_transaction
        assert real.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.insert_order(replace(order, key="k2"))  # the store still writes
        assert store.list_decisions(mode="dry-run") == [] and store.get_order("k") is None
    finally:
        store.db.conn = real
        store.close()
