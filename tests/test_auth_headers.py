"""pmbot's L1 (ClobAuth EIP-712) and L2 (HMAC) headers against polymarket-client 0.14, the unified
official SDK, on random keys, timestamps, nonces, secrets, methods, paths and bodies: the same header
names, in the same order, with the same bytes. The sim's own checks (eth_account, stdlib hmac) accept
them too."""

from __future__ import annotations

import base64

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st
from polymarket._internal.actions.auth import build_l1_auth_headers
from polymarket._internal.hmac import build_hmac_signature
from polymarket._internal.l1_auth import sign_api_key_auth

from pmbot.errors import AuthError
from pmbot.polymarket.auth import L1Signer, hmac_signature, l2_headers
from pmbot.polymarket.models import ApiCreds
from pmbot.sim.auth import ApiKeys, expected_hmac
from pmbot.sim.verify import recover_clob_auth

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
KEYS = st.integers(1, SECP256K1_N - 1).map(lambda n: "0x" + n.to_bytes(32, "big").hex())
TIMESTAMPS = st.integers(0, 2**40)
METHODS = st.sampled_from(["GET", "POST", "DELETE", "PUT", "PATCH"])
# Paths as the venue signs them (no query); any printable text, to catch an encoding difference.
PATHS = st.one_of(
    st.sampled_from(["/order", "/orders", "/data/orders", "/auth/api-keys", "/v1/heartbeats", "/cancel-all"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(lambda s: "/" + s),
)
# Bodies: None (GET), empty, JSON-ish, quotes (py-clob-client-v2 rewrote ' to "; the SDK does not), unicode.
BODIES = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=300),
    st.sampled_from(['{"orderID":"0xab"}', "{'a': 'b'}", '{"q":"it\'s"}', '{"é":"→"}']),
)
# Secrets: URL-safe base64 of random bytes, with and without their padding (the SDK pads).
SECRETS = st.tuples(st.binary(min_size=1, max_size=64), st.booleans()).map(
    lambda t: base64.urlsafe_b64encode(t[0]).decode().rstrip("=" if t[1] else "")
)


def sdk_l1(key: str, chain_id: int, timestamp: int, nonce: int) -> dict[str, str]:
    return build_l1_auth_headers(
        sign_api_key_auth(Account.from_key(key), chain_id=chain_id, timestamp=timestamp, nonce=nonce)
    )


@settings(max_examples=40, deadline=None)
@given(key=KEYS, chain_id=st.sampled_from([137, 80002]), timestamp=TIMESTAMPS, nonce=st.integers(0, 2**256 - 1))
def test_l1_headers_are_byte_identical_to_polymarket_client(
    key: str, chain_id: int, timestamp: int, nonce: int
) -> None:
    ours = L1Signer(key, chain_id, clock=lambda: 0).headers(nonce, timestamp=timestamp)
    theirs = sdk_l1(key, chain_id, timestamp, nonce)
    assert list(ours.items()) == list(theirs.items())
    # And the sim's own check (eth_account's encoder, not ours) recovers the wallet from it.
    assert (
        recover_clob_auth(ours["POLY_ADDRESS"], ours["POLY_TIMESTAMP"], nonce, ours["POLY_SIGNATURE"], chain_id)
        == (ours["POLY_ADDRESS"])
    )


def test_l1_headers_use_the_clock_when_no_timestamp_is_given() -> None:
    key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"  # Hardhat #0: public
    ours = L1Signer(key, 137, clock=lambda: 1_700_000_123.9).headers()
    assert list(ours.items()) == list(sdk_l1(key, 137, 1_700_000_123, 0).items())


