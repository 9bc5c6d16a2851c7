"""Issue 12 item 10: the sim's admin routes and its bind.

`/_sim/*` took text/plain bodies (any web page can post those cross-origin without a preflight) and
ignored the Host header (DNS rebinding); `POST /_sim/advance {"seconds": 1e9}` pinned the sim, deaf to
SIGTERM; `--host 0.0.0.0` bound every interface with only a warning.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from pmbot.cli import main
from pmbot.sim.server.admin import MAX_ADVANCE_S
from pmbot.sim.testing import SimServer


def test_admin_post_needs_json(sim: SimServer) -> None:
    before = sim.state()
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        r = httpx.post(
            f"{sim.url}/_sim/faults", content=b'{"rate_limit": 5}', headers={"Content-Type": ctype}, timeout=10
        )
        assert r.status_code == 415, ctype
        r = httpx.post(
            f"{sim.url}/_sim/advance", content=b'{"seconds": 5}', headers={"Content-Type": ctype}, timeout=10
        )
        assert r.status_code == 415, ctype
    assert sim.set_faults()["rate_limit"] == 0 and sim.state()["now"] == before["now"]
    assert httpx.post(f"{sim.url}/_sim/advance", json={"seconds": 1}, timeout=10).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{0}", "127.0.0.1.nip.io", "0.0.0.0", "10.1.2.3:80"])  # noqa: S104
def test_admin_needs_a_loopback_host_header(sim: SimServer, host: str) -> None:
    for method, path, body in (("GET", "/_sim/state", None), ("POST", "/_sim/faults", {"rate_limit": 3})):
        r = httpx.request(method, f"{sim.url}{path}", json=body, headers={"Host": host}, timeout=10)
        assert r.status_code == 403, (method, host)
    assert sim.set_faults()["rate_limit"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_admin_serves_loopback_host_names(sim: SimServer, host: str) -> None:
    r = httpx.get(f"{sim.url}/_sim/state", headers={"Host": f"{host}:{sim.port}"}, timeout=10)
    assert r.status_code == 200


def test_the_venue_routes_do_not_care_about_host(sim: SimServer) -> None:
    # only the admin routes are local-only: pmbot's own requests to the venue API are untouched
    r = httpx.get(f"{sim.url}/time", headers={"Host": "clob.polymarket.com"}, timeout=10)
    assert r.status_code == 200


@pytest.mark.parametrize("seconds", [1e9, MAX_ADVANCE_S + 1, "1e999", "NaN", float("inf"), -1])
def test_advance_is_capped(sim: SimServer, seconds: object) -> None:
    before = sim.now()
    body = f'{{"seconds": {seconds if not isinstance(seconds, str) else json.dumps(seconds)}}}'.replace("inf", "1e999")
    r = httpx.post(f"{sim.url}/_sim/advance", content=body, headers={"Content-Type": "application/json"}, timeout=10)
    assert r.status_code == 400, r.text
    assert sim.now() == before


def _pmbot(*args: str) -> list[str]:
    return [sys.executable, "-m", "pmbot", *args]


def test_a_long_advance_does_not_make_the_sim_deaf_to_sigterm() -> None:
    proc = subprocess.Popen(
        _pmbot("sim", "serve", "--manual", "--port", "0", "--seed", "3"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:
            if line.startswith("export PMBOT_CLOB_URL="):
                url = line.strip().partition("=")[2]
            if line.startswith("# pmbot sim:"):
                break
        assert url

        # a whole day of sim seconds: ~10 s of CPU, more on a loaded machine
        def advance_a_day() -> None:
            with contextlib.suppress(httpx.HTTPError):  # the sim stops mid-answer: that is the point
                httpx.post(f"{url}/_sim/advance", json={"seconds": MAX_ADVANCE_S}, timeout=120)

        worker = threading.Thread(target=advance_a_day, daemon=True)
        worker.start()
        time.sleep(0.5)
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=8)  # deaf, it would have to finish the day first
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])  # noqa: S104 - refused, never bound
def test_non_loopback_bind_needs_allow_remote(host: str, capsys: pytest.CaptureFixture[str]) -> None:
    # refused before binding anything (so this test binds nothing but loopback)
    assert main(["sim", "serve", "--host", host, "--port", "0"]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and "--allow-remote" in line
