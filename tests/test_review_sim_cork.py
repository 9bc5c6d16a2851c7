"""Review of the sim's corked bursts: a connection that dies mid-burst must not hold back or disorder the
frames of the others, and a later burst still arrives whole."""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

from websockets.sync.client import connect

from pmbot.sim.testing import SimServer


def test_a_connection_gone_mid_burst_does_not_hold_back_the_others(sim: SimServer) -> None:
    with connect(f"{sim.ws_url}/ws/market") as alive, connect(f"{sim.ws_url}/ws/market") as doomed:
        for ws in (alive, doomed):
            ws.send("PING")
            assert ws.recv(timeout=5) == "PONG"  # both registered with the hub
        sock = doomed.socket
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()  # a reset: its writer's burst fails part-way

        for tag in ("a", "b"):

            def burst(v: Any, tag: str = tag) -> None:
                for conn in list(v.hub.market):
                    for i in range(200):
                        conn.push(json.dumps(f"{tag}{i}"))

            sim.call(burst)
            got = [json.loads(alive.recv(timeout=5)) for _ in range(200)]
            assert got == [f"{tag}{i}" for i in range(200)]
