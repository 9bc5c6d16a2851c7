"""`make demo`: pmbot end to end, offline, in under three minutes.

1. `pmbot sim serve` (the built-in btc-15m scenario) on a free loopback port, `--speed 10`, started 150 sim
   seconds before a window's end, so a sniper entry comes within seconds and the next window 90 s later;
2. `pmbot run-all --dry-run` against it (both default strategies: `snipe` on btc-updown-15m, `copy` of the
   sim's whale `distinct-baguette`) for `DURATION_S` of wall time, on the venue's clock;
3. `pmbot stats` of that run; the sim stopped; exit 0 (1 if a step failed, or neither strategy acted).

Everything goes to a throw-away data directory: the demo never touches your database or your locks.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEED = 10
DURATION_S = 110  # wall seconds of run-all: two window ends at speed 10, plenty of whale trades
BEFORE_END_S = 150  # sim seconds from the sim's start to the first window's end
WINDOW_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"demo: the sim did not start on port {port}")


def main() -> int:
    bin_dir = Path(sys.executable).parent
    pmbot = str(bin_dir / "pmbot")
    tmp = Path(tempfile.mkdtemp(prefix="pmbot-demo-"))
    port = free_port()
    start = (math.floor(time.time() / WINDOW_S) + 1) * WINDOW_S - BEFORE_END_S
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update({"PMBOT_DATABASE_URL": f"sqlite:///{tmp / 'pmbot.db'}", "HOME": str(tmp / "home"),
                "XDG_DATA_HOME": str(tmp / "xdg"), "PMBOT_ENV_FILE": str(tmp / "none.env")})  # fmt: skip
    print(f"demo: pmbot sim serve --speed {SPEED} on 127.0.0.1:{port} (data in {tmp})", flush=True)
    sim = subprocess.Popen(
        [pmbot, "sim", "serve", "--speed", str(SPEED), "--port", str(port), "--start", str(start)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_port(port)
        out = subprocess.run([pmbot, "sim", "env", "--port", str(port)], env=env, capture_output=True, text=True)
        for line in out.stdout.splitlines():
            line = line.removeprefix("export ").strip()
            if "=" in line and line.startswith("PMBOT_"):
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
        args = [pmbot, "run-all", "--dry-run", "--duration", f"{DURATION_S}s"]
        if not sys.stderr.isatty():
            args.append("--no-dashboard")
        print(f"demo: {' '.join(args[1:])}", flush=True)
        run = subprocess.run(args, env=env)
        if run.returncode != 0:
            print(f"demo: run-all exited {run.returncode}", file=sys.stderr)
            return 1
        print("demo: pmbot stats", flush=True)
        subprocess.run([pmbot, "stats"], env=env, check=False)
        acted = _acted(tmp / "pmbot.db")
        print(f"demo: orders per strategy: {json.dumps(acted)}", flush=True)
        if not any(k.startswith("snipe") for k in acted) or not any(k.startswith("copy") for k in acted):
            print("demo: a strategy did not act", file=sys.stderr)
            return 1
        return 0
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.kill()
        print("demo: sim stopped", flush=True)


def _acted(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT strategy, COUNT(*) FROM orders WHERE status != 'not_sent' GROUP BY strategy")
        return {str(s): int(n) for s, n in rows}
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main())
