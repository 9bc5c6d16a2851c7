"""The operator contract, checked on the INSTALLED `pmbot` executable (the console script pip wrote).

Every bad input is a usage error: Click's own message (usage line, "Try 'pmbot … --help' for help.", one
"Error:" line), exit 2, nothing on stdout, no traceback, nothing written. Ctrl-C at any moment is one line
"interrupted" and exit 130. An order that was not placed exits 3. See the README's exit-code table.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from pmbot.sim.testing import SimServer
from tests.sim_start import mid_window

PMBOT = Path(sys.executable).with_name("pmbot")
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"
KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # a well-known test key


@pytest.fixture(scope="module", autouse=True)
def _installed() -> None:
    assert PMBOT.is_file(), f"{PMBOT} missing: install pmbot into this environment (pip install -e .)"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Working directory and data home of the child: a .env or database there would be ours."""
    d = tmp_path / "home"
    d.mkdir()
    return d


def child_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(
        XDG_DATA_HOME=str(home / "xdg"),
        # in an existing directory: only the default data directory is created for the user
        PMBOT_DATABASE_URL=f"sqlite:///{home / 'pmbot.db'}",
        PYTHONUNBUFFERED="1",
        COLUMNS="100",
    )
    env.update(extra)
    return env


def pmbot(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PMBOT), *args],
        cwd=home,
        env=env or child_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def no_order_recorded(home: Path) -> bool:
    """Nothing but (maybe) an empty store: an interrupted order may have opened the database, never
    recorded an order in it."""
    extra = [p for p in written(home) if not p.startswith("pmbot.db")]
    db = home / "pmbot.db"
    if not db.exists():
        return not extra
    import sqlite3

    conn = sqlite3.connect(db)
    try:
        return not extra and conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 0
    finally:
        conn.close()


def assert_clean(err: str) -> None:
    assert "Traceback" not in err and "this is a bug" not in err and "unexpected error" not in err, err


# -------------------------------------------------------------------------------- usage errors

