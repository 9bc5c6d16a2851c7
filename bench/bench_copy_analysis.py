"""`copy analyze` over 10 000 target trades (goal: <= 2 s), with and without a price path; and the command's
whole path from a recorded file (read, replay, store the result), in process and through the `pmbot`
executable."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from bench.harness import Result, median
from pmbot.store.models import Side
from pmbot.strategies.copy_analysis import HistoryTrade, PricePoint, Resolution, analyze

N = 10_000


def _history(seed: int = 7) -> tuple[list[HistoryTrade], list[Resolution], dict[str, list[PricePoint]]]:
    rng = random.Random(seed)
    tokens = [(f"t{m}{o}", f"0xm{m}") for m in range(50) for o in "ab"]
    trades = []
    for i in range(N):
        token, cid = rng.choice(tokens)
        trades.append(
            HistoryTrade(
                token_id=token,
                condition_id=cid,
                side=Side.BUY if rng.random() < 0.65 else Side.SELL,
                price=Decimal(rng.randint(5, 95)) / 100,
                size=Decimal(rng.randint(1, 2000)),
                ts_ms=i * 1000,
                maker=rng.random() < 0.4,
            )
        )
    resolutions = [Resolution(condition_id=f"0xm{m}", winning_token_id=f"t{m}a") for m in range(40)]
    paths: dict[str, list[PricePoint]] = {}
    for token, _ in tokens:
        pts = []
        for k in range(0, N * 1000, 5000):
            mid = Decimal(rng.randint(6, 94)) / 100
            pts.append(PricePoint(k, mid - Decimal("0.01"), mid + Decimal("0.01")))
        paths[token] = pts
    return trades, resolutions, paths


def _file(
    path: Path, trades: list[HistoryTrade], resolutions: list[Resolution], paths: dict[str, list[PricePoint]]
) -> int:
    """The history as a recorded file (pmbot.copy_history's format), a book point every 50 s per token."""
    from pmbot.copy_history import History, write_history

    tape = {token: tuple(pts[::10]) for token, pts in paths.items()}
    h = History(
        target="bench",
        wallet="0x" + "ab" * 20,
        start_ms=0,
        end_ms=N * 1000,
        trades=tuple(trades),
        resolutions=tuple(resolutions),
        prices=tape,
    )
    return write_history(h, path)


def _command_path(path: Path, db: Path) -> float:
    from pmbot.copy_history import read_history, record_analysis, result_document, run_analysis
    from pmbot.store import open_store

    t = time.perf_counter()
    h = read_history(path)
    result = run_analysis(h, delay_ms=2000, slippage=Decimal("0.01"))
    store = open_store(f"sqlite:///{db}")
    try:
        record_analysis(store, h, result, now_ms=0)
        json.dumps(result_document(h, result))
    finally:
        store.close()
    return (time.perf_counter() - t) * 1000


def _executable(path: Path, home: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PMBOT_")}
    env.update(PMBOT_DATABASE_URL=f"sqlite:///{home / 'exe.db'}", XDG_DATA_HOME=str(home / "xdg"))
    exe = Path(sys.executable).with_name("pmbot")
    t = time.perf_counter()
    subprocess.run([str(exe), "copy", "analyze", "bench", "--from", str(path), "--json"], env=env, cwd=home,
                   check=True, capture_output=True)  # fmt: skip
    return (time.perf_counter() - t) * 1000


def run() -> list[Result]:
    trades, resolutions, paths = _history()
    plain, with_path = [], []
    for _ in range(3):
        t = time.perf_counter()
        analyze(trades, resolutions)
        plain.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        analyze(trades, resolutions, price_paths=paths)
        with_path.append((time.perf_counter() - t) * 1000)
    with tempfile.TemporaryDirectory() as d:
        home = Path(d)
        lines = _file(home / "history.jsonl", trades, resolutions, paths)
        in_process = [_command_path(home / "history.jsonl", home / f"p{i}.db") for i in range(3)]
        executable = [_executable(home / "history.jsonl", home) for _ in range(3)]
    return [
        Result("copy analyze: 10k trades", round(median(plain)), "ms", "<= 2000 ms", median(plain) <= 2000),
        Result(
            "copy analyze: 10k trades + price path",
            round(median(with_path)),
            "ms",
            "<= 2000 ms",
            median(with_path) <= 2000,
            note="100 tokens, a book point every 5 s per token (200 000 points)",
        ),
        Result(
            "copy analyze --from FILE: 10k trades, read + replay + store",
            round(median(in_process)),
            "ms",
            "<= 2000 ms",
            median(in_process) <= 2000,
            note=f"{lines} lines (10k trades, 20 000 book points), in process",
        ),
        Result(
            "copy analyze --from FILE: the pmbot executable",
            round(median(executable)),
            "ms",
            "<= 2000 ms",
            median(executable) <= 2000,
            note="the same file, interpreter start-up and imports included",
        ),
    ]


if __name__ == "__main__":
    for r in run():
        print(f"{r.name}: {r.value:g} {r.unit} (goal {r.goal}: {'ok' if r.passed else 'MISSED'})")
