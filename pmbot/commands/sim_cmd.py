"""`pmbot sim serve` and `pmbot sim env`: a simulated Polymarket on 127.0.0.1.

Keep this module light: aiohttp, eth_account and the sim itself are imported inside the command
bodies (`pmbot --help` must not pay for them). `pmbot.sim`'s package module has no heavy imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pmbot.commands import base
from pmbot.errors import InputError
from pmbot.sim import BUILTIN_SCENARIOS, DEFAULT_PORT, DEFAULT_SEED, env_lines

if TYPE_CHECKING:
    import socket

    from pmbot.sim.venue import Venue

app = base.Typer(help="Run a simulated Polymarket locally (tests, benchmarks, offline demo).")

PortOpt = Annotated[
    int, typer.Option("--port", "-p", metavar="PORT", help="TCP port (0: any free one).", min=0, max=65535)
]
HostOpt = Annotated[
    str, typer.Option("--host", metavar="HOST", help="Interface to bind. Loopback unless you say otherwise.")
]


def _exports(host: str, port: int) -> str:
    return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in env_lines(host, port).items())


@app.command("env")
def env(
    port: Annotated[int, typer.Option("--port", "-p", metavar="PORT", help="The sim's TCP port.", min=1, max=65535)] = (
        DEFAULT_PORT
    ),
    host: HostOpt = "127.0.0.1",
) -> None:
    """Print the PMBOT_* settings that point pmbot at a sim: eval "$(pmbot sim env --port N)"."""
    typer.echo(_exports(host, port))


@app.command("serve")
def serve(
    scenario: Annotated[
        str,
        typer.Option(
            "--scenario",
            "-s",
            metavar="NAME|FILE",
            callback=base.not_blank,
            help=f"Built-in scenario ({', '.join(BUILTIN_SCENARIOS)}) or a recorded .jsonl file.",
        ),
    ] = "btc-15m",
    speed: Annotated[
        float,
        typer.Option(
            "--speed", metavar="X", help="Sim seconds per real second.", min=0.001, max=10_000, callback=base.finite
        ),
    ] = 1.0,
    port: PortOpt = DEFAULT_PORT,
    seed: Annotated[int, typer.Option("--seed", metavar="N", help="Seed of the generated scenario.")] = DEFAULT_SEED,
    host: HostOpt = "127.0.0.1",
    start: Annotated[
        float | None,
        typer.Option(
            "--start",
            metavar="EPOCH_S",
            callback=base.finite,
            min=0,
            max=4_102_444_800,  # 2100-01-01: simulated dates stay where datetime and the venue's formats work
            help="Sim start time, epoch seconds (default: now).",
            show_default=False,
        ),
    ] = None,
    manual: Annotated[bool, typer.Option("--manual", help="Time moves only on POST /_sim/advance.")] = False,
    allow_remote: Annotated[
        bool,
        typer.Option("--allow-remote", help="Allow a non-loopback --host (the sim has no authentication of its own)."),
    ] = False,
    rate_limit: Annotated[
        int, typer.Option("--rate-limit", metavar="N", help="Answer the next N requests with 429.", min=0)
    ] = 0,
    retry_after: Annotated[
        int, typer.Option("--retry-after", metavar="S", help="Retry-After seconds on those 429s.", min=0, max=86_400)
    ] = 1,
    server_error: Annotated[
        int, typer.Option("--server-error", metavar="N", help="Answer the next N requests with 500.", min=0)
    ] = 0,
    latency_ms: Annotated[
        int, typer.Option("--latency-ms", metavar="MS", help="Delay every HTTP response.", min=0, max=600_000)
    ] = 0,
    drop_order_responses: Annotated[
        int,
        typer.Option("--drop-order-responses", metavar="N", help="Place the next N orders but never answer.", min=0),
    ] = 0,
    ws_drop_every: Annotated[
        float,
        typer.Option(
            "--ws-drop-every",
            metavar="S",
            help="Close every WebSocket after S s.",
            min=0,
            max=86_400,
            callback=base.finite,
        ),
    ] = 0,
    ws_malformed_every: Annotated[
        int, typer.Option("--ws-malformed-every", metavar="N", help="Send a non-JSON frame every N frames.", min=0)
    ] = 0,
) -> None:
    """Serve CLOB, Gamma, Data API, WebSockets, RTDS and JSON-RPC on one port until Ctrl-C."""
    from pmbot.config import is_loopback_host
    from pmbot.sim.factory import make_venue
    from pmbot.sim.faults import Faults
    from pmbot.sim.server.app import bind

    if not is_loopback_host(host) and not allow_remote:
        raise InputError(
            f"--host {host} would serve the sim (keys, orders, /_sim) to other machines",
            hint="add --allow-remote if that is what you want",
        )
    faults = Faults()
    faults.update(
        {
            "rate_limit": rate_limit,
            "retry_after": retry_after,
            "server_error": server_error,
            "latency_ms": latency_ms,
            "drop_order_responses": drop_order_responses,
            "ws_drop_every": ws_drop_every,
            "ws_malformed_every": ws_malformed_every,
        }
    )
    venue = make_venue(
        scenario=scenario,
        seed=seed,
        start=start if start is not None else time.time(),
        speed=speed,
        manual=manual,
        faults=faults,
    )
    try:
        sock = bind(host, port)
    except OSError as e:
        raise InputError(f"cannot listen on {host}:{port}: {e.strerror or e}", hint=_bind_hint(host, port, e)) from None
    actual = sock.getsockname()[1]
    if not is_loopback_host(host):
        print(f"warning: the sim is reachable from other machines on {host}:{actual}", file=sys.stderr)
    banner = _exports(host, actual) + (
        f"\n# pmbot sim: scenario {scenario}, seed {seed}, speed {speed}x on http://{host}:{actual} (Ctrl-C to stop)"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(venue, sock, banner))
    print("# pmbot sim: stopped", file=sys.stderr, flush=True)


def _bind_hint(host: str, port: int, error: OSError) -> str:
    """A hint that is true: "a sim is running there" only when one answers, "something is listening"
    only when a connection is accepted."""
    import errno
    import socket

    if error.errno == errno.EACCES:
        return "ports below 1024 need privileges: pick another --port (or --port 0 for any free one)"
    if error.errno == errno.EADDRNOTAVAIL:
        return f"{host} is not an address of this machine: use --host 127.0.0.1"
    if error.errno != errno.EADDRINUSE:
        return "pick another --port (or --port 0 for any free one)"
    try:
        probe = socket.create_connection((host, port), timeout=0.5)
    except OSError:
        return "the port is held by a socket that is not listening; pick another --port (or --port 0)"
    answer = b""
    with probe, contextlib.suppress(OSError):  # a listener that does not speak HTTP, or says nothing
        probe.sendall(f"GET /_sim/state HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        while b"\r\n" not in answer and len(answer) < 512:
            chunk = probe.recv(512)
            if not chunk:
                break
            answer += chunk
    if answer.startswith(b"HTTP/") and b" 200 " in answer.split(b"\r\n", 1)[0]:
        return "a pmbot sim is already running there: use it, stop it, or pick another --port"
    return "another program is listening on that port: pick another --port (or --port 0 for any free one)"


async def _serve(venue: Venue, sock: socket.socket, banner: str) -> None:
    from pmbot.sim.server.app import start

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    runner: Any = await start(venue, sock)
    # "Ctrl-C to stop" only once Ctrl-C is handled here: one sent earlier would land in asyncio's set-up.
    print(banner, flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sim")