USAGE_ERRORS = [
    # (arguments, the command in the usage line, text in the Error line)
    # unknown command and option
    (["marktes"], "pmbot", "No such command 'marktes'."),
    (["sim", "nosuch"], "pmbot sim", "No such command 'nosuch'"),
    (["--nosuch"], "pmbot", "No such option: --nosuch"),
    (["trades", "--nosuch"], "pmbot trades", "No such option: --nosuch"),
    (["config", "show", "--bogus"], "pmbot config show", "No such option: --bogus"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "5", "--dry-run"], "pmbot order", "No such option: --dry-run"),
    (["trades", "--json", "extra"], "pmbot trades", "unexpected extra argument"),
    # missing argument and option
    (["book"], "pmbot book", "Missing argument 'TOKEN_ID'"),
    (["order", "buy"], "pmbot order", "Missing argument 'TOKEN_ID'"),
    (["order", "buy", TOKEN, "--price", "0.5"], "pmbot order", "Missing option '--size' / '-s'"),
    (["cancel"], "pmbot cancel", "Missing argument 'KEY'"),
    (["whois"], "pmbot whois", "Missing argument 'NAME|0xADDRESS'"),
    (["record", "--series", "btc-up-or-down-15m"], "pmbot record", "Missing option '--out' / '-o'"),
    (["trades", "--limit"], "pmbot trades", "Option '--limit' requires an argument"),
    # not numbers
    (["positions", "--limit", "abc"], "pmbot positions", "Invalid value for '--limit' / '-n'"),
    (["sim", "serve", "--speed", "fast"], "pmbot sim serve", "Invalid value for '--speed'"),
    (["order", "buy", TOKEN, "-p", "abc", "-s", "5"], "pmbot order", "price must be a decimal number, got 'abc'"),
    (["order", "buy", TOKEN, "-p", "NaN", "-s", "5"], "pmbot order", "price must be a decimal number"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "five"], "pmbot order", "size must be a decimal number"),
    (["order", "buy", "not-a-token", "-p", "0.5", "-s", "5"], "pmbot order", "'not-a-token' is not a token id"),
    (["book", "0x12"], "pmbot book", "is not a token id"),
    # out of range
    (["trades", "--limit", "0"], "pmbot trades", "Invalid value for '--limit' / '-n'"),
    (["sim", "serve", "--port", "99999"], "pmbot sim serve", "Invalid value for '--port' / '-p'"),
    (["sim", "serve", "--port", "-1"], "pmbot sim serve", "Invalid value for '--port' / '-p'"),
    (["book", TOKEN, "--depth", "0"], "pmbot book", "Invalid value for '--depth' / '-d'"),
    (["markets", "--limit", "501"], "pmbot markets", "Invalid value for '--limit' / '-n'"),
    (["order", "buy", TOKEN, "-p", "1.5", "-s", "5"], "pmbot order", "price must be between 0 and 1"),
    (["order", "buy", TOKEN, "-p", "0", "-s", "5"], "pmbot order", "price must be between 0 and 1"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "-1"], "pmbot order", "size must be a positive number"),
    (["record", "--series", "s", "--out", "r.jsonl", "--duration", "0s"], "pmbot record", "longer than 0s"),
    # ... including values that used to reach the store or the clock and fail there as "bugs"
    (["trades", "--limit", "1" + "0" * 22], "pmbot trades", "Invalid value for '--limit' / '-n'"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "1e20"], "pmbot order", "size must be at most 1000000000 shares"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "1e9999"], "pmbot order", "size must be at most"),
    (["order", "buy", TOKEN, "-p", "1e-30", "-s", "5"], "pmbot order", "price has more than 6 decimal places"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "5.0000001"], "pmbot order", "size has more than 6 decimal places"),
    (["sim", "serve", "--start", "nan"], "pmbot sim serve", "Invalid value for '--start'"),
    (["sim", "serve", "--start", "-1e12"], "pmbot sim serve", "Invalid value for '--start'"),
    (["sim", "serve", "--speed", "inf"], "pmbot sim serve", "Invalid value for '--speed'"),
    (["sim", "serve", "--latency-ms", "1" + "0" * 20], "pmbot sim serve", "Invalid value for '--latency-ms'"),
    (["sim", "env", "--port", "0"], "pmbot sim env", "Invalid value for '--port' / '-p'"),
    # bad choices and values
    (["order", "hold", TOKEN, "-p", "0.5", "-s", "5"], "pmbot order", "'hold' is not one of 'buy', 'sell'"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "5", "-t", "GTD"], "pmbot order", "'GTD' is not one of 'GTC'"),
    (["resume", "--mode", "paper"], "pmbot resume", "'paper' is not one of 'dry-run', 'live', 'both'"),
    (["trades", "--since", "yesterdayish"], "pmbot trades", "not a time: 'yesterdayish'"),
    (["markets", "--closing-within", "soon"], "pmbot markets", "not a duration: 'soon'"),
    (["positions", "--strategy", " "], "pmbot positions", "must not be empty"),
    (["order", "buy", TOKEN, "-p", "0.5", "-s", "5", "--key", ""], "pmbot order", "must not be empty"),
    # contradictory flags
    (["trades", "--open", "--closed"], "pmbot trades", "--open and --closed cannot be used together"),
    (["positions", "--closed", "--open"], "pmbot positions", "--open and --closed cannot be used together"),
    (["positions", "--dry-run", "--live"], "pmbot positions", "--dry-run and --live cannot be used together"),
    (["stats", "--live", "--dry-run"], "pmbot stats", "--dry-run and --live cannot be used together"),
]


@pytest.mark.parametrize(("args", "where", "needle"), USAGE_ERRORS, ids=[" ".join(a[:4]) for a, _, _ in USAGE_ERRORS])
def test_bad_input_is_a_usage_error(home: Path, args: list[str], where: str, needle: str) -> None:
    out = pmbot(home, *args)
    assert out.returncode == 2, out
    assert out.stdout == ""
    assert_clean(out.stderr)
    lines = out.stderr.splitlines()
    assert len(lines) == 4, out.stderr
    usage, try_line, blank, error = lines
    assert usage.startswith(f"Usage: {where} [OPTIONS]")
    assert try_line == f"Try '{where} --help' for help."
    assert blank == "" and error.startswith("Error: ") and needle in error, error
    assert written(home) == []


