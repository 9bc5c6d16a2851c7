"""`copy analyze` over 10 000 target trades (goal: <= 2 s), with and without a price path."""

from __future__ import annotations

import random
import time
from decimal import Decimal

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
    ]


if __name__ == "__main__":
    for r in run():
        print(f"{r.name}: {r.value:g} {r.unit} (goal {r.goal}: {'ok' if r.passed else 'MISSED'})")
