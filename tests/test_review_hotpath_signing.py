"""Review of the hot path (issue 13): the salt pool and the precomputed struct words.

- One signer shared by threads: a thread could find the pool non-empty, lose the GIL, and pop the list
  another thread had just emptied (IndexError from `sign`); `secrets.randbelow` per order had no such state.
- Gaps of tests/test_protocol_v2_signing.py: non-zero metadata / builder words, and the pooled salt (the
  SDK is handed the salt we drew), still byte-identical to polymarket-client; pooled salts stay below the
  order's timestamp and JSON-safe; a forked child draws salts its parent never uses."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from polymarket._internal.actions.orders.orders import create_signed_order
from polymarket._internal.actions.orders.post import build_post_order_request
from polymarket._internal.actions.orders.typed_data import build_order_signature, build_order_typed_data
from polymarket._internal.actions.orders.types import UnsignedOrder
from polymarket._internal.protocol import is_v2_position_id as sdk_is_v2
from polymarket.environments import PRODUCTION

from pmbot.polymarket import signing
from pmbot.polymarket.signing import SIDE_BUY, SIDE_SELL, Amounts, OrderSigner
from tests.test_protocol_v2_signing import ADDRESS, KEY, OWNER, V1_TOKENS, V2_TOKENS, WALLET, same_body

ACCOUNT = Account.from_key(KEY)
WORD = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())


def sdk_body(
    token: str, side: int, amounts: Amounts, *, salt: int, ts: int, neg_risk: bool, sig_type: int,
    metadata: str, builder: str,
) -> dict:  # fmt: skip
    cfg = PRODUCTION._config
    v2 = sdk_is_v2(token)
    unsigned = UnsignedOrder(
        chain_id=137,
        builder=builder,
        exchange_address=cfg.exchange_v3 if v2 else cfg.neg_risk_exchange if neg_risk else cfg.standard_exchange,
        expiration=0,
        maker=ADDRESS if sig_type == 0 else WALLET,
        maker_amount=amounts.maker_amount,
        metadata=metadata,
        order_type="GTC",
        salt=salt,
        side="BUY" if side == SIDE_BUY else "SELL",
        signature_type=sig_type,
        signer=WALLET if sig_type == 3 else ADDRESS,
        taker_amount=amounts.taker_amount,
        timestamp=ts,
        token_id=token,
        protocol_version="3" if v2 else "2",
    )
    raw = ACCOUNT.sign_typed_data(full_message=build_order_typed_data(unsigned)).signature.hex()
    signature = build_order_signature(unsigned, raw if raw.startswith("0x") else "0x" + raw)
    _, body = build_post_order_request(create_signed_order(unsigned, signature, post_only=False), owner_api_key=OWNER)
    return body


@settings(max_examples=60, deadline=None)
@given(
    token=st.one_of(V1_TOKENS, V2_TOKENS),
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    neg_risk=st.booleans(),
    sig_type=st.sampled_from([0, 1, 2, 3]),
    metadata=WORD,
    builder=WORD,
)
def test_non_zero_metadata_builder_and_the_pooled_salt_are_the_sdks(
    token: str, side: int, neg_risk: bool, sig_type: int, metadata: str, builder: str
) -> None:
    ts = int(time.time() * 1000)
    signer = OrderSigner(KEY, signature_type=sig_type, funder=None if sig_type == 0 else WALLET)
    amounts = Amounts(5_000_000, 2_500_000)
    order = signer.sign(token, side, amounts, neg_risk=neg_risk, timestamp_ms=ts, metadata=metadata, builder=builder)
    ours = order.to_wire(OWNER, "GTC", post_only=False)
    salt = ours["order"]["salt"]
    assert isinstance(salt, int) and 0 <= salt < 2**40 < ts  # below the timestamp, JSON-safe
    theirs = sdk_body(token, side, amounts, salt=salt, ts=ts, neg_risk=neg_risk, sig_type=sig_type,
                      metadata=metadata, builder=builder)  # fmt: skip
    same_body(ours, theirs)


def test_a_signer_shared_by_threads_always_has_a_salt(monkeypatch: pytest.MonkeyPatch) -> None:
    # One salt per read makes the refill (the racy moment) happen on every other order.
    monkeypatch.setattr(signing, "_SALTS_PER_READ", 1)
    signer = OrderSigner(KEY, signature_type=0)
    ts = int(time.time() * 1000)
    errors: list[BaseException] = []
    drawn: list[int] = []

    def work() -> None:
        out = []
        try:
            for _ in range(20_000):
                out.append(signer._salt(ts))
        except Exception as e:
            errors.append(e)
        drawn.extend(out)

    threads = [threading.Thread(target=work) for _ in range(6)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []
    assert len(drawn) == 6 * 20_000 and all(0 <= s < 2**40 for s in drawn)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX")
def test_a_forked_child_never_draws_its_parents_next_salts() -> None:
    signer = OrderSigner(KEY, signature_type=0)
    ts = int(time.time() * 1000)
    signer._salt(ts)  # the pool is full: 255 salts the parent will use
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, ",".join(str(signer._salt(ts)) for _ in range(255)).encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        child = {int(s) for s in f.read().split(",")}
    os.waitpid(pid, 0)
    parent = {signer._salt(ts) for _ in range(255)}
    assert len(child) == 255 and not child & parent
