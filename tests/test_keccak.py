"""pmbot.polymarket.keccak: the order path's Keccak-256 is eth_hash's, byte for byte, from any thread."""

from __future__ import annotations

import functools
import os

import pytest
from eth_hash.auto import keccak as eth_keccak

from pmbot.polymarket import keccak as mod
from pmbot.polymarket.keccak import keccak256
from tests.racing import race


def test_the_direct_path_is_the_one_in_use_here() -> None:
    # With the locked pycryptodome the fast path loads; a fallback would hide a lost speed-up.
    assert mod.DIRECT


@pytest.mark.parametrize(
    ("data", "digest"),
    [
        (b"", "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"),
        (b"abc", "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45"),
        # the V2 Order type hash, as the SDK computes it (tests/test_protocol_v2_signing.py checks the rest)
        (
            b"Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
            b"uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,bytes32 builder)",
            eth_keccak(
                b"Order(uint256 salt,address maker,address signer,uint256 tokenId,uint256 makerAmount,"
                b"uint256 takerAmount,uint8 side,uint8 signatureType,uint256 timestamp,bytes32 metadata,"
                b"bytes32 builder)"
            ).hex(),
        ),
    ],
)
def test_known_digests(data: bytes, digest: str) -> None:
    assert keccak256(data).hex() == digest


@pytest.mark.parametrize("n", [0, 1, 31, 32, 135, 136, 137, 271, 272, 384, 386, 1000, 65536])
def test_every_length_across_the_block_boundaries_is_eth_hashs(n: int) -> None:
    data = os.urandom(n)
    assert keccak256(data) == eth_keccak(data)


def test_threads_sharing_the_state_each_get_their_own_digest() -> None:
    inputs = [os.urandom(64 + i) for i in range(64)]
    want = [eth_keccak(d) for d in inputs]
    bad: list[int] = []

    def work(k: int) -> None:
        for _ in range(300):
            for i in range(k, len(inputs), 4):
                if keccak256(inputs[i]) != want[i]:
                    bad.append(i)

    race([functools.partial(work, k) for k in range(4)])
    assert bad == []
