"""The fast signer against polymarket-client 0.14 (the unified official SDK): its typed-data builder
signed with eth_account, then its signature trailer and POST /order body builder, on identical
inputs. Signature types 0–3, V1 token ids (domain "2", CTFExchangeV2 / NegRisk V2) and V2 position
ids (domain "3", ExchangeV3), neg-risk, full-range ids."""

from __future__ import annotations

import json

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

from pmbot.errors import InputError
from pmbot.polymarket import identity
from pmbot.polymarket.signing import (
    EXCHANGE_V2,
    EXCHANGE_V3,
    NEG_RISK_EXCHANGE_V2,
    ORDER_TYPE_STRING,
    SIDE_BUY,
    SIDE_SELL,
    Amounts,
    OrderSigner,
)

KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0: public
ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
WALLET = "0x" + "ab" * 20  # the proxy / Safe / deposit wallet (maker)
ACCOUNT = Account.from_key(KEY)
OWNER = "api-key-uuid"


ZERO_WORD = "0x" + "00" * 32


def sdk_body(
    token: str, side: int, amounts: Amounts, *, salt: int, ts: int, neg_risk: bool, sig_type: int, post_only: bool,
    metadata: str = ZERO_WORD, builder: str = ZERO_WORD,
) -> dict:  # fmt: skip
    """What polymarket-client sends: exchange by id, protocol version by id, TypedDataSign for type 3."""
    cfg = PRODUCTION._config
    v2 = sdk_is_v2(token)
    exchange = cfg.exchange_v3 if v2 else cfg.neg_risk_exchange if neg_risk else cfg.standard_exchange
    unsigned = UnsignedOrder(
        chain_id=137,
        builder=builder,
        exchange_address=exchange,
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
    signed = ACCOUNT.sign_typed_data(full_message=build_order_typed_data(unsigned))
    raw = signed.signature.hex()
    signature = build_order_signature(unsigned, raw if raw.startswith("0x") else "0x" + raw)
    _, body = build_post_order_request(
        create_signed_order(unsigned, signature, post_only=post_only), owner_api_key=OWNER
    )
    return body


def ours_body(
    token: str, side: int, amounts: Amounts, *, salt: int, ts: int, neg_risk: bool, sig_type: int, post_only: bool
) -> dict:
    signer = OrderSigner(KEY, signature_type=sig_type, funder=None if sig_type == 0 else WALLET)
    order = signer.sign(token, side, amounts, neg_risk=neg_risk, salt=salt, timestamp_ms=ts)
    return order.to_wire(OWNER, "GTC", post_only=post_only)


def same_body(ours: dict, theirs: dict) -> None:
    # The signed order, byte for byte once serialised the same way (key order is not signed).
    assert json.dumps(ours["order"], sort_keys=True) == json.dumps(theirs["order"], sort_keys=True)
    # The envelope: the SDK leaves postOnly out when false; py-clob-client-v2 (and we) send false.
    envelope = {k: v for k, v in ours.items() if k != "order" and not (k == "postOnly" and v is False)}
    assert envelope == {k: v for k, v in theirs.items() if k != "order"}


def v2_position(module: int, market: int, outcome: int) -> str:
    """A Protocol V2 position id: module byte, 30 bytes of market, zero bits 40..103, outcome byte."""
    value = (module << 248) | ((market & ((1 << 144) - 1)) << 104) | (outcome & 0xFF)
    return str(value)


V1_TOKENS = st.integers(1, 2**256 - 1).filter(lambda n: n & identity.V2_RESERVED_MASK != 0).map(str)
V2_TOKENS = st.builds(v2_position, st.sampled_from([1, 2]), st.integers(0, 2**144 - 1), st.integers(0, 1))


@settings(max_examples=120, deadline=None)
@given(
    token=st.one_of(V1_TOKENS, V2_TOKENS),
    maker=st.integers(1, 10**12),
    taker=st.integers(1, 10**12),
    side=st.sampled_from([SIDE_BUY, SIDE_SELL]),
    salt=st.integers(0, 2**53 - 1),
    ts=st.integers(1_600_000_000_000, 1_900_000_000_000),
    neg_risk=st.booleans(),
    sig_type=st.sampled_from([0, 1, 2, 3]),
    post_only=st.booleans(),
)
def test_signature_and_body_are_byte_identical_to_polymarket_client(
    token, maker, taker, side, salt, ts, neg_risk, sig_type, post_only
) -> None:
    args = dict(salt=salt, ts=ts, neg_risk=neg_risk, sig_type=sig_type, post_only=post_only)
    same_body(
        ours_body(token, side, Amounts(maker, taker), **args), sdk_body(token, side, Amounts(maker, taker), **args)
    )


@pytest.mark.parametrize("sig_type", [0, 1, 2, 3])
@pytest.mark.parametrize(
    "token",
    [
        "1",  # the smallest id: V2 namespace (module byte 0), like the SDK says
        str(2**256 - 1),  # the largest: V1
        v2_position(1, 2**144 - 1, 1),
        v2_position(2, 12345, 0),
        "23305969272951306317157739183583008201155714184462027894470739210983097393455",  # recorded V1 token
        "1162654702417329243518891277010413122836313410091608738884307871557302091776",  # recorded V2 position
    ],
)
def test_edge_ids(token: str, sig_type: int) -> None:
    for neg_risk in (False, True):
        args = dict(salt=7, ts=1_764_000_000_000, neg_risk=neg_risk, sig_type=sig_type, post_only=False)
        same_body(
            ours_body(token, SIDE_SELL, Amounts(5_000_000, 2_500_000), **args),
            sdk_body(token, SIDE_SELL, Amounts(5_000_000, 2_500_000), **args),
        )


def test_domain_is_chosen_by_the_id() -> None:
    """The order hash is the EIP-712 digest under the domain the id selects (checked with eth_account)."""
    from eth_account.messages import _hash_eip191_message, encode_typed_data

    signer = OrderSigner(KEY)
    v1 = "23305969272951306317157739183583008201155714184462027894470739210983097393455"
    v2 = v2_position(2, 99, 1)
    for token, neg_risk, contract, version in [
        (v1, False, EXCHANGE_V2, "2"),
        (v1, True, NEG_RISK_EXCHANGE_V2, "2"),
        (v2, False, EXCHANGE_V3, "3"),
        (v2, True, EXCHANGE_V3, "3"),
    ]:
        o = signer.sign(token, SIDE_BUY, Amounts(1, 2), neg_risk=neg_risk, salt=1, timestamp_ms=2)
        unsigned = UnsignedOrder(
            chain_id=137, builder=o.builder, exchange_address=contract, expiration=0, maker=o.maker,
            maker_amount=1, metadata=o.metadata, order_type="GTC", salt=1, side="BUY", signature_type=0,
            signer=o.signer, taker_amount=2, timestamp=2, token_id=token, protocol_version=version,
        )  # fmt: skip
        digest = _hash_eip191_message(encode_typed_data(full_message=build_order_typed_data(unsigned)))
        assert o.order_hash == "0x" + digest.hex()
        assert Account._recover_hash(digest, signature=o.signature) == ADDRESS


def test_deposit_wallet_signs_as_the_wallet_and_needs_its_address() -> None:
    signer = OrderSigner(KEY, signature_type=3, funder=WALLET)
    o = signer.sign(v2_position(1, 5, 0), SIDE_BUY, Amounts(1, 2), salt=1, timestamp_ms=2)
    assert o.signer == o.maker == WALLET and signer.address == ADDRESS  # L2 auth stays the owner key
    n = len(ORDER_TYPE_STRING)
    # 65-byte ECDSA ‖ app domain separator ‖ contents hash ‖ type string ‖ its 2-byte length
    assert len(o.signature) == 2 + 2 * (65 + 32 + 32 + n + 2)
    assert o.signature.endswith(ORDER_TYPE_STRING.encode().hex() + f"{n:04x}")
    with pytest.raises(InputError, match="deposit wallet"):
        OrderSigner(KEY, signature_type=3)
    with pytest.raises(InputError, match="signature type 4"):
        OrderSigner(KEY, signature_type=4, funder=WALLET)


def test_combos_positions_are_refused_by_the_signer() -> None:
    with pytest.raises(InputError, match="combos"):
        OrderSigner(KEY).sign(v2_position(3, 1, 0), SIDE_BUY, Amounts(1, 2), salt=1, timestamp_ms=2)
