"""Learnings and reflections: the seed's tables (migration 0007_seed_journal) and `pmbot learn|reflect`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from pmbot.cli import main
from pmbot.store import open_store
from pmbot.store.migrations import MIGRATIONS, migrate
from pmbot.store.models import Query


def _old_database(path: Path) -> None:
    """A database as 0006 left it, with journal rows in the old columns."""
    db = Database(sqlite3.connect(str(path), isolation_level=None))
    db.conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)")
    for name, fn in MIGRATIONS:
        if name == "0007_seed_journal":
            break
        fn(db)
        db.conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (name,))
    db.conn.execute(
        "INSERT INTO learnings (created_at, strategy, category, content, confidence, metadata)"
        " VALUES (1000, 'snipe', 'timing', 'late flips are rare\nafter t-10s', '0.8', '{\"n\": 41}')"
    )
    db.conn.execute(
        "INSERT INTO reflections (created_at, strategy, period, summary, metadata)"
        " VALUES (2000, 'copy', '2026-11-23', 'mirrored 12 fills', '{\"pnl\": \"3.2\"}')"
    )
    db.conn.execute(
        "INSERT INTO execution_logs (ts, level, event, strategy, order_key, message, latency_us, metadata)"
        " VALUES (3000, 'info', 'ack', 'snipe', 'k1', 'accepted', 1234, '{}')"
    )
    db.close()


def test_migration_keeps_every_old_row_in_the_seed_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path)
    store = open_store(f"sqlite:///{path}")
    try:
        (lrn,) = store.list_learnings()
        assert (lrn.timestamp, lrn.category, lrn.title) == (1000, "timing", "late flips are rare")
        assert lrn.description == "late flips are rare\nafter t-10s"
        assert lrn.metadata == {"n": 41, "strategy": "snipe", "confidence": "0.8"}
        (ref,) = store.list_reflections()
        assert (ref.timestamp, ref.phase, ref.what_worked) == (2000, "2026-11-23", "mirrored 12 fills")
        assert ref.metrics == {"pnl": "3.2", "strategy": "copy"}
        (log,) = store.list_execution_logs()
        assert (log.ts, log.event, log.order_key, str(log.latency_ms)) == (3000, "ack", "k1", "1.234")
        # new rows continue the old ids
        from pmbot.store.models import Learning

        assert store.add_learning(Learning("second")) == 2
    finally:
        store.close()
    conn = sqlite3.connect(str(path))
    cols = {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in ("learnings", "reflections")}
    assert cols["learnings"] == [
        "id",
        "timestamp",
        "phase",
        "category",
        "title",
        "description",
        "code_snippet",
        "impact",
        "metadata",
    ]
    assert cols["reflections"] == [
        "id",
        "timestamp",
        "phase",
        "what_worked",
        "what_failed",
        "next_improvements",
        "metrics",
    ]
    logs = [r[1] for r in conn.execute("PRAGMA table_info(execution_logs)")]
    assert logs[:6] == ["id", "timestamp", "level", "strategy", "message", "metadata"]
    # the seed's positional six-value INSERT still works
    conn.execute("INSERT INTO execution_logs VALUES (NULL, 4000, 'info', 'sniper', 'hello', '{}', 'log', NULL, NULL)")
    conn.commit()
    assert "0007_seed_journal" in [r[0] for r in conn.execute("SELECT name FROM schema_migrations")]
    conn.close()


def test_migration_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_database(path)
    open_store(f"sqlite:///{path}").close()
    db = Database(sqlite3.connect(str(path), isolation_level=None))
    assert migrate(db) == []
    db.close()


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
    return db_url


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> object:
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_learn_add_and_list(cli_db: str, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    snippet = tmp_path / "s.py"
    snippet.write_text("def enter():\n    return t < 10\n\n")
    args = ["learn", "add", "late flips are rare", "-d", "after t-10s", "-p", "phase-1", "-c", "timing"]
    added = _json(capsys, *args, "--impact", "high", "--code-file", str(snippet), "--metadata", '{"n": 41, "r": 0.1}')
    assert isinstance(added, dict) and added["id"] == 1 and added["code_snippet"] == "def enter():\n    return t < 10"
    assert added["metadata"] == {"n": 41, "r": "0.1"}  # fractions as exact text, never floats
    assert main(["learn", "add", "second", "-p", "phase-2"]) == 0
    listed = _json(capsys, "learn", "list")
    assert isinstance(listed, list) and [x["title"] for x in listed] == ["second", "late flips are rare"]
    assert [x["id"] for x in _json(capsys, "learn", "list", "--phase", "phase-1")] == [1]  # type: ignore[index]
    capsys.readouterr()
    assert main(["learn", "list"]) == 0
    out = capsys.readouterr().out
    assert "late flips are rare" in out and "phase-1" in out and "2-line snippet" in out


def test_reflect_add_and_list(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    added = _json(
        capsys,
        "reflect",
        "add",
        "-p",
        "phase-1",
        "--worked",
        "fast acks",
        "--failed",
        "2 late",
        "--metrics",
        '{"fills": 12}',
    )
    assert isinstance(added, dict) and added["metrics"] == {"fills": 12} and added["what_failed"] == "2 late"
    listed = _json(capsys, "reflect", "list")
    assert isinstance(listed, list) and listed[0]["what_worked"] == "fast acks"
    capsys.readouterr()
    assert main(["reflect", "list"]) == 0
    assert "fast acks" in capsys.readouterr().out


def test_lists_on_a_fresh_machine_create_nothing(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _json(capsys, "learn", "list") == [] and _json(capsys, "reflect", "list") == []
    assert not Path(cli_db.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize(
    "args",
    [
        ["learn", "add", "   "],
        ["learn", "add", "t", "--metadata", "[1, 2]"],
        ["learn", "add", "t", "--metadata", "{not json"],
        ["learn", "add", "t", "--metadata", '{"x": NaN}'],
        ["learn", "add", "t", "--code", "x", "--code-file", "f.py"],
        ["learn", "add", "t", "--code-file", "missing.py"],
        ["learn", "add", "x" * 201],
        ["learn", "add", "t\x00"],
        ["reflect", "add", "-p", "phase-1"],
        ["reflect", "add", "-p", "  ", "--worked", "w"],
        ["reflect", "add", "-p", "p", "--worked", "w", "--metrics", '"12"'],
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    cli_db: str, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    store = open_store(cli_db)  # the database exists: nothing may be added to it
    store.close()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "Traceback" not in err
    store = open_store(cli_db)
    try:
        assert store.list_learnings(Query()) == [] and store.list_reflections() == []
    finally:
        store.close()


KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_a_pasted_key_is_never_stored(
    cli_db: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
    bare = KEY[2:]
    forms = (KEY, bare, bare.upper(), str(int(bare, 16)))
    assert main(["learn", "add", f"oops {bare.upper()}", "-d", f"key {KEY}", "--code", f"k = {int(bare, 16)}"]) == 0
    assert main(["reflect", "add", "-p", "p", "--worked", bare, "--metrics", f'{{"k": "{KEY}"}}']) == 0
    assert main(["learn", "list", "--json"]) == 0 and main(["reflect", "list"]) == 0
    captured = capsys.readouterr()
    path = Path(cli_db.removeprefix("sqlite:///"))
    stored = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))  # the -wal too
    for form in forms:
        assert form.encode() not in stored and form.lower().encode() not in stored
        assert form not in captured.out and form not in captured.err
    assert "oops ***" in captured.out
