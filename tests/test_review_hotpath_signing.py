"""Review of the hot path (issue 13): the salt pool and the precomputed struct words.

- One signer shared by threads: a thread could find the pool non-empty, lose the GIL, and pop the list
  another thread had just emptied (IndexError from `sign`); `secrets.randbelow` per order had no such state.
- Gaps of tests/test_protocol_v2_signing.py: non-zero metadata / builder words, and the pooled salt (the
  SDK is handed the salt we drew), still byte-identical to polymarket-client; pooled salts stay below the
  order's timestamp and JSON-safe; a forked child draws salts its parent never uses."""

from __future__ import annotations

import os
import time

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from pmbot.polymarket import signing
from pmbot.polymarket.signing import SIDE_BUY, SIDE_SELL, Amounts, OrderSigner
from tests.racing import race
from tests.test_protocol_v2_signing import KEY, OWNER, V1_TOKENS, V2_TOKENS, WALLET, same_body, sdk_body

ACCOUNT = Account.from_key(KEY)
WORD = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())


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
                      post_only=False, metadata=metadata, builder=builder)  # fmt: skip
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

    race([work] * 6)
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
