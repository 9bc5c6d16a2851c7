"""Issue 12, "done when": a live session against the sim with the key, API secret and passphrase set;
every output, table, Redis value and file is searched for each of them, in hex and decimal forms.

The session: config show / check (with --debug too), a resting live GTC order, a filled live FOK, a
venue rejection that echoes our headers (through a hostile stand-in), status, trades, positions,
stats, a cancel. Redis is configured, so the wallet lease, the fleet intent keys and the order budget
are in it too.
"""

from __future__ import annotations

import base64
import contextlib
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from pmbot.cli import main
from pmbot.sim.testing import SimServer
from tests.hostile import Forward, HostileVenue
from tests.sim_start import mid_window

KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"  # hardhat #1
WALLET = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def key_forms(hex_text: str) -> set[str]:
    bare = hex_text.removeprefix("0x")
    return {bare.lower(), bare.upper(), str(int(bare, 16))}


def secret_forms(creds: dict[str, str]) -> dict[str, set[str]]:
    secret, passphrase = creds["secret"], creds["passphrase"]
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    forms = {
        "private key": key_forms(KEY),
        "api secret": {secret, raw.hex(), str(int.from_bytes(raw, "big"))},
        "passphrase": {passphrase},
    }
    with contextlib.suppress(ValueError):  # not hex: its text is its only form
        forms["passphrase"] |= key_forms(passphrase)
    return forms


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        (tmp_path / "data").mkdir(mode=0o700, exist_ok=True)  # only the default data directory is created
        monkeypatch.setenv("PMBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'data' / 'pmbot.db'}")
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        monkeypatch.setenv("PMBOT_REDIS_URL", redis_url)
        yield sim


def _run(outputs: list[str], *args: str) -> int:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    outputs.append(f"$ pmbot {' '.join(args)}\n{out.getvalue()}{err.getvalue()}")
    return code


def _tables(db: Path) -> str:
    conn = sqlite3.connect(db)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        dump = [f"{n}: {row!r}" for n in names for row in conn.execute(f'SELECT * FROM "{n}"')]  # noqa: S608
    finally:
        conn.close()
    return "\n".join(dump)


def _redis_values(redis_url: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_url)
    out = []
    try:
        for key in client.scan_iter(count=1000):
            kind = client.type(key).decode()
            value: object
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "set":
                value = client.smembers(key)
            elif kind == "zset":
                value = client.zrange(key, 0, -1, withscores=True)
            else:
                value = kind
            out.append(f"{key!r} = {value!r}")
    finally:
        client.close()
    return "\n".join(out)


def test_no_secret_anywhere_after_a_live_session(
    session: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str
) -> None:
    sim = session
    creds = sim.creds(WALLET)
    token = sim.current_market()["token_ids"][0]
    ask = sim.book(token)["asks"][-1]["price"]  # type: ignore[index]
    outputs: list[str] = []

    assert _run(outputs, "config", "show") == 0
    assert _run(outputs, "config", "show", "--json") == 0
    assert _run(outputs, "--debug", "config", "check") == 0, outputs[-1]
    assert (
        _run(outputs, "order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes", "--key", "rest") == 0
    )
    assert _run(outputs, "order", "buy", token, "--price", ask, "--size", "5", "--type", "FOK", "--live", "--yes") == 0
    assert _run(outputs, "--debug", "order", "buy", token, "--price", "0.03", "--size", "5", "--live", "--yes") == 0

    async def echo(request: web.Request, forward: Forward) -> web.StreamResponse:
        return web.json_response({"error": f"bad request: {dict(request.headers)}"}, status=400)

    with HostileVenue(upstream=sim.url) as evil:
        evil.override("POST", "/order", echo)
        monkeypatch.setenv("PMBOT_CLOB_URL", evil.url)
        code = _run(outputs, "--debug", "order", "buy", token, "--price", "0.04", "--size", "5", "--live", "--yes")
        assert code == 3, outputs[-1]  # the venue refused it: not placed
        assert any(r["headers"].get("POLY_PASSPHRASE") == creds["passphrase"] for r in evil.seen)
    monkeypatch.setenv("PMBOT_CLOB_URL", sim.url)

    sim.advance(10)  # trades MATCHED -> MINED -> CONFIRMED
    for cmd in (["status"], ["status", "--json"], ["trades"], ["trades", "--json"], ["positions"], ["stats"]):
        assert _run(outputs, *cmd) == 0, outputs[-1]
    key_of_rest = "rest"
    code = _run(outputs, "cancel", key_of_rest, "--yes")
    assert code in (0, 2), outputs[-1]  # `rest` is the --key, not the record key: either way, no leak
    assert "live" in "".join(outputs) and "filled" in "".join(outputs)  # the session really traded

    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(p.name == "pmbot.db" for p in files) and any(".lock" in p.name for p in files)
    places = {
        "output": "\n".join(outputs),
        "tables": _tables(tmp_path / "data" / "pmbot.db"),
        "redis": _redis_values(redis_url),
    }
    assert "pmbot:live:" in places["redis"] or "pmbot:intent:" in places["redis"]  # Redis was really used
    leaks = []
    for what, forms in secret_forms(creds).items():
        for form in forms:
            for place, text in places.items():
                if form in text:
                    leaks.append(f"{what} in {place}")
            for path, data in files.items():
                if form.encode() in data or form.lower().encode() in data.lower():
                    leaks.append(f"{what} in {path.relative_to(tmp_path)}")
    assert leaks == []
