"""Issue 12 items 7 and 8: API credentials redacted everywhere; an out-of-range key is a config error.

7: a venue that echoes our request headers in a 400 put the passphrase on stdout and into
   `orders.error` / `order_events.detail`. The API secret and passphrase are now registered for
   redaction, POLY_* values are scrubbed from venue text, and pmbot's log handler redacts.
8: `0xfff…f` (>= the curve order) and `0x00…00` crashed `config check` (exit 1, the key in decimal
   with --debug). Now 1 <= k < n is checked in the validator, one line, exit 2, no chained exception.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from pmbot.cli import main
from pmbot.config import SECP256K1_N, load_settings
from pmbot.errors import ConfigError, RedactingFilter, redact, register_secret, scrub_venue_text
from pmbot.sim.testing import SimServer
from tests.hostile import Forward, HostileVenue
from tests.sim_start import mid_window

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
WALLET = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def invoke(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def forms(hex_key: str) -> list[str]:
    bare = hex_key[2:] if hex_key.startswith("0x") else hex_key
    return [bare.lower(), bare.upper(), str(int(bare, 16))]


# ------------------------------------------------------------------------------------ item 8


@pytest.mark.parametrize(
    "key",
    [
        "0x" + "f" * 64,
        "0x" + "0" * 64,
        hex(SECP256K1_N),
        "0x" + format(SECP256K1_N + 1, "064x"),
        "f" * 64,
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_out_of_range_key_is_one_config_error_without_the_key(
    monkeypatch: pytest.MonkeyPatch, key: str, debug: bool
) -> None:
    monkeypatch.setenv("PMBOT_PRIVATE_KEY", key)
    code, out = invoke(*(["--debug"] if debug else []), "config", "check")
    assert code == 2, out
    assert "bug" not in out and "Traceback" not in out
    assert "private_key (PMBOT_PRIVATE_KEY" in out and "secp256k1" in out, out
    bare = key.removeprefix("0x")
    if int(bare, 16) > 0:  # the zero key has no secret digits to leak
        for form in forms(key):
            assert form not in out


def test_key_range_edges() -> None:
    ok = "0x" + format(SECP256K1_N - 1, "064x")
    assert load_settings(env_file=None, environ={"PMBOT_PRIVATE_KEY": ok}).settings.private_key is not None
    assert load_settings(env_file=None, environ={"PMBOT_PRIVATE_KEY": "0x" + "0" * 63 + "1"}).settings.private_key
    with pytest.raises(ConfigError) as info:
        load_settings(env_file=None, environ={"PMBOT_PRIVATE_KEY": hex(SECP256K1_N)})
    assert info.value.__cause__ is None and info.value.__suppress_context__  # nothing chained to print


# ------------------------------------------------------------------------------------ item 7


def test_redaction_knows_every_form_of_a_key_and_the_api_creds() -> None:
    from pmbot.polymarket.models import ApiCreds

    key = "0x" + "1a2b3c4d" * 8
    register_secret(key)
    for form in forms(key):
        assert redact(f"x {form} y") == "x *** y"
    ApiCreds(api_key="k", secret="c2VjcmV0LXNlY3JldC1zZWNyZXQ=", passphrase="pass-phrase-phrase")
    assert redact("secret=c2VjcmV0LXNlY3JldC1zZWNyZXQ= p=pass-phrase-phrase") == "secret=*** p=***"


@pytest.mark.parametrize(
    "text",
    [
        '{"POLY_PASSPHRASE": "abc123def456", "POLY_API_KEY":"k-1"}',
        "POLY_PASSPHRASE=abc123def456&POLY_SIGNATURE=sig",
        "headers: poly_passphrase: abc123def456, Poly-Signature: sig",
        "{'POLY_PASSPHRASE': 'abc123def456'}",
    ],
)
def test_poly_header_values_are_scrubbed(text: str) -> None:
    out = scrub_venue_text(text)
    assert "abc123def456" not in out and "sig" not in out.replace("SIGNATURE", "").replace("Signature", "")
    assert "POLY" in out.upper()  # the name stays: it says what was there


def test_logging_filter_redacts_messages_args_and_tracebacks() -> None:
    register_secret("hunter2-hunter2-hunter2")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("pmbot.test-redaction")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("venue said %s", "POLY_PASSPHRASE=zzzsecretzzz")
        log.warning("direct hunter2-hunter2-hunter2")
        try:
            raise ValueError("boom hunter2-hunter2-hunter2")
        except ValueError:
            log.exception("failed")
    finally:
        log.removeHandler(handler)
    text = stream.getvalue()
    assert "zzzsecretzzz" not in text and "hunter2-hunter2-hunter2" not in text
    assert "ValueError" in text  # the traceback is still there, minus the secret


def test_cli_log_handler_has_the_filter() -> None:
    from pmbot.cli import _setup_logging

    _setup_logging(False)
    from rich.logging import RichHandler

    handlers = [h for h in logging.getLogger("pmbot").handlers if isinstance(h, RichHandler)]  # not pytest's
    assert handlers and all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in handlers)


@pytest.fixture
def live_sim(monkeypatch: pytest.MonkeyPatch, db_url: str) -> Iterator[SimServer]:
    with SimServer(seed=5, start=mid_window(), manual=True) as sim:
        for k, v in sim.env().items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PMBOT_DATABASE_URL", db_url)
        monkeypatch.setenv("PMBOT_PRIVATE_KEY", KEY)
        yield sim


@pytest.mark.parametrize("debug", [False, True])
def test_a_venue_echoing_our_headers_leaks_nothing(
    live_sim: SimServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, debug: bool
) -> None:
    creds = live_sim.creds(WALLET)

    async def echo(request: web.Request, forward: Forward) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.upper().startswith("POLY")}
        return web.json_response({"error": f"bad request, you sent {headers}"}, status=400)

    with HostileVenue(upstream=live_sim.url) as evil:
        evil.override("POST", "/order", echo)
        monkeypatch.setenv("PMBOT_CLOB_URL", evil.url)
        token = live_sim.current_market()["token_ids"][0]
        args = ["order", "buy", token, "--price", "0.02", "--size", "5", "--live", "--yes"]
        code, out = invoke(*(["--debug"] if debug else []), *args)
        sent = [r for r in evil.seen if r["path"] == "/order"]
    assert code == 3 and "rejected" in out, out  # exit 3: the order was not placed
    assert sent and sent[0]["headers"]["POLY_PASSPHRASE"] == creds["passphrase"]  # it really had them
    secrets = [creds["secret"], creds["passphrase"], sent[0]["headers"]["POLY_SIGNATURE"], *forms(KEY)]
    db = sqlite3.connect(tmp_path / "pmbot.db")
    try:
        stored = "\n".join(
            str(row)
            for table in ("orders", "order_events")
            for row in db.execute(f"SELECT * FROM {table}")  # noqa: S608 - fixed names
        )
    finally:
        db.close()
    assert "POLY_PASSPHRASE" in stored  # the venue's message was kept, its values were not
    for s in secrets:
        assert s not in out, s
        assert s not in stored, s


def test_a_tiny_key_does_not_redact_every_digit() -> None:
    # the decimal form of 0x00…01 is "1": registering it would turn every 1 in every message into ***
    register_secret("0x" + "0" * 63 + "1")
    assert redact("pytest-157 order 1 filled") == "pytest-157 order 1 filled"
