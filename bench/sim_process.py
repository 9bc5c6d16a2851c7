"""`pmbot sim serve --manual` in its own process, with the benchmarks' stamps (shared by the executor and
the snipe benchmarks).

The venue is another machine: a sim in the bench's own process would share its GIL (and its CPU) with
the code measured. `SimProcess` runs the real CLI through `SIM_WRAPPER`, which adds, in the sim process:

- an outermost aiohttp middleware stamping `time.perf_counter()` (CLOCK_MONOTONIC on Linux: one clock for
  every process) when a POST /order reaches the server, and when its answer is ready;
- a stamp on each market-channel and RTDS emission (`Hub.to_market` / `Hub.to_rtds` entered, i.e. the
  sim queues the message for its sockets);
- per frame on every WebSocket connection (market, user, RTDS, RPC), a stamp right before the
  connection's writer hands it to the socket (`hub.StampedText.on_write`, just before `ws.send_str`),
  with the index (in `emits`) of the emission that queued it, -1 for a frame no emission queued (a
  subscribe's book dump, a PONG, the user channel), and the connection's kind; and one when its send
  returned;
- when the sim's loop read the first bytes of a POST /order (`RequestHandler.data_received`, before
  aiohttp parsed it);
- GET /_bench/receipts (`[[received, answered], …]`) and GET /_bench/stamps (`{"emits", "writes",
  "sent", "orders", "receipts", "reads"}`; `writes` is `[[t, emission index, kind], …]`; `orders` is the
  venue's own stamp of a POST /order reaching `submit_wire_order`, after the HTTP auth, before the
  signature check).

The sim itself is unchanged.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

# Runs in the sim process: `pmbot sim serve` plus the stamps above.
SIM_WRAPPER = r"""
import sys, time
from aiohttp import web
import pmbot.sim.server.app as app_mod
from pmbot.sim import hub as hub_mod

RECEIPTS = []
EMITS = []
WRITES = []  # (perf_counter right before the frame's ws.send_str, index in EMITS or -1, connection kind)
SENT = []
_perf = time.perf_counter
_build = app_mod.build_app
_to_market, _to_rtds = hub_mod.Hub.to_market, hub_mod.Hub.to_rtds
_queuing = [-1]  # the emission being queued (its index in EMITS); -1 outside one

def to_market(self, *a, **kw):
    EMITS.append(_perf())
    _queuing[0] = len(EMITS) - 1
    try:
        return _to_market(self, *a, **kw)
    finally:
        _queuing[0] = -1

def to_rtds(self, *a, **kw):
    EMITS.append(_perf())
    _queuing[0] = len(EMITS) - 1
    try:
        return _to_rtds(self, *a, **kw)
    finally:
        _queuing[0] = -1

hub_mod.Hub.to_market, hub_mod.Hub.to_rtds = to_market, to_rtds
_push = hub_mod.Conn.push

def _sent():
    SENT.append(_perf())

def push(self, text):
    if text is not None:
        if type(text) is str:
            text = hub_mod.StampedText(text)
        emission, kind = _queuing[0], self.kind

        def wrote():
            WRITES.append((_perf(), emission, kind))

        text.on_write = wrote
        prior = text.on_send  # the venue's own stamp (copy benchmark), if any
        if prior is None:
            text.on_send = _sent
        else:
            def both():
                prior()
                _sent()
            text.on_send = both
    _push(self, text)

hub_mod.Conn.push = push

READS = []  # when the sim's loop read the first bytes of a POST /order (before aiohttp parsed it)
from aiohttp import web_protocol as _wp
_data_received = _wp.RequestHandler.data_received

def data_received(self, data):
    if data[:12] == b"POST /order ":
        READS.append(_perf())
    _data_received(self, data)

_wp.RequestHandler.data_received = data_received

@web.middleware
async def _stamp(request, handler):
    if request.method == "POST" and request.path == "/order":
        t = _perf()
        try:
            return await handler(request)
        finally:
            RECEIPTS.append((t, _perf()))
    return await handler(request)

async def _receipts(request):
    return web.json_response(RECEIPTS)

def build_app(v):
    app = _build(v)

    async def _stamps(request):
        orders = [s["ns"] / 1e9 for s in v.order_stamps]
        return web.json_response(
            {"emits": EMITS, "writes": WRITES, "sent": SENT, "orders": orders, "receipts": RECEIPTS, "reads": READS}
        )

    app.middlewares.insert(0, _stamp)
    app.router.add_get("/_bench/receipts", _receipts)
    app.router.add_get("/_bench/stamps", _stamps)
    return app

