"""Order signing: pmbot's fast path vs the official clients' build-and-sign, same process.

Peer: polymarket-client 0.14's own build-and-sign (amounts, unsigned order, typed data, eth_account
sign_typed_data, deposit-wallet trailer) for both protocols (V1 tokens → CTFExchangeV2 domain "2",
V2 positions → ExchangeV3 domain "3") and every signature type 0–3."""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

from bench.harness import Result, median

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # hardhat test key
TOKEN = "71321045679252212594626385532706912750332728571942532289631379312455583992563"  # noqa: S105 - a token id
# A Protocol V2 position id (module 1 binary, outcome 0): bits 40..103 clear.
POSITION = str((1 << 248) | (0xB7C0FFEE << 120) | (0x1234 << 104))
WALLET = "0x" + "ab" * 20  # proxy / Safe / deposit wallet


def _time_per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1000)
    return median(runs)


def run() -> list[Result]:
    return _unified_sdk_rows()


def _unified_sdk_rows() -> list[Result]:
    from eth_account import Account
    from polymarket._internal.actions.orders.limit import _compute_limit_order_amounts
    from polymarket._internal.actions.orders.orders import create_signed_order, create_unsigned_order
    from polymarket._internal.actions.orders.typed_data import build_order_signature, build_order_typed_data
    from polymarket._internal.actions.orders.types import OrderDraft
    from polymarket._internal.environment import PRODUCTION_CONFIG as CFG
    from polymarket._internal.protocol import is_v2_position_id

    from pmbot.polymarket.signing import SIDE_BUY, OrderSigner, limit_amounts

    account = Account.from_key(KEY)
    wallet_types = {0: "EOA", 1: "POLY_PROXY", 2: "GNOSIS_SAFE", 3: "DEPOSIT_WALLET"}
    ts = int(time.time() * 1000)
    rows = []
    for protocol, token in (("V1 token, domain 2", TOKEN), ("V2 position, domain 3", POSITION)):
        exchange = CFG.exchange_v3 if is_v2_position_id(token) else CFG.standard_exchange
        for sig_type, wallet_type in wallet_types.items():
            funder = account.address if sig_type == 0 else WALLET
            ours = OrderSigner(KEY, signature_type=sig_type, funder=None if sig_type == 0 else WALLET)

            def fast(ours: OrderSigner = ours, token: str = token) -> None:
                ours.sign(token, SIDE_BUY, limit_amounts(SIDE_BUY, D("0.97"), D("10"), "0.01"), timestamp_ms=ts)

            def sdk(token: Any = token, exchange: Any = exchange, funder: Any = funder, wt: Any = wallet_type) -> None:
                offered, requested = _compute_limit_order_amounts(
                    price=D("0.97"), size=D("10"), side="BUY", tick_size=D("0.01")
                )
                draft = OrderDraft(
                    chain_id=137, exchange_address=exchange, expiration=0, funder_address=funder,
                    offered_amount=offered, order_type="GTC", side="BUY", signer=account.address,
                    requested_amount=requested, asset_id=token,
                )  # fmt: skip
                unsigned = create_unsigned_order(draft, wallet=funder, wallet_type=wt)
                raw = account.sign_typed_data(full_message=build_order_typed_data(unsigned)).signature.hex()
                create_signed_order(
                    unsigned, build_order_signature(unsigned, raw if raw.startswith("0x") else "0x" + raw)
                )

            for _ in range(100):
                fast()
                sdk()
            ours_ms = _time_per_call(fast, 2000)
            sdk_ms = _time_per_call(sdk, 100)
            rows.append(
                Result(
                    f"signing: {protocol}, sig type {sig_type}",
                    round(ours_ms, 4),
                    "ms",
                    "<= 0.15 ms and >= 5x polymarket-client",
                    ours_ms <= 0.15 and sdk_ms / ours_ms >= 5,
                    peer=round(sdk_ms, 4),
                    note="peer: polymarket-client 0.14 build + sign_typed_data (+ type-3 trailer)",
                )
            )
    return rows