def test_a_pasted_key_is_not_echoed_by_a_usage_error(home: Path) -> None:
    for args in (
        ["book", KEY],
        ["order", "buy", KEY[2:], "-p", "0.5", "-s", "5"],
        ["order", "buy", TOKEN, "-p", "0.5", "-s", "5", "-t", KEY],
    ):
        out = pmbot(home, *args)
        assert out.returncode == 2 and "***" in out.stderr and KEY[2:] not in out.stderr, out.stderr
    other = "0x" + "4f" * 31 + "zz"  # not key-shaped, but the configured key: scrubbed too
    for args in (["book", other], ["cancel", other]):  # a usage error, and an error of the command
        out = pmbot(home, *args, env=child_env(home, PMBOT_PRIVATE_KEY=other))
        assert out.returncode == 2 and other[2:] not in out.stderr, out.stderr


def test_bad_env_value_is_a_usage_error(home: Path) -> None:
    out = pmbot(home, "stats", env=child_env(home, PMBOT_DEBUG="maybe"))
    assert out.returncode == 2 and out.stdout == ""
    assert_clean(out.stderr)
    *_, error = out.stderr.splitlines()
    # typer >= 0.29 names the variable, older typer the value
    assert error.startswith("Error: Invalid value for '--debug'") and "boolean" in error
    assert "Try 'pmbot --help' for help." in out.stderr and written(home) == []


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PMBOT_EXECUTOR__ORDERS_PER_MINUTE": "lots"}, "PMBOT_EXECUTOR__ORDERS_PER_MINUTE"),
        ({"PMBOT_BOGUS": "1"}, "PMBOT_BOGUS"),
        ({"PMBOT_CONFIG": "/nonexistent/pmbot.toml"}, "config file not found"),
    ],
)
def test_bad_settings_are_one_line_exit_2(home: Path, env: dict[str, str], needle: str) -> None:
    out = pmbot(home, "stats", env=child_env(home, **env))
    assert out.returncode == 2 and out.stdout == ""
    assert_clean(out.stderr)
    [line] = out.stderr.splitlines()
    assert line.startswith("error: ") and needle in line and "hint:" in line
    assert written(home) == []


@pytest.mark.parametrize(
    ("args", "where"),
    [([], "pmbot"), (["sim"], "pmbot sim"), (["config"], "pmbot config")],
    ids=["pmbot", "sim", "config"],
)
def test_bare_group_prints_its_help_and_exits_2(home: Path, args: list[str], where: str) -> None:
    out = pmbot(home, *args)
    assert out.returncode == 2 and out.stdout == ""
    assert_clean(out.stderr)
    assert out.stderr.startswith(f"Usage: {where} [OPTIONS] COMMAND [ARGS]...") and "\nCommands:\n" in out.stderr
    assert "Error" not in out.stderr and written(home) == []
    # asked for, the same help is the answer: stdout, exit 0
    asked = pmbot(home, *args, "--help")
    assert asked.returncode == 0 and asked.stdout.strip() == out.stderr.strip() and asked.stderr == ""


# ------------------------------------------------------------------------------------- help


def test_help_reads_like_a_normal_cli(home: Path) -> None:
    root = pmbot(home, "--help")
    assert root.returncode == 0 and root.stdout.startswith("Usage: pmbot [OPTIONS] COMMAND [ARGS]...")
    commands = ["positions", "trades", "stats", "markets", "book", "whois", "record", "order", "cancel"]
    commands += ["resume", "status", "config show", "config check", "sim serve", "sim env"]
    helps = {}
    for cmd in commands:
        out = pmbot(home, *cmd.split(), "--help")
        assert out.returncode == 0 and out.stderr == "", (cmd, out.stderr)
        assert out.stdout.startswith(f"Usage: pmbot {cmd} [OPTIONS]"), out.stdout
        assert "<bool>" not in out.stdout and "╭" not in out.stdout and "{" not in out.stdout.splitlines()[0]
        helps[cmd] = out.stdout
    assert helps["order"].startswith("Usage: pmbot order [OPTIONS] SIDE TOKEN_ID\n")
    assert "\n  SIDE      buy or sell." in helps["order"] and "\n  TOKEN_ID  " in helps["order"]
    assert "-p, --price PRICE" in helps["order"] and "-t, --type GTC|FOK|FAK" in helps["order"]
    assert "\n  --live  " in helps["order"] or "\n  --live " in helps["order"]
    assert helps["book"].startswith("Usage: pmbot book [OPTIONS] TOKEN_ID\n")
    for report in ("positions", "trades", "stats"):
        assert "\n  --open / --closed " in helps[report] or report == "stats"
        assert "\n  --dry-run / --live " in helps[report]
    assert "-h, --help" in helps["status"]
    assert written(home) == []