@settings(max_examples=300, deadline=None)
@given(
    key=KEYS,
    secret=SECRETS,
    api_key=st.uuids().map(str),
    passphrase=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=64),
    method=METHODS,
    path=PATHS,
    body=BODIES,
    timestamp=TIMESTAMPS,
)
def test_l2_headers_are_byte_identical_to_polymarket_client(
    key: str, secret: str, api_key: str, passphrase: str, method: str, path: str, body: str | None, timestamp: int
) -> None:
    address = Account.from_key(key).address
    ours = l2_headers(address, ApiCreds(api_key, secret, passphrase), method, path, body, timestamp)
    # polymarket/clients/secure.py `_make_l2_header_resolver_sync`, with its clock fixed.
    theirs = {
        "POLY_ADDRESS": address,
        "POLY_API_KEY": api_key,
        "POLY_PASSPHRASE": passphrase,
        "POLY_SIGNATURE": build_hmac_signature(secret=secret, timestamp=timestamp, method=method, path=path, body=body),
        "POLY_TIMESTAMP": str(timestamp),
    }
    assert list(ours.items()) == list(theirs.items())
    # The sim computes it on its own (stdlib hmac) from what arrives: a body of None arrives as "".
    assert expected_hmac(secret, str(timestamp), method, path, body or "") == ours["POLY_SIGNATURE"]


def test_the_method_is_signed_upper_case() -> None:
    secret = base64.urlsafe_b64encode(b"k" * 32).decode()
    assert hmac_signature(secret, 1, "POST", "/order", "{}") == build_hmac_signature(
        secret=secret, timestamp=1, method="POST", path="/order", body="{}"
    )
    creds = ApiCreds("k", secret, "p")
    assert l2_headers("0x0", creds, "post", "/order", "{}", 1) == l2_headers("0x0", creds, "POST", "/order", "{}", 1)


def test_the_sim_accepts_pmbots_l2_headers_and_refuses_another_body() -> None:
    keys = ApiKeys(seed=7)
    addr = Account.from_key("0x" + "11" * 32).address
    k = keys.derive(addr)
    creds = ApiCreds(k.key, k.secret, k.passphrase)
    body = '{"order":{"salt":1},"owner":"x"}'
    assert keys.check_l2(l2_headers(addr, creds, "POST", "/order", body, 5), "POST", "/order", body) == k
    from pmbot.sim.auth import AuthFailedError

    with pytest.raises(AuthFailedError):
        keys.check_l2(l2_headers(addr, creds, "POST", "/order", body, 5), "POST", "/order", body + " ")


@pytest.mark.parametrize("key", ["", "0x", "0x00", "0x" + "00" * 32, "0x" + "zz" * 32, f"0x{SECP256K1_N:064x}"])
def test_a_bad_key_is_one_line_that_never_echoes_it(key: str) -> None:
    with pytest.raises(AuthError) as e:
        L1Signer(key, 137, clock=lambda: 0)
    assert e.value.message == "the configured private key is not a valid secp256k1 key"
    assert key.removeprefix("0x") not in str(e.value) or not key.removeprefix("0x")


def test_a_secret_that_is_not_base64_is_an_auth_error() -> None:
    with pytest.raises(AuthError, match="not valid base64"):
        hmac_signature("a", 1, "GET", "/x", None)  # one char: no padding makes it whole


def test_the_known_vectors_of_the_protocol_notes() -> None:
    """docs/polymarket-protocol.md §2: the same values from py-clob-client-v2 1.2.1 and the SDK."""
    key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    assert L1Signer(key, 137, clock=lambda: 0).headers(0, timestamp=1_700_000_000)["POLY_SIGNATURE"] == (
        "0x659ed4b28ae28e0f038fdf0023c00863c9559caacb9ebc83f44eea87059a099a"
        "36f1e1dee110e7faa1c4f65d17489b2da1333ebef78bbe2116d81207b975052d1c"
    )
    secret = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
    assert hmac_signature(secret, 1_700_000_000, "POST", "/order", '{"a":1}') == (
        "KuAtBdxlNSRO7yFe_5Qikip_BbnrGVoJBwVUQ47TuHA="
    )
    for s in (secret, secret.rstrip("=")):
        assert hmac_signature(s, 1_700_000_000, "GET", "/data/orders", None) == (
            "Xk7ucqyxdXt4Rya-du9c6i0l0gqjxKd7WbJMhIZ0N4s="
        )