app_mod.build_app = build_app
from pmbot.cli import main
sys.argv = ["pmbot", *sys.argv[1:]]
sys.exit(main())
"""


@contextlib.contextmanager
def pinned_apart(sim: SimProcess) -> Iterator[bool]:
    """The sim process on the last core, this process (pmbot and the peer, one after the other; threads and
    children it starts meanwhile inherit it) on the others; the affinity restored after. Yields whether it
    pinned (not with one core).

    Why. The venue is another machine: nothing the trader's process does takes CPU from it. On this 2-core
    VM the sim shares the cores with the client measured, and on loopback the kernel wakes the reader of a
    write on the writer's core (a sync wake-up), so the sim was woken onto the client's core and waited for
    it (the snipe profile showed its send of a burst returning ~0.5 ms late and the POST waiting ~0.25 ms to
    be read). Measured for the executor (scratch run, 450 orders each): the sim's time for one POST /order
    was 0.83 ms for pmbot's orders, 0.71 with durability=normal and 0.64 for the SDK's; pinned 0.71 / 0.66
    / 0.60. Pinning is not all of the venue's isolation: the disk's interrupts and the caches are shared.
    2026-12-02 (scratch, the sim's thread CPU time per POST /order, 1 500 of pmbot's and 600 of the SDK's):
    unpinned 567 µs for pmbot's orders against 465 for the SDK's, CPU time equal to the wall time, and every
    stage slower alike (signature recovery 370 vs 323 µs): the sim's caches are colder after pmbot's turn
    (its fsync sleeps move the processes between the cores), not a different request; pinned 507 vs 527."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2 or sim.proc is None:
        yield False
        return
    os.sched_setaffinity(sim.proc.pid, cpus[-1:])
    os.sched_setaffinity(0, cpus[:-1])
    try:
        yield True
    finally:
        os.sched_setaffinity(0, cpus)
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(sim.proc.pid, cpus)


class SimProcess:
    """`pmbot sim serve --manual` in its own process (its CPU does not share our GIL). `args` are extra
    `pmbot sim serve` options (e.g. `--seed 11 --start 1795000000`)."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self.env: dict[str, str] = {}
        self.url = ""
        self.ws_url = ""

    def start(self) -> SimProcess:
        cmd = [sys.executable, "-c", SIM_WRAPPER, "sim", "serve", "--port", "0", "--manual", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("`pmbot sim serve` exited before it was ready")
            if line.startswith("export "):
                k, _, v = line.removeprefix("export ").strip().partition("=")
                self.env[k] = v.strip("'")
            elif line.startswith("# pmbot sim:"):
                self.url = self.env["PMBOT_CLOB_URL"]
                self.ws_url = "ws" + self.url.removeprefix("http")
                return self
        raise RuntimeError("`pmbot sim serve` did not start in 30 s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def __enter__(self) -> SimProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- blocking reads (set-up and results: never on a measured path)
    def get(self, path: str) -> Any:
        import httpx

        return httpx.get(self.url + path, timeout=10).json()

    def post(self, path: str, body: Any) -> Any:
        import httpx

        return httpx.post(self.url + path, json=body, timeout=60).json()

    def receipts(self) -> list[tuple[float, float]]:
        return [(a, b) for a, b in self.get("/_bench/receipts")]

    def stamps(self) -> dict[str, list[Any]]:
        """Every stamp so far: emits (market channel / RTDS queued), writes (`(t, emission index, kind)`: a
        frame about to be written on a socket), sent (a frame's send returned), orders (submit_wire_order
        reached), receipts (POST /order reached the server: its first element), reads (the loop read a
        POST /order's first bytes)."""
        raw = self.get("/_bench/stamps")
        return {
            "emits": [float(t) for t in raw["emits"]],
            "writes": [(float(t), int(i), str(k)) for t, i, k in raw["writes"]],
            "sent": [float(t) for t in raw["sent"]],
            "orders": [float(t) for t in raw["orders"]],
            "receipts": [float(a) for a, _ in raw["receipts"]],
            "reads": [float(t) for t in raw["reads"]],
        }

    def open_markets(self, *, lasting_s: float | None = None) -> list[dict[str, Any]]:
        """The markets not closed; with `lasting_s`, only those that still have that long before their end
        by the wall clock. The manual sim clock stands still, but pmbot's executor (dry-run's paper fills,
        the risk gate) reads the real one: a 15-minute window that ended during a run refused its orders."""
        state = self.get("/_sim/state")
        markets = [m for m in state["markets"] if not m["closed"]]
        if lasting_s is None:  # (0 would drop every market of a sim started in the past, `--start`)
            return markets
        now = time.time()
        return [m for m in markets if m["end"] - now >= lasting_s]