# ------------------------------------------------------------------------------------ Ctrl-C


def _read_until(proc: subprocess.Popen[bytes], fd: int, needle: bytes, timeout: float = 30) -> bytes:
    """Read the child's fd until needle shows up (the child keeps running)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0 and proc.poll() is None, f"never saw {needle!r}: {seen[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, f"the child closed the stream before {needle!r}: {seen[-2000:]!r}"
            seen += chunk
    return seen


def _interrupt(proc: subprocess.Popen[bytes], seen_err: bytes = b"") -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out.decode(), (seen_err + err).decode()


@pytest.mark.parametrize("after", ["pmbot.entry", "typer", "pmbot.commands.base"])
def test_ctrl_c_during_startup_imports(home: Path, after: str) -> None:
    """SIGINT once the import of `after` has finished (Python's import-time report says when): the CLI is
    still being imported. One line, exit 130."""
    env = child_env(home, PYTHONPROFILEIMPORTTIME="1")
    proc = subprocess.Popen([str(PMBOT), "stats"], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = _read_until(proc, proc.stderr.fileno(), f" {after}\n".encode())
    code, out, err = _interrupt(proc, seen)
    lines = [ln for ln in err.splitlines() if not ln.startswith("import time:")]
    assert (code, out, lines) == (130, "", ["interrupted"]), err[-3000:]
    assert written(home) == []


@pytest.fixture
def silent_venue() -> Iterator[tuple[socket.socket, str]]:
    """A venue that accepts connections and never answers: the child is provably inside a request."""
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        yield srv, f"http://127.0.0.1:{srv.getsockname()[1]}"


@pytest.mark.parametrize(
    "args",
    [["markets"], ["book", TOKEN], ["order", "buy", TOKEN, "-p", "0.5", "-s", "5"]],
    ids=["markets", "book", "order"],
)
def test_ctrl_c_during_a_request(home: Path, silent_venue: tuple[socket.socket, str], args: list[str]) -> None:
    srv, url = silent_venue
    env = child_env(home, PMBOT_GAMMA_URL=url, PMBOT_CLOB_URL=url, PMBOT_DATA_URL=url)
    proc = subprocess.Popen([str(PMBOT), *args], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    srv.settimeout(60)
    conn, _ = srv.accept()
    with conn:
        code, out, err = _interrupt(proc)
    assert (code, out, err) == (130, "", "interrupted\n")
    assert no_order_recorded(home)  # the order was interrupted while reading the book: nothing stored


@pytest.mark.parametrize("command", ["markets", "order"])
def test_ctrl_c_twice_during_a_request(home: Path, silent_venue: tuple[socket.socket, str], command: str) -> None:
    """The impatient operator: the second Ctrl-C lands while the first is being cleaned up. It used to
    surface anyio's half-exited cancel scopes (a traceback, "unexpected error", or a hang) now and then."""
    srv, url = silent_venue
    env = child_env(home, PMBOT_GAMMA_URL=url, PMBOT_CLOB_URL=url, PMBOT_DATA_URL=url)
    args = ["markets"] if command == "markets" else ["order", "buy", TOKEN, "-p", "0.5", "-s", "5"]
    srv.settimeout(60)
    for gap in (0, 0, 0.0005, 0.002, 0.01):
        proc = subprocess.Popen([str(PMBOT), *args], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        conn, _ = srv.accept()
        with conn:
            proc.send_signal(signal.SIGINT)
            time.sleep(gap)
            code, out, err = _interrupt(proc)
        assert (code, out, err) == (130, "", "interrupted\n"), (gap, err[-3000:])
    assert no_order_recorded(home)


def test_ctrl_c_at_the_live_confirmation(home: Path) -> None:
    env = child_env(home, PMBOT_PRIVATE_KEY=KEY)
    proc = subprocess.Popen(
        [str(PMBOT), "order", "buy", TOKEN, "-p", "0.5", "-s", "5", "--live"],
        cwd=home,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    seen = _read_until(proc, proc.stderr.fileno(), b"[y/N]:")
    code, out, err = _interrupt(proc, seen)
    # stdout: " " at most, Click's prompt writes its trailing space through input()
    assert code == 130 and out.strip() == "" and err.splitlines()[-1] == "interrupted", err
    assert_clean(err)
    assert KEY[2:] not in err and written(home) == []


def test_no_answer_to_the_live_confirmation_is_exit_2(home: Path) -> None:
    out = pmbot(
        home, "order", "buy", TOKEN, "-p", "0.5", "-s", "5", "--live", env=child_env(home, PMBOT_PRIVATE_KEY=KEY)
    )
    assert out.returncode == 2 and out.stdout.strip() == ""
    assert out.stderr.splitlines()[-1].startswith("error: no answer to the confirmation")
    assert_clean(out.stderr)
    assert written(home) == []


def test_ctrl_c_stops_sim_serve_as_documented(home: Path) -> None:
    """`pmbot sim serve` runs until Ctrl-C: that is its normal end (exit 0), said in one line."""
    proc = subprocess.Popen(
        [str(PMBOT), "sim", "serve", "--port", "0"],
        cwd=home,
        env=child_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    _read_until(proc, proc.stdout.fileno(), b"(Ctrl-C to stop)\n")
    code, _, err = _interrupt(proc)
    assert (code, err) == (0, "# pmbot sim: stopped\n")


# ---------------------------------------------------------------------------- exit code 3


@pytest.fixture
def sim(home: Path) -> Iterator[tuple[SimServer, dict[str, str]]]:
    with SimServer(seed=5, start=mid_window(), manual=True) as server:
        yield server, child_env(home, **server.env())


def test_order_not_placed_exits_3_and_says_why(home: Path, sim: tuple[SimServer, dict[str, str]]) -> None:
    server, env = sim
    token = server.current_market()["token_ids"][0]
    book = server.book(token)
    assert book is not None
    ask = Decimal(book["asks"][-1]["price"])
    tick = Decimal(book["tick_size"])
    unfillable = max(tick, ask - 5 * tick)  # no ask at or below it

    def order(*args: str) -> subprocess.CompletedProcess[str]:
        return pmbot(home, "order", "buy", token, *args, env=env)

    # the risk gate: 200 shares at 0.50 is over max_order_notional (50 USDC by default)
    out = order("-p", "0.50", "-s", "200")
    assert out.returncode == 3, out
    assert "rejected" in out.stdout and "reason:" in out.stdout and "max_order_notional" in out.stdout
    assert_clean(out.stderr)
    out = order("-p", "0.50", "-s", "200", "--json", "--key", "big")
    view = json.loads(out.stdout)
    assert out.returncode == 3 and view["status"] == "rejected" and "max_order_notional" in view["reason"]
    # the same key again: not sent again, and still not placed
    out = order("-p", "0.50", "-s", "200", "--json", "--key", "big")
    view = json.loads(out.stdout)
    assert out.returncode == 3 and view["duplicate"] is True and view["status"] == "rejected", out
    # FOK that cannot fill at its price, below the minimum size, off the tick: placed nowhere, exit 3
    for args, why in [
        (("-p", str(unfillable), "-s", "10", "-t", "FOK"), "could be spent"),  # 10: over the minimum at any price
        (("-p", str(ask), "-s", "1", "-t", "FOK"), "minimum"),
        (("-p", str(ask - tick / 2), "-s", "5"), "tick"),
    ]:
        out = order(*args, "--json")
        view = json.loads(out.stdout)
        assert out.returncode == 3 and view["status"] == "rejected" and why in view["reason"], (args, out)
    # and a FOK at the ask fills: exit 0
    out = order("-p", str(ask), "-s", "5", "-t", "FOK", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "filled", out
    assert server.received_orders() == []  # dry-run: nothing reached the venue's order endpoint
