"""CLI start-up: `pmbot --help` must stay fast (heavy libraries are imported lazily)."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.harness import Result, median


def run() -> list[Result]:
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pmbot", "--help"], capture_output=True, check=True)
        runs.append((time.perf_counter() - t) * 1000)
    peer = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import web3, py_clob_client_v2"], capture_output=True, check=True)
        peer.append((time.perf_counter() - t) * 1000)
    return [
        Result(
            "cli: pmbot --help wall time",
            round(median(runs)),
            "ms",
            "fast; no web3/clob imports",
            None,
            peer=round(median(peer)),
            note="peer: a process that merely imports web3 + py_clob_client_v2",
        ),
    ]
