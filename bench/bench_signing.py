"""Order signing: pmbot's fast V2 path vs py-clob-client-v2's OrderBuilder.build_order, same process."""

from __future__ import annotations

import time
from decimal import Decimal as D

from bench.harness import Result, median

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat test key
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"  # noqa: S105 - a token id


def _time_per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1000)
    return median(runs)


def run() -> list[Result]:
    from py_clob_client_v2.clob_types import CreateOrderOptions, OrderArgsV2
    from py_clob_client_v2.order_builder.builder import OrderBuilder
    from py_clob_client_v2.signer import Signer

    from pmbot.polymarket.signing import SIDE_BUY, OrderSigner, limit_amounts

    lib = OrderBuilder(Signer(KEY, 137))
    args, opts = OrderArgsV2(token_id=TOKEN, price=0.97, size=10, side="BUY"), CreateOrderOptions("0.01", False)
    ours = OrderSigner(KEY)
    ts = int(time.time() * 1000)

    def fast() -> None:
        ours.sign(TOKEN, SIDE_BUY, limit_amounts(SIDE_BUY, D("0.97"), D("10"), "0.01"), timestamp_ms=ts)

    for _ in range(200):
        fast()
        lib.build_order(args, opts, version=2)
    ours_ms = _time_per_call(fast, 2000)
    lib_ms = _time_per_call(lambda: lib.build_order(args, opts, version=2), 300)
    ratio = lib_ms / ours_ms
    return [
        Result(
            "signing: V2 order build+sign",
            round(ours_ms, 4),
            "ms",
            "<= 0.15 ms and >= 5x py-clob-client-v2",
            ours_ms <= 0.15 and ratio >= 5,
            peer=round(lib_ms, 4),
            note="peer: py-clob-client-v2 OrderBuilder.build_order (coincurve installed)",
        ),
    ]
